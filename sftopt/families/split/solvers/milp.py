"""`milp`: outer approximation of the `split` MINLP solved by HiGHS branch-and-bound (Kelley loop).

Model (per device k, option o = admissible non-dominated (cut, level), OptionSpace.table):
  x_ko binary, sum_o x_ko = 1; disaggregated band beta_ko = b/B and share phi_ko, both <= x_ko;
  tc_ko >= perspective of tangent lines of the convex comm delay D_ko(b) at chosen points b0:
      tc_ko >= (D(b0) - D'(b0) b0) x_ko + D'(b0) B beta_ko   (the tangent at b0, times x_ko)
  ts_ko >= perspective of tangents of S_ko/phi at p0:  ts_ko >= S_ko (2 x_ko/p0 - phi_ko/p0^2)
  T >= sum_o (C_ko x_ko + tc_ko + ts_ko) for every k; sum beta <= 1, sum phi <= 1;
  server memory linear in x with u_i >= sum_{o: cut < i} x_ko (stage i held on the server).
The perspective of a linear under-estimator is linear, and at x_ko = 0 it forces nothing, so the
MILP is a relaxation of the MINLP: its optimum (and HiGHS's dual bound) is a LOWER bound.

Tangent points are per option (band / share fractions geometric in [1/(4K), 1], the
incumbent's, the option's least need, its split points: where it finishes at the
incumbent's round delay with a fraction theta of its slack on the link, the rest on the
server, and its priced point: where it finishes at that round delay with band and share
traded at the incumbent allocation's KKT price, i.e. where it would operate if swapped into
the incumbent; tangents there make the relaxation exact at the incumbent's own options and
tight near it, so with a near-optimal incumbent the first MILP can prove the gap closed).
Least-need rows beta_ko >= bmin_ko x_ko and phi_ko >= smin_ko x_ko (certified lower estimates
of what the option needs to finish within T_hi) are valid for every plan with T <= T_hi.

Objective R x T, exactly at integer points: R = rounds (1 + eta sum_k w_k sum_c delta_c y_kc),
y_kc = sum of x_ko over options with level c. Each product y_kc T is a variable z_kc with
z_kc >= T - T_hi (1 - y_kc), z_kc >= T_lo y_kc, z_kc >= 0 (McCormick; exact for binary y and
T in [T_lo, T_hi]). T_hi = incumbent total / R_min; T_lo = max(certified round-delay bound,
lb / R_max) with lb the best bound so far (from the start: the lagrangian bound,
lagrangian.py) and R_max the largest R of the reduced options (a plan better than the
incumbent has R x T >= lb and R <= R_max). The optimal plan's T lies in
[T_lo, T_hi], so restricting T keeps the MILP a relaxation of the set that contains the
optimum and the bound stays valid.

Before each MILP, options that cannot appear in a plan at least as good as the incumbent are
dropped (resource tests at T_hi, and R x T_lo <= incumbent), which keeps the bound valid.
LP rounds first: the LP relaxation, tangents at its perspective points (beta/x, phi/x), T_lo
raised from its value, until it stalls. Then the loop: solve the MILP (warm-started with the
incumbent); its (cut, level) choice, with shares from the exact allocator, is a feasible plan
(upper bound); add tangents at the MILP's and the allocator's bands and shares; repeat until
the gap (UB - LB)/UB <= gap_tol, ``max_iter`` or ``time_limit``. The starting incumbent is the
best of the ``incumbent`` solvers' plans (default lagrange, then alm) and milp's own; HiGHS
runs without its primal heuristics (RINS, RENS, root reduced cost, feasibility jump): the
incumbent is its MIP start and its job is the bound. Each MILP gets the objective
that would close the gap as HiGHS's ``objective_bound``: nodes whose bound reaches it are pruned,
so HiGHS proves the gap closed without proving its own optimum (a MILP it reports infeasible
then bounds every plan by that objective). The reported bound is HiGHS's
dual bound (or LP value) x (1 - 1e-6), a margin for the LP feasibility tolerance (1e-7, scaled).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING

import numpy as np

from ....core import highs
from ....core.options import Deadline, OutOfTime, text, whole, work_deadline
from ....core.registry import available, get, register, solve
from ....core.result import Result, Status, Termination
from ..allocation import exact_allocation
from ..bounds import lagrangian_bound, min_rounds, resource_needs, round_delay_bound, table_terms
from ..cost import (
    REL_TOL,
    Terms,
    comm_delay,
    comm_delay_and_slope,
    comm_slope,
    rounds_needed,
    server_memory,
)
from ..options import OptionSpace, OptionTable
from ..plans import infeasible, make_result
from ..schema import SplitInstance

log = logging.getLogger("sftopt.milp")  # incumbent and bound per iteration (-v)

if TYPE_CHECKING:
    import highspy


def _highspy():
    """HiGHS, imported when the solver runs (a missing highspy makes milp unavailable)."""
    import highspy

    return highspy

_SAFETY = 1e-6  # relative margin on the dual bound for the solver's feasibility tolerances
_MAX_COEF = 1e9  # tangents steeper than this (scaled) are left out: weaker but still valid
_NEAR = 1e-3  # a new tangent point within this relative distance of an old one adds nothing
_X_MIN = 1e-4  # LP rounds add perspective points of options with x above this
_SPLITS = (0.2, 0.4, 0.6, 0.8)  # link's part of an option's slack at its initial split points
# HiGHS's primal heuristics off: each MILP starts from the incumbent, and its job is the dual
# bound (prune to the target); on default and gpt2m-20dev-hetero, proving MILPs of the loop ran
# 7.5-8.2 s and 12.4-14.1 s with them off against 12.0-14.4 s and 19.8-23.7 s with them on
_MILP_OPTIONS = {"mip_heuristic_run_rins": False, "mip_heuristic_run_rens": False,
                 "mip_heuristic_run_root_reduced_cost": False,
                 "mip_heuristic_run_feasibility_jump": False}
# above this many (device, option) entries the lagrangian start is skipped: its set-up alone
# (before any deadline check) took 4-7 s at 3.2 million entries (100,000 devices)
_LAGRANGE_MAX_ENTRIES = 1_000_000


@dataclass
class _Points:
    """Tangent points per option (device k, option column o): band fractions b/B, shares."""

    band: dict[tuple[int, int], list[float]] = field(default_factory=dict)
    share: dict[tuple[int, int], list[float]] = field(default_factory=dict)

    def add(self, k: int, o: int, beta: float, share: float) -> list[tuple[int, int, int, float]]:
        """Record the points; returns the new ones as (k, o, kind, value), kind 0 band, 1 share."""
        new = []
        for kind, pts, v in ((0, self.band.setdefault((k, o), []), beta),
                             (1, self.share.setdefault((k, o), []), share)):
            if not math.isfinite(v):
                continue
            v = float(min(max(v, 1e-7), 1.0))
            if all(abs(v - q) > _NEAR * q for q in pts):
                pts.append(v)
                new.append((k, o, kind, v))
        return new

    def all(self) -> list[tuple[int, int, int, float]]:
        return [(k, o, kind, v) for kind, d in enumerate((self.band, self.share))
                for (k, o), vs in d.items() for v in vs]


def _option_terms(table: OptionTable, kk: np.ndarray, oo: np.ndarray) -> Terms:
    t = table.terms
    return Terms(t.compute[kk, oo], t.up_bits[kk, oo], t.down_bits[kk, oo],
                 t.server_work[kk, oo], t.snr_ul[kk, 0], t.snr_dl[kk, 0])


def _band_below(t: Terms, slack: np.ndarray, B: float, iters: int = 50,
                deadline: Deadline | None = None) -> np.ndarray:
    """Certified LOWER estimate of the least band (Hz) with comm delay <= slack: bisection in
    log b keeping the end that is still too slow (0 where even B x 1e-12 suffices, inf where
    even B is too slow). Past ``deadline``: OutOfTime (a step takes 0.2 s at 100,000 devices)."""
    talks = (t.up_bits > 0) | (t.down_bits > 0)
    lo = np.full(np.shape(slack), math.log(B * 1e-12))
    hi = np.full(np.shape(slack), math.log(B))
    for _ in range(iters):
        if deadline is not None:
            deadline.check()
        mid = 0.5 * (lo + hi)
        ok = comm_delay(t, np.exp(mid)) <= slack
        lo = np.where(ok, lo, mid)
        hi = np.where(ok, mid, hi)
    out = np.where(comm_delay(t, np.exp(lo)) <= slack, 0.0, np.exp(lo))
    out = np.where(comm_delay(t, np.full(np.shape(slack), B)) > slack, np.inf, out)
    return np.where(talks, out, np.where(slack >= 0, 0.0, np.inf))


def _least_needs(t: Terms, T_hi: float, B: float, deadline: Deadline | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per option the least band fraction and server share any plan with round delay <= T_hi
    gives it (the other resource whole): certified lower estimates, so beta >= beta_min x and
    phi >= phi_min x are valid for every such plan."""
    slack = T_hi - t.compute
    band = _band_below(t, slack - t.server_work, B, deadline=deadline) / B
    rest = slack - comm_delay(t, np.full(np.shape(slack), B))
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(t.server_work > 0, t.server_work / rest, 0.0)
    share = np.where((t.server_work > 0) & (rest <= 0), np.inf, share)
    # a hair below: the bisection and the division are exact to rounding only
    return band * (1 - 1e-9), share * (1 - 1e-9)


