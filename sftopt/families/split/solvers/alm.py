"""`alm`: two-timescale augmented Lagrangian method on the relaxed plan, then rounding and repair.

Large timescale. Each device's binary choice of option o = (cut, level) is relaxed to weights
x_k in the simplex over its options that fit its memory and meet the accuracy bound (so the
per-device accuracy and device-memory constraints hold for every x). A relaxed plan has the
x-weighted delay constants C_k(x), U_k(x), V_k(x), S_k(x) and rounds
R(x) = rounds (1 + eta sum_k w_k sum_o x_ko delta_o).

Small timescale inside. For a relaxed x the bandwidth and server-share constraints are met
exactly by the exact allocator, T*(x) = min over (b, phi) of max_k T_k; its KKT weights
omega_k (`allocation.delay_weights`) give the gradient by the envelope theorem,
dT*/dx_ko = omega_k T_ko(b*, phi*): bandwidth and share enter through their prices.

The coupling constraint left, server memory
M(x) = max_k sum_o x_ko static(cut_o) + sum_k sum_o x_ko n_k act(cut_o) <= M_s
(the max is exact at integral plans: the shallowest cut fixes the server's weights), is handled
by the augmented Lagrangian  L(x) = R T* / F0 + rho/2 max(0, g + lambda/rho)^2 - lambda^2/(2 rho),
g = M(x)/M_s - 1: projected (sub)gradient steps with Armijo backtracking on the simplices
(inner), then lambda <- max(0, lambda + rho g) and rho <- 10 rho when g did not shrink (outer).

Rounding: the per-device argmax of x and ``samples`` random roundings drawn from x (``seed``),
each repaired (cuts deepened until the server memory fits), evaluated with the exact allocator;
the best is optionally polished by single-device local search (``polish``).
"""

from __future__ import annotations

import time

import numpy as np

from ....core.options import ITER_MAX, Deadline, flag, real, whole
from ....core.registry import register
from ....core.result import Result
from ..allocation import Allocation, delay_weights, exact_allocation
from ..cost import Terms
from ..options import OptionSpace
from ..plans import failed, infeasible
from ..schema import SplitInstance
from ..search import Search, default_lifts


