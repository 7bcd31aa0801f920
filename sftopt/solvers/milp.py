"""`milp`: outer approximation of the `split` MINLP solved by HiGHS branch-and-bound (Kelley loop).

Model (per device k, option o = admissible non-dominated (cut, level), bounds.option_table):
  x_ko binary, sum_o x_ko = 1; disaggregated band beta_ko = b/B and share phi_ko, both <= x_ko;
  tc_ko >= perspective of tangent lines of the convex comm delay D_ko(b) at chosen points b0:
      tc_ko >= (D(b0) - D'(b0) b0) x_ko + D'(b0) B beta_ko   (the tangent at b0, times x_ko)
  ts_ko >= perspective of tangents of S_ko/phi at p0:  ts_ko >= S_ko (2 x_ko/p0 - phi_ko/p0^2)
  T >= sum_o (C_ko x_ko + tc_ko + ts_ko) for every k; sum beta <= 1, sum phi <= 1;
  server memory linear in x with u_i >= sum_{o: cut < i} x_ko (stage i held on the server).
The perspective of a linear under-estimator is linear, and at x_ko = 0 it forces nothing, so the
MILP is a relaxation of the MINLP: its optimum (and HiGHS's dual bound) is a LOWER bound.

Objective R x T, exactly at integer points: R = rounds (1 + eta sum_k w_k sum_c delta_c y_kc),
y_kc = sum of x_ko over options with level c. Each product y_kc T is a variable z_kc with
z_kc >= T - T_hi (1 - y_kc), z_kc >= T_lo y_kc, z_kc >= 0 (McCormick; exact for binary y and
T in [T_lo, T_hi]). T_lo is the certified round-delay bound of bounds.round_delay_bound, T_hi =
incumbent total / R_min: the optimal plan's T lies in [T_lo, T_hi], so restricting T keeps the
MILP a relaxation of the set that contains the optimum and the bound stays valid.

Before each MILP, options that cannot appear in a plan at least as good as the incumbent are
dropped (resource tests at T_hi, and R x T_lo <= incumbent), which keeps the bound valid.
Loop: solve the MILP (warm-started with the incumbent); its (cut, level) choice, with shares
from the exact allocator, is a feasible plan (upper bound); add tangents at the MILP's and the
allocator's bands and shares; repeat until the gap (UB - LB)/UB <= gap_tol, ``max_iter`` or
``time_limit``. The reported bound is HiGHS's dual bound x (1 - 1e-6), a margin for the LP
feasibility tolerance (1e-7, scaled).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import highspy
import numpy as np

from ..allocation import exact_allocation
from ..bounds import (
    OptionTable,
    _needs,
    _table_terms,
    deepest_fitting_cuts,
    infeasibility,
    min_rounds,
    option_table,
    round_delay_bound,
)
from ..cost import REL_TOL, Terms, comm_delay, comm_slope, rounds_needed, server_memory
from ..instance import Instance
from ..result import Result, Status
from .base import infeasible_result, make_result
from .registry import register

_SAFETY = 1e-6  # relative margin on the dual bound for the solver's feasibility tolerances
_MAX_COEF = 1e9  # tangents steeper than this (scaled) are left out: weaker but still valid
_NEAR = 1e-3  # a new tangent point within this relative distance of an old one adds nothing


@dataclass
class _Points:
    """Tangent points per device: band fractions beta0 and server shares p0."""

    band: list[list[float]]
    share: list[list[float]]

    def add(self, k: int, beta: float, share: float) -> int:
        added = 0
        for pts, v in ((self.band[k], beta), (self.share[k], share)):
            v = float(min(max(v, 1e-7), 1.0))
            if all(abs(v - q) > _NEAR * q for q in pts):
                pts.append(v)
                added += 1
        return added


@dataclass
class _Plan:
    total: float = math.inf
    cuts: np.ndarray | None = None
    levels: np.ndarray | None = None
    band: np.ndarray | None = None
    share: np.ndarray | None = None
    choice: np.ndarray | None = None  # option index per device
    iterations: int = 0
    notes: list[str] = field(default_factory=list)


def _allocate(inst: Instance, table: OptionTable, choice: np.ndarray, plan: _Plan,
              rel_tol: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Exact shares for the option choice; update ``plan`` if better. Returns (b/B, phi)."""
    k = np.arange(inst.n_devices)
    cuts, levels = table.cut[k, choice], table.level[k, choice]
    if server_memory(inst, cuts) > inst.arrays.server_memory * (1 + REL_TOL):
        return None
    alloc = exact_allocation(table.gather(choice), inst.arrays.bandwidth, rel_tol=rel_tol)
    plan.iterations += alloc.iterations
    if not np.isfinite(alloc.round_delay):
        return None
    total = rounds_needed(inst, levels) * alloc.round_delay
    if total < plan.total:
        plan.total, plan.cuts, plan.levels = total, cuts, levels
        plan.band, plan.share, plan.choice = alloc.bandwidth, alloc.share, choice.copy()
    return alloc.bandwidth / inst.arrays.bandwidth, alloc.share


