"""`exhaustive`: every assignment of blocks to devices, each with its exact band split: the
reference the tests hold every other solver to (tiny instances)."""

from __future__ import annotations

import itertools
import math

from ....core.options import TOLERANCE, whole
from ....core.registry import register
from ....core.result import Result, Status
from ..allocation import allocate
from ..cost import load
from ..plans import infeasible, make_result, preflight, refused
from ..schema import CooperativeInstance


@register("cooperative", "exhaustive", exact=True, bound=True,
          description="every assignment, exact bands for each (tiny instances)",
          options={"max_assignments": whole(0, 10**9, "most assignments enumerated (0: refuse)"),
                   "rel_tol": TOLERANCE})
def solve_exhaustive(instance: CooperativeInstance, *, max_assignments: int = 200_000,
                     rel_tol: float = 1e-9) -> Result:
    """The optimum by enumeration; refuses above ``max_assignments`` (K^N) assignments. The
    bound is the optimum x (1 - rel_tol) (the allocator's tolerance)."""
    a = instance.arrays
    K, N = a.n_devices, a.n_blocks
    if max_assignments < K ** N:
        return refused(instance, f"exhaustive refuses: {K}^{N} assignments > max_assignments "
                                 f"= {max_assignments}; use exact")
    stop = preflight(instance, "exhaustive")
    if stop is not None:
        return stop
    best, best_T, tried = None, math.inf, 0
    for owner in itertools.product(range(K), repeat=N):
        held: list[list[int]] = [[] for _ in range(K)]
        for j, k in enumerate(owner):
            held[k].append(j)
        if max(map(len, held)) > a.max_blocks:
            continue
        if (load(a, held).memory > a.memory * (1 + 1e-9)).any():
            continue
        tried += 1
        T = allocate(a, held).round_delay
        if best_T > T:
            best, best_T = held, T
    if best is None:
        return infeasible(instance, "memory: no assignment fits every device (with several "
                                    "blocks a device keeps every block's adapter state)")
    return make_result(instance, best, allocate(a, best).bandwidth, status=Status.OPTIMAL,
                       lower_bound=best_T * (1 - rel_tol), iterations=tried,
                       message=f"{tried} feasible assignments allocated exactly")
