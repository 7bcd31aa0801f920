"""One process per party: devices and the server exchange the encoded bytes over
torch.distributed (gloo), on the loopback here and across machines the same way.

Rank 0 hosts the parties that close a route (the server) and keeps the records; every other
party runs in a process of its own. Per round, in this order: each device sends its labels and
its encoded hidden state and waits for the encoded gradient; rank 0 serves the routes in route
order (so the server's arithmetic is the in-process run's, and so are the results); then the
uploads and the means sent back; then each device's timing; then, on evaluation rounds, a copy
of each device's adapters (instrumentation, not counted as traffic).
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..torchrt.models import StagedModel
from .runtime import Runtime, Setup
from .wire import Meter


def _send(dst: int, data: bytes) -> None:
    import torch
    import torch.distributed as dist

    dist.send(torch.tensor([len(data)], dtype=torch.int64), dst)
    if data:
        dist.send(torch.frombuffer(bytearray(data), dtype=torch.uint8), dst)


def _recv(src: int) -> bytes:
    import torch
    import torch.distributed as dist

    n = torch.zeros(1, dtype=torch.int64)
    dist.recv(n, src)
    if int(n) == 0:
        return b""
    buf = torch.empty(int(n), dtype=torch.uint8)
    dist.recv(buf, src)
    return buf.numpy().tobytes()


def _ranks(setup: Setup) -> tuple[set[str], dict[str, int]]:
    """The parties rank 0 hosts (those that close a two-segment route) and every other party's
    rank (placement order)."""
    pl = setup.placement
    host = {r.segments[-1].party for r in pl.routes if len(r.segments) == 2}
    others = [p.name for p in pl.parties
              if p.name not in host and any(s.party == p.name for r in pl.routes
                                            for s in r.segments)]
    return host, {name: k + 1 for k, name in enumerate(others)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TIMEOUT_S = 300  # a message not arriving in this long ends the run (a party died)


class ExecutionError(RuntimeError):
    """A party's process failed or stopped answering."""


def _init(rank: int, world: int, port: int) -> None:
    import datetime

    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world,
                            timeout=datetime.timedelta(seconds=TIMEOUT_S))


def _device(rank: int, world: int, port: int, setup: Setup, build: Callable[[], StagedModel],
            name: str, rounds: int, eval_every: int) -> None:
    """A device's process: its routes' first halves, uploads, timing and evaluation copies."""
    import torch.distributed as dist

    _init(rank, world, port)
    try:
        rt = Runtime(setup, build, parties={name})
        pl = setup.placement
        # this device's routes in the order rank 0 serves them
        mine = [(i, pl.routes[i]) for g in pl.groups for i in g
                if pl.routes[i].segments[0].party == name]
        uploads = any(u.src == name for u in pl.uploads)
        for rnd in range(rounds):
            rt.start_round()
            rt.codec_s = 0.0
            alone = []
            for ri, route in mine:
                x, y = setup.batch(route.owner)
                if route.links:
                    out, blob = rt.first_half(ri, route, rnd, x, y)
                    _send(0, y.numpy().tobytes())
                    _send(0, blob)
                    rt.finish(route, out, _recv(0))
                else:
                    alone.append((ri, rt.alone(ri, route, x, y), route.batch))
                if rt.sequential:
                    rt.step()
            if not rt.sequential:
                rt.step()
            if (rnd + 1) % setup.agg_every == 0 and uploads:
                _send(0, rt.snapshot(name, upload=True))
                rt.receive_mean(name, _recv(0))
            stats = {"compute_s": rt.parties[name].compute_s, "codec_s": rt.codec_s,
                     "alone": alone}
            _send(0, json.dumps(stats).encode())
            if ((rnd + 1) % eval_every == 0 or rnd + 1 == rounds) and rt.trained(name):
                _send(0, rt.snapshot(name))
    finally:
        dist.destroy_process_group()


