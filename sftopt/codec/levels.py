"""The analytic codec table: codec levels from formulas for Gaussian activations, what instances
use until calibration measures the real codec (shared by every family's generator)."""

from __future__ import annotations

import math
from typing import Any

from scipy.stats import norm

# (keep ratio, bits) of the default codec table; (1.0, 16) is raw fp16
DEFAULT_LEVELS = ((1.0, 16), (1.0, 8), (0.5, 8), (0.25, 6), (0.1, 4), (0.05, 4))


def binary_entropy(p: float) -> float:
    return 0.0 if p in (0.0, 1.0) else -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def analytic_level(keep: float, bits: int, row_len: int = 768) -> dict[str, Any]:
    """A codec level for Gaussian activations, from formulas (not measured).

    bits/elem = keep * bits + H2(keep) (docs/model.md). Distortion = energy dropped by top-keep
    sparsification of N(0,1), 1 - keep - 2 t phi(t) with P(|x| > t) = keep, plus stochastic
    rounding noise Delta^2/6 on the kept values, Delta = 2 xmax / (2^bits - 1), xmax the
    expected row maximum (per-row scale). Calibration replaces both with measurements.
    """
    if (keep, bits) == (1.0, 16):
        return {"keep_ratio": 1.0, "bits": 16, "bits_per_elem": 16.0, "distortion": 0.0}
    t = norm.isf(keep / 2.0)
    dropped = 0.0 if keep >= 1.0 else 1.0 - keep - 2.0 * t * norm.pdf(t)
    xmax = norm.isf(0.5 / row_len)  # median of the max |x| over a row
    delta = 2.0 * xmax / (2**bits - 1)
    distortion = dropped + keep * delta**2 / 6.0
    return {"keep_ratio": keep, "bits": bits,
            "bits_per_elem": round(keep * bits + binary_entropy(keep), 6),
            "distortion": round(distortion, 6)}


def analytic_codec(levels=DEFAULT_LEVELS) -> dict[str, Any]:
    return {"levels": [analytic_level(k, q) for k, q in levels],
            "provenance": {"source": "analytic", "data": "Gaussian N(0,1), per-row scale, row 768"}}