class _Model:
    """Column layout and row assembly of one MILP."""

    def __init__(self, inst: Instance, table: OptionTable, tau: float):
        self.inst, self.table, self.tau = inst, table, tau
        a = inst.arrays
        self.K = inst.n_devices
        self.kk, self.oo = np.nonzero(table.valid)  # option p = (kk[p], oo[p])
        self.P = len(self.kk)
        t = table.terms
        self.C = t.compute[self.kk, self.oo] / tau
        self.S = t.server_work[self.kk, self.oo] / tau
        self.talks = (t.up_bits[self.kk, self.oo] > 0) | (t.down_bits[self.kk, self.oo] > 0)
        self.lev = table.level[self.kk, self.oo]
        # product variables z_kc for levels with distortion
        self.zkc = sorted({(int(k), int(c)) for k, c in zip(self.kk, self.lev, strict=True)
                           if a.delta[c] > 0 and a.eta > 0})
        self.X, self.BB, self.PH = 0, self.P, 2 * self.P
        self.TC, self.TS, self.T = 3 * self.P, 4 * self.P, 5 * self.P
        self.Z = self.T + 1
        self.U = self.Z + len(self.zkc)
        self.stage_mem = -np.diff(a.srv_static, prepend=a.srv_static[0])  # stage i weights+state
        # server memory can bind only if the heaviest admissible choice breaks it
        heavy = np.where(table.valid, table.srv_act, -np.inf).max(axis=1).sum() + np.where(
            table.valid, table.srv_static, -np.inf).max()
        self.memory_rows = heavy > a.server_memory
        self.nU = len(self.stage_mem) if self.memory_rows else 0
        self.ncol = self.U + self.nU
        self.rows: list[tuple[float, float, list[int], list[float]]] = []

    def option_terms(self, k: int) -> Terms:
        t, o = self.table.terms, np.flatnonzero(self.table.valid[k])
        return Terms(t.compute[k, o], t.up_bits[k, o], t.down_bits[k, o], t.server_work[k, o],
                     t.snr_ul[k], t.snr_dl[k])

    def row(self, lo: float, hi: float, idx: list[int], val: list[float]) -> None:
        self.rows.append((lo, hi, idx, val))

    def build(self, points: _Points, T_lo: float, T_hi: float) -> highspy.Highs:
        a, P, inf = self.inst.arrays, self.P, highspy.kHighsInf
        lower = np.zeros(self.ncol)
        upper = np.full(self.ncol, inf)
        upper[self.X:self.X + P] = 1.0
        upper[self.BB:self.BB + P] = np.where(self.talks, 1.0, 0.0)
        upper[self.PH:self.PH + P] = np.where(self.S > 0, 1.0, 0.0)
        lower[self.T], upper[self.T] = T_lo, T_hi
        upper[self.U:] = 1.0
        cost = np.zeros(self.ncol)
        cost[self.T] = 1.0
        for j, (k, c) in enumerate(self.zkc):
            cost[self.Z + j] = a.eta * a.sample_weight[k] * a.delta[c]
        self.rows = []
        first = np.searchsorted(self.kk, np.arange(self.K))
        last = np.searchsorted(self.kk, np.arange(self.K), side="right")
        for k in range(self.K):
            ps = list(range(first[k], last[k]))
            self.row(1.0, 1.0, [self.X + p for p in ps], [1.0] * len(ps))
            # T >= C x + tc + ts
            idx = [self.T] + [self.X + p for p in ps] + [self.TC + p for p in ps] + [
                self.TS + p for p in ps]
            val = [1.0] + [-float(self.C[p]) for p in ps] + [-1.0] * (2 * len(ps))
            self.row(0.0, inf, idx, val)
            self._tangents(k, ps, points)
        for p in range(P):
            self.row(-inf, 0.0, [self.BB + p, self.X + p], [1.0, -1.0])
            self.row(-inf, 0.0, [self.PH + p, self.X + p], [1.0, -1.0])
        self.row(-inf, 1.0, [self.BB + p for p in range(P)], [1.0] * P)
        self.row(-inf, 1.0, [self.PH + p for p in range(P)], [1.0] * P)
        for j, (k, c) in enumerate(self.zkc):
            ys = [self.X + p for p in range(first[k], last[k]) if self.lev[p] == c]
            # z >= T - T_hi (1 - y)  and  z >= T_lo y
            self.row(-T_hi, inf, [self.Z + j, self.T] + ys, [1.0, -1.0] + [-T_hi] * len(ys))
            self.row(0.0, inf, [self.Z + j] + ys, [1.0] + [-T_lo] * len(ys))
        if self.memory_rows:
            self._memory(first, last)
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.addCols(self.ncol, cost, lower, upper, 0, np.zeros(0, np.int32), np.zeros(0, np.int32),
                  np.zeros(0))
        starts, index, value = [], [], []
        for _, _, idx, val in self.rows:
            starts.append(len(index))
            index.extend(idx)
            value.extend(val)
        h.addRows(len(self.rows), np.array([r[0] for r in self.rows]),
                  np.array([r[1] for r in self.rows]), len(index),
                  np.array(starts, dtype=np.int32), np.array(index, dtype=np.int32),
                  np.array(value, dtype=float))
        h.changeColsIntegrality(P, np.arange(P, dtype=np.int32),
                                np.full(P, highspy.HighsVarType.kInteger, dtype=np.uint8))
        return h

    def start(self, plan: _Plan) -> np.ndarray:
        """The incumbent as a full column vector (feasible: tangents under-estimate the delays)."""
        B = self.inst.arrays.bandwidth
        col = np.zeros(self.ncol)
        chosen = np.flatnonzero(self.oo == plan.choice[self.kk])
        col[self.X + chosen] = 1.0
        delays = np.zeros(self.K)
        for p in chosen:
            k = int(self.kk[p])
            t = self.option_terms(k)
            j = int(np.flatnonzero(np.flatnonzero(self.table.valid[k]) == self.oo[p])[0])
            tk = Terms(t.compute[j:j + 1], t.up_bits[j:j + 1], t.down_bits[j:j + 1],
                       t.server_work[j:j + 1], t.snr_ul, t.snr_dl)
            if self.talks[p]:
                col[self.BB + p] = plan.band[k] / B
                col[self.TC + p] = comm_delay(tk, plan.band[k:k + 1])[0] / self.tau
            if self.S[p] > 0:
                col[self.PH + p] = plan.share[k]
                col[self.TS + p] = self.S[p] / plan.share[k]
            delays[k] = self.C[p] + col[self.TC + p] + col[self.TS + p]
        col[self.T] = delays.max()
        for j, (k, c) in enumerate(self.zkc):
            if self.table.level[k, plan.choice[k]] == c:
                col[self.Z + j] = col[self.T]
        for i in range(self.nU):
            col[self.U + i] = float((plan.cuts < i).any())
        return col

    def _tangents(self, k: int, ps: list[int], points: _Points) -> None:
        B, tau = self.inst.arrays.bandwidth, self.tau
        t = self.option_terms(k)
        for beta in points.band[k]:
            b0 = np.full(len(ps), beta * B)
            d = comm_delay(t, b0) / tau
            g = comm_slope(t, b0) * B / tau  # d tc / d beta, negative
            const = d - g * beta
            for j, p in enumerate(ps):
                if not self.talks[p] or max(abs(const[j]), abs(g[j])) > _MAX_COEF:
                    continue
                self.row(0.0, highspy.kHighsInf, [self.TC + p, self.X + p, self.BB + p],
                         [1.0, -float(const[j]), -float(g[j])])
        for p0 in points.share[k]:
            for p in ps:
                s = float(self.S[p])
                if s <= 0 or s / p0**2 > _MAX_COEF:
                    continue
                self.row(0.0, highspy.kHighsInf, [self.TS + p, self.X + p, self.PH + p],
                         [1.0, -2.0 * s / p0, s / p0**2])

    def _memory(self, first: np.ndarray, last: np.ndarray) -> None:
        a, tb = self.inst.arrays, self.table
        M = a.server_memory
        cut = tb.cut[self.kk, self.oo]
        for i in range(1, len(self.stage_mem)):
            if self.stage_mem[i] <= 0:
                continue
            for k in range(self.K):
                ps = [p for p in range(first[k], last[k]) if cut[p] < i]
                if ps:  # u_i >= sum_{o: cut < i} x_ko
                    self.row(0.0, highspy.kHighsInf, [self.U + i] + [self.X + p for p in ps],
                             [1.0] + [-1.0] * len(ps))
        act = tb.srv_act[self.kk, self.oo] / M
        idx = [self.U + i for i in range(len(self.stage_mem)) if self.stage_mem[i] > 0]
        val = [float(self.stage_mem[i] / M) for i in range(len(self.stage_mem))
               if self.stage_mem[i] > 0]
        self.row(-highspy.kHighsInf, 1.0, idx + [self.X + p for p in range(self.P)],
                 val + [float(v) for v in act])


