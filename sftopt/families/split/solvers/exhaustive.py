"""`exhaustive`: every (cut, level) combination, exact shares for each, pruned by certified bounds.

For tiny instances and as the reference the tests hold every other solver to. Per device, only
admissible (memory, accuracy) and non-dominated options are enumerated (OptionSpace.table);
combinations that break server memory are dropped; the rest are visited in increasing order of a
certified lower bound (R x round-delay bound of bounds.round_delay_bound), and the visit stops as
soon as that bound reaches the best total found: no unvisited combination can then be better.
Above ``max_combinations`` the solver refuses (termination ``refused``, no plan) instead of running
for hours; use `milp` there.
"""

from __future__ import annotations

import numpy as np

from ....core.options import TOLERANCE, flag, whole
from ....core.registry import register
from ....core.result import Result, Status, Termination
from ..allocation import exact_allocation
from ..bounds import round_delay_bound
from ..cost import REL_TOL, Terms
from ..options import OptionSpace, OptionTable
from ..plans import infeasible, make_result, no_plan
from ..schema import SplitInstance

_CHUNK = 20_000  # combinations per vectorised bound evaluation


def _combinations(counts: np.ndarray) -> np.ndarray:
    """All option-index vectors, shape (prod(counts), K)."""
    grids = np.meshgrid(*[np.arange(c) for c in counts], indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=1)


def _combo_bounds(inst: SplitInstance, table: OptionTable, idx: np.ndarray) -> np.ndarray:
    """Certified lower bound on the round delay of each combination (rows of idx)."""
    out = np.empty(len(idx))
    for start in range(0, len(idx), _CHUNK):
        part = idx[start:start + _CHUNK]
        t = table.gather(part)
        t3 = Terms(t.compute[..., None], t.up_bits[..., None], t.down_bits[..., None],
                   t.server_work[..., None], t.snr_ul[:, None], t.snr_dl[:, None])
        out[start:start + len(part)] = round_delay_bound(
            t3, np.ones(t3.compute.shape, dtype=bool), inst.arrays.bandwidth, iters=30)
    return out


@register("split", "exhaustive", exact=True, bound=True,
          description="all (cut, level) combinations, exact shares, bound-pruned (tiny instances)",
          options={"max_combinations": whole(0, 10**9, "most combinations enumerated (0: refuse)"),
                   "rel_tol": TOLERANCE, "prune": flag("drop options no optimal plan uses")})
def solve_exhaustive(instance: SplitInstance, *, max_combinations: int = 100_000,
                     rel_tol: float = 1e-9, prune: bool = True) -> Result:
    """Optimal plan by enumeration. Refuses (termination ``refused``, no plan) above
    ``max_combinations``.

    ``rel_tol`` is the exact allocator's relative tolerance; ``prune`` drops dominated options
    (never changes the optimum). The lower bound is optimum x (1 - rel_tol).
    """
    space = OptionSpace(instance)
    why = space.diagnose()
    if why is not None:
        return infeasible(instance, why)
    table = space.table(prune=prune)
    n = table.n_combinations()
    if n > max_combinations:
        return no_plan(instance, Termination.REFUSED,
                       f"exhaustive refuses: {n:.3g} combinations of non-dominated options > "
                       f"max_combinations = {max_combinations}; use milp")
    a = instance.arrays
    k = np.arange(instance.n_devices)
    idx = _combinations(table.counts)
    # server memory: weights above the shallowest cut (srv_static is non-increasing in the cut,
    # so the shallowest cut has the largest) plus every device's activations
    srv = table.srv_static[k, idx].max(axis=1) + table.srv_act[k, idx].sum(axis=1)
    fits = srv <= a.server_memory * (1 + REL_TOL)
    idx = idx[fits]
    rounds = a.rounds * (1.0 + a.eta * (table.delta[k, idx] @ a.sample_weight))
    bound = rounds * _combo_bounds(instance, table, idx)
    order = np.argsort(bound, kind="stable")
    best_total, best, best_alloc = np.inf, -1, None
    visited = 0
    for i in order:
        if bound[i] >= best_total:
            break  # every remaining combination is certified no better
        alloc = exact_allocation(table.gather(idx[i]), a.bandwidth, rel_tol=rel_tol)
        visited += 1
        total = rounds[i] * alloc.round_delay
        if total < best_total:
            best_total, best, best_alloc = total, int(i), alloc
    if best_alloc is None or not np.isfinite(best_total):
        return infeasible(instance, "no combination has a finite round delay",
                          iterations=visited)
    choice = idx[best]
    msg = (f"{visited} of {len(idx)} memory-feasible combinations allocated exactly "
           f"({int(n) - len(idx)} break server memory, the rest pruned by bound)")
    return make_result(instance, table.cut[k, choice], table.level[k, choice],
                       best_alloc.bandwidth, best_alloc.share, status=Status.OPTIMAL,
                       message=msg, lower_bound=best_total * (1.0 - rel_tol), iterations=visited)
