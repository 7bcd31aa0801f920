"""`greedy-memory`: offload first (shallowest cuts), deepen by memory freed per delay added."""

from __future__ import annotations

import numpy as np

from ....core.registry import register
from ....core.result import Result
from ..options import OptionSpace
from ..plans import failed, infeasible
from ..schema import SplitInstance
from ..search import Search


@register("split", "greedy-memory", description="shallowest cuts (most work on the server), "
                                                "deepened by memory freed per predicted delay "
                                                "until the server fits; exact shares")
def solve_greedy_memory(instance: SplitInstance) -> Result:
    """Every device starts at its shallowest cut that fits (the server is the fastest
    processor), with the level that minimises its own delay at equal shares times
    (1 + eta delta); while the server memory overflows, the cut that frees the most server
    memory per first-order increase of R x T (KKT weights of the exact allocation) is deepened.
    No local search: one pass, K x cuts exact allocations at most."""
    sp = OptionSpace(instance)
    why = sp.diagnose()
    if why:
        return infeasible(instance, why)
    search = Search(sp)
    own = search.own_delay_plan()
    # shallowest fitting cut per device, level as in the own-delay choice at that cut
    plan = own.copy()
    for k in range(sp.K):
        fit = np.flatnonzero(sp.fits[k])
        shallow = sp.opt_cut[fit].min()
        at = fit[sp.opt_cut[fit] == shallow]
        lvl = sp.opt_level[own[k]]
        same = at[sp.opt_level[at] == lvl]
        plan[k] = same[0] if len(same) else at[0]
    start, start_mem = plan, sp.server_memory(plan)
    plan = search.repair_memory(plan)
    if plan is None:
        return failed(instance, "server memory: repair by deepening cuts failed")
    _, al = search.evaluate(plan)
    deepened = int((sp.opt_cut[plan] > sp.opt_cut[start]).sum())
    return search.result(plan, al, iterations=deepened,
                         message=f"shallowest cuts need {start_mem:.4g} B of server memory; "
                                 f"{deepened} device(s) deepened, {sp.server_memory(plan):.4g} B")