def project_simplex_rows(y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Euclidean projection of each row of y onto the simplex over its masked-in entries."""
    v = np.where(mask, y, -np.inf)
    u = -np.sort(-v, axis=1)  # descending, -inf last
    finite = np.isfinite(u)
    css = np.cumsum(np.where(finite, u, 0.0), axis=1) - 1.0
    idx = np.arange(1, y.shape[1] + 1)[None, :]
    cond = finite & (u - css / idx > 0)
    rho = y.shape[1] - 1 - np.argmax(cond[:, ::-1], axis=1)
    tau = css[np.arange(len(y)), rho] / (rho + 1)
    return np.where(mask, np.maximum(v - tau[:, None], 0.0), 0.0)


class _Relaxed:
    """Objective, server memory and their gradients at a relaxed plan x (K x O)."""

    def __init__(self, search: Search):
        self.search = search
        self.sp = space = search.space
        a = space.a
        self.static = a.srv_static[space.opt_cut]  # per option: server weights if it is the min
        self.M = a.server_memory
        spread = float(self.static.max() - self.static.min())
        self.tau = 1e-3 * spread / max(np.log(space.K), 1.0) if spread > 0 else 1.0

    def terms(self, x: np.ndarray) -> Terms:
        sp = self.sp
        return Terms((x * sp.C).sum(1), (x * sp.U).sum(1), (x * sp.V).sum(1),
                     (x * sp.S).sum(1), sp.a.snr_ul, sp.a.snr_dl)

    def rounds(self, x: np.ndarray) -> float:
        a = self.sp.a
        return float(a.rounds * (1.0 + a.eta * a.sample_weight @ (x @ self.sp.delta)))

    def objective(self, x: np.ndarray) -> tuple[float, Allocation]:
        al = exact_allocation(self.terms(x), self.sp.B)
        return self.rounds(x) * al.round_delay, al

    def gradient(self, x: np.ndarray, al: Allocation) -> np.ndarray:
        sp, a = self.sp, self.sp.a
        t = self.terms(x)
        w = delay_weights(t, al)
        # option delays at the relaxed allocation; a zero share (no server work in x) gets the
        # smallest positive share so that options with server work still get a finite price
        pos = al.share[al.share > 0]
        share = np.where(al.share > 0, al.share, pos.min() if len(pos) else 1.0 / sp.K)
        opt = self.search.option_delays(Allocation(al.bandwidth, share, al.round_delay))
        opt = np.where(np.isfinite(opt), opt, np.nan)
        opt = np.where(np.isnan(opt), np.nanmax(np.where(sp.fits, opt, np.nan)), opt)
        R = self.rounds(x)
        dR = a.rounds * a.eta * a.sample_weight[:, None] * sp.delta[None, :]
        return R * w[:, None] * opt + dR * al.round_delay

    def memory(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """g(x) = M(x)/M_s - 1 and its (sub)gradient."""
        per = x @ self.static
        # smooth max (log-sum-exp, >= max, within tau log K of it) so Armijo steps do not
        # stall on the kink where two devices tie for the shallowest cut
        tau = self.tau
        top = per.max()
        soft = np.exp((per - top) / tau)
        smax = top + tau * np.log(soft.sum())
        grad = self.sp.srv_act.copy()
        grad += (soft / soft.sum())[:, None] * self.static[None, :]
        held = (x * self.sp.srv_act).sum()
        return float((smax + held) / self.M - 1.0), grad / self.M


@register("split", "alm", description="augmented Lagrangian on the relaxed plan (exact allocator "
                                      "inside), rounding, memory repair, local-search polish "
                                      "and shallowest-cut lifts",
          options={"max_iter": whole(0, ITER_MAX, "multiplier updates"),
                   "inner_iter": whole(1, ITER_MAX, "projected-gradient steps per update"),
                   "tol": real(0, 1, "memory violation and relative move at which ALM stops",
                               lo_open=True, hi_open=True),
                   "rho": real(0, 1e12, "initial penalty weight", lo_open=True),
                   "samples": whole(0, 100_000, "random roundings of the relaxed plan",
                                    none=True),
                   "polish": flag("local search and floor lifts after rounding"),
                   "lifts": whole(0, 10_000, "floors tried per lift", none=True)})
def solve_alm(instance: SplitInstance, *, max_iter: int = 20, inner_iter: int = 30,
              tol: float = 1e-6, rho: float = 10.0, samples: int | None = None, seed: int = 0,
              polish: bool = True, lifts: int | None = None,
              time_limit: float | None = None, warm_start: Result | None = None) -> Result:
    """Augmented Lagrangian method on the relaxation (``max_iter`` multiplier updates of
    ``inner_iter`` projected-gradient steps each, stopping when the memory violation is below
    ``tol`` and the relaxed objective moves less than ``tol`` relative), then rounding
    (argmax and ``samples`` draws with ``seed``; default 16, fewer from 100 devices on:
    max(2, 1600 / K), since every draw costs a memory repair and large fleets' draws differ
    little in quality), repair and, if ``polish``, local search and floor lifts
    (`Search.lift_floor`, ``lifts`` floors tried each time, default 3 below 100 devices,
    else 0: none). ``warm_start``: a previous result whose plan (devices matched by id,
    `Search.warm_plan`) is the first rounding candidate."""
    start = time.perf_counter()
    deadline = Deadline(time_limit)
    sp = OptionSpace(instance)
    why = sp.diagnose()
    if why:
        return infeasible(instance, why)
    search = Search(sp, deadline=deadline)
    rng = np.random.default_rng(seed)
    if samples is None:
        samples = 16 if sp.K < 100 else max(2, 1600 // sp.K)
    rel = _Relaxed(search)
    mask = sp.fits
    x = np.where(mask, 1.0, 0.0)
    x /= x.sum(axis=1, keepdims=True)
    clock = time.perf_counter()
    F, al = rel.objective(x)
    # an allocation's time: the search keeps time for the rounding and the result after it
    search.eval_s = time.perf_counter() - clock
    F0 = F if np.isfinite(F) and F > 0 else 1.0
    lam = 0.0

    def aug(x: np.ndarray) -> tuple[float, Allocation, float]:
        F, al = rel.objective(x)
        g, _ = rel.memory(x)
        pen = 0.5 * rho * max(0.0, g + lam / rho) ** 2 - lam**2 / (2.0 * rho)
        return F / F0 + pen, al, g

    steps = 0
    g_prev = np.inf
    val, al, g = aug(x)
    eta = 1.0
    for _outer in range(max_iter):
        val_start = val
        for _ in range(inner_iter):
            if search.late():
                break
            gF = rel.gradient(x, al) / F0
            g, gM = rel.memory(x)
            grad = gF + rho * max(0.0, g + lam / rho) * gM
            grad = np.where(mask, grad, 0.0)
            # scale so that eta = 1 moves a weight by about one unit
            gs = np.abs(grad[mask]).max()
            if not gs > 0:
                break
            direction = grad / gs
            eta = min(1.0, 2.0 * eta)
            while eta > 1e-8:
                if search.late():
                    break
                xn = project_simplex_rows(x - eta * direction, mask)
                vn, aln, gn = aug(xn)
                # Armijo on the projected step
                if vn <= val - 1e-4 * float((grad * (x - xn)).sum()):
                    break
                eta *= 0.5
            if deadline.hit:
                break
            steps += 1
            if eta <= 1e-8 or np.abs(xn - x).max() < 1e-9:
                break
            x, val, al, g = xn, vn, aln, gn
        lam = max(0.0, lam + rho * g)
        if g > 0.25 * g_prev and g > tol:
            rho *= 10.0
        g_prev = g
        if (g <= tol and abs(val - val_start) <= tol * max(abs(val), 1.0)) or \
                deadline.passed():
            break

    # rounding: argmax and random draws from x, each repaired, best kept
    cands = [np.argmax(np.where(mask, x, -1.0), axis=1)]
    warm_kept = 0
    if warm_start is not None:
        warm, warm_kept = search.warm_plan(warm_start)
        if warm_kept:
            cands.insert(0, warm)
    cum = np.cumsum(x, axis=1)
    for _ in range(samples):
        r = rng.random((sp.K, 1))
        cands.append(np.minimum((cum < r).sum(axis=1), sp.O - 1))
    best, best_val = None, np.inf
    seen: set[bytes] = set()
    for c in cands:
        if best is not None and search.late():
            break
        key = c.tobytes()
        if key in seen or not mask[sp.rows, c].all():
            continue
        seen.add(key)
        fixed = search.repair_memory(c)
        if fixed is None:
            continue
        v, _ = search.evaluate(fixed)
        if v < best_val:
            best, best_val = fixed, v
    if best is None and deadline.hit:  # time up before any rounding fitted: own-delay start
        best = search.quick_repair(search.own_delay_plan())
    if best is None:
        return failed(instance, "server memory: no rounding of the relaxed plan could be "
                                "repaired to fit the server")
    relaxed_val = rel.rounds(x) * al.round_delay
    moves = 0
    kept = 0
    if polish:
        best, best_val, moves = search.local_search(best)
        best, best_val, kept = search.lift_floor(
            best, best_val, lifts=default_lifts(sp.K) if lifts is None else lifts)
    _, final = search.evaluate(best)
    msg = (f"ALM: {steps} projected-gradient steps, relaxed R x T = {relaxed_val:.6g} s "
           f"(memory violation {max(g, 0.0):.2g}), rounded to {len(seen)} plan(s)"
           + (f", {moves} polish moves, {kept} floor lift(s)" if polish else "")
           + (f", warm start: {warm_kept} of {sp.K} devices kept their choice"
              if warm_kept else "")
           + f", {time.perf_counter() - start:.2f} s")
    return search.result(best, final, iterations=steps, message=msg)
