"""One process per party: devices, edges and the server (or cloud) exchange the encoded bytes
over torch.distributed (gloo), on the loopback here and across machines the same way.

Rank 0 hosts the parties that close a route (the server, the cloud) and the aggregator, and
keeps the records; every other party runs in a process of its own. Every process runs the same
round as the one-process runtime (`Runtime.play`) on the parties it hosts: the routes in the
same order, each process doing its segments' part and sending what crosses to another process
(labels and the encoded hidden state up, the encoded gradient down), then the uploads, the
averaging at rank 0 and the means sent back. So a run gives the in-process run's records. Then
each process sends rank 0 what it counted and timed and the losses it computed, and, on
evaluation rounds, a copy of its party's adapters (instrumentation, not counted as traffic).
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Callable
from typing import Any

from ..torchrt.models import StagedModel
from .runtime import Runtime, Setup, aggregator, return_paths


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


class Wire:
    """The `Net` of one process of a run: the rank of every party, bytes over gloo."""

    def __init__(self, rank: int, ranks: dict[str, int]):
        self.rank, self.ranks = rank, ranks

    def local(self, party: str) -> bool:
        return self.ranks[party] == self.rank

    def send(self, party: str, data: bytes) -> None:
        _send(self.ranks[party], data)

    def recv(self, party: str) -> bytes:
        return _recv(self.ranks[party])


def layout(setup: Setup) -> tuple[set[str], dict[str, int]]:
    """The parties rank 0 hosts (those that close a route of several segments, and the
    aggregator) and every party's rank (the others in placement order from 1)."""
    pl = setup.placement
    host = {r.segments[-1].party for r in pl.routes if len(r.segments) > 1}
    sink = aggregator(pl)
    if sink is not None:
        host.add(sink)
    active = {s.party for r in pl.routes for s in r.segments} | \
        {p for u in pl.uploads for p in (u.src, u.dst)}
    others = [p.name for p in pl.parties if p.name in active and p.name not in host]
    ranks = {name: 0 for name in host}
    ranks.update({name: k + 1 for k, name in enumerate(others)})
    missing = sorted(active - set(ranks))
    if missing:
        raise ValueError(f"parties {missing} run segments or uploads but are not parties of "
                         "the placement")
    return host, ranks


def _check(setup: Setup, host: set[str]) -> None:
    """What one process per party cannot run, named before any process starts."""
    pl = setup.placement
    if pl.gradient_uploads or any(not lk.backward for r in pl.routes for lk in r.links):
        raise ValueError(f"one process per party runs split and hierarchical placements "
                         f"(hidden states up, gradients back, adapter averaging); a {pl.family} "
                         "plan runs in one process (leave out --processes)")
    returns = return_paths(pl)
    for stage, parties in pl.copies().items():
        for name in parties:
            if name not in host and (name not in returns or stage not in returns[name][1]):
                raise ValueError(f"one process per party: {name} trains the adapters of stage "
                                 f"{stage} but uploads none of them for averaging")


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


def _evaluating(rnd: int, rounds: int, eval_every: int) -> bool:
    return (rnd + 1) % eval_every == 0 or rnd + 1 == rounds


def _party(rank: int, world: int, port: int, setup: Setup, build: Callable[[], StagedModel],
           name: str, ranks: dict[str, int], rounds: int, eval_every: int) -> None:
    """A party's process (a device, a user, an edge): its part of every round, then what it
    counted, timed and computed, and on evaluation rounds a copy of its adapters."""
    import torch.distributed as dist

    _init(rank, world, port)
    try:
        rt = Runtime(setup, build, parties={name})
        net = Wire(rank, ranks)
        for rnd in range(rounds):
            meter, losses = rt.play(rnd, net)
            stats = {"compute_s": {n: p.compute_s for n, p in rt.parties.items()},
                     "codec_s": rt.codec_s, "meter": meter.dump(),
                     "losses": [[ri, v, n] for ri, (v, n) in losses.items()]}
            _send(0, json.dumps(stats).encode())
            if _evaluating(rnd, rounds, eval_every) and rt.trained(name):
                _send(0, rt.snapshot(name))
    finally:
        dist.destroy_process_group()


def train_processes(setup: Setup, build: Callable[[], StagedModel], rounds: int,
                    eval_every: int, *, write: Callable[[dict[str, Any]], None],
                    progress: bool = False) -> list[dict[str, Any]]:
    """`run.train` with every party but those of rank 0 in a process of its own (this process
    is rank 0)."""
    host, ranks = layout(setup)
    _check(setup, host)
    import torch.distributed as dist
    import torch.multiprocessing as mp
    from tqdm import tqdm

    others = {name: rank for name, rank in ranks.items() if rank > 0}
    world = 1 + len(others)
    port = _free_port()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_party, args=(rank, world, port, setup, build, name, ranks,
                                              rounds, eval_every), daemon=True)
             for name, rank in others.items()]
    for p in procs:
        p.start()
    records: list[dict[str, Any]] = []
    failed = None
    try:
        _init(0, world, port)
        rt = Runtime(setup, build, parties=host)
        net = Wire(0, ranks)
        acc, test_loss = rt.evaluate(_gather(rt, others, initial=True))
        records.append({"run": setup.name, "round": 0, "loss": None, "accuracy": acc,
                        "test_loss": test_loss})
        write(records[0])
        for rnd in tqdm(range(rounds), desc=f"{setup.name} (processes)", unit="round",
                        disable=not progress, leave=False):
            records.append(_round(rt, net, others, rnd, rounds, eval_every))
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
    bad = [(name, p.exitcode) for name, p in zip(others, procs, strict=True)
           if p.exitcode not in (0, None)]
    if failed is not None or bad:
        who = ", ".join(f"{n} (exit {c})" for n, c in bad) or "no process exited with an error"
        raise ExecutionError(f"the run with one process per party failed after "
                             f"{max(len(records) - 1, 0)} round(s): {who}; {failed or ''}")
    return records


def _gather(rt: Runtime, others: dict[str, int], initial: bool = False
            ) -> dict[int, dict[str, list[Any]]]:
    """Every copy of every trained stage: this process's own, the other parties' (sent to
    it). At the start every copy equals this process's model, so nothing needs sending."""
    held = rt.held()
    for name, rank in others.items():
        if not rt.trained(name):
            continue
        if initial:
            for s in rt.trained(name):
                held[s][name] = [p.detach() for p in rt.model().trainable(s)]
        else:
            rt.merge(held, name, _recv(rank))
    return held


def _round(rt: Runtime, net: Wire, others: dict[str, int], rnd: int, rounds: int,
           eval_every: int) -> dict[str, Any]:
    start = time.perf_counter()
    meter, losses = rt.play(rnd, net)
    compute = {n: p.compute_s for n, p in rt.parties.items()}
    codec = rt.codec_s
    for rank in others.values():
        stats = json.loads(_recv(rank))
        compute.update(stats["compute_s"])
        codec += stats["codec_s"]
        meter.add(stats["meter"])
        losses.update({ri: (v, n) for ri, v, n in stats["losses"]})
    rec = {"run": rt.setup.name,
           **rt.record(rnd, meter, losses, compute, codec, time.perf_counter() - start),
           "accuracy": None, "test_loss": None}
    if _evaluating(rnd, rounds, eval_every):
        rec["accuracy"], rec["test_loss"] = rt.evaluate(_gather(rt, others))
    return rec
