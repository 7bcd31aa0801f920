"""The one option space of the `split` family: every device's (cut, level) options with their
cost-model constants, the figures of a plan (an option index per device), the feasibility
diagnosis, and the pruned per-device option table the bounds and exact solvers use.

An option is a cut in [min_cut, max_cut] with a level allowed by the accuracy constraint
(distortion <= max_distortion), so every plan of options meets accuracy by construction.
Device memory is a per-device filter (``fits``); server memory couples devices and is a
property of a whole plan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cost import REL_TOL, Terms, rounds_needed, server_memory, terms
from .schema import PARALLEL, SplitInstance


@dataclass(frozen=True)
class OptionTable:
    """Each device's admissible, non-dominated options, padded to shape (K, O').

    ``valid`` marks real entries (padding repeats a real option). ``terms`` holds the cost-model
    delay constants of every entry (snr fields shaped (K, 1)).
    """

    cut: np.ndarray
    level: np.ndarray
    valid: np.ndarray
    terms: Terms
    delta: np.ndarray  # distortion of the entry's level
    srv_act: np.ndarray  # activation bytes the server keeps for the device (n_k srv_act[s])
    srv_static: np.ndarray  # server weights + adapter state if this is the shallowest cut

    @property
    def counts(self) -> np.ndarray:
        return self.valid.sum(axis=1)

    def n_combinations(self) -> float:
        return float(np.prod(self.counts.astype(float)))

    def gather(self, idx: np.ndarray) -> Terms:
        """Terms of the combinations ``idx`` (shape (..., K) of entry indices)."""
        k = np.arange(self.cut.shape[0])
        t = self.terms
        return Terms(t.compute[k, idx], t.up_bits[k, idx], t.down_bits[k, idx],
                     t.server_work[k, idx], t.snr_ul[:, 0], t.snr_dl[:, 0])


class OptionSpace:
    """Per-device options of an instance and the figures of a plan (option index per device)."""

    def __init__(self, inst: SplitInstance, schedule: str = PARALLEL):
        a = inst.arrays
        self.inst, self.a, self.schedule = inst, a, schedule
        self.K = inst.n_devices
        pairs = [(int(s), int(c)) for s in a.cuts for c in a.allowed_levels]
        self.opt_cut = np.array([p[0] for p in pairs], dtype=int)
        self.opt_level = np.array([p[1] for p in pairs], dtype=int)
        self.O = len(pairs)
        cols = [terms(a, np.full(self.K, s), np.full(self.K, c)) for s, c in pairs]
        # K x O tables of the delay constants of every device under every option
        self.C = np.stack([x.compute for x in cols], axis=1) if cols else np.zeros((self.K, 0))
        self.U = np.stack([x.up_bits for x in cols], axis=1) if cols else self.C
        self.V = np.stack([x.down_bits for x in cols], axis=1) if cols else self.C
        self.S = np.stack([x.server_work for x in cols], axis=1) if cols else self.C
        mem = np.stack([a.device_memory(np.full(self.K, s)) for s, _ in pairs], axis=1) \
            if pairs else np.zeros((self.K, 0))
        self.fits = mem <= a.memory[:, None] * (1.0 + REL_TOL)
        self.srv_act = a.server_acts(np.broadcast_to(self.opt_cut, (self.K, self.O)))
        self.delta = a.delta[self.opt_level]
        self.B = a.bandwidth
        self.rows = np.arange(self.K)

    # ---------------------------------------------------------------- plan figures
    def cuts(self, plan: np.ndarray) -> np.ndarray:
        return self.opt_cut[plan]

    def levels(self, plan: np.ndarray) -> np.ndarray:
        return self.opt_level[plan]

    def terms(self, plan: np.ndarray) -> Terms:
        r = self.rows
        return Terms(self.C[r, plan], self.U[r, plan], self.V[r, plan], self.S[r, plan],
                     self.a.snr_ul, self.a.snr_dl)

    def server_memory(self, plan: np.ndarray) -> float:
        return server_memory(self.a, self.cuts(plan), self.schedule)

    def memory_ok(self, plan: np.ndarray) -> bool:
        return bool(self.fits[self.rows, plan].all()) and \
            self.server_memory(plan) <= self.a.server_memory * (1.0 + REL_TOL)

    def rounds(self, plan: np.ndarray) -> float:
        return rounds_needed(self.a, self.levels(plan))

    def option(self, cut: int, level: int) -> int:
        """The option index of (cut, level), -1 if it is not an option."""
        hit = np.flatnonzero((self.opt_cut == cut) & (self.opt_level == level))
        return int(hit[0]) if len(hit) else -1

    def options(self, cuts: np.ndarray, levels: np.ndarray) -> np.ndarray:
        """`option` of every (cuts[i], levels[i]), vectorised (-1 where it is not an option)."""
        cuts, levels = np.asarray(cuts, dtype=int), np.asarray(levels, dtype=int)
        if not self.O or not len(cuts):
            return np.full(len(cuts), -1)
        shape = (max(int(self.opt_cut.max()), int(cuts.max())) + 1,
                 max(int(self.opt_level.max()), int(levels.max())) + 1)
        table = np.full(shape, -1)
        table[self.opt_cut[::-1], self.opt_level[::-1]] = np.arange(self.O)[::-1]  # first wins
        ok = (cuts >= 0) & (levels >= 0)
        return np.where(ok, table[np.where(ok, cuts, 0), np.where(ok, levels, 0)], -1)

    def memory_after(self, plan: np.ndarray) -> np.ndarray:
        """K x O: the server memory after device k alone switches to option o. Vectorised: only
        the shallowest cut (parallel) or the largest activation holder (sequential) couples
        devices, so the top two of the others suffice."""
        a = self.a
        cut = self.opt_cut[plan]
        acts = self.srv_act[self.rows, plan]
        new_act = self.srv_act  # K x O
        if self.schedule == PARALLEL:
            held = acts.sum()
            held_new = held - acts[:, None] + new_act
        else:  # sequential: the largest single holder
            held_new = np.maximum(_max_of_others(acts)[:, None], new_act)
        low = _min_of_others(cut)  # shallowest cut among the other devices
        new_min = np.minimum(low[:, None], self.opt_cut[None, :])
        return a.srv_static[new_min] + held_new

    def memory_after_moves(self, plan: np.ndarray, ks: np.ndarray, targets: np.ndarray
                           ) -> np.ndarray:
        """Entry j: the server memory once devices ks[0..j] (distinct) switched to options
        targets[0..j], every prefix at once (a repair moving devices in order stops at the
        first prefix that fits): the static part follows the shallowest cut, the activations
        their sum (parallel) or largest entry (sequential)."""
        a = self.a
        ks, targets = np.asarray(ks, dtype=int), np.asarray(targets, dtype=int)
        cut = self.opt_cut[plan]
        act = self.srv_act[self.rows, plan]
        others = np.ones(self.K, dtype=bool)
        others[ks] = False
        big = np.iinfo(np.int64).max
        old_cut, new_cut = cut[ks], self.opt_cut[targets]
        rest_cut = np.r_[np.minimum.accumulate(old_cut[::-1])[::-1][1:], big]
        base_cut = cut[others].min() if others.any() else big
        shallowest = np.minimum(np.minimum(np.minimum.accumulate(new_cut), rest_cut), base_cut)
        old_act, new_act = act[ks], self.srv_act[ks, targets]
        if self.schedule == PARALLEL:
            held = act.sum() - np.cumsum(old_act - new_act)
        else:
            rest = np.r_[np.maximum.accumulate(old_act[::-1])[::-1][1:], 0.0]
            base = act[others].max() if others.any() else 0.0
            held = np.maximum(np.maximum(np.maximum.accumulate(new_act), rest), base)
        return a.srv_static[shallowest] + held

    def memory_freed(self, plan: np.ndarray) -> np.ndarray:
        """K x O: server memory freed when device k alone switches to option o (negative: the
        move needs more)."""
        return self.server_memory(plan) - self.memory_after(plan)

    # ---------------------------------------------------------------- feasibility
    def deepest(self) -> np.ndarray:
        """Per device, the deepest cut among its options that fits its memory (-1 if none).

        Device memory is non-decreasing in the cut, so the cuts that fit are a prefix."""
        cuts = np.where(self.fits, self.opt_cut[None, :], -1)
        return cuts.max(axis=1) if self.O else np.full(self.K, -1)

    def diagnose(self) -> str | None:
        """Why no plan exists (the binding constraint named first), or None if one does.

        Exact: accuracy and device memory are per device, and the server memory is least with
        every device at its deepest fitting cut (both server terms are non-increasing in cuts).
        """
        a, inst = self.a, self.inst
        if len(a.allowed_levels) == 0:
            return (f"accuracy: no codec level has distortion <= max_distortion "
                    f"{inst.training.max_distortion:g} (smallest is {a.delta.min():g})")
        deep = self.deepest()
        bad = np.flatnonzero(deep < 0)
        if len(bad):
            need = a.device_memory(np.full(self.K, inst.training.min_cut))
            names = ", ".join(f"{a.device_ids[k]} needs {need[k]:.4g} B > {a.memory[k]:.4g} B"
                              for k in bad[:5])
            return (f"device memory: {len(bad)} device(s) fit no cut in [min_cut, max_cut] = "
                    f"[{inst.training.min_cut}, {inst.max_cut}] (at min_cut: {names})")
        least = server_memory(a, deep, self.schedule)
        if least > a.server_memory * (1.0 + REL_TOL):
            return (f"server memory: even with every device at its deepest cut that fits, the "
                    f"server needs {least:.4g} B > {a.server_memory:.4g} B")
        return None

    def server_floor(self, deepest: np.ndarray | None = None) -> np.ndarray:
        """Per device the shallowest cut server memory allows with every other device at its
        least (parallel schedule).

        A cut s of device k needs srv_static[s] + n_k srv_act[s] + sum_{j != k} n_j
        srv_act[deepest_j] <= M_s (the weights above the shallowest cut are at least those
        above s); the left side is non-increasing in s, so the allowed cuts are a suffix.
        """
        a = self.a
        deepest = self.deepest() if deepest is None else deepest
        least = a.server_acts(deepest)
        others = least.sum() - least
        need = a.srv_static[a.cuts][None, :] + a.server_acts(
            np.broadcast_to(a.cuts, (self.K, len(a.cuts))))
        ok = need + others[:, None] <= a.server_memory * (1 + REL_TOL)
        first = np.argmax(ok, axis=1)  # diagnose() guarantees the deepest cut passes
        return a.cuts[first]

    # ---------------------------------------------------------------- the pruned table
    def table(self, *, prune: bool = True) -> OptionTable:
        """Admissible options per device, dominated ones removed (parallel plans).

        Admissible: the option fits the device memory, its cut passes the per-device
        server-memory test of `server_floor`, its level is allowed. Dominated: another
        admissible option is at least as good in every term the objective and the constraints
        are non-decreasing in (compute, bits up, bits down, server work, distortion, server
        activations, server weights); ties keep the first.

        Raises ValueError with the binding constraint if no plan exists.
        """
        why = self.diagnose()
        if why is not None:
            raise ValueError(why)
        a, k = self.a, self.K
        attr = np.stack([self.C, self.U, self.V, self.S,
                         np.broadcast_to(self.delta, (k, self.O)), self.srv_act,
                         np.broadcast_to(a.srv_static[self.opt_cut], (k, self.O))],
                        axis=2)  # (K, O, 7)
        smax = self.deepest()
        smin = self.server_floor(smax)
        keep = np.zeros((k, self.O), dtype=bool)
        # devices with equal batch and cut range have the same dominance pattern: compute it once
        groups: dict[tuple[float, int, int], list[int]] = {}
        for i in range(k):
            groups.setdefault((float(a.batch[i]), int(smin[i]), int(smax[i])), []).append(i)
        for (_, bottom, top), members in groups.items():
            ok = (self.opt_cut <= top) & (self.opt_cut >= bottom)
            row = np.zeros(self.O, dtype=bool)
            idx = np.flatnonzero(ok)
            if prune:
                # scale-free within a group: compute and server work scale by per-device constants
                row[idx[~_dominated(attr[members[0]][idx])]] = True
            else:
                row[idx] = True
            keep[members] = row
        n_opt = int(keep.sum(axis=1).max())
        sel = np.zeros((k, n_opt), dtype=int)
        valid = np.zeros((k, n_opt), dtype=bool)
        for i in range(k):
            idx = np.flatnonzero(keep[i])
            sel[i, : len(idx)] = idx
            sel[i, len(idx):] = idx[0]
            valid[i, : len(idx)] = True
        rows = self.rows[:, None]
        table_terms = Terms(self.C[rows, sel], self.U[rows, sel], self.V[rows, sel],
                            self.S[rows, sel], a.snr_ul[:, None], a.snr_dl[:, None])
        cut = self.opt_cut[sel]
        level = self.opt_level[sel]
        return OptionTable(cut=cut, level=level, valid=valid, terms=table_terms,
                           delta=a.delta[level], srv_act=self.srv_act[rows, sel],
                           srv_static=a.srv_static[cut])


def option_table(inst: SplitInstance, *, prune: bool = True) -> OptionTable:
    """The pruned per-device option table of ``inst`` (OptionSpace.table)."""
    return OptionSpace(inst).table(prune=prune)


def diagnose(inst: SplitInstance, schedule: str = PARALLEL) -> str | None:
    """Why ``inst`` has no plan of the schedule (the binding constraint), or None."""
    return OptionSpace(inst, schedule).diagnose()


def _dominated(attr: np.ndarray) -> np.ndarray:
    """Rows of ``attr`` (options x attributes, lower is better) that another row dominates.

    Ties keep the first. Valid because every delay term, R, and both server-memory terms are
    non-decreasing in each attribute, and device memory was filtered before.
    """
    le = (attr[None, :, :] <= attr[:, None, :]).all(axis=2)  # le[o, o']: o' at least as good
    lt = (attr[None, :, :] < attr[:, None, :]).any(axis=2)
    earlier = np.arange(len(attr))[None, :] < np.arange(len(attr))[:, None]
    np.fill_diagonal(le, False)
    return (le & (lt | earlier)).any(axis=1)


def _min_of_others(x: np.ndarray) -> np.ndarray:
    """Per entry, the least of the other entries (the largest int if there is none)."""
    if len(x) < 2:
        return np.full(len(x), np.iinfo(np.int64).max, dtype=np.int64)
    i = int(np.argmin(x))
    rest = np.delete(x, i)
    out = np.full(len(x), x[i])
    out[i] = rest.min()
    return out


def _max_of_others(x: np.ndarray) -> np.ndarray:
    """Per entry, the largest of the other entries (0 if there is none)."""
    if len(x) < 2:
        return np.zeros(len(x))
    i = int(np.argmax(x))
    out = np.full(len(x), x[i], dtype=float)
    out[i] = np.delete(x, i).max()
    return out