def _reduce(inst: Instance, table: OptionTable, plan: _Plan, r_min: float,
            T_lo: float) -> OptionTable:
    """The options that can appear in a plan at least as good as the incumbent.

    An option survives if, with every other device at its least need, it passes each resource
    test of bounds at the round delay T_hi = UB / R_min (no better plan is slower) and its
    distortion keeps rounds (1 + eta Delta) T_lo <= UB. The incumbent's options always stay.
    """
    a = inst.arrays
    K = inst.n_devices
    ok = table.valid.copy()
    T_hi = plan.total / r_min * (1 + 1e-9)
    for g in _needs(_table_terms(table), table.valid[None], a.bandwidth, np.array([T_hi]), ()):
        g = g[0]
        least = g.min(axis=1)
        ok &= g + (least.sum() - least)[:, None] <= 1.0
    wd = np.where(table.valid, a.sample_weight[:, None] * table.delta, np.inf)
    least = wd.min(axis=1)
    ok &= a.rounds * (1 + a.eta * (wd + (least.sum() - least)[:, None])) * T_lo \
        <= plan.total * (1 + 1e-9)
    if plan.choice is not None:
        ok[np.arange(K), plan.choice] = True
    return replace(table, valid=ok)


def _initial_plan(inst: Instance, table: OptionTable, plan: _Plan, rel_tol: float) -> None:
    """Incumbents: deepest cuts with each device's fastest option there, and each device's
    fastest option overall (if server memory allows)."""
    k = np.arange(inst.n_devices)
    B = inst.arrays.bandwidth
    t = table.terms
    alone = np.where(table.valid, t.compute + comm_delay(t, np.full(t.compute.shape, B))
                     + t.server_work, np.inf)
    deep = deepest_fitting_cuts(inst)
    at_deep = np.where(table.cut == deep[:, None], alone, np.inf)
    for choice in (np.argmin(at_deep, axis=1), np.argmin(alone, axis=1)):
        if np.isfinite(alone[k, choice]).all():
            _allocate(inst, table, choice, plan, rel_tol)


