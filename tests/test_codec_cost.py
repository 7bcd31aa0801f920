"""The codec's real stream size is what the cost model charges for a calibrated level (1%)."""

from __future__ import annotations

import numpy as np
import pytest

from sftopt import load_instance
from sftopt.calibrate.codec import calibrate_levels
from sftopt.codec import encode
from sftopt.families.split.cost import terms

BATCH, SEQ, HIDDEN = 4, 128, 384
LEVELS = [(1.0, 16), (1.0, 8), (0.5, 8), (0.25, 6), (0.1, 4), (0.05, 4)]


# a few outlier channels, as transformer hidden states have; a property of the model, not the batch
CHANNEL_SCALE = np.ones(HIDDEN, dtype=np.float32)
CHANNEL_SCALE[:8] = np.abs(np.random.default_rng(1234).laplace(0, 4, 8)) + 1


def hidden_states(seed: int) -> np.ndarray:
    """Activation-like tensors: Gaussian rows with a few heavy-tailed channels."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((BATCH * SEQ, HIDDEN)).astype(np.float32) * CHANNEL_SCALE


def test_calibrated_level_predicts_stream_size(tiny):
    # per-row scales (the codec's default): with one per-tensor scale the grid follows the
    # maximum of the whole tensor, which varies from batch to batch by more than 1%
    scale = "row"
    calib = [("activation", 1, hidden_states(s)) for s in range(3)]
    table, _ = calibrate_levels(calib, LEVELS, seed=0, scale=scale)
    tiny["codec"] = {"levels": table}
    tiny["model"]["cut_elems"] = SEQ * HIDDEN
    tiny["training"]["max_distortion"] = 1.0
    inst = load_instance(tiny)
    k = inst.n_devices
    for level in range(len(table)):
        t = terms(inst, np.full(k, 1), np.full(k, level))
        predicted = t.down_bits[0] / inst.devices[0].batch * BATCH  # one batch of BATCH samples
        keep, bits = LEVELS[level]
        # fresh tensors from the same source, not the calibration ones
        sizes = [8 * len(encode(hidden_states(s), keep, bits, scale=scale, seed=s))
                 for s in range(10, 13)]
        assert np.mean(sizes) == pytest.approx(predicted, rel=0.01), (keep, bits)
