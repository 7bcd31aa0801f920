"""Random `split` instances (seeded) and the analytic codec table they use until calibration."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.stats import norm

from .instance import SCHEMA_ID, load_instance

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


def random_instance(
    n_devices: int = 10,
    *,
    model: str = "gpt2-small",
    heterogeneity: float = 0.5,
    bandwidth_hz: float = 20e6,
    memory_pressure: float = 0.3,
    seed: int = 0,
    name: str | None = None,
    rounds: float = 1000,
    max_distortion: float = 0.2,
    fading: str = "rayleigh",
) -> dict[str, Any]:
    """A seeded random instance as a JSON-ready dict (validated before it is returned).

    heterogeneity in [0, 1] spreads device FLOP/s over 4^(+-h) around 1 TFLOP/s and batches over
    {4, 8, 16}; memory_pressure in [0, 1] shrinks device memory from "the deepest cut fits"
    (0) towards "only min_cut fits" (1), each device by its own uniform draw.
    """
    if n_devices < 1:
        raise ValueError(f"n_devices must be >= 1, got {n_devices}")
    for label, v in (("heterogeneity", heterogeneity), ("memory_pressure", memory_pressure)):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{label} must be in [0, 1], got {v}")
    rng = np.random.default_rng(seed)
    flops = 1e12 * 4.0 ** (heterogeneity * rng.uniform(-1, 1, n_devices))
    batch = rng.choice([4, 8, 16], n_devices) if heterogeneity > 0 else np.full(n_devices, 8)
    distance = rng.uniform(50, 250, n_devices)
    power = rng.choice([0.1, 0.2], n_devices)
    base = {
        "schema": SCHEMA_ID,
        "family": "split",
        "name": name or f"random-{n_devices}-s{seed}",
        "model": model,
        "training": {"rounds": rounds, "eta": 2.0, "max_distortion": max_distortion,
                     "agg_every": 10, "state_factor": 4, "rounds_per_frame": 50},
        "server": {"flops": 1.0e14, "memory_bytes": 8.0e10, "tx_power_w": 1.0},
        "channel": {"bandwidth_hz": bandwidth_hz, "noise_dbm_hz": -174,
                    "pathloss": {"a_db": 128.1, "g": 3.76}, "fading": fading, "seed": seed},
        "codec": analytic_codec(),
        "devices": [],
    }
    # memory: place each device between what min_cut and the deepest cut need
    probe = dict(base, devices=[{"id": "probe", "flops": 1.0, "memory_bytes": 1.0,
                                 "tx_power_w": 1.0, "distance_m": 100.0, "batch": 1}])
    a = load_instance(probe).arrays
    lo_cut, hi_cut = a.cuts[0], a.cuts[-1]
    for k in range(n_devices):
        n = int(batch[k])
        need_lo = a.dev_static[lo_cut] + n * a.dev_act[lo_cut]
        need_hi = a.dev_static[hi_cut] + n * a.dev_act[hi_cut]
        mem = need_lo * 1.01 + (need_hi - need_lo) * (1.0 - memory_pressure * rng.uniform())
        base["devices"].append({
            "id": f"dev-{k}", "flops": float(f"{flops[k]:.4g}"), "memory_bytes": math.ceil(mem),
            "tx_power_w": float(power[k]), "distance_m": round(float(distance[k]), 1), "batch": n})
    load_instance(base)  # fail here, not in the user's solver, if anything is off
    return base
