"""`baseline-equal`: one cut for all, no compression, equal bandwidth and server shares."""

from __future__ import annotations

import numpy as np

from ..cost import device_memory
from ..instance import Instance
from ..result import Result
from .base import infeasible_result, make_result
from .registry import register


def deepest_common_cut(inst: Instance) -> int | None:
    """The deepest cut in [min_cut, max_cut] that fits every device's memory, or None."""
    a = inst.arrays
    for s in a.cuts[::-1]:
        if np.all(device_memory(inst, np.full(inst.n_devices, s)) <= a.memory):
            return int(s)
    return None


@register("baseline-equal", description="deepest common cut, level 0, B/K and 1/K to every device")
def solve_baseline_equal(instance: Instance) -> Result:
    """Deepest common cut, level 0 (uncompressed), b = B/K, phi = 1/K."""
    k = instance.n_devices
    s = deepest_common_cut(instance)
    if s is None:
        return infeasible_result(instance, "device memory: no single cut in [min_cut, max_cut] "
                                           "fits every device")
    a = instance.arrays
    return make_result(instance, np.full(k, s), np.zeros(k, dtype=int),
                       np.full(k, a.bandwidth / k), np.full(k, 1.0 / k),
                       message=f"common cut {s}, level 0, equal shares")
