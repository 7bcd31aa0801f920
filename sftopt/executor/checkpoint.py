"""Checkpoints: everything a run needs to continue exactly where it stopped, written after every
round to ``OUT/checkpoint/state.pt`` whole or not at all (a temporary file, then a rename).

A checkpoint holds what training changes and nothing the model's builder makes again: every
party's trainable tensors (adapters, the classifier) and optimizer state, the random states of
torch, numpy and Python, each device's batch sampler (its generator and the rest of its pass),
the run and round reached and every record so far, with a fingerprint of what made the run
(instance, plan, options, data, model) so that a resume with anything else is refused. The
frozen pretrained weights are not saved: every party rebuilds them from the same seed.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.files import atomic_write
from .parties import Party

SCHEMA = "sftopt.checkpoint/1"
FOLDER = "checkpoint"
FILE = "state.pt"
MAIN = "main"  # the random state of the process keeping the records


@dataclass(frozen=True)
class Resumed:
    """Where a run continues: the rounds done, their records, the state of its processes
    (`merge`d)."""

    done: int
    records: list[dict[str, Any]]
    state: dict[str, Any]


# what the runtime calls after every round: (rounds done, the run's records, the state)
Save = Callable[[int, list[dict[str, Any]], dict[str, Any]], None]


def path(out: str | Path) -> Path:
    return Path(out) / FOLDER / FILE


def fingerprint(instance: Any, result: Any, options: dict[str, Any], data: Any,
                build: Any) -> dict[str, str]:
    """What made a run, each part as a short digest (the options as they are)."""
    def digest(*parts: bytes) -> str:
        h = hashlib.sha256()
        for p in parts:
            h.update(p)
        return h.hexdigest()[:16]

    plan = json.dumps(result.to_dict().get("plan"), sort_keys=True, default=str).encode()
    arrays = [np.ascontiguousarray(a).tobytes() for a in
              (data.x_train, data.y_train, data.x_test, data.y_test)]
    return {"instance": instance.sha256, "plan": digest(plan),
            "options": json.dumps(options, sort_keys=True), "data": digest(*arrays),
            "model": repr(build) if type(build).__repr__ is not object.__repr__
            else type(build).__qualname__}


def mismatch(saved: dict[str, str], now: dict[str, str]) -> list[str]:
    """The parts of a run that differ from the checkpoint's, in words."""
    out = []
    for key in sorted(set(saved) | set(now)):
        if saved.get(key) == now.get(key):
            continue
        if key == "options":
            a, b = json.loads(saved.get(key) or "{}"), json.loads(now.get(key) or "{}")
            out += [f"option {k}: {a.get(k)!r} in the checkpoint, {b.get(k)!r} now"
                    for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        else:
            out.append(f"another {key}")
    return out


# ---------------------------------------------------------------------- one process's state
def party_state(party: Party) -> dict[str, Any]:
    """A party's trainable tensors (every stage it holds) and optimizer state."""
    return {"adapters": {str(s): [p.detach().clone() for p in party.model.trainable(s)]
                         for s in party.stages},
            "optimizer": None if party.opt is None else party.opt.state_dict()}


def restore_party(party: Party, state: dict[str, Any]) -> None:
    for s, tensors in state["adapters"].items():
        party.set_adapters(int(s), tensors)
    if party.opt is not None:
        party.opt.load_state_dict(state["optimizer"])


def rng_state() -> dict[str, Any]:
    """The global random states of torch, numpy and Python."""
    import torch

    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "numpy": [name, keys.tolist(), pos, has_gauss, gauss],
            "python": random.getstate()}


def set_rng_state(state: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def process_state(rt: Any, owners: set[str] | None = None, rng: str = MAIN) -> dict[str, Any]:
    """What one process holds of a run: its parties, the samplers of ``owners`` (default: all)
    and its random state (under ``rng``: MAIN, or the party a process of its own hosts)."""
    samplers = rt.setup.samplers()
    return {"parties": {name: party_state(p) for name, p in rt.parties.items()},
            "samplers": {o: {"rng": s.rng.bit_generator.state, "order": s.order.tolist()}
                         for o, s in samplers.items() if owners is None or o in owners},
            "rng": {rng: rng_state()}}


def restore_process(rt: Any, state: dict[str, Any], rng: str = MAIN) -> None:
    """`process_state` back into a runtime built afresh: its parties, samplers, random state
    (restored last: building models reseeds torch)."""
    for name, party in rt.parties.items():
        restore_party(party, state["parties"][name])
    samplers = rt.setup.samplers()
    for owner, st in state["samplers"].items():
        samplers[owner].rng.bit_generator.state = st["rng"]
        samplers[owner].order = np.array(st["order"], dtype=np.int64)
    set_rng_state(state["rng"][rng])


def merge(states: list[dict[str, Any]]) -> dict[str, Any]:
    """The states of every process of a run as one."""
    out: dict[str, Any] = {"parties": {}, "samplers": {}, "rng": {}}
    for st in states:
        for key in out:
            out[key].update(st[key])
    return out


def part(state: dict[str, Any], party: str) -> dict[str, Any]:
    """What the process hosting ``party`` alone needs of a merged state."""
    return {"parties": {party: state["parties"][party]}, "samplers": state["samplers"],
            "rng": {party: state["rng"][party]}}


def to_bytes(obj: Any) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def from_bytes(data: bytes) -> Any:
    import torch

    return torch.load(io.BytesIO(data), weights_only=True)


# ---------------------------------------------------------------------- the file
def save(out: str | Path, doc: dict[str, Any]) -> Path:
    """``doc`` (fingerprint, run, round, records as JSON, state) to the checkpoint file,
    atomically."""
    import torch

    return atomic_write(path(out), lambda tmp: torch.save({"schema": SCHEMA, **doc}, tmp))


def load(out: str | Path) -> dict[str, Any]:
    """The checkpoint of ``out``; ValueError naming the file when there is none or it is not
    one (only tensors and plain values are read: no code is unpickled)."""
    import pickle

    import torch

    p = path(out)
    if not p.is_file():
        raise ValueError(f"--resume: no checkpoint {p} to resume from (a run writes one after "
                         "every round)")
    try:
        doc = torch.load(p, weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, ValueError) as exc:
        raise ValueError(f"--resume: {p} is not a readable checkpoint ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ValueError(f"--resume: {p} is not a {SCHEMA} checkpoint")
    return doc
