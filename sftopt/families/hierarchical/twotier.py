"""The two-tier comparison: the same users fine-tuning with the cloud directly, all at once, as a
`split` instance (the split family's cost model and solvers, unchanged).

The users keep their radio (the gain to their edge, or their best edge when the solver would
associate them) and share the pooled band of all cells (FDMA); the cloud is the server (its
FLOP/s and memory; it transmits with the edges' mean power); the codec is the instance's one
level; the cuts range over min_user_cut..L (the cloud keeps the output stage)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .schema import HierarchicalInstance


def two_tier_dict(inst: HierarchicalInstance) -> dict[str, Any]:
    """The `split` instance of the two-tier scheme, as a JSON-ready dict."""
    a = inst.arrays
    tr = inst.training
    gain = np.where(np.isnan(a.gain), -np.inf, a.gain)
    own = np.where(a.fixed >= 0, gain[np.arange(a.n_users), np.maximum(a.fixed, 0)],
                   gain.max(axis=1))
    return {
        "schema": "sftopt.instance/1", "family": "split", "name": f"{inst.name}-two-tier",
        "model": inst.model.model_dump(mode="json", exclude_none=True),
        "training": {"rounds": tr.rounds, "eta": tr.eta, "max_distortion": tr.max_distortion,
                     "state_factor": tr.state_factor, "agg_every": 1,
                     "min_cut": tr.min_user_cut, "max_cut": inst.model.n_blocks},
        "server": {"flops": inst.cloud.flops, "memory_bytes": inst.cloud.memory_bytes,
                   "tx_power_w": float(np.mean([e.tx_power_w for e in inst.edges]))},
        "channel": {"bandwidth_hz": float(sum(e.bandwidth_hz for e in inst.edges)),
                    "noise_dbm_hz": inst.radio.noise_dbm_hz,
                    "pathloss": inst.radio.pathloss.model_dump()},
        "codec": {"levels": [inst.codec.levels[tr.level].model_dump()]},
        "devices": [{"id": u.id, "flops": u.flops, "memory_bytes": u.memory_bytes,
                     "tx_power_w": u.tx_power_w, "gain": float(g), "batch": u.batch}
                    for u, g in zip(inst.users, own, strict=True)],
    }


def two_tier_instance(inst: HierarchicalInstance) -> Any:
    """The two-tier `split` instance (built once per instance)."""
    from ...core.loading import load_instance

    return inst.cached("two_tier", lambda: load_instance(two_tier_dict(inst)))
