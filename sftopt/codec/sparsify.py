"""Exact top-k selection by magnitude: sorted kept positions and the magnitude threshold."""

from __future__ import annotations

import math

import numpy as np

# Above this size, a random sample bounds the threshold from below so that the exact selection
# only partitions the candidates (about kappa*n) instead of all n magnitudes.
_SAMPLE_MIN_N = 1 << 17
_SAMPLE_SIZE = 1 << 16
# Fixed seed: the sample only changes the speed, never the (exact) result.
_SAMPLE_SEED = 0x5F70


def n_kept(n: int, keep_ratio: float) -> int:
    """Number of elements a level keeps: round half up of keep_ratio*n, at least 1 if n > 0."""
    if n == 0:
        return 0
    return min(n, max(1, math.floor(keep_ratio * n + 0.5)))


def _exact(vals: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """Mask over vals of its k largest entries (ties broken by lower index) and the k-th value."""
    m = vals.size
    t = np.partition(vals, m - k)[m - k]
    sel = vals > t
    need = k - int(np.count_nonzero(sel))
    if need > 0:
        ties = np.flatnonzero(vals == t)[:need]
        sel[ties] = True
    return sel, float(t)


def topk(a: np.ndarray, k: int) -> tuple[np.ndarray | None, float]:
    """Positions (sorted int64) of the k largest entries of the flat array a, and the threshold.

    The threshold is the k-th largest value, so every kept magnitude is >= it. Returns None
    for the positions when every element is kept.
    """
    n = a.size
    if k >= n:
        return None, float(a.min()) if n else 0.0
    kappa = k / n
    r = math.ceil(kappa * _SAMPLE_SIZE + 5.0 * math.sqrt(_SAMPLE_SIZE * kappa * (1 - kappa))) + 8
    if n >= _SAMPLE_MIN_N and r < _SAMPLE_SIZE // 2:
        rng = np.random.default_rng(_SAMPLE_SEED)
        sample = a[rng.integers(0, n, _SAMPLE_SIZE)]
        t_lo = np.partition(sample, _SAMPLE_SIZE - r)[_SAMPLE_SIZE - r]
        cand = np.flatnonzero(a >= t_lo)
        if cand.size >= k:  # otherwise the sample was unlucky: fall back to the full partition
            sel, t = _exact(a[cand], k)
            return cand[sel], t
    sel, t = _exact(a, k)
    return np.flatnonzero(sel), t
