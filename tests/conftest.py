"""Shared fixtures: small instances built in code, so tests do not depend on data files."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
N0 = 10 ** ((-174 - 30) / 10)  # W/Hz at -174 dBm/Hz


def hand_instance() -> dict:
    """One-device instance whose figures are computed by hand in test_cost.py.

    The gain makes p h / N0 = 1e6 Hz, so b = 1 MHz gives an uplink of exactly 1 Mbit/s.
    """
    return {
        "schema": "sftopt.instance/1", "family": "split", "name": "hand",
        "model": {"name": "hand-2", "seq_len": 10, "cut_elems": 1000, "adapter_dtype_bytes": 4,
                  "stages": [
                      {"name": "embed", "fwd_flops": 1e9, "bwd_flops": 0, "param_bytes": 1000,
                       "lora_params": 0, "act_bytes": 10},
                      {"name": "block1", "fwd_flops": 2e9, "bwd_flops": 3e9, "param_bytes": 2000,
                       "lora_params": 100, "act_bytes": 20},
                      {"name": "block2", "fwd_flops": 2e9, "bwd_flops": 3e9, "param_bytes": 2000,
                       "lora_params": 100, "act_bytes": 20},
                      {"name": "head", "fwd_flops": 1e9, "bwd_flops": 1e9, "param_bytes": 3000,
                       "lora_params": 0, "act_bytes": 40}]},
        "training": {"rounds": 100, "eta": 2.0, "max_distortion": 0.05, "agg_every": 2,
                     "state_factor": 4},
        "server": {"flops": 1e11, "memory_bytes": 1e6, "tx_power_w": 1.0},
        "channel": {"bandwidth_hz": 2e6, "noise_dbm_hz": -174,
                    "pathloss": {"a_db": 128.1, "g": 3.76}},
        "codec": {"levels": [
            {"keep_ratio": 1.0, "bits": 16, "bits_per_elem": 16.0, "distortion": 0.0},
            {"keep_ratio": 1.0, "bits": 8, "bits_per_elem": 8.0, "distortion": 0.01},
            {"keep_ratio": 0.1, "bits": 4, "bits_per_elem": 0.869, "distortion": 0.1}]},
        "devices": [{"id": "d0", "flops": 1e10, "memory_bytes": 1e5, "tx_power_w": 0.5,
                     "gain": 1e6 * N0 / 0.5, "batch": 2}],
    }


@pytest.fixture
def hand() -> dict:
    return copy.deepcopy(hand_instance())


@pytest.fixture
def tiny() -> dict:
    """The spec's worked example (data/instances/tiny-example.json)."""
    return json.loads((ROOT / "data" / "instances" / "tiny-example.json").read_text())


def draw_cut_tables(data, inst):
    """``inst`` with random `bits_per_elem_by_cut` tables (hypothesis ``data``): each level
    independently with a table of L+1 figures or without one."""
    from hypothesis import strategies as st

    L = inst.model.n_blocks
    levels = []
    for lv in inst.codec.levels:
        row = lv.model_dump(exclude_none=True)
        if data.draw(st.booleans()):
            row["bits_per_elem_by_cut"] = data.draw(st.lists(
                st.floats(0.05, 32.0), min_size=L + 1, max_size=L + 1))
        levels.append(row)
    return inst.replace(codec={"levels": levels})
