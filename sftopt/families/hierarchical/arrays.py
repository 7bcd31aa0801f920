"""The numbers of a `hierarchical` instance as numpy arrays: per cut pair (s1, s2) the work,
weights and activations of each tier, per (user, edge) the radio, per (user, edge, pair) a
user's turn."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...channel import noise_w_per_hz, pathloss_gain, shannon_rate

REL_TOL = 1e-9  # resource sums may exceed capacity by this much (relative)

# users per block of the (users x pairs) tables: their temporaries stay small (a table of
# 30,000 users x 300 pairs at once took 0.86 s, in blocks of 2,048 users 0.21 s, same numbers)
_CHUNK = 2048


class Arrays:
    """Users u, edges e (instance order) and cut pairs p = (s1, s2), min_user_cut <= s1 < s2 <=
    max_edge_cut, in lexicographic order (``s1[p]``, ``s2[p]``).

    Per sample prefix sums over stages 0..s (index s) give each tier's share: the user runs
    stages 0..s1, the edge s1+1..s2, the cloud s2+1..L+1."""

    def __init__(self, inst: Any):  # a HierarchicalInstance (schema.py builds its Arrays)
        m, tr = inst.model, inst.training
        st = m.stages
        L = len(st) - 2
        work = np.array([s.fwd_flops + s.bwd_flops for s in st])
        lora = np.array([s.lora_params for s in st])
        held = np.array([s.param_bytes for s in st]) + tr.state_factor * \
            m.adapter_dtype_bytes * lora  # weights + omega x adapters
        act = np.array([s.act_bytes for s in st])
        pre = lambda v: np.cumsum(v)  # noqa: E731 (sum over stages 0..s)
        W, H, A, Lo = pre(work), pre(held), pre(act), pre(lora)

        hi = L if tr.max_edge_cut is None else tr.max_edge_cut
        pairs = [(s1, s2) for s1 in range(tr.min_user_cut, hi) for s2 in range(s1 + 1, hi + 1)]
        self.s1 = np.array([p[0] for p in pairs], dtype=int)
        self.s2 = np.array([p[1] for p in pairs], dtype=int)
        self.n_pairs = len(pairs)
        self.n_blocks = L
        s1, s2 = self.s1, self.s2
        level = inst.codec.levels[tr.level]
        self.level = tr.level
        self.cut_elems = m.cut_elems
        # coded bits per element per pair: over the cell at s1, over the backhaul at s2
        self.beta_cell, self.beta_back = self.pair_betas(level)
        self.rounds = tr.rounds * (1.0 + tr.eta * level.distortion)
        adapter_bits = 8.0 * m.adapter_dtype_bytes
        # per pair, per sample (work, activations) or per party (held bytes, adapter bits)
        self.user_work, self.user_held, self.user_act = W[s1], H[s1], A[s1]
        self.edge_work, self.edge_held, self.edge_act = W[s2] - W[s1], H[s2] - H[s1], \
            A[s2] - A[s1]
        self.cloud_work, self.cloud_held, self.cloud_act = W[-1] - W[s2], H[-1] - H[s2], \
            A[-1] - A[s2]
        self.user_adapter_bits = adapter_bits * Lo[s1]
        self.edge_adapter_bits = adapter_bits * (Lo[s2] - Lo[s1])

        # users and edges
        us, es = inst.users, inst.edges
        self.user_ids, self.edge_ids = [u.id for u in us], [e.id for e in es]
        self.n_users, self.n_edges = len(us), len(es)
        self.batch = np.array([u.batch for u in us], dtype=float)
        self.user_flops = np.array([u.flops for u in us])
        self.user_memory = np.array([u.memory_bytes for u in us])
        self.edge_flops = np.array([e.flops for e in es])
        self.edge_memory = np.array([e.memory_bytes for e in es])
        self.band = np.array([e.bandwidth_hz for e in es])
        self.backhaul = np.array([e.backhaul_bps for e in es])
        self.cloud_flops = inst.cloud.flops
        self.cloud_memory = inst.cloud.memory_bytes
        index = {e: j for j, e in enumerate(self.edge_ids)}
        # fixed[u]: the user's edge index, or -1 when the solver chooses it
        self.fixed = np.array([-1 if u.edge is None else index[u.edge] for u in us], dtype=int)
        self.allowed = np.ones((self.n_users, self.n_edges), dtype=bool)
        self.allowed[self.fixed >= 0] = False
        self.allowed[np.flatnonzero(self.fixed >= 0), self.fixed[self.fixed >= 0]] = True
        gain = np.full((self.n_users, self.n_edges), np.nan)
        pl = inst.radio.pathloss
        for k, u in enumerate(us):
            v = u.gain if u.gain is not None else u.distance_m
            if u.gain is None:
                v = pathloss_gain(np.asarray(v, dtype=float), pl.a_db, pl.g)
            if np.ndim(v) == 0:
                gain[k, self.fixed[k]] = float(v)
            else:
                gain[k] = np.asarray(v, dtype=float)
        self.gain = gain
        n0 = noise_w_per_hz(inst.radio.noise_dbm_hz)
        snr_ul = np.array([u.tx_power_w for u in us])[:, None] * gain / n0
        snr_dl = np.array([e.tx_power_w for e in es])[None, :] * gain / n0
        with np.errstate(invalid="ignore"):
            self.rate_ul = np.where(self.allowed, shannon_rate(self.band[None, :],
                                                               np.nan_to_num(snr_ul)), 0.0)
            self.rate_dl = np.where(self.allowed, shannon_rate(self.band[None, :],
                                                               np.nan_to_num(snr_dl)), 0.0)

        # memory: users per pair, edges per (user, edge, pair) as one batch of that user
        self.user_mem = self.user_held[None, :] + self.batch[:, None] * self.user_act[None, :]
        self.user_fits = self.user_mem <= self.user_memory[:, None] * (1.0 + REL_TOL)
        self._turns: dict[int, np.ndarray] = {}  # turn(e) of every user, once asked for
        self._fits: dict[int, np.ndarray] = {}  # fits(e) likewise (both: _edge_table)
        self._cloud: np.ndarray | None = None  # cloud_time() likewise

    # ------------------------------------------------------------------ a user's turn
    def turn(self, e: int, users: np.ndarray | None = None) -> np.ndarray:
        """Seconds of each user's turn at edge ``e`` for every pair, without the cloud's compute
        (users x pairs; inf where the user may not join e): its compute, activations up and
        gradients down over the cell, its adapters up, the edge's compute, and the backhaul
        both ways with the user's and the edge's adapters."""
        return self._edge_table(self._turns, e, users, self._turn, np.inf)

    def _edge_table(self, cache: dict[int, np.ndarray], e: int, users: np.ndarray | None,
                    compute: Callable[[int, np.ndarray], np.ndarray], fill: float | bool
                    ) -> np.ndarray:
        """``compute(e, users)`` (users x pairs) in blocks of _CHUNK users (small temporaries:
        the same numbers, 4x faster at 100,000 users). For every user (``users`` None) once per
        edge, into ``cache``, read-only (shared): computed for the users allowed at e only
        (with users fixed to their edges, each edge's own), ``fill`` for the others."""
        if users is None:
            if e not in cache:
                here = np.flatnonzero(self.allowed[:, e])
                table = np.full((self.n_users, self.n_pairs), fill)
                table[here] = self._edge_table({}, e, here, compute, fill)
                table.setflags(write=False)  # shared: nobody may change it
                cache[e] = table
            return cache[e]
        u = np.asarray(users, dtype=int)
        if e in cache:
            return cache[e][u]
        return np.concatenate([compute(e, u[i:i + _CHUNK])
                               for i in range(0, len(u) or 1, _CHUNK)])

    def _turn(self, e: int, u: np.ndarray) -> np.ndarray:
        n = self.batch[u][:, None]
        act_bits = n * self.cut_elems * self.beta_cell[None, :]  # at s1, over the cell
        back_bits = n * self.cut_elems * self.beta_back[None, :]  # at s2, over the backhaul
        with np.errstate(divide="ignore", invalid="ignore"):  # rate 0: masked below
            radio = (act_bits / self.rate_ul[u, e][:, None] + act_bits / self.rate_dl[u, e][:, None]
                     + self.user_adapter_bits[None, :] / self.rate_ul[u, e][:, None])
        t = (n * self.user_work[None, :] / self.user_flops[u][:, None] + radio
             + n * self.edge_work[None, :] / self.edge_flops[e]
             + (2.0 * back_bits + self.user_adapter_bits[None, :]
                + self.edge_adapter_bits[None, :]) / self.backhaul[e])
        return np.where(self.allowed[u, e][:, None], t, np.inf)

    def cloud_time(self, users: np.ndarray | None = None) -> np.ndarray:
        """Seconds of the cloud's compute for each user's turn with the whole cloud (users x
        pairs)."""
        if users is None:  # every user's: computed once (solvers ask again and again)
            if self._cloud is None:
                self._cloud = self.cloud_time(np.arange(self.n_users))
                self._cloud.setflags(write=False)
            return self._cloud
        u = np.asarray(users, dtype=int)
        return self.batch[u][:, None] * self.cloud_work[None, :] / self.cloud_flops

    def edge_mem(self, e: int, users: np.ndarray | None = None) -> np.ndarray:
        """The edge's memory while serving each user (users x pairs): its stages' weights and
        adapter state, one batch of that user's activations."""
        u = np.arange(self.n_users) if users is None else np.asarray(users, dtype=int)
        return self.edge_held[None, :] + self.batch[u][:, None] * self.edge_act[None, :]

    def fits(self, e: int, users: np.ndarray | None = None) -> np.ndarray:
        """Pairs each user can take at edge e (users x pairs): its own memory and the edge's,
        and the user allowed there."""
        return self._edge_table(self._fits, e, users, self._fits_of, False)

    def _fits_of(self, e: int, u: np.ndarray) -> np.ndarray:
        ok = self.user_fits[u] & (self.edge_mem(e, u) <= self.edge_memory[e] * (1 + REL_TOL))
        return ok & self.allowed[u, e][:, None]

    def bits(self, users: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Bits of each user's turn over its cell and over the backhaul (users x pairs)."""
        u = np.arange(self.n_users) if users is None else np.asarray(users, dtype=int)
        both = 2.0 * self.batch[u][:, None] * self.cut_elems  # elements up and down
        radio = both * self.beta_cell[None, :] + self.user_adapter_bits[None, :]
        backhaul = both * self.beta_back[None, :] + self.user_adapter_bits[None, :] \
            + self.edge_adapter_bits[None, :]
        return radio, backhaul

    def pair_betas(self, level: Any) -> tuple[np.ndarray, np.ndarray]:
        """Coded bits per element of codec ``level`` (a CodecLevel) per pair: at the user's cut
        s1 (the cell) and at the edge's cut s2 (the backhaul)."""
        return (np.array([level.beta(int(s)) for s in self.s1], dtype=float),
                np.array([level.beta(int(s)) for s in self.s2], dtype=float))

    def pair_index(self, s1: int, s2: int) -> int:
        """The index of the pair (s1, s2), or -1 if it is not a pair of this instance."""
        hit = np.flatnonzero((self.s1 == s1) & (self.s2 == s2))
        return int(hit[0]) if len(hit) else -1