def _split_points(t: Terms, T: float, B: float, deadline: Deadline | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(n_options, len(_SPLITS)) band fractions and shares at which each option finishes at
    round delay T with a fraction theta of its slack T - compute spent on the link and the rest
    on the server: where the option operates in plans near the incumbent (nan: no such point)."""
    slack = (T - t.compute)[:, None] * np.ones(len(_SPLITS))
    th = np.array(_SPLITS)[None, :]
    tt = Terms(*(np.broadcast_to(np.asarray(getattr(t, f.name))[:, None], slack.shape)
                 for f in fields(t)))
    band = _band_below(tt, th * slack, B, deadline=deadline) / B
    with np.errstate(divide="ignore", invalid="ignore"):
        share = tt.server_work / ((1 - th) * slack)
    band = np.where(np.isfinite(band) & (band > 0) & (slack > 0), band, math.nan)
    share = np.where(np.isfinite(share) & (share > 0) & (slack > 0), share, math.nan)
    return band, share


def _priced_points(t: Terms, T: float, B: float, price: float,
                   deadline: Deadline | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per option the band fraction and share at which it finishes at round delay T when band
    and share trade at ``price`` (share per Hz, the allocator's KKT ratio theta): where it
    would operate if swapped into the plan that set the price (nan: no such point).

    KKT of the allocation: phi = sqrt(theta S / -D'(b)), so the band solves
    D(b) + sqrt(S (-D'(b)) / theta) = T - compute, whose left side falls as b grows
    (bisection in log b)."""
    slack = T - t.compute
    talks = (t.up_bits > 0) | (t.down_bits > 0)
    lo = np.full(np.shape(slack), math.log(B * 1e-12))
    hi = np.full(np.shape(slack), math.log(B))

    def spent(log_b: np.ndarray) -> np.ndarray:
        d, g = comm_delay_and_slope(t, np.exp(log_b))
        with np.errstate(invalid="ignore", over="ignore"):
            return d + np.sqrt(t.server_work * np.maximum(-g, 0.0) / price)

    for _ in range(60):
        if deadline is not None:
            deadline.check()
        mid = 0.5 * (lo + hi)
        ok = spent(mid) <= slack
        lo = np.where(ok, lo, mid)
        hi = np.where(ok, mid, hi)
    b = np.exp(hi)
    d, g = comm_delay_and_slope(t, b)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        share = np.where(talks, np.sqrt(price * t.server_work / -g), t.server_work / slack)
    fits = (slack > 0) & (spent(np.full(np.shape(slack), math.log(B))) <= slack)
    band = np.where(fits & talks, b / B, math.nan)
    share = np.where(fits & (t.server_work > 0) & np.isfinite(share) & (share > 0), share,
                     math.nan)
    return band, share


def _initial_points(table: OptionTable, T_hi: float, B: float, n: int,
                    deadline: Deadline, T_at: float | None = None,
                    price: float | None = None) -> _Points:
    """Per option: band and share fractions geometric in [1/(4K), 1] (n of each), the
    option's least band and share at round delay T_hi (where the least-need rows bind), and
    its split points at round delay T_at (the incumbent's, if given). Vectorised: a point
    within _NEAR of the next smaller one of its option is dropped (as _Points.add would)."""
    points = _Points()
    K = table.valid.shape[0]
    kk, oo = np.nonzero(table.valid)
    terms = _option_terms(table, kk, oo)
    bmin, smin = _least_needs(terms, T_hi, B, deadline)
    grid = np.geomspace(1.0 / (4 * K), 1.0, n) if n > 1 else np.array([1.0 / K])
    cols = [np.broadcast_to(grid, (len(kk), len(grid)))]
    band = [cols[0], np.where(bmin > 0, bmin, math.nan)[:, None]]
    share = [cols[0], np.where(smin > 0, smin, math.nan)[:, None]]
    if T_at is not None:
        sb, ss = _split_points(terms, T_at, B, deadline)
        band.append(sb)
        share.append(ss)
        if price is not None and math.isfinite(price) and price > 0:
            pb, ps = _priced_points(terms, T_at, B, price, deadline)
            band.append(pb[:, None])
            share.append(ps[:, None])
    for store, parts in ((points.band, band), (points.share, share)):
        v = np.concatenate(parts, axis=1)
        v = np.sort(np.where(np.isfinite(v), np.clip(v, 1e-7, 1.0), math.nan), axis=1)
        prev = np.concatenate([np.zeros((len(v), 1)), v[:, :-1]], axis=1)  # values are > 0
        keep = np.isfinite(v) & (v - prev > _NEAR * prev)
        for p in range(len(kk)):
            deadline.check(p, 4096)
            store[(int(kk[p]), int(oo[p]))] = v[p, keep[p]].tolist()
    return points


@dataclass
class _Plan:
    total: float = math.inf
    cuts: np.ndarray | None = None
    levels: np.ndarray | None = None
    band: np.ndarray | None = None
    share: np.ndarray | None = None
    choice: np.ndarray | None = None  # option index per device
    price: float = math.nan  # the allocator's share per Hz at the plan (KKT ratio)
    iterations: int = 0
    notes: list[str] = field(default_factory=list)


def _allocate(inst: SplitInstance, table: OptionTable, choice: np.ndarray, plan: _Plan,
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
        plan.price = alloc.price
    return alloc.bandwidth / inst.arrays.bandwidth, alloc.share


class _Model:
    """Column layout and row assembly of one MILP."""

    def __init__(self, inst: SplitInstance, table: OptionTable, tau: float,
                 deadline: Deadline):
        self.inst, self.table, self.tau = inst, table, tau
        self.deadline = deadline
        a = inst.arrays
        self.K = inst.n_devices
        self.kk, self.oo = np.nonzero(table.valid)  # option p = (kk[p], oo[p])
        self.P = len(self.kk)
        self.col_of = {(int(k), int(o)): p for p, (k, o) in enumerate(zip(self.kk, self.oo,
                                                                          strict=True))}
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
        self.lo_rows: list[tuple[int, list[int]]] = []  # rows z >= T_lo y: (row, y columns)

    def row(self, lo: float, hi: float, idx: list[int], val: list[float]) -> None:
        self.rows.append((lo, hi, idx, val))

    def tangent_rows(self, pts: list[tuple[int, int, int, float]]
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows (3 entries each, lower 0, upper inf) of the tangents at ``pts``, vectorised:
        (column index (R, 3), value (R, 3), keep mask). Options not in the model are skipped."""
        B, tau = self.inst.arrays.bandwidth, self.tau
        ps = np.array([self.col_of.get((k, o), -1) for k, o, _, _ in pts], dtype=int)
        kind = np.array([q[2] for q in pts], dtype=int)
        v = np.array([q[3] for q in pts], dtype=float)
        keep = ps >= 0
        ps, kind, v = ps[keep], kind[keep], v[keep]
        kk, oo = self.kk[ps], self.oo[ps]
        t = self.table.terms
        tp = Terms(t.compute[kk, oo], t.up_bits[kk, oo], t.down_bits[kk, oo],
                   t.server_work[kk, oo], t.snr_ul[kk, 0], t.snr_dl[kk, 0])
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            d = comm_delay(tp, v * B) / tau
            g = comm_slope(tp, v * B) * B / tau  # d tc / d beta, negative
            const = d - g * v
            s = self.S[ps]
            band = (kind == 0) & self.talks[ps] & (np.maximum(abs(const), abs(g)) <= _MAX_COEF)
            share = (kind == 1) & (s > 0) & (s / v**2 <= _MAX_COEF)
            idx = np.where(kind[:, None] == 0,
                           np.stack([self.TC + ps, self.X + ps, self.BB + ps], axis=1),
                           np.stack([self.TS + ps, self.X + ps, self.PH + ps], axis=1))
            val = np.where(kind[:, None] == 0,
                           np.stack([np.ones_like(v), -const, -g], axis=1),
                           np.stack([np.ones_like(v), -2.0 * s / v, s / v**2], axis=1))
        ok = band | share
        return idx[ok], val[ok], ok

    def add_tangents(self, h: highspy.Highs, pts: list[tuple[int, int, int, float]]) -> int:
        idx, val, _ = self.tangent_rows(pts)
        n = len(idx)
        if n:
            h.addRows(n, np.zeros(n), np.full(n, _highspy().kHighsInf), 3 * n,
                      np.arange(0, 3 * n, 3, dtype=np.int32), idx.ravel().astype(np.int32),
                      val.ravel().astype(float))
        return n

    def set_T_lo(self, h: highspy.Highs, T_lo: float, T_hi: float) -> None:
        """Raise the lower bound of T (scaled) in a built model: column bound and McCormick."""
        h.changeColBounds(self.T, T_lo, T_hi)
        for r, ys in self.lo_rows:
            for c in ys:
                h.changeCoeff(r, c, -T_lo)

    def build(self, points: _Points, T_lo: float, T_hi: float, *,
              relax: bool = False) -> highspy.Highs:
        highspy = _highspy()
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
        self.rows, self.lo_rows = [], []
        first = np.searchsorted(self.kk, np.arange(self.K))
        last = np.searchsorted(self.kk, np.arange(self.K), side="right")
        for k in range(self.K):
            self.deadline.check(k, 64)
            ps = list(range(first[k], last[k]))
            self.row(1.0, 1.0, [self.X + p for p in ps], [1.0] * len(ps))
            # T >= C x + tc + ts
            idx = [self.T] + [self.X + p for p in ps] + [self.TC + p for p in ps] + [
                self.TS + p for p in ps]
            val = [1.0] + [-float(self.C[p]) for p in ps] + [-1.0] * (2 * len(ps))
            self.row(0.0, inf, idx, val)
        # least needs at round delay T_hi (T <= T_hi in this model): beta >= bmin x, ...
        bmin, smin = _least_needs(_option_terms(self.table, self.kk, self.oo),
                                  T_hi * self.tau, a.bandwidth, self.deadline)
        for p in range(P):
            self.row(-inf, 0.0, [self.BB + p, self.X + p], [1.0, -1.0])
            self.row(-inf, 0.0, [self.PH + p, self.X + p], [1.0, -1.0])
            if bmin[p] > 0:
                self.row(0.0, inf, [self.BB + p, self.X + p], [1.0, -float(min(bmin[p], 2.0))])
            if smin[p] > 0:
                self.row(0.0, inf, [self.PH + p, self.X + p], [1.0, -float(min(smin[p], 2.0))])
        self.row(-inf, 1.0, [self.BB + p for p in range(P)], [1.0] * P)
        self.row(-inf, 1.0, [self.PH + p for p in range(P)], [1.0] * P)
        for j, (k, c) in enumerate(self.zkc):
            ys = [self.X + p for p in range(first[k], last[k]) if self.lev[p] == c]
            # z >= T - T_hi (1 - y)  and  z >= T_lo y
            self.row(-T_hi, inf, [self.Z + j, self.T] + ys, [1.0, -1.0] + [-T_hi] * len(ys))
            self.lo_rows.append((len(self.rows), ys))
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
        self.deadline.check()
        self.add_tangents(h, points.all())
        self.deadline.check()
        if not relax:
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
        t = self.table.terms
        for p in chosen:
            k, o = int(self.kk[p]), int(self.oo[p])
            if self.talks[p]:
                tk = Terms(t.compute[k, o:o + 1], t.up_bits[k, o:o + 1],
                           t.down_bits[k, o:o + 1], t.server_work[k, o:o + 1],
                           t.snr_ul[k], t.snr_dl[k])
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

    def perspective_points(self, sol: np.ndarray, x_min: float
                           ) -> list[tuple[int, int, float, float]]:
        """(k, o, b/B, phi) of every option used above x_min: its band and share per unit x,
        the points where the perspective under-estimates the most."""
        x = sol[self.X:self.X + self.P]
        out = []
        for p in np.flatnonzero(x > x_min):
            out.append((int(self.kk[p]), int(self.oo[p]), float(sol[self.BB + p] / x[p]),
                        float(sol[self.PH + p] / x[p])))
        return out

    def _memory(self, first: np.ndarray, last: np.ndarray) -> None:
        highspy = _highspy()
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


def _reduce(inst: SplitInstance, table: OptionTable, plan: _Plan, r_min: float,
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
    for g in resource_needs(table_terms(table), table.valid[None], a.bandwidth,
                            np.array([T_hi]), ()):
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


def _initial_plan(inst: SplitInstance, table: OptionTable, plan: _Plan, rel_tol: float,
                  deep: np.ndarray) -> None:
    """Incumbents: the deepest cuts ``deep`` with each device's fastest option there, and each
    device's fastest option overall (if server memory allows)."""
    k = np.arange(inst.n_devices)
    B = inst.arrays.bandwidth
    t = table.terms
    alone = np.where(table.valid, t.compute + comm_delay(t, np.full(t.compute.shape, B))
                     + t.server_work, np.inf)
    at_deep = np.where(table.cut == deep[:, None], alone, np.inf)
    for choice in (np.argmin(at_deep, axis=1), np.argmin(alone, axis=1)):
        if np.isfinite(alone[k, choice]).all():
            _allocate(inst, table, choice, plan, rel_tol)


def _seed(inst: SplitInstance, table: OptionTable, plan: _Plan, name: str,
          time_limit: float | None, common: dict, rel_tol: float) -> None:
    """Take another solver's plan as incumbent (its options re-shared exactly). It gets a fifth
    of ``time_limit`` (None: none) and milp's seed and threads where it takes them."""
    if name == "milp" or not available("split", name):
        plan.notes.append(f"incumbent solver {name!r} not available")
        return
    takes = get("split", name).options
    opts = {k: v for k, v in common.items() if k in takes}
    if time_limit is not None and "time_limit" in takes:
        opts["time_limit"] = max(time_limit / 5, 0.1)
    res = solve(inst, name, **opts)
    if not res.success:
        return
    p = res.plan
    match = (table.cut == p.cuts[:, None]) & (table.level == p.levels[:, None]) & table.valid
    if match.any(axis=1).all():
        before = plan.total
        _allocate(inst, table, np.argmax(match, axis=1), plan, rel_tol)
        if plan.total < before:
            plan.notes.append(f"incumbent from {name}")
    elif res.objective < plan.total:  # a dominated option: keep the plan, no warm start
        plan.total, plan.cuts, plan.levels = res.objective, p.cuts, p.levels
        plan.band, plan.share, plan.choice = p.bandwidth, p.share, None
        plan.price = math.nan
        plan.notes.append(f"incumbent from {name}")


def _r_max(inst: SplitInstance, table: OptionTable) -> float:
    """R with every device at its most distorting valid option."""
    a = inst.arrays
    wd = np.where(table.valid, a.sample_weight[:, None] * table.delta, -np.inf).max(axis=1)
    return float(a.rounds * (1.0 + a.eta * wd.sum()))


@register("split", "milp", exact=True, bound=True, needs=("highspy",),
          description="HiGHS branch-and-bound on tangent outer approximations (Kelley loop)",
          options={"max_iter": whole(1, 100_000, "most Kelley (MILP) iterations"),
                   "cuts_per_device": whole(1, 1000, "initial tangents per option"),
                   "lp_rounds": whole(0, 100_000, "most LP rounds before the first MILP"),
                   "incumbent": text("registered split solvers giving starting plans, "
                                     "comma-separated", none=True),
                   "bound": text("starting lower bound: the lagrangian bound or none",
                                 choices=("lagrangian", "none"))})
def solve_milp(instance: SplitInstance, *, time_limit: float | None = 60.0,
               gap_tol: float = 1e-4, max_iter: int = 30, cuts_per_device: int = 6,
               lp_rounds: int = 40, threads: int = 1, seed: int = 0,
               incumbent: str | None = "lagrange,alm", bound: str = "lagrangian") -> Result:
    """Optimal plan to a relative gap ``gap_tol`` with a certified lower bound.

    ``cuts_per_device`` initial tangent points per option for band and share (where its comm
    and server times are geometric fractions of the incumbent's round delay; more are added at
    every iterate); ``lp_rounds`` the most LP-relaxation rounds of tangent refinement before
    the first MILP; ``threads`` and ``seed`` go to HiGHS; ``incumbent`` names a registered
    solver whose plan seeds the upper bound, or several separated by commas (the best plan is
    kept; None: own starting plans only). A good incumbent shrinks T_hi, which removes
    options and tightens the McCormick rows, and places the priced tangent points. ``bound``
    "lagrangian" starts the lower bound (and T_lo) from the lagrangian bound; "none" from
    the round-delay relaxation only.
    """
    highspy = _highspy()
    deadline = work_deadline(time_limit, instance.n_devices)
    lp_deadline = Deadline(deadline.part(0.25))  # the LP rounds get a quarter of the time
    space = OptionSpace(instance)
    why = space.diagnose()
    if why is not None:
        return infeasible(instance, why)
    table = space.table()
    a, K = instance.arrays, instance.n_devices
    T_lo = float(round_delay_bound(table_terms(table), table.valid[None], a.bandwidth)[0])
    r_min = min_rounds(instance, table)
    lb = r_min * T_lo
    big = table.valid.sum() > _LAGRANGE_MAX_ENTRIES  # no lagrangian bound here (nor seed)
    if bound == "lagrangian" and not big:
        # a certified bound on R x T of every plan (lagrangian.py), ~0.3 s on 10-20 devices and
        # within ~1 % of the optimum: it raises T_lo (lb / R_max) and so tightens the McCormick
        # rows and the option tests from the first LP on; given a tenth of the time at most
        lag, _ = lagrangian_bound(instance, table, deadline=Deadline(deadline.part(0.1)))
        if math.isfinite(lag):
            lb = max(lb, lag)
    plan = _Plan()
    rel_tol = min(1e-9, gap_tol * 1e-3)
    _initial_plan(instance, table, plan, rel_tol, space.deepest())
    names = [n.strip() for n in (incumbent or "").split(",") if n.strip()]
    for name in names:  # each seed solver may use a third of the time left (fast ones return
        share = deadline.part(1 / 3)  # early; at 100,000 devices they would take all of it)
        if name == "lagrange" and big and share is not None:
            # its bound's set-up alone outlasts a share of a limit there (as milp's own start)
            plan.notes.append("seed lagrange skipped: too large for its share of time_limit")
            continue
        _seed(instance, table, plan, name, share, {"seed": seed, "threads": threads}, rel_tol)
    if plan.cuts is None:
        return infeasible(instance, "milp: no initial plan has a finite delay")
    tau = T_lo

    def gap() -> float:
        return (plan.total - lb) / plan.total

    lp_done, it = 0, 0
    try:  # on large instances building the model (Python loops) outlasts the time limit
        T_inc = plan.total / rounds_needed(instance, plan.levels)
        points = _initial_points(table, plan.total / r_min, a.bandwidth, cuts_per_device,
                                 deadline, T_inc, plan.price)

        def incumbent_points() -> list[tuple[int, int, int, float]]:
            # the incumbent's band and share of device k: a good operating point for all its options
            new = []
            for i, (k, o) in enumerate(zip(*np.nonzero(table.valid), strict=True)):
                deadline.check(i, 256)
                new += points.add(int(k), int(o), plan.band[k] / a.bandwidth, plan.share[k])
            return new

        incumbent_points()

        def raise_T_lo(red: OptionTable) -> float:
            # every plan has R x T >= lb, and a plan better than the incumbent uses options of
            # `red` only, so its R <= R_max(red): T >= lb / R_max(red)
            return max(T_lo, lb / _r_max(instance, red) * (1 - 1e-9))

        def use(model: _Model, sol: np.ndarray, x_min: float) -> list[tuple[int, int, int, float]]:
            """Perspective points of the solution, and its rounding allocated exactly."""
            new = []
            for k, o, b, s in model.perspective_points(sol, x_min):
                new += points.add(k, o, b, s)
            x = sol[:model.P]
            choice = np.zeros(K, dtype=int)
            best_x = np.full(K, -1.0)
            for p in range(model.P):
                k = model.kk[p]
                if x[p] > best_x[k]:
                    best_x[k], choice[k] = x[p], model.oo[p]
            before = plan.total
            got = _allocate(instance, table, choice, plan, rel_tol)
            if got is not None:
                for k in range(K):
                    new += points.add(k, int(choice[k]), got[0][k], got[1][k])
            if plan.total < before:
                new += incumbent_points()
            return new

        # LP rounds: tangents at the LP's perspective points until its bound stalls (cheap: the
        # simplex restarts from the last basis); each bound also raises T_lo
        lp_done = 0
        red = _reduce(instance, table, plan, r_min, T_lo)
        T_lo = raise_T_lo(red)
        model = _Model(instance, red, tau, deadline)
        T_hi = plan.total / r_min / tau * (1 + 1e-7)
        h = model.build(points, T_lo / tau, max(T_hi, T_lo / tau), relax=True)
        prev = -math.inf
        while lp_done < lp_rounds and gap() > gap_tol:
            remaining = lp_deadline.remaining()
            if remaining <= 0:
                break
            out = highs.run(h, remaining)
            lp_done += 1
            ms = out.status
            if ms == highspy.HighsModelStatus.kInfeasible:
                lb = max(lb, plan.total * (1 - _SAFETY))
                break
            if ms != highspy.HighsModelStatus.kOptimal:
                break
            val = a.rounds * tau * out.objective
            lb = max(lb, val * (1 - _SAFETY))
            new = use(model, out.x, _X_MIN)
            if val - prev <= 5e-5 * abs(val) or not new:
                break
            prev = val
            T_new = raise_T_lo(red)
            if T_new > T_lo * (1 + 1e-6):
                T_lo = T_new
                model.set_T_lo(h, T_lo / tau, max(T_hi, T_lo / tau))
            model.add_tangents(h, new)
        del h

        it, reason = 0, f"max_iter {max_iter} reached"
        termination = Termination.ITERATION_LIMIT
        shrink = 1.0
        log.info("milp: %d LP round(s); incumbent %.6g s, bound %.6g s, gap %.3g", lp_done,
                 plan.total, lb, gap())
        for it in range(1, max_iter + 1):
            if gap() <= gap_tol:
                termination, reason = Termination.CONVERGED, "gap closed"
                break
            remaining = deadline.remaining()
            if remaining <= 0:
                termination, reason = Termination.TIME_LIMIT, f"time_limit {time_limit:g} s reached"
                break
            T_hi = plan.total / r_min / tau * (1 + 1e-7)
            red = _reduce(instance, table, plan, r_min, T_lo)
            T_lo = raise_T_lo(red)
            model = _Model(instance, red, tau, deadline)
            h = model.build(points, T_lo / tau, max(T_hi, T_lo / tau))
            remaining = deadline.remaining()  # building a large model takes seconds: count them
            if remaining <= 0:
                termination, reason = Termination.TIME_LIMIT, f"time_limit {time_limit:g} s reached"
                break
            # early iterations need only a rough MILP optimum: its dual bound is valid anyway
            mip_gap = max(gap_tol / 4, min(gap() / 10, 1e-2) * shrink)
            # the bound that closes the gap, as a MILP objective: HiGHS prunes the nodes whose
            # bound reaches it, so it proves the gap closed without solving the MILP to its own
            # optimum (which may lie just above the target, where mip_rel_gap alone stops short)
            target = plan.total * (1 - gap_tol) / (a.rounds * tau * (1 - _SAFETY))
            out = highs.run(h, remaining, options={"mip_rel_gap": mip_gap, "threads": int(threads),
                                                    "random_seed": int(seed),
                                                    "objective_bound": float(target),
                                                    **_MILP_OPTIONS},
                            start=None if plan.choice is None else model.start(plan))
            ms = out.status
            if ms == highspy.HighsModelStatus.kInfeasible:
                # no point of the relaxation (no plan with T <= T_hi using the options left)
                # has objective below the target
                lb = max(lb, min(plan.total, a.rounds * tau * target) * (1 - _SAFETY))
                continue
            if math.isfinite(out.dual_bound):
                lb = max(lb, a.rounds * tau * out.dual_bound * (1 - _SAFETY))
            if not out.feasible:
                if ms == highspy.HighsModelStatus.kTimeLimit:
                    termination = Termination.TIME_LIMIT
                    reason = f"time_limit {time_limit:g} s reached"
                    if out.killed:
                        reason += " (HiGHS stopped from outside: it overruns its own limit)"
                    break
                termination = Termination.CONVERGED
                reason = f"HiGHS {h.modelStatusToString(ms)} in iteration {it}"
                break
            new = use(model, out.x, 0.5)
            log.info("milp: iteration %d; incumbent %.6g s, bound %.6g s, gap %.3g", it,
                     plan.total, lb, gap())
            if not new and gap() > gap_tol:
                if mip_gap <= gap_tol / 4:
                    termination = Termination.CONVERGED
                    reason = "no new tangent points (MIP tolerance limits the gap)"
                    break
                shrink *= 0.1  # the loose MILP returned known points: solve it tighter next
    except OutOfTime:
        termination = Termination.TIME_LIMIT
        reason = f"time_limit {time_limit:g} s reached while building the model"
    status = Status.FEASIBLE
    if gap() <= gap_tol:
        status, reason = Status.OPTIMAL, "gap closed"
        if termination != Termination.TIME_LIMIT:
            termination = Termination.CONVERGED
    msg = f"{reason}; {lp_done} LP round(s), {it} MILP iteration(s), gap {gap():.3g}"
    if plan.notes:
        msg += "; " + "; ".join(plan.notes)
    return make_result(instance, plan.cuts, plan.levels, plan.band, plan.share, status=status,
                       termination=termination, message=msg,
                       lower_bound=min(lb, plan.total), iterations=it)
