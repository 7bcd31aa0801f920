"""The numbers of a `cooperative` instance as numpy arrays: per (device, block) tables of
compute seconds, memory and upload bits, and the per-device radio."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...channel import noise_w_per_hz, pathloss_gain

REL_TOL = 1e-9  # resource sums may exceed capacity by this much (relative)


class Arrays:
    """Index devices by k (instance order) and blocks by j (instance order, shallow to deep).

    Device k fine-tuning block j alone: ``compute[k, j]`` seconds (the whole forward pass,
    backward down to layer l_j), ``memory[k, j]`` bytes; the block's upload is ``upload_bits[j]``.
    A device holding several blocks backpropagates to the shallowest (`compute`/`act` of that
    one) and keeps every block's adapter state (`adapter_state`)."""

    def __init__(self, inst: Any):  # a CooperativeInstance (schema.py builds its Arrays)
        m, tr = inst.model, inst.training
        st = m.stages
        fwd = np.array([s.fwd_flops for s in st])
        bwd = np.array([s.bwd_flops for s in st])
        param = np.array([s.param_bytes for s in st])
        lora = np.array([s.lora_params for s in st])
        act = np.array([s.act_bytes for s in st])
        layers = np.array(inst.blocks, dtype=int)
        tail = lambda v: np.cumsum(v[::-1])[::-1]  # noqa: E731 (sum over stages i >= l)

        self.layers = layers
        self.n_blocks = len(layers)
        self.max_blocks = tr.max_blocks
        # per sample: FLOPs to train a block at layer l (all forward, backward down to l) and
        # the activation bytes kept for that backward pass
        self.work = fwd.sum() + tail(bwd)[layers]
        self.act = tail(act)[layers]
        self.weights = param.sum()  # every busy device holds the whole model
        self.adapter_state = tr.state_factor * m.adapter_dtype_bytes * lora[layers]
        level = inst.codec.levels[tr.upload_level]
        # adapter gradients are not a cut's hidden state: the level's own figure
        self.upload_bits = lora[layers] * level.bits_per_elem
        self.upload_level = tr.upload_level

        d, ch = inst.devices, inst.channel
        self.flops = np.array([x.flops for x in d])
        self.memory = np.array([x.memory_bytes for x in d])
        self.batch = np.array([x.batch for x in d], dtype=float)
        gain = np.array([x.gain if x.gain is not None else
                         float(pathloss_gain(x.distance_m, ch.pathloss.a_db, ch.pathloss.g))
                         for x in d])
        self.snr_ul = np.array([x.tx_power_w for x in d]) * gain / noise_w_per_hz(
            ch.noise_dbm_hz)
        self.bandwidth = ch.bandwidth_hz
        self.device_ids = [x.id for x in d]
        self.n_devices = len(d)
        # device k with block j alone (K, N)
        self.compute = self.batch[:, None] * self.work[None, :] / self.flops[:, None]
        self.pair_memory = (self.weights + self.batch[:, None] * self.act[None, :]
                            + self.adapter_state[None, :])
        self.fits = self.pair_memory <= self.memory[:, None] * (1.0 + REL_TOL)

        # the offloading baseline: devices run the embedding and send its output at the
        # upload level; the server trains every block on every device's batch
        self.offload_device_compute = self.batch * fwd[0] / self.flops
        self.offload_bits = self.batch * m.cut_elems * level.beta(0)  # the hidden state at cut 0
        self.offload_device_memory = param[0] + tr.state_factor * m.adapter_dtype_bytes * lora[
            0] + self.batch * act[0]
        total = self.batch.sum()
        self.offload_server_work = total * (fwd[1:].sum() + tail(bwd)[layers[0]]) / \
            inst.server.flops
        self.offload_server_memory = (param[1:].sum() + self.adapter_state.sum()
                                      + total * tail(act)[layers[0]])
        self.server_memory = inst.server.memory_bytes

        self.rounds = tr.rounds * (1.0 + tr.eta * level.distortion)