def train_processes(setup: Setup, build: Callable[[], StagedModel], rounds: int,
                    eval_every: int, *, write: Callable[[dict[str, Any]], None],
                    progress: bool = False) -> list[dict[str, Any]]:
    """`run.train` with every device in a process of its own (this process is rank 0)."""
    pl = setup.placement
    if pl.gradient_uploads or any(not lk.backward for r in pl.routes for lk in r.links):
        raise ValueError(f"one process per party runs split placements (hidden states up, "
                         f"gradients back, adapter averaging); a {pl.family} plan runs in one "
                         "process (leave out --processes)")
    import torch.distributed as dist
    import torch.multiprocessing as mp
    from tqdm import tqdm

    host, ranks = _ranks(setup)
    world = 1 + len(ranks)
    port = _free_port()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_device, args=(rank, world, port, setup, build, name, rounds,
                                               eval_every), daemon=True)
             for name, rank in ranks.items()]
    for p in procs:
        p.start()
    records: list[dict[str, Any]] = []
    failed = None
    try:
        _init(0, world, port)
        rt = Runtime(setup, build, parties=host)
        acc, test_loss = rt.evaluate(_gather(rt, ranks, initial=True))
        records.append({"run": setup.name, "round": 0, "loss": None, "accuracy": acc,
                        "test_loss": test_loss})
        write(records[0])
        for rnd in tqdm(range(rounds), desc=f"{setup.name} (processes)", unit="round",
                        disable=not progress, leave=False):
            records.append(_round(rt, setup, ranks, rnd, rounds, eval_every))
            write(records[-1])
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a dead or silent party: name it instead of a gloo traceback
        failed = exc
    finally:
        with contextlib.suppress(Exception):
            dist.destroy_process_group()
        for p in procs:
            p.join(timeout=10 if failed is None else 1)
            if p.is_alive():
                p.terminate()
                p.join(timeout=10)
    bad = [(name, p.exitcode) for name, p in zip(ranks, procs, strict=True)
           if p.exitcode not in (0, None)]
    if failed is not None or bad:
        who = ", ".join(f"{n} (exit {c})" for n, c in bad) or "no process exited with an error"
        raise ExecutionError(f"the run with one process per party failed after "
                             f"{max(len(records) - 1, 0)} round(s): {who}; {failed or ''}")
    return records


def _gather(rt: Runtime, ranks: dict[str, int], initial: bool = False
            ) -> dict[int, dict[str, list[Any]]]:
    """Every copy of every trained stage: this process's own, the devices' (sent to it). At
    the start every copy equals this process's model, so nothing needs sending."""
    held = rt.held()
    for name, rank in ranks.items():
        if not rt.trained(name):
            continue
        if initial:
            for s in rt.trained(name):
                held[s][name] = [p.detach() for p in rt.model().trainable(s)]
        else:
            rt.merge(held, name, _recv(rank))
    return held


def _round(rt: Runtime, setup: Setup, ranks: dict[str, int], rnd: int, rounds: int,
           eval_every: int) -> dict[str, Any]:
    import torch

    pl = setup.placement
    meter = Meter()
    start = time.perf_counter()
    rt.start_round()
    rt.codec_s = 0.0
    losses: dict[int, tuple[float, int]] = {}  # by route, summed in route order as in-process
    for group in pl.groups:
        for ri in group:
            route = pl.routes[ri]
            if not route.links:
                continue  # the device computes its loss itself (it reports it below)
            src = ranks[route.segments[0].party]
            y = np.frombuffer(_recv(src), dtype=np.int64).copy()
            blob = _recv(src)
            loss, back = rt.second_half(ri, route, rnd, blob, torch.from_numpy(y), meter)
            _send(src, back)
            losses[ri] = (loss, route.batch)
            if rt.sequential:
                rt.step({route.segments[-1].party})
    if not rt.sequential:
        rt.step()
    if (rnd + 1) % setup.agg_every == 0:
        received = {u.src: _recv(ranks[u.src]) for u in pl.uploads}
        for src, blob in rt.aggregate(meter, received).items():
            _send(ranks[src], blob)
    compute = {n: p.compute_s for n, p in rt.parties.items()}
    codec = rt.codec_s
    for name, rank in ranks.items():
        stats = json.loads(_recv(rank))
        compute[name] = stats["compute_s"]
        codec += stats["codec_s"]
        losses.update({ri: (v, n) for ri, v, n in stats["alone"]})
    order = [losses[ri] for group in pl.groups for ri in group]
    total = sum(n for _, n in order)
    rec = {"run": setup.name, "round": rnd + 1, "loss": sum(v * n for v, n in order) / total,
           "bytes_sent": meter.charged,
           "bytes": meter.record(),
           "levels": {str(k): v for k, v in sorted(meter.by_level.items())},
           "compute_s": compute, "codec_s": codec, "wall_s": time.perf_counter() - start,
           "accuracy": None, "test_loss": None}
    if (rnd + 1) % eval_every == 0 or rnd + 1 == rounds:
        rec["accuracy"], rec["test_loss"] = rt.evaluate(_gather(rt, ranks))
    return rec