def _seed(inst: Instance, table: OptionTable, plan: _Plan, name: str, time_limit: float,
          rel_tol: float) -> None:
    """Take another solver's plan as incumbent (its options re-shared exactly)."""
    from .registry import available, get, solve

    if name == "milp" or not available(name):
        plan.notes.append(f"incumbent solver {name!r} not available")
        return
    opts = {"time_limit": max(time_limit / 5, 0.1)} if "time_limit" in get(name).options else {}
    res = solve(inst, name, **opts)
    if not res.success:
        return
    match = (table.cut == res.cuts[:, None]) & (table.level == res.levels[:, None]) & table.valid
    if match.any(axis=1).all():
        before = plan.total
        _allocate(inst, table, np.argmax(match, axis=1), plan, rel_tol)
        if plan.total < before:
            plan.notes.append(f"incumbent from {name}")
    elif res.total_delay_s < plan.total:  # a dominated option: keep the plan, no warm start
        plan.total, plan.cuts, plan.levels = res.total_delay_s, res.cuts, res.levels
        plan.band, plan.share, plan.choice = res.bandwidth, res.share, None
        plan.notes.append(f"incumbent from {name}")


@register("milp", exact=True, bound=True, needs=("highspy",),
          description="HiGHS branch-and-bound on tangent outer approximations (Kelley loop)")
