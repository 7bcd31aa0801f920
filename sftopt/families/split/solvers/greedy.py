"""`greedy`: per device the deepest cut that fits, the cheapest allowed level, exact shares."""

from __future__ import annotations

import numpy as np

from ....core.registry import register
from ....core.result import Result
from ..allocation import exact_allocation
from ..cost import terms
from ..options import OptionSpace
from ..plans import infeasible, make_result
from ..schema import SplitInstance


def cheapest_level(inst: SplitInstance, cut: int) -> int | None:
    """The allowed level (distortion <= max_distortion) with the fewest bits per element at
    ``cut``."""
    a = inst.arrays
    if len(a.allowed_levels) == 0:
        return None
    return int(a.allowed_levels[np.argmin(a.beta[a.allowed_levels, cut])])


@register("split", "greedy", description="deepest cut per device, cheapest allowed level, exact "
                                         "shares")
def solve_greedy(instance: SplitInstance) -> Result:
    """Deepest feasible cut per device, cheapest level within the distortion bound, then the
    delay-equalising (exact) bandwidth and server shares for those choices."""
    space = OptionSpace(instance)
    why = space.diagnose()  # the deepest cuts need the least server memory of all plans
    if why is not None:
        return infeasible(instance, why)
    cuts = space.deepest()
    levels = np.array([cheapest_level(instance, int(s)) for s in cuts])
    alloc = exact_allocation(terms(instance, cuts, levels), instance.arrays.bandwidth)
    return make_result(instance, cuts, levels, alloc.bandwidth, alloc.share,
                       iterations=alloc.iterations, message="deepest cuts, cheapest level")
