"""A scheduler loop embedding sftopt: plan once, re-allocate band and server shares every fading
round, re-plan when the fleet changes (a device leaves, one joins), warm-started from the plan
before.

Run: python examples/scheduler.py   (about ten seconds; the tests run it)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import sftopt
from sftopt.families.split.allocation import Allocator

HERE = Path(__file__).resolve().parent
ROUNDS = 5  # fading rounds between fleet changes


def plan(inst: sftopt.Instance, previous: sftopt.Result | None = None) -> sftopt.Result:
    """The large timescale: cuts and codec levels for this fleet (and a first allocation)."""
    res = sftopt.solve(inst, "greedy-delay", seed=0, time_limit=10, warm_start=previous)
    assert sftopt.verify(inst, res).ok  # the independent Pyomo check
    print(f"plan for {inst.n_devices} devices: round {res.plan.round_delay_s:.3f} s, "
          f"cuts {[int(c) for c in res.plan.cuts]}")
    print(f"  {res.message}")
    return res


def fading_rounds(inst: sftopt.Instance, res: sftopt.Result, rng: np.random.Generator) -> None:
    """The small timescale: one Rayleigh draw per device per round, keyed by device id."""
    online = Allocator(inst, res.plan.cuts, res.plan.levels)
    delays = []
    for _ in range(ROUNDS):
        gains = {d.id: float(g) for d, g in zip(inst.devices, rng.exponential(
            size=inst.n_devices), strict=True)}
        delays.append(online.step(gains).round_delay)
    print(f"  {ROUNDS} fading rounds: round delay {min(delays):.3f}-{max(delays):.3f} s")


def main() -> None:
    rng = np.random.default_rng(0)
    inst = sftopt.load_instance(HERE.parent / "data" / "instances" / "default.json")
    res = plan(inst)
    fading_rounds(inst, res, rng)

    leaving = inst.devices[3].id  # a device leaves: a new instance without it
    inst = inst.without_devices([leaving])
    print(f"{leaving} left")
    res = plan(inst, res)
    fading_rounds(inst, res, rng)

    joining = inst.devices[0].model_copy(update={"id": "dev-new"})  # one like device 0 joins
    inst = inst.with_devices([joining])
    print("dev-new joined")
    res = plan(inst, res)
    fading_rounds(inst, res, rng)


if __name__ == "__main__":
    main()
