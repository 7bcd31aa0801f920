"""The plan search the `split` heuristics share: memory repair, single and pair moves, batched
descent, shallowest-cut lifts, the own-delay start.

A plan is one option index per device (options.py). Every objective figure is R(levels) x the
round delay of an allocation (``alloc``: the exact allocator unless a baseline says otherwise)
of `cost.terms` of the plan; every step checks the one ``deadline`` of the solve.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from ...channel import shannon_rate
from ...core.options import RESULT_S, Deadline
from ...core.result import Result, Termination
from .allocation import Allocation, delay_weights, exact_allocation
from .cost import REL_TOL, Terms, device_delays
from .options import OptionSpace
from .plans import make_result

AllocFn = Callable[[Terms, float], Allocation]


def sequential_allocation(t: Terms, bandwidth_hz: float) -> Allocation:
    """Vanilla split learning: one device at a time with the whole band and server."""
    k = len(t.compute)
    b, phi = np.full(k, bandwidth_hz), np.ones(k)
    return Allocation(b, phi, float(device_delays(t, b, phi).sum()))


def default_lifts(n_devices: int) -> int:
    """Floors tried per lift: 3 below 100 devices, else none (each try is a whole local search:
    at 1,000 devices one floor per lift improved R x T by 2% but tripled the time)."""
    return 3 if n_devices < 100 else 0


# time kept for the steps after a search (`Search.late`), measured at 100,000 devices on a
# quiet machine: an evaluation 0.9-1.2 s, the result (plan records, checks) 1.8 s
FINISH = 6.0  # evaluations (a rounded plan's allocation took up to 10 relaxed ones in alm)


class Search:
    """Searches over the plans of an option space with one allocator and one deadline."""

    def __init__(self, space: OptionSpace, alloc: AllocFn = exact_allocation,
                 deadline: Deadline | None = None):
        self.space = space
        self.alloc = alloc
        self.deadline = deadline or Deadline()
        self.last: tuple | None = None  # (plan, objective, allocation) of the last local search
        self.capped = False  # a local search stopped at its max_iter
        # the slowest evaluation so far: what finishing a plan costs grows with it
        self.eval_s = 0.0
        self._memo: tuple[bytes, float, Allocation] | None = None

    def evaluate(self, plan: np.ndarray) -> tuple[float, Allocation]:
        """Objective R x T of a plan (inf if it breaks memory) and its allocation; the last
        plan evaluated is remembered (rounding, local search and the result evaluate it in
        turn, and one allocation of 100,000 devices takes about a second)."""
        key = plan.tobytes()
        if self._memo is not None and self._memo[0] == key:
            return self._memo[1], self._memo[2]
        sp = self.space
        t0 = time.perf_counter()
        if not sp.memory_ok(plan):
            val, al = np.inf, Allocation(np.zeros(sp.K), np.zeros(sp.K), np.inf)
        else:
            al = self.alloc(sp.terms(plan), sp.B)
            val = sp.rounds(plan) * al.round_delay
        self.eval_s = max(self.eval_s, time.perf_counter() - t0)
        self._memo = (key, val, al)
        return val, al

    def late(self) -> bool:
        """Past the deadline less the time the steps after a search take (a repair and one
        more evaluation: FINISH evaluations; the result: RESULT_S per device), so that the
        solve ends by its time limit."""
        return self.deadline.expired(FINISH * self.eval_s + RESULT_S * self.space.K)

    def option_delays(self, al: Allocation) -> np.ndarray:
        """K x O: each device's delay under each option at the current (b, phi); inf for an
        option that needs a resource the allocation gave the device none of."""
        sp = self.space
        b, share = al.bandwidth, al.share
        # a finite stand-in for 1/0 keeps 0 x (1/0) = 0 for options without that term
        huge = 1e300
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            pos = np.maximum(b, 1e-300)
            inv_u = np.where(b > 0, 1.0 / shannon_rate(pos, sp.a.snr_ul), huge)
            inv_d = np.where(b > 0, 1.0 / shannon_rate(pos, sp.a.snr_dl), huge)
            inv_s = np.where(share > 0, 1.0 / np.maximum(share, 1e-300), huge)
            out = sp.C + sp.U * inv_u[:, None] + sp.V * inv_d[:, None] \
                + sp.S * inv_s[:, None]
        out[out >= 1e290] = np.inf
        return out

    def predicted_change(self, plan: np.ndarray, al: Allocation) -> np.ndarray:
        """K x O first-order change of R x T when one device switches option (envelope theorem:
        dT = w_k dT_k at fixed (b, phi) prices; dR from the level's distortion)."""
        sp = self.space
        t = sp.terms(plan)
        w = delay_weights(t, al)
        T = al.round_delay
        R = sp.rounds(plan)
        opt = self.option_delays(al)
        cur = opt[sp.rows, plan]
        dR = sp.a.rounds * sp.a.eta * sp.a.sample_weight[:, None] * (
            sp.delta[None, :] - sp.delta[plan][:, None])
        with np.errstate(invalid="ignore"):
            out = R * w[:, None] * (opt - cur[:, None]) + dR * T
        return np.where(np.isnan(out), np.inf, out)

    # ---------------------------------------------------------------- moves
    def repair_memory(self, plan: np.ndarray, batch: int | None = None) -> np.ndarray | None:
        """Deepen cuts (same level) until the server memory fits: each step the move freeing
        the most memory per predicted increase of the objective. None if it cannot fit.

        Prices are recomputed after every ``batch`` moves (default: one move per 50 devices,
        so up to 50 devices it is one move at a time; large fleets need far fewer re-pricings).
        Past the deadline the rest is done by `quick_repair`."""
        sp = self.space
        plan = plan.copy()
        limit = sp.a.server_memory * (1.0 + REL_TOL)
        batch = max(1, sp.K // 50) if batch is None else max(1, int(batch))
        same_level = sp.opt_level[None, :] == sp.opt_level[plan][:, None]
        for _ in range(sp.K * len(sp.a.cuts) + 1):
            if sp.server_memory(plan) <= limit:
                return plan
            if self.late():
                return self.quick_repair(plan)
            al = self.alloc(sp.terms(plan), sp.B)
            freed = sp.memory_freed(plan)
            move = sp.fits & same_level & (sp.opt_cut[None, :] > sp.opt_cut[plan][:, None]) \
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
            best = score[sp.rows, best_o]
            order = np.argsort(-best, kind="stable")
            order = order[np.isfinite(best[order])][:batch]
            if not len(order):
                return None
            # the batch, best first, until the memory fits (every prefix priced at once)
            fits = np.flatnonzero(sp.memory_after_moves(plan, order, best_o[order]) <= limit) \
                if len(order) > 1 else []
            moved = order[: fits[0] + 1] if len(fits) else order
            plan[moved] = best_o[moved]
            if len(fits) and sp.server_memory(plan) <= limit:
                return plan
        return plan if sp.server_memory(plan) <= limit else None

    def quick_repair(self, plan: np.ndarray) -> np.ndarray | None:
        """A fast memory repair for when time is up: devices moved (same level) to their
        deepest fitting cut, those freeing the most server activation memory first, until the
        server memory fits. None if even the deepest cuts do not fit."""
        sp = self.space
        a = sp.a
        plan = plan.copy()
        limit = a.server_memory * (1.0 + REL_TOL)
        if sp.server_memory(plan) <= limit:
            return plan
        deep = sp.deepest()
        if (deep < 0).any():
            return None
        target = sp.options(deep, sp.opt_level[plan])
        target = np.where(target >= 0, target, plan)
        freed = sp.srv_act[sp.rows, plan] - sp.srv_act[sp.rows, target]
        order = np.argsort(-freed, kind="stable")
        fits = np.flatnonzero(sp.memory_after_moves(plan, order, target[order]) <= limit)
        if not len(fits):
            return None
        moved = order[: fits[0] + 1]
        plan[moved] = target[moved]
        return plan if sp.server_memory(plan) <= limit else None

    def local_search(self, plan: np.ndarray, *, max_iter: int = 1000, full_limit: int = 400,
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
        sp = self.space
        plan = plan.copy()
        val, al = self.evaluate(plan)
        moves = steps = 0
        large = batch_from <= sp.K
        if max_scan is None:  # large fleets: the batches did the bulk; scan a few
            max_scan = max(25, 25_000 // sp.K) if large else sp.K * sp.O
        while steps < max_iter:
            if large and np.isfinite(val):
                plan, val, al, done, n = self.batch_descent(plan, val, al,
                                                            max_steps=max_iter - steps)
                moves, steps = moves + done, steps + n
            if self.late():
                break
            if steps >= max_iter:
                break
            pred = self.predicted_change(plan, al) if np.isfinite(val) else \
                np.zeros((sp.K, sp.O))
            cand = sp.fits.copy()
            cand[sp.rows, plan] = False
            ks, os_ = np.nonzero(cand)
            n_keep = len(ks)
            if len(ks) > full_limit:  # screen: moves predicted to help, then the next best few
                n_keep = int((pred[ks, os_] < 0).sum()) + full_limit // 2
            # moves that overflow the server memory are left to the pair moves
            fits_server = (sp.memory_after(plan)[ks, os_]
                           <= sp.a.server_memory * (1.0 + REL_TOL))
            order = _smallest(pred[ks, os_], n_keep)
            order = order[fits_server[order]][:max_scan]
            improved = False
            for i in order:
                if self.late():
                    break
                trial = plan.copy()
                trial[ks[i]] = os_[i]
                v, a2 = self.evaluate(trial)
                if v < val * (1.0 - 1e-12):
                    plan, val, al, improved = trial, v, a2, True
                    moves, steps = moves + 1, steps + 1
                    break
            if not improved and pairs and np.isfinite(val):
                got = self._pair_move(plan, val, pred)
                if got is not None:
                    plan, val, al = got
                    moves, steps = moves + 2, steps + 1
                    improved = True
            if not improved:
                break
        # stopped by max_iter, not at a local optimum (any local search of this search)
        self.capped = self.capped or steps >= max_iter
        self.last = (plan, val, al)
        return plan, val, moves

    def lift_floor(self, plan: np.ndarray, val: float, *, lifts: int = 3
                   ) -> tuple[np.ndarray, float, int]:
        """Iterated local search on the shallowest cut, the one discrete choice that couples
        every device (the server holds the weights above it): every device below a higher
        floor moves to its shallowest fitting cut at or above it (same level), the server
        memory is repaired and a local search follows; the first of the next ``lifts`` floors
        that ends better is kept, and lifting repeats from there. Single and pair moves cannot
        make this move when several devices sit at the floor. Returns (plan, value, lifts
        kept)."""
        sp = self.space
        kept = 0
        while not self.deadline.passed() and np.isfinite(val):
            cuts = sp.cuts(plan)
            better = False
            for floor in np.unique(sp.a.cuts[sp.a.cuts > cuts.min()])[:lifts]:
                if self.late():
                    break
                trial = plan.copy()
                for k in np.flatnonzero(cuts < floor):
                    up = np.flatnonzero(sp.fits[k] & (sp.opt_cut >= floor)
                                        & (sp.opt_level == sp.opt_level[plan[k]]))
                    if not len(up):
                        trial = None
                        break
                    trial[k] = up[np.argmin(sp.opt_cut[up])]
                if trial is None:
                    continue
                trial = self.repair_memory(trial)
                if trial is None:
                    continue
                trial, v, _ = self.local_search(trial)
                if v < val * (1.0 - 1e-12):
                    plan, val, better = trial, v, True
                    kept += 1
                    break
            if not better:
                break
        return plan, val, kept

    def batch_descent(self, plan: np.ndarray, val: float, al: Allocation, *,
                      max_steps: int = 10**9) -> tuple[np.ndarray, float, Allocation, int, int]:
        """Many devices switch at once: each device's best option by the first-order predicted
        change, the m most helpful devices together (if that overflows the server memory, only
        among moves that take no server memory). A batch is kept if R x T falls, then m
        doubles, else m halves; the descent ends when a single device fails or nothing is
        predicted to help. One allocation per trial instead of one per move is what lets a
        thousand devices improve in seconds. At most ``max_steps`` batches are kept. Returns
        (plan, value, allocation, device moves, batches kept)."""
        sp = self.space
        limit = sp.a.server_memory * (1.0 + REL_TOL)
        m, moves, steps = max(1, sp.K // 20), 0, 0
        while m >= 1 and steps < max_steps:
            if self.late():
                break
            pred = self.predicted_change(plan, al)
            pred = np.where(sp.fits, pred, np.inf)
            pred[sp.rows, plan] = np.inf
            freed = sp.memory_freed(plan)
            trial, n_moved = self._batch(plan, pred, freed, m, val, limit)
            if trial is None:
                if m == 1:
                    break
                m //= 2
                continue
            v, a2 = self.evaluate(trial)
            if v < val * (1.0 - 1e-12):
                plan, val, al = trial, v, a2
                moves, steps = moves + n_moved, steps + 1
                m = min(2 * m, sp.K)
            elif m == 1:
                break
            else:
                m //= 2
        return plan, val, al, moves, steps

    def _batch(self, plan: np.ndarray, pred: np.ndarray, freed: np.ndarray, size: int,
               val: float, limit: float) -> tuple[np.ndarray | None, int]:
        """The batch of `batch_descent` for ``size`` devices (None if there is none)."""
        sp = self.space
        def build(allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            score = np.where(allowed, pred, np.inf)
            best_o = np.argmin(score, axis=1)
            gain = score[sp.rows, best_o]
            order = np.argsort(gain, kind="stable")
            order = order[gain[order] < -1e-9 * val][:size]
            trial = plan.copy()
            trial[order] = best_o[order]
            return trial, order

        trial, order = build(np.isfinite(pred))
        if sp.server_memory(trial) > limit:
            # moves that take server memory are badly predicted in bulk (the device they
            # enlarge may become the bottleneck): a batch moves only those that free memory
            trial, order = build(np.isfinite(pred) & (freed >= 0))
            if sp.server_memory(trial) > limit:
                return None, 0
        return (trial, len(order)) if len(order) else (None, 0)

    def _pair_move(self, plan: np.ndarray, val: float, pred: np.ndarray, top: int = 12
                   ) -> tuple | None:
        """A move that only fits the server memory if another device frees some: the `top`
        helpful single moves that overflow the server, each paired with the `top` moves of
        other devices freeing the most memory per predicted cost. First improving pair wins."""
        sp = self.space
        after = sp.memory_after(plan)
        ks, os_ = np.nonzero(sp.fits & (pred < 0) & (after > sp.a.server_memory
                                                         * (1.0 + REL_TOL)))
        over = [(ks[i], os_[i]) for i in np.argsort(pred[ks, os_], kind="stable")[:top]]
        if not over:
            return None
        fk, fo = np.nonzero(sp.fits)
        freed = sp.server_memory(plan) - after[fk, fo]
        ok = freed > 0
        fk, fo, freed = fk[ok], fo[ok], freed[ok]
        score = freed / (np.maximum(pred[fk, fo], 0.0) + 1e-12 * abs(val))
        helpers = [(fk[i], fo[i]) for i in np.argsort(-score, kind="stable")[:top]]
        for k1, o1 in over:
            for k2, o2 in helpers:
                if self.late():
                    return None
                if k1 == k2:
                    continue
                trial = plan.copy()
                trial[k1], trial[k2] = o1, o2
                v, a2 = self.evaluate(trial)
                if v < val * (1.0 - 1e-12):
                    return trial, v, a2
        return None

    def own_delay_plan(self) -> np.ndarray:
        """Per device the fitting option with the least own delay at equal shares, weighted by
        its effect on the rounds (1 + eta delta)."""
        sp = self.space
        K = sp.K
        inv_u = 1.0 / shannon_rate(sp.B / K, sp.a.snr_ul)
        inv_d = 1.0 / shannon_rate(sp.B / K, sp.a.snr_dl)
        own = sp.C + sp.U * inv_u[:, None] + sp.V * inv_d[:, None] + sp.S * K
        own = own * (1.0 + sp.a.eta * sp.delta[None, :])
        return np.argmin(np.where(sp.fits, own, np.inf), axis=1)

    def warm_plan(self, previous: Result) -> tuple[np.ndarray, int]:
        """A previous result's plan on this instance (`solve(..., warm_start=...)`): devices
        matched by id keep their (cut, level) where it is still an option that fits them; new
        devices, and those whose choice no longer fits, get the own-delay choice. Returns the
        plan and how many devices kept their choice (0 when ``previous`` holds no plan)."""
        plan = self.own_delay_plan()
        old = previous.plan
        if old is None or getattr(old, "devices", None) is None:
            return plan, 0
        sp = self.space
        where = {d: k for k, d in enumerate(sp.a.device_ids)}
        kept = 0
        for d in old.devices:
            k = where.get(d.id)
            o = -1 if k is None else sp.option(d.cut, d.level)
            if o >= 0 and sp.fits[k, o]:
                plan[k] = o
                kept += 1
        return plan, kept

    def start(self, warm_start: Result | None) -> tuple[np.ndarray | None, str]:
        """The plan a search starts from, memory repaired: the own-delay plan, or with
        ``warm_start`` the previous plan mapped onto this instance (`warm_plan`) when it
        repairs (else the own-delay plan); and a note for the message."""
        own = self.own_delay_plan()
        if warm_start is None:
            return self.repair_memory(own), ""
        warm, kept = self.warm_plan(warm_start)
        fixed = self.repair_memory(warm) if kept else None
        if fixed is None:
            return self.repair_memory(own), "; warm start unused (nothing of it fits)"
        return fixed, f"; warm start: {kept} of {self.space.K} devices kept their choice"

    def result(self, plan: np.ndarray, al: Allocation, *, message: str = "",
               iterations: int = 0) -> Result:
        """The plan as a Result (termination time_limit if the search hit its deadline)."""
        sp = self.space
        termination = Termination.TIME_LIMIT if self.deadline.hit else \
            Termination.ITERATION_LIMIT if self.capped else Termination.CONVERGED
        if self.deadline.hit:
            message += " (stopped at the time limit)"
        elif self.capped:
            message += " (stopped at max_iter)"
        return make_result(sp.inst, sp.cuts(plan), sp.levels(plan), al.bandwidth,
                           al.share, message=message, iterations=iterations,
                           schedule=sp.schedule, termination=termination)


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
