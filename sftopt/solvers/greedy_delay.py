"""`greedy-delay` and the plan toolkit the large-timescale heuristics share (repair, local search).

A plan is one option index per device; an option is a (cut, level) pair with an allowed level
(distortion <= max_distortion), so the accuracy constraint holds by construction. Device
memory is a per-device filter on options; server memory couples devices and is checked (and
repaired) per plan. Every objective figure is R(levels) x the round delay of an allocation
from `sftopt.allocation` on `cost.terms` of the plan.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from ..allocation import Allocation, delay_weights, exact_allocation
from ..channel import shannon_rate
from ..cost import (
    PARALLEL,
    REL_TOL,
    SEQUENTIAL,
    Terms,
    device_delays,
    device_memory,
    rounds_needed,
    server_memory,
    terms,
)
from ..instance import Instance
from ..result import Result, Status
from .base import infeasible_result, make_result
from .registry import register

AllocFn = Callable[[Terms, float], Allocation]


def sequential_allocation(t: Terms, bandwidth_hz: float) -> Allocation:
    """Vanilla split learning: one device at a time with the whole band and server."""
    k = len(t.compute)
    b, phi = np.full(k, bandwidth_hz), np.ones(k)
    return Allocation(b, phi, float(device_delays(t, b, phi).sum()))


class PlanSpace:
    """Per-device options of an instance and the figures of a plan (option index per device)."""

    def __init__(self, inst: Instance, schedule: str = PARALLEL):
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
        mem = np.stack([device_memory(a, np.full(self.K, s)) for s, _ in pairs], axis=1) \
            if pairs else np.zeros((self.K, 0))
        self.fits = mem <= a.memory[:, None] * (1.0 + REL_TOL)
        self.srv_act = a.batch[:, None] * a.srv_act[self.opt_cut][None, :]
        self.delta = a.delta[self.opt_level]
        self.B = a.bandwidth
        self.rows = np.arange(self.K)
        self.timed_out = False  # set when a search stopped at its deadline
        self.last: tuple | None = None  # (plan, objective, allocation) of the last search

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
        hit = np.flatnonzero((self.opt_cut == cut) & (self.opt_level == level))
        return int(hit[0]) if len(hit) else -1

    # ---------------------------------------------------------------- feasibility
    def deepest(self) -> np.ndarray:
        """Per device, the deepest cut that fits (-1 if none)."""
        cuts = np.where(self.fits, self.opt_cut[None, :], -1)
        return cuts.max(axis=1) if self.O else np.full(self.K, -1)

    def diagnose(self) -> str | None:
        """Why no plan exists (the binding constraint named), or None if some plan may."""
        a, inst = self.a, self.inst
        if len(a.allowed_levels) == 0:
            return (f"accuracy: no codec level has distortion <= max_distortion "
                    f"{inst.training.max_distortion:g} (smallest is {a.delta.min():g})")
        deep = self.deepest()
        bad = np.flatnonzero(deep < 0)
        if len(bad):
            need = device_memory(a, np.full(self.K, inst.training.min_cut))
            names = ", ".join(f"{a.device_ids[k]} needs {need[k]:.4g} B > {a.memory[k]:.4g} B"
                              for k in bad[:5])
            return (f"device memory: {len(bad)} device(s) fit no cut in [min_cut, max_cut] = "
                    f"[{inst.training.min_cut}, {inst.max_cut}] (at min_cut: {names})")
        # deeper cuts shrink both server terms: the deepest fitting cuts need the least
        least = server_memory(a, deep, self.schedule)
        if least > a.server_memory * (1.0 + REL_TOL):
            return (f"server memory: even with every device at its deepest cut that fits, the "
                    f"server needs {least:.4g} B > {a.server_memory:.4g} B")
        return None

    # ---------------------------------------------------------------- evaluation
    def evaluate(self, plan: np.ndarray, alloc: AllocFn = exact_allocation
                 ) -> tuple[float, Allocation]:
        """Objective R x T of a plan (inf if it breaks memory) and its allocation."""
        if not self.memory_ok(plan):
            return np.inf, Allocation(np.zeros(self.K), np.zeros(self.K), np.inf)
        al = alloc(self.terms(plan), self.B)
        return self.rounds(plan) * al.round_delay, al

    def option_delays(self, al: Allocation) -> np.ndarray:
        """K x O: each device's delay under each option at the current (b, phi); inf for an
        option that needs a resource the allocation gave the device none of."""
        b, share = al.bandwidth, al.share
        # a finite stand-in for 1/0 keeps 0 x (1/0) = 0 for options without that term
        huge = 1e300
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            pos = np.maximum(b, 1e-300)
            inv_u = np.where(b > 0, 1.0 / shannon_rate(pos, self.a.snr_ul), huge)
            inv_d = np.where(b > 0, 1.0 / shannon_rate(pos, self.a.snr_dl), huge)
            inv_s = np.where(share > 0, 1.0 / np.maximum(share, 1e-300), huge)
            out = self.C + self.U * inv_u[:, None] + self.V * inv_d[:, None] \
                + self.S * inv_s[:, None]
        out[out >= 1e290] = np.inf
        return out

    def predicted_change(self, plan: np.ndarray, al: Allocation) -> np.ndarray:
        """K x O first-order change of R x T when one device switches option (envelope theorem:
        dT = w_k dT_k at fixed (b, phi) prices; dR from the level's distortion)."""
        t = self.terms(plan)
        w = delay_weights(t, al)
        T = al.round_delay
        R = self.rounds(plan)
        opt = self.option_delays(al)
        cur = opt[self.rows, plan]
        dR = self.a.rounds * self.a.eta * self.a.sample_weight[:, None] * (
            self.delta[None, :] - self.delta[plan][:, None])
        with np.errstate(invalid="ignore"):
            out = R * w[:, None] * (opt - cur[:, None]) + dR * T
        return np.where(np.isnan(out), np.inf, out)

    # ---------------------------------------------------------------- moves
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

    def memory_freed(self, plan: np.ndarray) -> np.ndarray:
        """K x O: server memory freed when device k alone switches to option o (negative: the
        move needs more)."""
        return self.server_memory(plan) - self.memory_after(plan)

    def repair_memory(self, plan: np.ndarray, alloc: AllocFn = exact_allocation,
                      deadline: float = np.inf, batch: int | None = None) -> np.ndarray | None:
        """Deepen cuts (same level) until the server memory fits: each step the move freeing
        the most memory per predicted increase of the objective. None if it cannot fit.

        Prices are recomputed after every ``batch`` moves (default: one move per 50 devices,
        so up to 50 devices it is one move at a time; large fleets need far fewer re-pricings).
        Past ``deadline`` the rest is done by `quick_repair` (and ``timed_out`` is set)."""
        plan = plan.copy()
        limit = self.a.server_memory * (1.0 + REL_TOL)
        batch = max(1, self.K // 50) if batch is None else max(1, int(batch))
        same_level = self.opt_level[None, :] == self.opt_level[plan][:, None]
        for _ in range(self.K * len(self.a.cuts) + 1):
            if self.server_memory(plan) <= limit:
                return plan
            if time.perf_counter() >= deadline:
                self.timed_out = True
                return self.quick_repair(plan)
            al = alloc(self.terms(plan), self.B)
            freed = self.memory_freed(plan)
            move = self.fits & same_level & (self.opt_cut[None, :] > self.opt_cut[plan][:, None]) \
                & (freed > 0)
            if np.isfinite(al.round_delay):
                pred = self.predicted_change(plan, al)
                eps = 1e-12 * max(float(np.abs(pred).min()), 1.0)
                with np.errstate(invalid="ignore", divide="ignore"):
                    score = freed / (np.maximum(pred, 0.0) + eps)
            else:
                score = freed
            score = np.where(move & ~np.isnan(score), score, -np.inf)
            best_o = np.argmax(score, axis=1)
            best = score[self.rows, best_o]
            order = np.argsort(-best, kind="stable")
            order = order[np.isfinite(best[order])][:batch]
            if not len(order):
                return None
            for k in order:  # the batch, best first, until the memory fits
                plan[k] = best_o[k]
                if len(order) > 1 and self.server_memory(plan) <= limit:
                    return plan
        return plan if self.server_memory(plan) <= limit else None

    def quick_repair(self, plan: np.ndarray) -> np.ndarray | None:
        """A fast memory repair for when time is up: devices moved (same level) to their
        deepest fitting cut, those freeing the most server activation memory first, until the
        server memory fits. None if even the deepest cuts do not fit."""
        plan = plan.copy()
        limit = self.a.server_memory * (1.0 + REL_TOL)
        if self.server_memory(plan) <= limit:
            return plan
        deep = self.deepest()
        if (deep < 0).any():
            return None
        target = np.array([self.option(int(deep[k]), int(self.opt_level[plan[k]]))
                           for k in range(self.K)])
        target = np.where(target >= 0, target, plan)
        freed = self.srv_act[self.rows, plan] - self.srv_act[self.rows, target]
        for k in np.argsort(-freed, kind="stable"):
            if target[k] == plan[k]:
                continue
            plan[k] = target[k]
            if self.server_memory(plan) <= limit:
                return plan
        return plan if self.server_memory(plan) <= limit else None

    def local_search(self, plan: np.ndarray, *, alloc: AllocFn = exact_allocation,
                     deadline: float = np.inf, max_iter: int = 1000, full_limit: int = 400,
                     pairs: bool = True, batch_from: int = 100, max_scan: int | None = None
                     ) -> tuple[np.ndarray, float, int]:
        """Single-device moves while the objective improves. Small neighbourhoods
        (K x O <= full_limit) are scanned exactly; larger ones in order of the first-order
        predicted change (the moves predicted to help and the full_limit/2 next best, at most
        ``max_scan`` exact evaluations per move; by default all below ``batch_from`` devices,
        else max(25, 25,000 / K)), exact evaluation deciding. When no single move helps and
        ``pairs``, a helpful move that overflows the server memory is tried together with a
        move of another device that frees memory. Fleets of ``batch_from`` devices or more
        descend in batches (`batch_descent`) before each single move. At most ``max_iter``
        improving steps (a batch is one). Returns (plan, objective, device moves)."""
        plan = plan.copy()
        val, al = self.evaluate(plan, alloc)
        moves = steps = 0
        large = batch_from <= self.K
        if max_scan is None:  # large fleets: the batches did the bulk; scan a few
            max_scan = max(25, 25_000 // self.K) if large else self.K * self.O
        while steps < max_iter:
            if large and np.isfinite(val):
                plan, val, al, done, n = self.batch_descent(
                    plan, val, al, alloc=alloc, deadline=deadline, max_steps=max_iter - steps)
                moves, steps = moves + done, steps + n
            if time.perf_counter() >= deadline:
                self.timed_out = True
                break
            if steps >= max_iter:
                break
            pred = self.predicted_change(plan, al) if np.isfinite(val) else \
                np.zeros((self.K, self.O))
            cand = self.fits.copy()
            cand[self.rows, plan] = False
            ks, os_ = np.nonzero(cand)
            n_keep = len(ks)
            if len(ks) > full_limit:  # screen: moves predicted to help, then the next best few
                n_keep = int((pred[ks, os_] < 0).sum()) + full_limit // 2
            # moves that overflow the server memory are left to the pair moves
            fits_server = (self.memory_after(plan)[ks, os_]
                           <= self.a.server_memory * (1.0 + REL_TOL))
            order = _smallest(pred[ks, os_], n_keep)
            order = order[fits_server[order]][:max_scan]
            improved = False
            for i in order:
                if time.perf_counter() >= deadline:
                    self.timed_out = True
                    break
                trial = plan.copy()
                trial[ks[i]] = os_[i]
                v, a2 = self.evaluate(trial, alloc)
                if v < val * (1.0 - 1e-12):
                    plan, val, al, improved = trial, v, a2, True
                    moves, steps = moves + 1, steps + 1
                    break
            if not improved and pairs and np.isfinite(val):
                got = self._pair_move(plan, val, pred, alloc, deadline)
                if got is not None:
                    plan, val, al = got
                    moves, steps = moves + 2, steps + 1
                    improved = True
            if not improved:
                break
        self.last = (plan, val, al)
        return plan, val, moves

    def lift_floor(self, plan: np.ndarray, val: float, *, alloc: AllocFn = exact_allocation,
                   deadline: float = np.inf, lifts: int = 3) -> tuple[np.ndarray, float, int]:
        """Iterated local search on the shallowest cut, the one discrete choice that couples
        every device (the server holds the weights above it): every device below a higher
        floor moves to its shallowest fitting cut at or above it (same level), the server
        memory is repaired and a local search follows; the first of the next ``lifts`` floors
        that ends better is kept, and lifting repeats from there. Single and pair moves cannot
        make this move when several devices sit at the floor. Returns (plan, value, lifts
        kept)."""
        kept = 0
        while time.perf_counter() < deadline and np.isfinite(val):
            cuts = self.cuts(plan)
            better = False
            for floor in np.unique(self.a.cuts[self.a.cuts > cuts.min()])[:lifts]:
                if time.perf_counter() >= deadline:
                    self.timed_out = True
                    break
                trial = plan.copy()
                for k in np.flatnonzero(cuts < floor):
                    up = np.flatnonzero(self.fits[k] & (self.opt_cut >= floor)
                                        & (self.opt_level == self.opt_level[plan[k]]))
                    if not len(up):
                        trial = None
                        break
                    trial[k] = up[np.argmin(self.opt_cut[up])]
                if trial is None:
                    continue
                trial = self.repair_memory(trial, alloc, deadline=deadline)
                if trial is None:
                    continue
                trial, v, _ = self.local_search(trial, alloc=alloc, deadline=deadline)
                if v < val * (1.0 - 1e-12):
                    plan, val, better = trial, v, True
                    kept += 1
                    break
            if not better:
                break
        return plan, val, kept

    def batch_descent(self, plan: np.ndarray, val: float, al: Allocation, *,
                      alloc: AllocFn = exact_allocation, deadline: float = np.inf,
                      max_steps: int = 10**9
                      ) -> tuple[np.ndarray, float, Allocation, int, int]:
        """Many devices switch at once: each device's best option by the first-order predicted
        change, the m most helpful devices together (if that overflows the server memory, only
        among moves that take no server memory). A batch is kept if R x T falls, then m
        doubles, else m halves; the descent ends when a single device fails or nothing is
        predicted to help. One allocation per trial instead of one per move is what lets a
        thousand devices improve in seconds. At most ``max_steps`` batches are kept. Returns
        (plan, value, allocation, device moves, batches kept)."""
        limit = self.a.server_memory * (1.0 + REL_TOL)
        m, moves, steps = max(1, self.K // 20), 0, 0
        while m >= 1 and steps < max_steps:
            if time.perf_counter() >= deadline:
                self.timed_out = True
                break
            pred = self.predicted_change(plan, al)
            pred = np.where(self.fits, pred, np.inf)
            pred[self.rows, plan] = np.inf
            freed = self.memory_freed(plan)
            trial, n_moved = self._batch(plan, pred, freed, m, val, limit)
            if trial is None:
                if m == 1:
                    break
                m //= 2
                continue
            v, a2 = self.evaluate(trial, alloc)
            if v < val * (1.0 - 1e-12):
                plan, val, al = trial, v, a2
                moves, steps = moves + n_moved, steps + 1
                m = min(2 * m, self.K)
            elif m == 1:
                break
            else:
                m //= 2
        return plan, val, al, moves, steps

    def _batch(self, plan: np.ndarray, pred: np.ndarray, freed: np.ndarray, size: int,
               val: float, limit: float) -> tuple[np.ndarray | None, int]:
        """The batch of `batch_descent` for ``size`` devices (None if there is none)."""
        def build(allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            score = np.where(allowed, pred, np.inf)
            best_o = np.argmin(score, axis=1)
            gain = score[self.rows, best_o]
            order = np.argsort(gain, kind="stable")
            order = order[gain[order] < -1e-9 * val][:size]
            trial = plan.copy()
            trial[order] = best_o[order]
            return trial, order

        trial, order = build(np.isfinite(pred))
        if self.server_memory(trial) > limit:
            # moves that take server memory are badly predicted in bulk (the device they
            # enlarge may become the bottleneck): a batch moves only those that free memory
            trial, order = build(np.isfinite(pred) & (freed >= 0))
            if self.server_memory(trial) > limit:
                return None, 0
        return (trial, len(order)) if len(order) else (None, 0)

    def _pair_move(self, plan: np.ndarray, val: float, pred: np.ndarray, alloc: AllocFn,
                   deadline: float, top: int = 12) -> tuple | None:
        """A move that only fits the server memory if another device frees some: the `top`
        helpful single moves that overflow the server, each paired with the `top` moves of
        other devices freeing the most memory per predicted cost. First improving pair wins."""
        after = self.memory_after(plan)
        ks, os_ = np.nonzero(self.fits & (pred < 0) & (after > self.a.server_memory
                                                         * (1.0 + REL_TOL)))
        over = [(ks[i], os_[i]) for i in np.argsort(pred[ks, os_], kind="stable")[:top]]
        if not over:
            return None
        fk, fo = np.nonzero(self.fits)
        freed = self.server_memory(plan) - after[fk, fo]
        ok = freed > 0
        fk, fo, freed = fk[ok], fo[ok], freed[ok]
        score = freed / (np.maximum(pred[fk, fo], 0.0) + 1e-12 * abs(val))
        helpers = [(fk[i], fo[i]) for i in np.argsort(-score, kind="stable")[:top]]
        for k1, o1 in over:
            for k2, o2 in helpers:
                if time.perf_counter() >= deadline:
                    self.timed_out = True
                    return None
                if k1 == k2:
                    continue
                trial = plan.copy()
                trial[k1], trial[k2] = o1, o2
                v, a2 = self.evaluate(trial, alloc)
                if v < val * (1.0 - 1e-12):
                    return trial, v, a2
        return None

    def own_delay_plan(self) -> np.ndarray:
        """Per device the fitting option with the least own delay at equal shares, weighted by
        its effect on the rounds (1 + eta delta)."""
        K = self.K
        inv_u = 1.0 / shannon_rate(self.B / K, self.a.snr_ul)
        inv_d = 1.0 / shannon_rate(self.B / K, self.a.snr_dl)
        own = self.C + self.U * inv_u[:, None] + self.V * inv_d[:, None] + self.S * K
        own = own * (1.0 + self.a.eta * self.delta[None, :])
        return np.argmin(np.where(self.fits, own, np.inf), axis=1)

    def result(self, plan: np.ndarray, al: Allocation, *, message: str = "",
               iterations: int = 0) -> Result:
        """The plan as a Result (status time_limit if a search hit its deadline)."""
        status = Status.TIME_LIMIT if self.timed_out else Status.FEASIBLE
        if self.timed_out:
            message += " (stopped at the time limit)"
        return make_result(self.inst, self.cuts(plan), self.levels(plan), al.bandwidth,
                           al.share, message=message, iterations=iterations,
                           schedule=self.schedule, status=status)


def _smallest(x: np.ndarray, n: int) -> np.ndarray:
    """Indices of the n smallest entries of x in ascending order (stable), without sorting all
    of x (a large fleet's neighbourhood has K x O entries)."""
    idx = np.arange(len(x))
    if n < len(idx):
        part = np.argpartition(x[idx], n - 1)[:n]
        # ties at the cut-off: the stable order keeps the lowest indices, as a full sort would
        cut = x[idx[part]].max()
        idx = idx[x[idx] <= cut]
    order = idx[np.argsort(x[idx], kind="stable")]
    return order[:n]


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


def deadline_of(time_limit: float | None) -> float:
    return np.inf if time_limit is None else time.perf_counter() + float(time_limit)


@register("greedy-delay", description="own-delay choice per device, memory repair, then "
                                      "single-device local search with exact shares and "
                                      "shallowest-cut lifts")
def solve_greedy_delay(instance: Instance, *, max_iter: int = 1000, lifts: int | None = None,
                       time_limit: float | None = None) -> Result:
    """Per device the (cut, level) with the least own delay at equal shares (times the rounds
    factor 1 + eta delta), server memory repaired, then one device at a time switched to the
    option that lowers R x T under exact re-allocation, while it improves (at most ``max_iter``
    improving steps or ``time_limit`` seconds); then floor lifts (`PlanSpace.lift_floor`,
    ``lifts`` floors tried each time, default 3 below 100 devices, else 0: none)."""
    deadline = deadline_of(time_limit)
    space = PlanSpace(instance)
    why = space.diagnose()
    if why:
        return infeasible_result(instance, why)
    plan = space.repair_memory(space.own_delay_plan(), deadline=deadline)
    if plan is None:
        return infeasible_result(instance, "server memory: repair by deepening cuts failed")
    plan, val, moves = space.local_search(plan, deadline=deadline, max_iter=max_iter)
    plan, _, kept = space.lift_floor(plan, val, deadline=deadline,
                                     lifts=default_lifts(space.K) if lifts is None else lifts)
    _, al = space.evaluate(plan)
    return space.result(plan, al, iterations=moves,
                        message=f"{moves} local-search moves from the own-delay plan, "
                                f"{kept} floor lift(s)")


def default_lifts(n_devices: int) -> int:
    """Floors tried per lift: 3 below 100 devices, else none (each try is a whole local search:
    at 1,000 devices one floor per lift improved R x T by 2% but tripled the time)."""
    return 3 if n_devices < 100 else 0


__all__ = ["PARALLEL", "SEQUENTIAL", "PlanSpace", "deadline_of", "default_lifts",
           "sequential_allocation", "solve_greedy_delay"]
