"""Two-timescale simulation: cuts and levels held per frame, shares re-allocated each round."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from tqdm import tqdm

from ...core.registry import get
from ...core.result import Result
from .allocation import METHODS as ALLOCATION_METHODS
from .allocation import Allocator
from .cost import device_delays, rounds_needed, terms
from .plans import structure_problems
from .schema import SEQUENTIAL, Simulation, SplitInstance

ALLOCATORS = (*ALLOCATION_METHODS, "fixed")
# rounds simulated one by one at most; a plan needing more gets the mean of these rounds times
# its rounds (the draws are independent and alike: an unbiased estimate of the sum). 1e4 rounds
# of the exact allocator take about 20 s at two devices.
MAX_ROUNDS = 10_000
CHUNK = 1 << 20  # fading draws held at once (8 MiB): the trace is streamed, never built whole
VECTORISED = ("fixed", "equal")  # allocators whose round delays are computed for a block at once


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


def trace_chunks(n_devices: int, n_rounds: int, seed: int, rows: int) -> Iterator[np.ndarray]:
    """`channel.fading_trace(n_devices, n_rounds, seed)` in blocks of at most ``rows`` rounds:
    the same numbers (one generator drawn in order), without holding them all."""
    rng = np.random.default_rng(seed)
    for start in range(0, n_rounds, rows):
        yield rng.exponential(1.0, size=(min(rows, n_rounds - start), n_devices))


def run(inst: SplitInstance, result: Result, *, seed: int | None = None,
        allocator: str | None = None, progress: bool = False, max_rounds: int = MAX_ROUNDS
        ) -> tuple[Simulation, np.ndarray]:
    """The simulation of ``result`` (see `simulate`) and the delay of every simulated round."""
    allocator = allocator or default_allocator(result)
    if allocator not in ALLOCATORS:
        raise ValueError(f"allocator must be one of {ALLOCATORS}, got {allocator!r}")
    if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 1:
        raise ValueError(f"max_rounds: expected a whole number >= 1, got {max_rounds!r}")
    seed = inst.channel.seed if seed is None else seed
    plan = result.plan
    if plan is None:
        return Simulation(total_delay_s=None, mean_round_delay_s=None, rounds=0, seed=seed,
                          allocator=allocator), np.zeros(0)
    bad = structure_problems(inst, plan)
    if bad:
        raise ValueError(f"the plan does not fit instance {inst.name!r}: " + "; ".join(bad[:5]))
    cuts, levels = plan.cuts, plan.levels
    n_rounds = math.ceil(rounds_needed(inst, levels) - 1e-9)
    simulated = min(n_rounds, max_rounds)
    sequential = plan.schedule == SEQUENTIAL
    base = terms(inst, cuts, levels)
    K = inst.n_devices
    if allocator in VECTORISED:
        band, share = (plan.bandwidth, plan.share) if allocator == "fixed" else \
            (np.full(K, inst.arrays.bandwidth / K), np.full(K, 1.0 / K))

        def block(e: np.ndarray | None) -> np.ndarray:  # rounds x devices -> round delays
            d = device_delays(base if e is None else base.with_gains(e), band, share)
            return d.sum(axis=-1) if sequential else d.max(axis=-1)
    else:  # the online allocator a scheduler would run, warm-started round to round
        online = Allocator(inst, cuts, levels, method=allocator)

        def block(e: np.ndarray | None) -> np.ndarray:
            rows = [None] if e is None else e
            return np.array([online.step(r).round_delay for r in rows])

    if inst.channel.fading == "none":
        per_round = np.full(simulated, float(block(None).reshape(-1)[0]))
    else:
        rows = max(1, CHUNK // K) if allocator in VECTORISED else max(1, min(CHUNK // K, 1024))
        chunks = trace_chunks(K, simulated, seed, rows)
        with tqdm(total=simulated, desc="simulate", unit="round", disable=not progress,
                  leave=False) as bar:
            parts = []
            for e in chunks:
                parts.append(block(e))
                bar.update(len(e))
        per_round = np.concatenate(parts) if parts else np.zeros(0)
    mean = float(per_round.mean()) if len(per_round) else 0.0
    total = float(per_round.sum()) if simulated == n_rounds else mean * n_rounds
    sim = Simulation(total_delay_s=total, mean_round_delay_s=mean, rounds=n_rounds, seed=seed,
                     allocator=allocator)
    return sim, per_round


def simulate(inst: SplitInstance, result: Result, *, seed: int | None = None,
             allocator: str | None = None, progress: bool = False,
             max_rounds: int = MAX_ROUNDS) -> Simulation:
    """Sum of round delays over ceil(R) rounds of a seeded fading trace.

    The large timescale keeps the plan's (cut, level) for every frame of ``rounds_per_frame``
    rounds (static large-scale gains: every frame chooses the same); the small timescale
    re-allocates (b, phi) each round with ``allocator``: "exact" (optimal for that draw),
    "sqp", "conic", "equal", or "fixed" (the plan's own shares); default: the plan's solver's
    own (`default_allocator`). ``seed`` overrides ``channel.seed``. A plan that does not fit
    the instance (another device count, a cut or level out of range, ...) is a ValueError.

    At most ``max_rounds`` rounds are simulated (the trace is drawn in blocks, never held
    whole); a plan needing more gets ceil(R) times the mean of those rounds, an unbiased
    estimate of the sum (the draws are independent and alike).
    """
    return run(inst, result, seed=seed, allocator=allocator, progress=progress,
               max_rounds=max_rounds)[0]
