"""`exhaustive`: every association and every cut pair per edge, each with its best cloud shares
(tiny instances; the tests' reference)."""

from __future__ import annotations

import itertools
import math

import numpy as np

from ....core.options import whole
from ....core.registry import register
from ....core.result import Result, Status
from ..arrays import REL_TOL
from ..cost import Layout, memory
from ..plans import infeasible, make_result, preflight, refused, shares_for
from ..schema import HierarchicalInstance


@register("hierarchical", "exhaustive", exact=True, bound=True,
          description="every association and cut pair (tiny instances)",
          options={"max_layouts": whole(0, 10**9, "most layouts enumerated (0: refuse)")})
def solve_exhaustive(instance: HierarchicalInstance, *, max_layouts: int = 200_000) -> Result:
    """The optimum by enumeration; refused above ``max_layouts`` layouts."""
    stop = preflight(instance)
    if stop is not None:
        return stop
    a = instance.arrays
    open_ = np.flatnonzero(a.fixed < 0)
    count = a.n_edges ** len(open_) * a.n_pairs ** a.n_edges
    if count > max_layouts:
        return refused(instance, f"{count} layouts (limit {max_layouts}): use exact")
    best, best_T = None, math.inf
    for where in itertools.product(range(a.n_edges), repeat=len(open_)):
        edge_of = a.fixed.copy()
        edge_of[open_] = where
        if not a.allowed[np.arange(a.n_users), edge_of].all():
            continue
        busy = np.flatnonzero(np.bincount(edge_of, minlength=a.n_edges) > 0)
        for chosen in itertools.product(range(a.n_pairs), repeat=len(busy)):
            pair = np.zeros(a.n_edges, dtype=int)  # an idle edge's pair is never used
            pair[busy] = chosen
            lay = Layout(edge_of, pair)
            user, edge, cloud = memory(a, lay)
            if ((user > a.user_memory * (1 + REL_TOL)).any()
                    or (edge > a.edge_memory * (1 + REL_TOL)).any()
                    or cloud > a.cloud_memory * (1 + REL_TOL)):
                continue
            T = shares_for(a, lay)[0]
            if best_T > T:
                best, best_T = lay, T
    if best is None:
        return infeasible(instance, "no layout fits every tier's memory (all enumerated)")
    return make_result(instance, best, status=Status.OPTIMAL, lower_bound=best_T,
                       iterations=count, message=f"{count} layouts enumerated")
