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

import numpy as np

from ....core.options import ITER_MAX, MOVES, Deadline, whole
from ....core.registry import register
from ....core.result import Result
from ..allocation import Allocation, sqp_allocation
from ..cost import Terms
from ..options import OptionSpace
from ..plans import failed, infeasible
from ..schema import SplitInstance
from ..search import Search


@register("split", "sqp", description="enumeration (small) or local search over plans, SLSQP "
                                      "for the bandwidth and server shares",
          options={"max_plans": whole(0, ITER_MAX, "most plans enumerated (else local search)"),
                   "max_iter": MOVES,
                   "sqp_iter": whole(1, 100_000, "most SLSQP iterations per allocation")})
def solve_sqp(instance: SplitInstance, *, max_plans: int = 256, max_iter: int = 1000,
              sqp_iter: int = 500, time_limit: float | None = 600.0,
              warm_start: Result | None = None) -> Result:
    """Every plan when there are at most ``max_plans`` (else local search, at most ``max_iter``
    moves), each allocated by SLSQP (at most ``sqp_iter`` SLSQP iterations); ``time_limit``
    (default 600 s: SLSQP takes seconds per plan at K = 100) stops the search, and the SLSQP
    solve under way, with the best plan so far (termination time_limit). ``warm_start``: a
    previous result whose plan (devices matched by id) starts the local search
    (`Search.start`; enumeration does not need one)."""
    deadline = Deadline(time_limit)
    sp = OptionSpace(instance)
    why = sp.diagnose()
    if why:
        return infeasible(instance, why)

    def alloc(t: Terms, B: float) -> Allocation:
        return sqp_allocation(t, B, max_iter=sqp_iter, deadline=deadline)

    search = Search(sp, alloc, deadline)
    choices = [np.flatnonzero(sp.fits[k]) for k in range(sp.K)]
    n_plans = math.prod(len(c) for c in choices)
    if n_plans <= max_plans:
        best, best_val, best_al, seen = None, np.inf, None, 0
        for plan in itertools.product(*choices):
            if deadline.expired():
                if best is not None:
                    break
                # time up before any plan fitted: the own-delay start, repaired, if any
                p = search.quick_repair(search.own_delay_plan())
                if p is not None:
                    best_val, best_al = search.evaluate(p)
                    best = p
                break
            p = np.array(plan, dtype=int)
            v, al = search.evaluate(p)
            seen += 1
            if v < best_val:
                best, best_val, best_al = p, v, al
        if best is None or best_al is None or not np.isfinite(best_val):
            return infeasible(instance, "server memory: no plan fits the server")
        return search.result(best, best_al, iterations=seen,
                             message=f"enumerated {seen} of {n_plans} plans, SLSQP shares")
    plan, note = search.start(warm_start)
    if plan is None:
        return failed(instance, "server memory: repair by deepening cuts failed")
    plan, val, moves = search.local_search(plan, max_iter=max_iter)
    if search.last is not None and np.array_equal(search.last[0], plan) and np.isfinite(val):
        al = search.last[2]  # the search's own SLSQP allocation of the plan: no second solve
    else:
        _, al = search.evaluate(plan)
    return search.result(plan, al, iterations=moves,
                         message=f"{moves} local-search moves, SLSQP shares{note}")
