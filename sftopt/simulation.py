"""Two-timescale simulation: cuts and levels held per frame, shares re-allocated each round."""

from __future__ import annotations

import math

import numpy as np
from tqdm import tqdm

from .allocation import Allocator
from .channel import fading_trace
from .cost import device_delays, rounds_needed, terms
from .instance import Instance
from .result import Result, Simulation

ALLOCATORS = ("exact", "equal", "fixed")


def default_allocator(plan: Result) -> str:
    """The policy a plan's own solver uses each round: equal shares stay equal, else exact."""
    if plan.schedule == "sequential":
        return "fixed"
    return "equal" if plan.solver == "baseline-equal" else "exact"


def simulate(
    inst: Instance,
    plan: Result,
    *,
    seed: int | None = None,
    allocator: str | None = None,
    progress: bool = False,
) -> Simulation:
    """Sum of round delays over ceil(R) rounds of a seeded fading trace.

    The large timescale keeps the plan's (cut, level) for every frame of ``rounds_per_frame``
    rounds (static large-scale gains: every frame chooses the same); the small timescale
    re-allocates (b, phi) each round with ``allocator``: "exact" (optimal for that draw),
    "equal", or "fixed" (the plan's own shares). ``seed`` overrides ``channel.seed``.
    """
    allocator = allocator or default_allocator(plan)
    if allocator not in ALLOCATORS:
        raise ValueError(f"allocator must be one of {ALLOCATORS}, got {allocator!r}")
    seed = inst.channel.seed if seed is None else seed
    if plan.total_delay_s is None:
        return Simulation(total_delay_s=None, mean_round_delay_s=None, rounds=0, seed=seed,
                          allocator=allocator)
    cuts, levels = plan.cuts, plan.levels
    n_rounds = math.ceil(rounds_needed(inst, levels) - 1e-9)
    sequential = plan.schedule == "sequential"
    if allocator == "fixed":
        base = terms(inst, cuts, levels)

        def round_delay(e: np.ndarray | None) -> float:
            t = base if e is None else base.with_gains(e)
            d = device_delays(t, plan.bandwidth, plan.share)
            return float(d.sum() if sequential else d.max())
    else:  # the online allocator a scheduler would run, warm-started round to round
        online = Allocator(inst, cuts, levels, method=allocator)

        def round_delay(e: np.ndarray | None) -> float:
            return online.step(e).round_delay

    if inst.channel.fading == "none":
        per_round = np.full(n_rounds, round_delay(None))
    else:
        trace = fading_trace(inst.n_devices, n_rounds, seed)
        rows = tqdm(trace, desc="simulate", unit="round", disable=not progress, leave=False)
        per_round = np.array([round_delay(e) for e in rows])
    return Simulation(
        total_delay_s=float(per_round.sum()),
        mean_round_delay_s=float(per_round.mean()),
        rounds=n_rounds,
        seed=seed,
        allocator=allocator,
    )
