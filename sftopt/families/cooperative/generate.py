"""Random `cooperative` instances (seeded), modelled on the published setting: an encoder
(RoBERTa) counted by the analytic profiler at a GLUE-like sequence length, heterogeneous devices,
a 10-20 MHz band."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...core.loading import load_instance
from ...core.schema import SCHEMA_ID
from ...profiles import ARCHITECTURES, codec_and_accuracy, count_profile


def _fraction(label: str, v: Any) -> None:
    if not isinstance(v, int | float) or isinstance(v, bool) or not 0.0 <= v <= 1.0:
        raise ValueError(f"{label} must be a number in [0, 1], got {v!r}")


def _whole(label: str, v: Any, low: int = 1) -> None:
    if not isinstance(v, int) or isinstance(v, bool) or v < low:
        raise ValueError(f"{label} must be a whole number >= {low}, got {v!r}")


def random_instance(
    n_devices: int = 16,
    *,
    model: str = "roberta-base",
    seq_len: int = 128,
    lora_rank: int = 8,
    n_blocks: int | None = None,
    max_blocks: int = 1,
    heterogeneity: float = 0.5,
    bandwidth_hz: float = 10e6,
    memory_pressure: float = 0.3,
    seed: int = 0,
    name: str | None = None,
    rounds: float = 1000,
    upload_level: int = 0,
    codec: str | None = None,
    max_distortion: float | None = None,
    eta: float | None = None,
) -> dict[str, Any]:
    """A seeded random instance as a JSON-ready dict (validated before it is returned).

    ``model`` is an architecture of `sftopt.profiles` counted at ``seq_len`` tokens with LoRA
    rank ``lora_rank`` on q and v; ``n_blocks`` fine-tuning blocks at evenly spaced layers
    (default: one per layer). Device FLOP/s spread over 4^(+-heterogeneity) around 2 TFLOP/s
    and batches over {8, 16, 32} (16 each without heterogeneity); memory_pressure in [0, 1]
    shrinks device memory from "the shallowest block fits" (0) towards "only the deepest block
    fits" (1), each device by its own draw, while the i-th roomiest device keeps room for the
    i-th shallowest block (so that every block has a device of its own: a feasible instance).
    ``codec`` names a codec table (sftopt.profiles.load_codec; default: analytic); ``eta`` and
    ``max_distortion`` default to the accuracy model it carries, else 2.0 and 0.2.
    """
    _whole("n_devices", n_devices)
    _whole("max_blocks", max_blocks)
    _whole("upload_level", upload_level, 0)
    _fraction("heterogeneity", heterogeneity)
    _fraction("memory_pressure", memory_pressure)
    if model not in ARCHITECTURES:
        raise ValueError(f"model must be one of {', '.join(sorted(ARCHITECTURES))}; got "
                         f"{model!r}")
    profile = count_profile(model, seq_len, lora_rank=lora_rank)
    L = len(profile["stages"]) - 2
    if n_blocks is None:
        n_blocks = L
    _whole("n_blocks", n_blocks)
    if n_blocks > L:
        raise ValueError(f"n_blocks must be at most the {L} layers of {model}; got {n_blocks}")
    blocks = sorted({int(round(x)) for x in np.linspace(1, L, n_blocks)})
    if n_devices * max_blocks < len(blocks):
        raise ValueError(f"n_devices x max_blocks must be at least the {len(blocks)} blocks; "
                         f"got {n_devices} x {max_blocks}")
    table, eta, max_distortion = codec_and_accuracy(codec, eta, max_distortion, L)
    rng = np.random.default_rng(seed)
    flops = 2e12 * 4.0 ** (heterogeneity * rng.uniform(-1, 1, n_devices))
    batch = rng.choice([8, 16, 32], n_devices) if heterogeneity > 0 else np.full(n_devices, 16)
    distance = rng.uniform(50, 250, n_devices)
    power = rng.choice([0.1, 0.2], n_devices)
    base = {
        "schema": SCHEMA_ID,
        "family": "cooperative",
        "name": name or f"coop-{model}-{n_devices}x{len(blocks)}-s{seed}",
        "model": profile,
        "training": {"rounds": rounds, "eta": eta, "max_distortion": max_distortion,
                     "state_factor": 4, "max_blocks": max_blocks, "upload_level": upload_level},
        "blocks": blocks,
        "server": {"flops": 1.0e14, "memory_bytes": 8.0e10, "tx_power_w": 1.0},
        "channel": {"bandwidth_hz": bandwidth_hz, "noise_dbm_hz": -174,
                    "pathloss": {"a_db": 128.1, "g": 3.76}},
        "codec": table,
        "devices": [{"id": f"dev-{k}", "flops": float(f"{flops[k]:.4g}"), "memory_bytes": 1e15,
                     "tx_power_w": float(power[k]), "distance_m": round(float(distance[k]), 1),
                     "batch": int(batch[k])} for k in range(n_devices)],
    }
    # memory: place each device between what the deepest and the shallowest block need; the
    # i-th roomiest device keeps room for the i-th shallowest block, so that every block has
    # a device of its own (the instance is feasible)
    a = load_instance(base).arrays
    need = a.pair_memory  # (K, N), largest for the shallowest block
    draw = 1.0 - memory_pressure * rng.uniform(size=n_devices)
    for i, k in enumerate(np.argsort(-draw, kind="stable")):
        lo, hi = need[k].min(), need[k].max()
        mem = lo + (hi - lo) * draw[k]
        if i < len(blocks):
            mem = max(mem, need[k, i])
        base["devices"][k]["memory_bytes"] = math.ceil(mem * 1.01)
    load_instance(base)  # fail here, not in the user's solver, if anything is off
    return base
