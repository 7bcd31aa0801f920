"""One process per party: devices, edges and the server (or cloud) exchange the encoded bytes
over torch.distributed (gloo), on the loopback here and across machines the same way.

Rank 0 hosts the parties that close a route (the server, the cloud) and the aggregator, and
keeps the records; every other party runs in a process of its own. Every process runs the same
round as the one-process runtime (`Runtime.play`) on the parties it hosts: the routes in the
same order, each process doing its segments' part and sending what crosses to another process
(labels and the encoded hidden state up, the encoded gradient down), then the uploads, the
averaging at rank 0 and the means sent back. So a run gives the in-process run's records. Then
each process sends rank 0 what it counted and timed and the losses it computed, and, on
evaluation rounds, a copy of its party's adapters (instrumentation, not counted as traffic),
and its state for the checkpoint rank 0 writes (`checkpoint`; also not counted).

A party's process that dies, fails or receives a corrupt message ends the run: each process
reports why it stopped to rank 0 (through a queue beside gloo), and rank 0 names the cause (the
party, the round, what), not the broken connections it left in the others.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from ..torchrt.models import StagedModel
from . import checkpoint
from .checkpoint import Resumed, Save
from .faults import ExecutionError
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


def _drawn(setup: Setup, hosted: set[str]) -> set[str]:
    """The route owners whose batches a process hosting ``hosted`` draws (their samplers are
    its part of the checkpoint)."""
    return {r.owner for r in setup.placement.routes if r.segments[0].party in hosted}


def _party(rank: int, world: int, port: int, setup: Setup, build: Callable[[], StagedModel],
           name: str, ranks: dict[str, int], rounds: int, eval_every: int, start: int,
           state: bytes | None, checkpointing: bool, errors: Any) -> None:
    """A party's process (a device, a user, an edge): its part of every round from ``start``
    (its ``state`` restored), then what it counted, timed and computed, on evaluation rounds a
    copy of its adapters, and its state for the checkpoint. Why it stopped, if it failed, goes
    to ``errors``."""
    import torch.distributed as dist

    rnd = start
    try:
        _init(rank, world, port)
        rt = Runtime(setup, build, parties={name})
        if state is not None:
            checkpoint.restore_process(rt, checkpoint.from_bytes(state), rng=name)
        net = Wire(rank, ranks)
        owners = _drawn(setup, {name})
        for rnd in range(start, rounds):
            meter, losses = rt.play(rnd, net)
            stats = {"compute_s": {n: p.compute_s for n, p in rt.parties.items()},
                     "codec_s": rt.codec_s, "meter": meter.dump(),
                     "losses": [[ri, v, n] for ri, (v, n) in losses.items()]}
            _send(0, json.dumps(stats).encode())
            if _evaluating(rnd, rounds, eval_every) and rt.trained(name):
                _send(0, rt.snapshot(name))
            if checkpointing:
                _send(0, checkpoint.to_bytes(checkpoint.process_state(rt, owners, rng=name)))
    except BaseException as exc:
        # a named fault (a corrupt message, a party failing) is a cause; anything else here
        # is most likely the broken connection another party's failure left
        errors.put((name, rnd + 1, isinstance(exc, ExecutionError),
                    str(exc) if isinstance(exc, ExecutionError)
                    else f"{type(exc).__name__}: {str(exc)[:300]}"))
        raise SystemExit(1) from None  # said above; rank 0 names it (no traceback per process)
    finally:
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


def train_processes(setup: Setup, build: Callable[[], StagedModel], rounds: int,
                    eval_every: int, *, write: Callable[[dict[str, Any]], None],
                    progress: bool = False, resume: Resumed | None = None,
                    save: Save | None = None) -> list[dict[str, Any]]:
    """`run.train` with every party but those of rank 0 in a process of its own (this process
    is rank 0, which gathers every process's state for ``save`` after each round)."""
    host, ranks = layout(setup)
    _check(setup, host)
    import torch.distributed as dist
    import torch.multiprocessing as mp
    from tqdm import tqdm

    others = {name: rank for name, rank in ranks.items() if rank > 0}
    world = 1 + len(others)
    port = _free_port()
    ctx = mp.get_context("spawn")
    errors = ctx.SimpleQueue()
    start = 0 if resume is None else resume.done
    procs = [ctx.Process(target=_party, args=(
        rank, world, port, setup, build, name, ranks, rounds, eval_every, start,
        None if resume is None else checkpoint.to_bytes(checkpoint.part(resume.state, name)),
        save is not None, errors), daemon=True) for name, rank in others.items()]
    for p in procs:
        p.start()
    records: list[dict[str, Any]] = []
    failed = None
    try:
        _init(0, world, port)
        rt = Runtime(setup, build, parties=host)
        net = Wire(0, ranks)
        if resume is None:
            acc, test_loss = rt.evaluate(_gather(rt, others, initial=True))
            records.append({"run": setup.name, "round": 0, "loss": None, "accuracy": acc,
                            "test_loss": test_loss})
            write(records[0])
        else:
            rt.eval_model = build()  # as the first evaluation built it, before the RNG
            checkpoint.restore_process(rt, resume.state)
            records = list(resume.records)
        owners = _drawn(setup, host)
        for rnd in tqdm(range(start, rounds), desc=f"{setup.name} (processes)", unit="round",
                        disable=not progress, leave=False, initial=start, total=rounds):
            records.append(_round(rt, net, others, rnd, rounds, eval_every))
            write(records[-1])
            if save is not None:
                states = [checkpoint.process_state(rt, owners)]
                states += [checkpoint.from_bytes(_recv(rank)) for rank in others.values()]
                save(rnd + 1, records, checkpoint.merge(states))
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a dead or silent party: name it instead of a gloo traceback
        failed = exc
    finally:
        with contextlib.suppress(Exception):
            dist.destroy_process_group()
        stopped = set()  # parties still running after the run: ended by us, not failed
        for name, p in zip(others, procs, strict=True):
            # after a finished run a party only tears down: on a loaded machine that can take
            # a while, and ending it then is no failure
            p.join(timeout=60 if failed is None else 1)
            if p.is_alive():
                p.terminate()
                p.join(timeout=10)
                stopped.add(name)
    bad = {name: p.exitcode for name, p in zip(others, procs, strict=True)
           if p.exitcode not in (0, None) and (failed is not None or name not in stopped)}
    if failed is not None or bad:
        reports = []
        while not errors.empty():
            reports.append(errors.get())
        done = max(len(records) - 1, start)
        raise ExecutionError(f"run {setup.name!r} with one process per party stopped in round "
                             f"{done + 1} ({done} finished): "
                             + _cause(failed, reports, bad, others, stopped))
    return records


def _cause(failed: Exception | None, reports: list[tuple[str, int, bool, str]],
           bad: dict[str, int], others: dict[str, int], stopped: set[str]) -> str:
    """Why a run with one process per party stopped, cause first: a fault rank 0 named (a
    corrupt message it received), one a party's process named, a process that died (by a
    signal, or exiting without a word; not one ``stopped`` by rank 0 after the failure); else
    every error seen (broken connections)."""
    if isinstance(failed, ExecutionError):
        return str(failed)
    named = [f"{name}: {what}" for name, _, is_named, what in reports if is_named]
    if named:
        return "; ".join(named)
    said = {name for name, *_ in reports}
    died = [f"the process of {name} (rank {others[name]}) died ({_exit(code)})"
            for name, code in bad.items()
            if name not in stopped and (code < 0 or name not in said)]
    if died:
        return "; ".join(died)
    seen = [f"{name}: {what}" for name, _, _, what in reports]
    if failed is not None:
        seen.insert(0, f"rank 0: {type(failed).__name__}: {str(failed)[:300]}")
    return "; ".join(seen) or "no process said why"


def _exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit code {code}"


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
