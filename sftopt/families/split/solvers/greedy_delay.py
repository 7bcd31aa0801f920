"""`greedy-delay`: own-delay start, memory repair, local search with exact shares, floor lifts."""

from __future__ import annotations

from ....core.options import MOVES, Deadline, whole
from ....core.registry import register
from ....core.result import Result
from ..options import OptionSpace
from ..plans import failed, infeasible
from ..schema import SplitInstance
from ..search import Search, default_lifts


@register("split", "greedy-delay", description="own-delay choice per device, memory repair, then "
                                               "single-device local search with exact shares and "
                                               "shallowest-cut lifts",
          options={"max_iter": MOVES,
                   "lifts": whole(0, 10_000, "floors tried per lift", none=True)})
def solve_greedy_delay(instance: SplitInstance, *, max_iter: int = 1000, lifts: int | None = None,
                       time_limit: float | None = None, warm_start: Result | None = None
                       ) -> Result:
    """Per device the (cut, level) with the least own delay at equal shares (times the rounds
    factor 1 + eta delta), server memory repaired, then one device at a time switched to the
    option that lowers R x T under exact re-allocation, while it improves (at most ``max_iter``
    improving steps or ``time_limit`` seconds); then floor lifts (`Search.lift_floor`,
    ``lifts`` floors tried each time, default 3 below 100 devices, else 0: none).
    ``warm_start``: a previous result whose plan (devices matched by id) replaces the own-delay
    start (`Search.start`)."""
    space = OptionSpace(instance)
    why = space.diagnose()
    if why:
        return infeasible(instance, why)
    search = Search(space, deadline=Deadline(time_limit))
    plan, note = search.start(warm_start)
    warm = note.startswith("; warm start:")
    if plan is None:
        return failed(instance, "server memory: repair by deepening cuts failed")
    plan, val, moves = search.local_search(plan, max_iter=max_iter)
    plan, _, kept = search.lift_floor(plan, val,
                                      lifts=default_lifts(space.K) if lifts is None else lifts)
    _, al = search.evaluate(plan)
    return search.result(plan, al, iterations=moves,
                         message=f"{moves} local-search moves from the "
                                 f"{'warm-start' if warm else 'own-delay'} plan, "
                                 f"{kept} floor lift(s){note}")
