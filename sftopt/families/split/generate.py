"""Random `split` instances (seeded)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...core.loading import load_instance
from ...core.schema import SCHEMA_ID
from ...profiles import codec_and_accuracy, load_profile


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
    max_distortion: float | None = None,
    fading: str = "rayleigh",
    codec: str | None = None,
    eta: float | None = None,
    scaled: bool = False,
) -> dict[str, Any]:
    """A seeded random instance as a JSON-ready dict (validated before it is returned).

    ``scaled``: the shared resources grow with the fleet beyond 50 devices, so that large fleets
    are feasible: the band to 2 MHz per device (at least ``bandwidth_hz``), the server's memory
    and FLOP/s by n/50 (at least 80 GB and 100 TFLOP/s). Without it one 80 GB server must hold every
    device's activations, which fails beyond about 50 devices.

    heterogeneity in [0, 1] spreads device FLOP/s over 4^(+-h) around 1 TFLOP/s and batches over
    {4, 8, 16}; memory_pressure in [0, 1] shrinks device memory from "the deepest cut fits"
    (0) towards "only min_cut fits" (1), each device by its own uniform draw. ``codec`` names a
    codec table (profiles.load_codec; default: analytic); ``eta`` and ``max_distortion``
    default to the accuracy model the table carries (fitted by the executor), else 2.0 and 0.2.
    """
    if not isinstance(n_devices, int) or isinstance(n_devices, bool) or n_devices < 1:
        raise ValueError(f"n_devices must be a whole number >= 1, got {n_devices!r}")
    for label, v in (("heterogeneity", heterogeneity), ("memory_pressure", memory_pressure)):
        if not isinstance(v, int | float) or isinstance(v, bool) or not 0.0 <= v <= 1.0:
            raise ValueError(f"{label} must be a number in [0, 1], got {v!r}")
    table, eta, max_distortion = codec_and_accuracy(codec, eta, max_distortion,
                                                    len(load_profile(model)["stages"]) - 2)
    if not isinstance(scaled, bool):
        raise ValueError(f"scaled must be true or false, got {scaled!r}")
    grow = max(1.0, n_devices / 50) if scaled else 1.0
    band_grow = max(1.0, 20e6 * n_devices / 10 / bandwidth_hz) if scaled else 1.0
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
        "training": {"rounds": rounds, "eta": eta, "max_distortion": max_distortion,
                     "agg_every": 10, "state_factor": 4, "rounds_per_frame": 50},
        "server": {"flops": 1.0e14 * grow, "memory_bytes": 8.0e10 * grow, "tx_power_w": 1.0},
        "channel": {"bandwidth_hz": bandwidth_hz * band_grow, "noise_dbm_hz": -174,
                    "pathloss": {"a_db": 128.1, "g": 3.76}, "fading": fading, "seed": seed},
        "codec": table,
        "devices": [],
    }
    # memory: place each device between what min_cut and the deepest cut need
    probe = dict(base, devices=[{"id": f"probe-{k}", "flops": 1e12, "memory_bytes": 1e15,
                                 "tx_power_w": 1.0, "distance_m": 100.0, "batch": int(n)}
                                for k, n in enumerate(batch)])
    a = load_instance(probe).arrays
    need_lo = a.device_memory(np.full(n_devices, a.cuts[0]))
    need_hi = a.device_memory(np.full(n_devices, a.cuts[-1]))
    for k in range(n_devices):
        n = int(batch[k])
        mem = need_lo[k] * 1.01 + (need_hi[k] - need_lo[k]) * (1.0 - memory_pressure
                                                                 * rng.uniform())
        base["devices"].append({
            "id": f"dev-{k}", "flops": float(f"{flops[k]:.4g}"), "memory_bytes": math.ceil(mem),
            "tx_power_w": float(power[k]), "distance_m": round(float(distance[k]), 1), "batch": n})
    load_instance(base)  # fail here, not in the user's solver, if anything is off
    return base