def solve_milp(instance: Instance, *, time_limit: float = 60.0, gap_tol: float = 1e-4,
               max_iter: int = 30, cuts_per_device: int = 6, threads: int = 1,
               seed: int = 0, incumbent: str | None = "greedy-delay") -> Result:
    """Optimal plan to a relative gap ``gap_tol`` with a certified lower bound.

    ``cuts_per_device`` initial tangent points per device for band and share (geometric between
    1/(4K) and 1, more are added at every iterate); ``threads`` and ``seed`` go to HiGHS;
    ``incumbent`` names a registered solver whose plan seeds the upper bound (None: own
    starting plans only). A good incumbent shrinks T_hi, which removes options and tightens
    the McCormick rows.
    """
    start = time.perf_counter()
    why = infeasibility(instance)
    if why is not None:
        return infeasible_result(instance, why)
    table = option_table(instance)
    a, K = instance.arrays, instance.n_devices
    t = table.terms
    t3 = Terms(*(f[None] for f in (t.compute, t.up_bits, t.down_bits, t.server_work,
                                   t.snr_ul, t.snr_dl)))
    T_lo = float(round_delay_bound(t3, table.valid[None], a.bandwidth)[0])
    r_min = min_rounds(instance, table)
    lb = r_min * T_lo
    plan = _Plan()
    rel_tol = min(1e-9, gap_tol * 1e-3)
    _initial_plan(instance, table, plan, rel_tol)
    if incumbent is not None:
        _seed(instance, table, plan, incumbent, time_limit, rel_tol)
    if plan.cuts is None:
        return infeasible_result(instance, "milp: no initial plan has a finite delay")
    tau = T_lo
    n0 = max(cuts_per_device, 1)
    grid = list(np.geomspace(1.0 / (4 * K), 1.0, n0)) if n0 > 1 else [1.0 / K]
    points = _Points([list(grid) for _ in range(K)], [list(grid) for _ in range(K)])
    for k in range(K):
        points.add(k, plan.band[k] / a.bandwidth, plan.share[k])
    status, it, reason = Status.FEASIBLE, 0, f"max_iter {max_iter} reached"
    shrink = 1.0
    for it in range(1, max_iter + 1):
        if (plan.total - lb) / plan.total <= gap_tol:
            status, reason = Status.OPTIMAL, "gap closed"
            break
        remaining = time_limit - (time.perf_counter() - start)
        if remaining <= 0:
            status, reason = Status.TIME_LIMIT, f"time_limit {time_limit:g} s reached"
            break
        T_hi = plan.total / r_min / tau * (1 + 1e-7)
        model = _Model(instance, _reduce(instance, table, plan, r_min, T_lo), tau)
        h = model.build(points, 1.0, max(T_hi, 1.0))
        # early iterations need only a rough MILP optimum: its dual bound is valid anyway
        cur_gap = (plan.total - lb) / plan.total
        mip_gap = max(gap_tol / 4, min(cur_gap / 10, 1e-2) * shrink)
        for opt, v in (("time_limit", float(remaining)), ("mip_rel_gap", mip_gap),
                       ("threads", int(threads)), ("random_seed", int(seed))):
            h.setOptionValue(opt, v)
        if plan.choice is not None:
            sol0 = highspy.HighsSolution()
            sol0.col_value = list(model.start(plan))
            h.setSolution(sol0)
        h.run()
        ms = h.getModelStatus()
        info = h.getInfo()
        if ms == highspy.HighsModelStatus.kInfeasible:
            # no plan with T <= T_hi beats the incumbent within the relaxation
            lb = max(lb, plan.total * (1 - _SAFETY))
            continue
        dual = info.mip_dual_bound
        if math.isfinite(dual):
            lb = max(lb, a.rounds * tau * dual * (1 - _SAFETY))
        if info.primal_solution_status != highspy.kSolutionStatusFeasible:
            if ms == highspy.HighsModelStatus.kTimeLimit:
                status, reason = Status.TIME_LIMIT, f"time_limit {time_limit:g} s reached"
                break
            plan.notes.append(f"iteration {it}: HiGHS {h.modelStatusToString(ms)}")
            break
        sol = np.asarray(h.getSolution().col_value)
        x = sol[:model.P]
        choice = np.zeros(K, dtype=int)
        best_x = np.full(K, -1.0)
        for p in range(model.P):
            k = model.kk[p]
            if x[p] > best_x[k]:
                best_x[k], choice[k] = x[p], model.oo[p]
        new = 0
        for p in range(model.P):
            if x[p] > 0.5:
                new += points.add(int(model.kk[p]), sol[model.BB + p], sol[model.PH + p])
        got = _allocate(instance, table, choice, plan, rel_tol)
        if got is not None:
            for k in range(K):
                new += points.add(k, got[0][k], got[1][k])
        if new == 0 and (plan.total - lb) / plan.total > gap_tol:
            if mip_gap <= gap_tol / 4:
                reason = "no new tangent points (MIP tolerance limits the gap)"
                break
            shrink *= 0.1  # the loose MILP returned known points: solve it tighter next
    if (plan.total - lb) / plan.total <= gap_tol:
        status, reason = Status.OPTIMAL, "gap closed"
    gap = (plan.total - lb) / plan.total
    msg = f"{reason}; {it} MILP iteration(s), gap {gap:.3g}"
    if plan.notes:
        msg += "; " + "; ".join(plan.notes)
    return make_result(instance, plan.cuts, plan.levels, plan.band, plan.share, status=status,
                       message=msg, lower_bound=min(lb, plan.total), iterations=it)
