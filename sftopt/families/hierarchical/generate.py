"""Random `hierarchical` instances (seeded), modelled on the published three-tier setting: a GPT-2
class model counted by the analytic profiler, a few edge servers with their cells and a
backhaul to one cloud, many heterogeneous users."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...core.loading import load_instance
from ...core.schema import SCHEMA_ID
from ...profiles import ARCHITECTURES, codec_and_accuracy, count_profile


def _check(label: str, v: Any, low: float, high: float = math.inf, whole: bool = False) -> None:
    kind = int if whole else (int, float)
    if isinstance(v, bool) or not isinstance(v, kind) or not low <= v <= high:
        what = "a whole number" if whole else "a number"
        raise ValueError(f"{label} must be {what} in [{low:g}, {high:g}], got {v!r}")


def random_instance(
    n_users: int = 30,
    *,
    n_edges: int = 3,
    model: str = "gpt2-medium",
    seq_len: int = 512,
    lora_rank: int = 8,
    associate: bool = False,
    heterogeneity: float = 0.5,
    cell_bandwidth_hz: float = 20e6,
    backhaul_bps: float = 1e9,
    cloud_memory_bytes: float = 80e9,
    edge_memory_bytes: float = 24e9,
    memory_pressure: float = 0.5,
    seed: int = 0,
    name: str | None = None,
    rounds: float = 10,
    level: int = 0,
    codec: str | None = None,
    max_distortion: float | None = None,
    eta: float | None = None,
) -> dict[str, Any]:
    """A seeded random instance as a JSON-ready dict (validated before it is returned).

    Edges stand 1 km apart on a line, each with a cell of ``cell_bandwidth_hz`` and a
    ``backhaul_bps`` link to the cloud (1 PFLOP/s, ``cloud_memory_bytes``); edges compute 50-100
    TFLOP/s with ``edge_memory_bytes``. Users stand within 300 m of a random edge; without
    ``associate`` each names its nearest edge, with it each lists its distance to every edge.
    User FLOP/s spread over 4^(+-heterogeneity) around 2 TFLOP/s, batches over {4, 8, 16};
    memory_pressure in [0, 1] shrinks a user's memory from room for a quarter of the model (0)
    towards room for the embedding and one block (1). An edge always holds its largest batch at
    the fixed-cut baseline's cuts, so that every instance is feasible."""
    _check("n_users", n_users, 1, whole=True)
    _check("n_edges", n_edges, 1, whole=True)
    _check("level", level, 0, whole=True)
    for label, v in (("heterogeneity", heterogeneity), ("memory_pressure", memory_pressure)):
        _check(label, v, 0.0, 1.0)
    for label, v in (("cell_bandwidth_hz", cell_bandwidth_hz), ("backhaul_bps", backhaul_bps),
                     ("cloud_memory_bytes", cloud_memory_bytes),
                     ("edge_memory_bytes", edge_memory_bytes), ("rounds", rounds)):
        _check(label, v, 1e-300)
    if model not in ARCHITECTURES:
        raise ValueError(f"model must be one of {', '.join(sorted(ARCHITECTURES))}; got "
                         f"{model!r}")
    profile = count_profile(model, seq_len, lora_rank=lora_rank)
    L = len(profile["stages"]) - 2
    table, eta, max_distortion = codec_and_accuracy(codec, eta, max_distortion, L)
    rng = np.random.default_rng(seed)
    home = rng.integers(0, n_edges, n_users)
    r, ang = 300 * np.sqrt(rng.uniform(0.01, 1, n_users)), rng.uniform(0, 2 * np.pi, n_users)
    x, y = 1000.0 * home + r * np.cos(ang), r * np.sin(ang)
    dist = np.hypot(x[:, None] - 1000.0 * np.arange(n_edges)[None, :], y[:, None])
    near = dist.argmin(axis=1)
    flops = 2e12 * 4.0 ** (heterogeneity * rng.uniform(-1, 1, n_users))
    batch = rng.choice([4, 8, 16], n_users) if heterogeneity > 0 else np.full(n_users, 8)
    st = profile["stages"]
    held = np.cumsum([s["param_bytes"] + 4 * profile["adapter_dtype_bytes"] * s["lora_params"]
                      for s in st])
    act = np.cumsum([s["act_bytes"] for s in st])
    draw = 1.0 - memory_pressure * rng.uniform(size=n_users)
    quarter = max(1, L // 4)
    mem = [held[1] + b * act[1] + (held[quarter] + b * act[quarter] - held[1] - b * act[1]) * d
           for b, d in zip(batch, draw, strict=True)]
    s1, s2 = min(1, L - 1), max(2, L // 2)  # the fixed-cut baseline's pair
    need_edge = held[s2] - held[s1] + batch.max() * (act[s2] - act[s1])
    users = []
    for k in range(n_users):
        u = {"id": f"user-{k}", "flops": float(f"{flops[k]:.4g}"),
             "memory_bytes": math.ceil(mem[k] * 1.01), "tx_power_w": 0.2, "batch": int(batch[k])}
        if associate:
            u["distance_m"] = [round(float(d), 1) for d in dist[k]]
        else:
            u["edge"] = f"edge-{near[k]}"
            u["distance_m"] = round(float(dist[k, near[k]]), 1)
        users.append(u)
    base = {
        "schema": SCHEMA_ID,
        "family": "hierarchical",
        "name": name or f"hier-{model}-{n_users}u{n_edges}e-s{seed}",
        "model": profile,
        "training": {"rounds": rounds, "eta": eta, "max_distortion": max_distortion,
                     "state_factor": 4, "level": level, "associate": associate},
        "cloud": {"flops": 1e15, "memory_bytes": cloud_memory_bytes},
        "radio": {"noise_dbm_hz": -174, "pathloss": {"a_db": 128.1, "g": 3.76}},
        "codec": table,
        "edges": [{"id": f"edge-{e}", "flops": float(f"{5e13 * (1 + rng.uniform()):.4g}"),
                   "memory_bytes": math.ceil(max(edge_memory_bytes, need_edge * 1.01)),
                   "tx_power_w": 1.0, "bandwidth_hz": cell_bandwidth_hz,
                   "backhaul_bps": backhaul_bps} for e in range(n_edges)],
        "users": users,
    }
    load_instance(base)  # fail here, not in the user's solver, if anything is off
    return base
