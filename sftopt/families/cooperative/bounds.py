"""Certified lower bounds on the round delay of every `cooperative` plan with blocks on devices.

`relaxation`: drop "one device per block" and "max_blocks": every block takes, on its own, the
device that needs the least band for it, and the bands must still fit in B. The least band a
device needs for a set of blocks is at least the sum of what each block needs alone (the band
for an upload is convex in its bits and 0 at 0, and the compute is that of the shallowest
block), so a round delay T is feasible only if sum_j min_k band_kj(T) <= B: the least such T,
found by bisection, bounds every plan from below.
"""

from __future__ import annotations

import math

import numpy as np

from ...core.options import Deadline
from .allocation import pair_bands, pair_delays
from .arrays import Arrays


def full_band_floor(a: Arrays) -> float:
    """max over blocks of the least delay any device fine-tunes it in alone with all of B."""
    d = pair_delays(a, np.full(a.n_devices, a.bandwidth))
    return float(d.min(axis=0).max())


def band_sum(a: Arrays, T: float) -> float:
    """sum over blocks of the least band any device needs for it within T (inf: none can)."""
    return float(pair_bands(a, T).min(axis=0).sum())


def relaxation(a: Arrays, rel_tol: float = 1e-9, deadline: Deadline | None = None) -> float:
    """The least T with band_sum(T) <= B (inf when some block fits on no device). Past
    ``deadline`` the bisection stops at its lower end, still a bound (every T it has held is
    one the bands cannot meet)."""
    late = deadline.expired if deadline is not None else lambda: False
    lo = full_band_floor(a)
    if not math.isfinite(lo):
        return math.inf
    if band_sum(a, lo) <= a.bandwidth:
        return lo
    hi = 2.0 * lo
    while band_sum(a, hi) > a.bandwidth:  # as T grows every band needed tends to 0
        lo, hi = hi, 2.0 * hi
        if late():
            return lo
    while hi - lo > rel_tol * hi and not late():
        mid = 0.5 * (lo + hi)
        if band_sum(a, mid) <= a.bandwidth:
            hi = mid
        else:
            lo = mid
    return lo
