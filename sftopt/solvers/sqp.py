"""`sqp`: the plan search of `greedy-delay` (or full enumeration when small) with SLSQP shares.

Large timescale: if the instance has at most ``max_plans`` memory-feasible plans, every plan is
evaluated; otherwise the own-delay plan is repaired and improved by single-device moves, as in
`greedy-delay`. Small timescale: every plan's bandwidth and server shares come from scipy's
SLSQP (`allocation.sqp_allocation`, the published method) instead of the exact allocator, so
`sqp` and `greedy-delay`/`alm` differ only in the small-timescale solver.
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np

from ..allocation import Allocation, sqp_allocation
from ..cost import Terms
from ..instance import Instance
from ..result import Result
from .base import infeasible_result
from .greedy_delay import PlanSpace, deadline_of
from .registry import register


@register("sqp", description="enumeration (small) or local search over plans, SLSQP for the "
                             "bandwidth and server shares")
def solve_sqp(instance: Instance, *, max_plans: int = 256, max_iter: int = 1000,
              sqp_iter: int = 500, time_limit: float | None = 600.0) -> Result:
    """Every plan when there are at most ``max_plans`` (else local search, at most ``max_iter``
    moves), each allocated by SLSQP (at most ``sqp_iter`` SLSQP iterations); ``time_limit``
    (default 600 s: SLSQP takes seconds per plan at K = 100) stops the search, and the SLSQP
    solve under way, with the best plan so far (status time_limit)."""
    deadline = deadline_of(time_limit)
    sp = PlanSpace(instance)
    why = sp.diagnose()
    if why:
        return infeasible_result(instance, why)

    def alloc(t: Terms, B: float) -> Allocation:
        return sqp_allocation(t, B, max_iter=sqp_iter, deadline=deadline)

    choices = [np.flatnonzero(sp.fits[k]) for k in range(sp.K)]
    n_plans = math.prod(len(c) for c in choices)
    if n_plans <= max_plans:
        best, best_val, best_al, seen = None, np.inf, None, 0
        for plan in itertools.product(*choices):
            if time.perf_counter() >= deadline:
                sp.timed_out = True
                if best is not None:
                    break
                # time up before any plan fitted: the own-delay start, repaired, if any
                p = sp.quick_repair(sp.own_delay_plan())
                if p is not None:
                    best_val, best_al = sp.evaluate(p, alloc)
                    best = p
                break
            p = np.array(plan, dtype=int)
            v, al = sp.evaluate(p, alloc)
            seen += 1
            if v < best_val:
                best, best_val, best_al = p, v, al
        if best is None or best_al is None or not np.isfinite(best_val):
            return infeasible_result(instance, "server memory: no plan fits the server")
        return sp.result(best, best_al, iterations=seen,
                         message=f"enumerated {seen} of {n_plans} plans, SLSQP shares")
    plan = sp.repair_memory(sp.own_delay_plan(), alloc, deadline=deadline)
    if plan is None:
        return infeasible_result(instance, "server memory: repair by deepening cuts failed")
    plan, val, moves = sp.local_search(plan, alloc=alloc, deadline=deadline, max_iter=max_iter)
    if sp.last is not None and np.array_equal(sp.last[0], plan) and np.isfinite(val):
        al = sp.last[2]  # the search's own SLSQP allocation of the plan: no second solve
    else:
        _, al = sp.evaluate(plan, alloc)
    return sp.result(plan, al, iterations=moves,
                     message=f"{moves} local-search moves, SLSQP shares")
