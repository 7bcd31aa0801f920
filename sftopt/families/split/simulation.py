"""Two-timescale simulation: cuts and levels held per frame, shares re-allocated each round."""

from __future__ import annotations

import math

import numpy as np
from tqdm import tqdm

from ...channel import fading_trace
from ...core.registry import get
from ...core.result import Result
from .allocation import METHODS as ALLOCATION_METHODS
from .allocation import Allocator
from .cost import device_delays, rounds_needed, terms
from .schema import SEQUENTIAL, Simulation, SplitInstance

ALLOCATORS = (*ALLOCATION_METHODS, "fixed")


def default_allocator(result: Result) -> str:
    """The online allocator a plan's own solver uses each round (its registry entry says which:
    equal shares stay equal, ...), "fixed" for a sequential plan, "exact" for a plan from
    elsewhere."""
    if result.plan is not None and result.plan.schedule == SEQUENTIAL:
        return "fixed"
    try:
        return get("split", result.solver).online
    except KeyError:
        return "exact"


def run(inst: SplitInstance, result: Result, *, seed: int | None = None,
        allocator: str | None = None, progress: bool = False
        ) -> tuple[Simulation, np.ndarray]:
    """The simulation of ``result`` (see `simulate`) and the delay of every round."""
    allocator = allocator or default_allocator(result)
    if allocator not in ALLOCATORS:
        raise ValueError(f"allocator must be one of {ALLOCATORS}, got {allocator!r}")
    seed = inst.channel.seed if seed is None else seed
    plan = result.plan
    if plan is None:
        return Simulation(total_delay_s=None, mean_round_delay_s=None, rounds=0, seed=seed,
                          allocator=allocator), np.zeros(0)
    cuts, levels = plan.cuts, plan.levels
    n_rounds = math.ceil(rounds_needed(inst, levels) - 1e-9)
    sequential = plan.schedule == SEQUENTIAL
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
    sim = Simulation(total_delay_s=float(per_round.sum()),
                     mean_round_delay_s=float(per_round.mean()), rounds=len(per_round),
                     seed=seed, allocator=allocator)
    return sim, per_round


def simulate(inst: SplitInstance, result: Result, *, seed: int | None = None,
             allocator: str | None = None, progress: bool = False) -> Simulation:
    """Sum of round delays over ceil(R) rounds of a seeded fading trace.

    The large timescale keeps the plan's (cut, level) for every frame of ``rounds_per_frame``
    rounds (static large-scale gains: every frame chooses the same); the small timescale
    re-allocates (b, phi) each round with ``allocator``: "exact" (optimal for that draw),
    "sqp", "conic", "equal", or "fixed" (the plan's own shares); default: the plan's solver's
    own (`default_allocator`). ``seed`` overrides ``channel.seed``.
    """
    return run(inst, result, seed=seed, allocator=allocator, progress=progress)[0]
