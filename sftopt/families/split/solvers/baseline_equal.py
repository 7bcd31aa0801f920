"""`baseline-equal`: one cut for all, no compression, equal bandwidth and server shares."""

from __future__ import annotations

import numpy as np

from ....core.registry import register
from ....core.result import Result
from ..options import OptionSpace
from ..plans import infeasible, make_result, uncompressed_refusal
from ..schema import SplitInstance


@register("split", "baseline-equal", online="equal",
          description="deepest common cut, level 0, B/K and 1/K to every device")
def solve_baseline_equal(instance: SplitInstance) -> Result:
    """Deepest cut that fits every device (level 0, uncompressed), b = B/K, phi = 1/K."""
    k, a = instance.n_devices, instance.arrays
    refused = uncompressed_refusal(instance)
    if refused:
        return refused
    deepest = OptionSpace(instance).deepest()
    if (deepest < 0).any():
        return infeasible(instance, "device memory: no single cut in [min_cut, max_cut] fits "
                                    "every device")
    s = int(deepest.min())  # the cuts that fit a device are a prefix
    return make_result(instance, np.full(k, s), np.zeros(k, dtype=int),
                       np.full(k, a.bandwidth / k), np.full(k, 1.0 / k),
                       message=f"common cut {s}, level 0, equal shares")
