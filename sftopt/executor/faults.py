"""Faults a run survives: the errors that name them, and faults injected on purpose.

A party's process that dies or stops answering, a message that arrives corrupt (the codec
stream's checksum fails or its decoder refuses it, an adapter upload of the wrong length) end
the run with an `ExecutionError` naming the party, the round and what went wrong; the rounds
finished are kept (rounds.jsonl, result.json, the checkpoint).

Faults can be injected through the environment variable `SFTOPT_EXECUTOR_FAULT` (inherited by
every party's process, so it reaches a run with one process per party too), a comma-separated
list of ``KIND:PARTY:ROUND`` (rounds counted from 1, as the records count them):

- ``kill:PARTY:R``: the process hosting PARTY kills itself (SIGKILL) as round R starts (with
  every party in one process, that is the whole run);
- ``raise:PARTY:R``: PARTY raises an error as round R starts;
- ``corrupt:PARTY:R``: every codec message PARTY sends in round R has a byte flipped;
- ``truncate:PARTY:R``: every adapter upload PARTY sends in round R loses its last byte;
- ``stop:R`` (no party): the run stops as if interrupted (SIGINT) once round R is recorded
  and checkpointed, so that ``--resume`` can be tested against an uninterrupted run.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

ENV = "SFTOPT_EXECUTOR_FAULT"
KINDS = ("kill", "raise", "corrupt", "truncate", "stop")


class ExecutionError(RuntimeError):
    """A party's process failed or stopped answering, or a message arrived corrupt."""


class CorruptMessage(ExecutionError):
    """A message that cannot be decoded into what its receiver expects."""


@dataclass(frozen=True)
class Fault:
    kind: str
    party: str | None
    round: int  # 1-based


def planned(spec: str | None = None) -> list[Fault]:
    """The faults ``spec`` (default: the environment variable) asks for; ValueError naming the
    variable and the entry when one is malformed."""
    spec = os.environ.get(ENV, "") if spec is None else spec
    out = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        parts = item.split(":")
        kind = parts[0]
        ok = kind in KINDS and len(parts) == (2 if kind == "stop" else 3) and \
            parts[-1].isdigit() and int(parts[-1]) >= 1
        if not ok:
            raise ValueError(f"{ENV}: expected KIND:PARTY:ROUND (KIND one of kill, raise, "
                             f"corrupt, truncate) or stop:ROUND, rounds from 1; got {item!r}")
        out.append(Fault(kind, None if kind == "stop" else parts[1], int(parts[-1])))
    return out


def _match(kind: str, party: str | None, rnd: int) -> bool:
    """Whether a fault of ``kind`` is planned for ``party`` in round ``rnd`` (0-based)."""
    return any(f.kind == kind and f.party == party and f.round == rnd + 1 for f in planned())


def round_starts(party: str, rnd: int) -> None:
    """Where a party may die or fail as round ``rnd`` (0-based) starts."""
    if _match("kill", party, rnd):
        os.kill(os.getpid(), signal.SIGKILL)
    if _match("raise", party, rnd):
        raise ExecutionError(f"round {rnd + 1}: {party} failed (a fault injected by {ENV})")


def message(party: str, rnd: int, blob: bytes, kind: str = "corrupt") -> bytes:
    """A message ``party`` sends in round ``rnd``, damaged when a fault asks for it."""
    if not blob or not _match(kind, party, rnd):
        return blob
    if kind == "truncate":
        return blob[:-1]
    mid = len(blob) // 2
    return blob[:mid] + bytes([blob[mid] ^ 0xFF]) + blob[mid + 1:]


def stop_after(rnd: int) -> bool:
    """Whether the run is to stop (as if interrupted) after round ``rnd`` (1-based)."""
    return any(f.kind == "stop" and f.round == rnd for f in planned())
