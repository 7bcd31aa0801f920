"""`greedy`: per device the deepest cut that fits, the cheapest allowed level, exact shares."""

from __future__ import annotations

import numpy as np

from ..allocation import exact_allocation
from ..cost import device_memory, terms
from ..instance import Instance
from ..result import Result
from .base import infeasible_result, make_result
from .registry import register


def deepest_cuts(inst: Instance) -> np.ndarray | None:
    """Per device, the deepest cut in [min_cut, max_cut] that fits its memory (None if none)."""
    a = inst.arrays
    k = inst.n_devices
    # memory of every (device, cut) pair; pick the last cut that fits
    mem = np.stack([device_memory(inst, np.full(k, s)) for s in a.cuts], axis=1)
    fits = mem <= a.memory[:, None]
    if not fits.any(axis=1).all():
        return None
    last = fits.shape[1] - 1 - np.argmax(fits[:, ::-1], axis=1)
    return a.cuts[last]


def cheapest_level(inst: Instance) -> int | None:
    """The allowed level (distortion <= max_distortion) with the fewest bits per element."""
    a = inst.arrays
    if len(a.allowed_levels) == 0:
        return None
    return int(a.allowed_levels[np.argmin(a.beta[a.allowed_levels])])


@register("greedy", description="deepest cut per device, cheapest allowed level, exact shares")
def solve_greedy(instance: Instance) -> Result:
    """Deepest feasible cut per device, cheapest level within the distortion bound, then the
    delay-equalising (exact) bandwidth and server shares for those choices."""
    cuts = deepest_cuts(instance)
    if cuts is None:
        a = instance.arrays
        floor = device_memory(instance, np.full(instance.n_devices, instance.training.min_cut))
        bad = [a.device_ids[k] for k in np.flatnonzero(floor > a.memory)]
        return infeasible_result(instance, f"device memory: min_cut does not fit device(s) {bad}")
    level = cheapest_level(instance)
    if level is None:
        return infeasible_result(instance, "accuracy: no codec level has distortion <= "
                                           f"max_distortion {instance.training.max_distortion:g}")
    levels = np.full(instance.n_devices, level)
    alloc = exact_allocation(terms(instance, cuts, levels), instance.arrays.bandwidth)
    return make_result(instance, cuts, levels, alloc.bandwidth, alloc.share,
                       iterations=alloc.iterations, message="deepest cuts, cheapest level")
