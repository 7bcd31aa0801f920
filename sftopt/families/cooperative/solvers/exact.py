"""`exact`: the certified optimum of the joint block and bandwidth problem.

Bisection on the round delay T. With ``max_blocks`` = 1 a delay is feasible iff the assignment
of blocks to distinct devices of least total band, each pair costing the least band it needs
for T (`allocation.pair_bands`), fits in B: the Hungarian method decides it exactly. With
``max_blocks`` > 1 a device's band depends on all its blocks (its shallowest sets the compute,
their sum the upload), and the test is a MILP (HiGHS): binaries for "k holds j"
and "j is k's shallowest block", the band of each device as tangent cuts of its convex need,
cuts added at the MILP's answer until its true band fits in B (feasible) or the MILP's dual
bound exceeds B (infeasible) -- outer approximation, exact in finitely many rounds.

Every feasible test gives an assignment whose exact band split (the shared allocator) lowers
the upper end; every infeasible one raises the certified lower end. The answer is optimal once
the two meet within ``rel_tol``.
"""

from __future__ import annotations

import importlib.util
import math

from ....core.options import TOLERANCE, Deadline, work_deadline
from ....core.registry import register
from ....core.result import Result, Status, Termination
from ..allocation import allocate, equal_bands, pair_bands, pair_delays
from ..arrays import Arrays
from ..bounds import relaxation
from ..matching import as_assignment, cheapest
from ..oa import BandMilp
from ..plans import make_result, no_plan, preflight, refused
from ..schema import CooperativeInstance
from .crunch import min_max_matching


class _OneBlock:
    """The test for max_blocks = 1: the Hungarian method on the bands each pair needs (it
    always decides)."""

    undecided = False

    def __init__(self, a: Arrays):
        self.a = a

    def __call__(self, T: float) -> list[list[int]] | None:
        got = cheapest(pair_bands(self.a, T))
        if got is None or got[1] > self.a.bandwidth:
            return None
        return as_assignment(self.a, got[0])


@register("cooperative", "exact", exact=True, bound=True,
          description="certified optimum: bisection on the delay, Hungarian (MILP if "
                      "max_blocks > 1)",
          options={"rel_tol": TOLERANCE})
def solve_exact(instance: CooperativeInstance, *, rel_tol: float = 1e-9,
                time_limit: float | None = None) -> Result:
    """Optimal assignment and bands, to ``rel_tol`` relative; with a ``time_limit`` the best
    plan so far and the certified bound (termination time_limit)."""
    stop = preflight(instance, "exact")
    if stop is not None:
        return stop
    a = instance.arrays
    if a.max_blocks > 1 and importlib.util.find_spec("highspy") is None:
        return refused(instance, "max_blocks > 1 is solved by a MILP that needs highspy, not "
                                 "installed (pip install highspy==1.15.1)")
    deadline = work_deadline(time_limit, a.n_devices)
    test = _OneBlock(a) if a.max_blocks == 1 else BandMilp(a, deadline)
    lo = relaxation(a, deadline=Deadline(deadline.part(0.5)))  # a bound at any time: half
    best, best_T, it = None, math.inf, 0
    hi = lo
    if a.max_blocks == 1:  # crunch's matching at equal bands: a plan before any test
        got = min_max_matching(pair_delays(a, equal_bands(a)))
        if got is not None:
            best = as_assignment(a, got[0])
            best_T = hi = allocate(a, best).round_delay
    while best is None:  # a feasible delay: doubling from the bound (needs shrink to 0)
        it += 1
        got = test(hi)
        if got is not None:
            best, best_T = got, allocate(a, got).round_delay
        elif test.undecided:  # the MILP ran out of time
            return _stopped(instance, lo, it)
        elif deadline.expired():
            return _stopped(instance, hi, it)  # hi was just proved infeasible
        else:
            lo, hi = hi, 2.0 * hi
    hi = min(hi, best_T)
    while hi - lo > rel_tol * hi and not deadline.expired():
        it += 1
        mid = math.sqrt(lo * hi) if hi > 4.0 * lo else 0.5 * (lo + hi)
        got = test(mid)
        if got is None:
            if test.undecided:  # the MILP ran out of time: no proof either way
                break
            lo = mid
            continue
        delay = allocate(a, got).round_delay
        if delay < best_T:
            best, best_T = got, delay
        hi = min(mid, best_T)
    bands = allocate(a, best)
    optimal = bands.round_delay - lo <= rel_tol * bands.round_delay
    return make_result(instance, best, bands.bandwidth,
                       status=Status.OPTIMAL if optimal else Status.FEASIBLE,
                       termination=Termination.CONVERGED if optimal or not deadline.hit
                       else Termination.TIME_LIMIT, lower_bound=lo, iterations=it,
                       message=f"{it} tests ({'Hungarian' if a.max_blocks == 1 else 'MILP'})")


def _stopped(instance: CooperativeInstance, bound: float, it: int) -> Result:
    return no_plan(instance, Termination.TIME_LIMIT, "time limit before a feasible delay was "
                   "found", it, bound)
