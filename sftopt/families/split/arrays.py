"""The numbers of a `split` instance as numpy arrays: per-stage prefix sums, per-device vectors."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...channel import noise_w_per_hz, pathloss_gain


class Arrays:
    """Per-stage prefix sums and per-device vectors: what every delay and memory figure uses.

    Cut s means the device runs stages 0..s. Index arrays by s in 0..L+1.
    """

    def __init__(self, inst: Any):  # a SplitInstance (schema.py builds its Arrays)
        m, tr = inst.model, inst.training
        st = m.stages
        work = np.array([s.fwd_flops + s.bwd_flops for s in st])
        param = np.array([s.param_bytes for s in st])
        lora = np.array([s.lora_params for s in st])
        act = np.array([s.act_bytes for s in st])
        lb = tr.state_factor * m.adapter_dtype_bytes * lora

        self.L = m.n_blocks
        self.cuts = np.arange(tr.min_cut, inst.max_cut + 1)
        self.min_cut = tr.min_cut
        self.cut_elems = m.cut_elems
        self.w_dev = np.cumsum(work)  # FLOPs on the device for cut s
        self.w_srv = work.sum() - self.w_dev  # FLOPs on the server for cut s
        self.adapter_bits = 8.0 * m.adapter_dtype_bytes * np.cumsum(lora)  # A(s)
        self.dev_static = np.cumsum(param + lb)  # weights + adapter state on the device
        self.dev_act = np.cumsum(act)  # activations per sample on the device
        self.srv_static = np.concatenate([np.cumsum((param + lb)[::-1])[::-1][1:], [0.0]])
        self.srv_act = act.sum() - self.dev_act  # server-side activations per sample
        self.has_server = np.arange(self.L + 2) <= self.L  # cut L+1: nothing on the server

        d = inst.devices
        ch = inst.channel
        self.flops = np.array([x.flops for x in d])
        self.memory = np.array([x.memory_bytes for x in d])
        self.batch = np.array([x.batch for x in d], dtype=float)
        self.power = np.array([x.tx_power_w for x in d])
        self.gain = np.array(
            [
                x.gain
                if x.gain is not None
                else float(pathloss_gain(x.distance_m, ch.pathloss.a_db, ch.pathloss.g))
                for x in d
            ]
        )
        n0 = noise_w_per_hz(ch.noise_dbm_hz)
        self.snr_ul = self.power * self.gain / n0  # x_k in b log2(1 + x_k / b), Hz
        self.snr_dl = inst.server.tx_power_w * self.gain / n0
        self.sample_weight = self.batch / self.batch.sum()

        # coded bits per element per (level, cut): a level's size depends on the tensor it
        # codes, so a codec table may give it per cut (docs/model.md section 1)
        self.beta = inst.codec.beta_table(self.L)
        self.delta = np.array([c.distortion for c in inst.codec.levels])
        self.max_distortion = tr.max_distortion
        self.allowed_levels = np.flatnonzero(self.delta <= tr.max_distortion)

        self.bandwidth = ch.bandwidth_hz
        self.server_flops = inst.server.flops
        self.server_memory = inst.server.memory_bytes
        self.rounds = tr.rounds
        self.eta = tr.eta
        self.agg_every = tr.agg_every
        self.device_ids = [x.id for x in d]
        self.n_devices = len(d)

    def device_memory(self, cuts: np.ndarray) -> np.ndarray:
        """Left-hand side of each device's memory constraint under cuts s_k, bytes."""
        cuts = np.asarray(cuts, dtype=int)
        return self.dev_static[cuts] + self.batch * self.dev_act[cuts]

    def server_acts(self, cuts: np.ndarray) -> np.ndarray:
        """Activation bytes the server keeps for each device, n_k srv_act[s_k] (broadcast:
        cuts of shape (K,) or (K, n) give the same shape)."""
        cuts = np.asarray(cuts, dtype=int)
        batch = self.batch.reshape((-1,) + (1,) * (cuts.ndim - 1)) if cuts.ndim else self.batch
        return batch * self.srv_act[cuts]
