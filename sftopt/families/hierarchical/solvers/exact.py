"""`exact`: the certified optimum of the three-tier problem (cuts per edge, association, cloud
shares).

Bisection on the epoch delay T, each T tested by `milp.Test` (HiGHS): with every user's edge
given, one binary per (edge, cut pair) and the shares linear in them for fixed T; with users to
associate, binaries per (user, edge, pair) and the McCormick product with the edge's share. The
search starts between the relaxation bound and `greedy`'s plan; every feasible test gives a
layout whose best shares lower the upper end, every infeasible one raises the certified lower
end; the answer is optimal once they meet within ``rel_tol``.
"""

from __future__ import annotations

import math

import numpy as np

from ....core.options import TOLERANCE, work_deadline
from ....core.registry import register
from ....core.result import Result, Status, Termination
from ..arrays import Arrays
from ..bounds import relaxation
from ..milp import MAX_ASSOCIATION_VARS, Test, association_size
from ..plans import infeasible, make_result, preflight, refused, shares_for
from ..schema import HierarchicalInstance
from .greedy import greedy_layout


@register("hierarchical", "exact", exact=True, bound=True, needs=("highspy",),
          description="certified optimum: bisection on the epoch delay, a HiGHS MILP per test",
          options={"rel_tol": TOLERANCE})
def solve_exact(instance: HierarchicalInstance, *, rel_tol: float = 1e-6,
                time_limit: float | None = None) -> Result:
    """Optimal layout and shares to ``rel_tol`` relative (HiGHS decides each test to its
    feasibility tolerances, about 1e-9 of the delay here, so tighter is not meaningful); with a
    ``time_limit`` the best plan so far and the certified bound (termination time_limit)."""
    stop = preflight(instance)
    if stop is not None:
        return stop
    a = instance.arrays
    if (a.fixed < 0).any() and association_size(a) > MAX_ASSOCIATION_VARS:
        return refused(instance, f"{association_size(a)} (user, edge, cut pair) choices to "
                                 f"associate (limit {MAX_ASSOCIATION_VARS}): use greedy, or fix "
                                 "users' edges")
    deadline = work_deadline(time_limit, a.n_users)
    test = Test(a, deadline)
    lo = relaxation(a)
    best = greedy_layout(a)
    best_T = math.inf if best is None else shares_for(a, best)[0]
    it = 0
    if best is None:  # greedy found nothing: one test at a delay every fitting layout meets
        it += 1
        got = test(_ceiling(a))
        if got is None:
            if test.undecided:
                return _stopped(instance, lo, it)
            return infeasible(instance, "no layout fits the memory of every tier at once "
                                        "(users, edges and the cloud; proved by the MILP)", it)
        best, best_T = got, shares_for(a, got)[0]
    hi = best_T
    stopped = False
    while hi - lo > 0.25 * rel_tol * hi and not deadline.expired():
        it += 1
        mid = 0.5 * (lo + hi)
        got = test(mid)
        if got is None:
            if test.undecided:  # HiGHS ran out of time inside the test
                stopped = True
                break
            lo = mid
            continue
        T = shares_for(a, got)[0]
        if best_T > T:
            best, best_T = got, T
        hi = min(mid, best_T)
    note = ""
    if lo > best_T * (1 + rel_tol):
        # a test called a delay above a plan's own infeasible: HiGHS misjudged it, so no bound
        # from the tests is proved; keep the relaxation's
        lo, note = relaxation(a), "; the MILP tests contradicted a plan: bound from relaxation"
    optimal = best_T - lo <= rel_tol * best_T
    timed_out = stopped or deadline.hit
    return make_result(instance, best, status=Status.OPTIMAL if optimal else Status.FEASIBLE,
                       termination=Termination.TIME_LIMIT if timed_out and not optimal
                       else Termination.CONVERGED, lower_bound=lo, iterations=it,
                       message=f"{it} MILP tests ({'fixed' if test.fixed else 'open'} "
                               f"association){note}")


def _stopped(instance: HierarchicalInstance, bound: float, it: int) -> Result:
    from ..plans import no_plan

    return no_plan(instance, Termination.TIME_LIMIT, "time limit before a feasible epoch "
                   "delay was found", it, bound)


def _ceiling(a: Arrays) -> float:
    """A delay every layout that fits in memory meets with equal cloud shares 1/E: E times the
    sum over users of their slowest fitting turn with the whole cloud."""
    cloud = a.cloud_time()
    worst = np.zeros(a.n_users)
    for e in range(a.n_edges):
        t = np.where(a.fits(e), a.turn(e) + cloud, 0.0)
        worst = np.maximum(worst, np.where(np.isfinite(t), t, 0.0).max(axis=1))
    return float(a.n_edges * worst.sum() * (1.0 + 1e-6))
