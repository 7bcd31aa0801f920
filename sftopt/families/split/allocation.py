"""Small timescale: bandwidth and server shares for fixed cuts and levels (exact, SLSQP, equal).

Problem (docs/model.md section 2): minimise T = max_k T_k, T_k = C_k + D_k(b_k) + S_k/phi_k with
D_k(b) = U_k/r_ul(b) + V_k/r_dl(b), sum b <= B, sum phi <= 1. It is convex (1/r is convex).

KKT: at the optimum every device that uses a resource finishes at T; with prices lambda (band)
and nu (share) and theta = lambda/nu, phi_k = sqrt(theta S_k / -D_k'(b_k)).

Exact method (`exact_allocation`): Newton's method on the whole KKT system in (log b_k, log theta,
T) -- diagonal plus a two-column border, so O(K) per step -- with a backtracking line search and
three starts (warm, equal bands, equal bands with each device's own equation solved). Every
answer is certified by a weak-duality (Lagrangian) lower bound from the KKT multipliers. If
Newton fails, the nested method takes over: a safeguarded Newton root find per device for b_k
given (T, theta), a bracketed one on theta (sum b = B) and one on T (G(T) = least sum of shares
= 1, G' from the envelope theorem). Devices without server work (cut L+1), with nothing to send,
or with neither are handled as their own cases.

Online (`Allocator.step`, once per fading round) the same KKT system is solved by `_Online`,
in (log b_k, log theta, log(T - R)), R the least delay some device needs whatever it gets, each
delay equation as a log ratio: under deep fades the optimum sits within 1e-4 of R and one device
takes most of the band, which the (log b, log theta, T) form reaches only by crawling. From the
previous round's optimum (its margin above R, not its T) with each device's own equation solved,
Newton converges in ~4 steps (a damped step re-solves the device equations: Newton on the two
coupling equations alone); the certificate is the same Lagrangian bound. The cold path keeps
`_Fused`, whose results the committed references pin.
With numba installed (extra `fast`) `_Online`'s per-device arithmetic runs in compiled loops
(`_k_*`, the numpy path's operations in its order; numpy keeps exp, log1p and log); the numpy
path is the reference and the fallback (SFTOPT_NO_NUMBA=1 forces it).

Also here: SLSQP (`sqp_allocation`, the published method), the same convex program as a conic
(exponential-cone) model solved by cvxpy (`conic_allocation`, an independent route), equal
shares, `delay_weights` (the KKT weights: sensitivity of the optimum to each device's delay),
`allocate` (dispatch by name) and the online `Allocator`.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ...channel import LN2, InvRateSum
from ...channel import inv_rate_link as _k_link
from ...core import jit
from ...core.errors import Unavailable
from ...core.options import Deadline
from .cost import Terms, device_delays, terms
from .schema import SplitInstance

METHODS = ("exact", "sqp", "conic", "equal")
# seconds per SLSQP iteration over K^3 (measured: 1.3e-8 at K = 400, 2.9e-8 at K = 1,000 on the
# development machine; the larger, so that a started iteration ends before the deadline)
SLSQP_S_PER_K3 = 3e-8


@dataclass(frozen=True)
class Allocation:
    """Bandwidth (Hz) and server shares per device and the round delay they give."""

    bandwidth: np.ndarray
    share: np.ndarray
    round_delay: float  # max_k T_k under this allocation (inf if infeasible)
    iterations: int = 0  # exact: Newton steps; sqp: SLSQP iterations
    price: float = float("nan")  # exact: theta = lambda/nu, share per Hz at the optimum
    message: str = field(default="")
    lower_bound: float = float("nan")  # exact: certified lower bound on the optimal round delay
    # exact: (log b of the devices that talk, log theta, log(T - R)), a warm start for the next
    # call (R: the least delay some device needs, see _Fused)
    warm: tuple[np.ndarray, float, float] | None = field(default=None, repr=False, compare=False)

    @property
    def feasible(self) -> bool:
        return bool(np.isfinite(self.round_delay))


def _delay(t: Terms, b: np.ndarray, phi: np.ndarray) -> np.ndarray:
    return device_delays(t, b, phi)


def _empty() -> Allocation:
    z = np.zeros(0)
    return Allocation(z, z, 0.0, 0, message="no devices")


def _infeasible(k: int, why: str, it: int = 0) -> Allocation:
    return Allocation(np.zeros(k), np.zeros(k), float("inf"), it, message=why)


def equal_allocation(t: Terms, bandwidth_hz: float) -> Allocation:
    """B/K and 1/K to every device (the equal-share baseline)."""
    k = len(t.compute)
    if k == 0:
        return _empty()
    b = np.full(k, bandwidth_hz / k)
    phi = np.full(k, 1.0 / k)
    delay = _delay(t, b, phi)
    return Allocation(b, phi, float(delay.max()))


def _equal_start(t: Terms, B: float) -> tuple[Allocation | None, Allocation]:
    """The equal split a local method starts from (and scales by), and the answer already when
    there is nothing to solve: no devices, or no finite delay even with equal shares."""
    eq = equal_allocation(t, B)
    if len(t.compute) == 0:
        return eq, eq
    if not np.isfinite(eq.round_delay):
        return _infeasible(len(t.compute), "no finite delay even with equal shares"), eq
    return None, eq


# --------------------------------------------------------------------------- comm delay pieces
class _Comm:
    """D(b) = U/r_ul(b) + V/r_dl(b) and its derivatives for a subset of devices."""

    def __init__(self, up: np.ndarray, down: np.ndarray, xu: np.ndarray, xd: np.ndarray):
        self.up, self.down = up, down
        self._eval = InvRateSum(np.stack([xu, xd]), np.stack([up, down]))
        # D(inf) = ln2 (U/xu + V/xd): no band can push the comm delay below this
        self.floor = LN2 * (up / xu + down / xd)

    def __call__(self, b: np.ndarray, order: int = 2) -> tuple[np.ndarray, ...]:
        """D, -D' and D'' (the first ``order`` + 1 of them)."""
        return self._eval(b, order)

    def regain(self, xu: np.ndarray, xd: np.ndarray) -> None:
        """The same bits over other channels."""
        x = self._eval.x
        x[0], x[1] = xu, xd
        self.floor = LN2 * (self.up / xu + self.down / xd)


def _newton_decreasing(fun, u: np.ndarray, tol: float = 1e-13, max_iter: int = 100
                       ) -> tuple[np.ndarray, np.ndarray, int]:
    """Vectorised root of decreasing f(u) (fun returns f and df/du < 0), safeguarded Newton.

    Keeps a bracket per element; steps are clamped to +-4 (in log units) while the bracket is
    open and replaced by bisection when they leave it. Returns (u, last df/du, iterations).
    """
    lo = np.full(u.shape, -np.inf)
    hi = np.full(u.shape, np.inf)
    for it in range(1, max_iter + 1):
        f, g = fun(u)
        lo = np.where(f > 0, u, lo)
        hi = np.where(f < 0, u, hi)
        step = np.clip(-f / g, -4.0, 4.0)
        un = u + step
        # a step below tol is convergence, not a step out of the bracket: at a root found to
        # rounding, u is an end of its own bracket, and bisecting would throw the root away
        out = ~((un > lo) & (un < hi)) & (np.abs(step) > tol * np.maximum(1.0, np.abs(u)))
        if out.any():
            closed = np.isfinite(lo) & np.isfinite(hi)
            mid = 0.5 * (np.where(closed, lo, 0.0) + np.where(closed, hi, 0.0))
            un = np.where(out & closed, mid, un)
        done = np.abs(un - u) <= tol * np.maximum(1.0, np.abs(u))
        u = un
        if done.all():
            return u, g, it
    return u, g, max_iter


# --------------------------------------------------------------------------- exact
class _Exact:
    """State of the exact method for one Terms (see module docstring)."""

    def __init__(self, t: Terms, B: float):
        self.t, self.B = t, B
        talks = (t.up_bits > 0) | (t.down_bits > 0)
        serves = t.server_work > 0
        self.both = np.flatnonzero(talks & serves)
        self.comm_only = np.flatnonzero(talks & ~serves)
        self.srv_only = np.flatnonzero(~talks & serves)
        self.idle = np.flatnonzero(~talks & ~serves)

        def sub(idx: np.ndarray) -> _Comm:
            return _Comm(t.up_bits[idx], t.down_bits[idx], t.snr_ul[idx], t.snr_dl[idx])

        self.cb, self.cc = sub(self.both), sub(self.comm_only)
        self.C_b, self.S_b = t.compute[self.both], t.server_work[self.both]
        self.C_c, self.C_s = t.compute[self.comm_only], t.compute[self.srv_only]
        self.S_s = t.server_work[self.srv_only]
        # warm starts
        self.u_b = np.full(len(self.both), np.log(B / max(len(t.compute), 1)))
        self.u_c = np.full(len(self.comm_only), np.log(B / max(len(t.compute), 1)))
        self.v = np.nan  # log theta
        self.evals = 0

    # --- inner: b_k(T, theta) for devices with both comm and server work
    def _band_both(self, s: np.ndarray, theta: float) -> tuple[np.ndarray, np.ndarray]:
        """log b_k solving D(b) + sqrt(S (-D'(b)) / theta) = s, and d log b_k / d log theta."""
        cb, S = self.cb, self.S_b
        rs = np.sqrt(S / theta)

        def fun(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            b = np.exp(u)
            D, nD1, D2 = cb(b)
            sq = np.sqrt(nD1)
            f = D + rs * sq - s
            g = b * (-nD1 - rs * D2 / (2.0 * sq))
            return f, g

        u, g, n = _newton_decreasing(fun, self.u_b)
        self.evals += n
        self.u_b = u
        b = np.exp(u)
        _, nD1, _ = cb(b)
        du_dv = 0.5 * rs * np.sqrt(nD1) / g  # implicit function theorem, negative
        return u, du_dv

    def _band_comm_only(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """b_k with D_k(b_k) = s_k, and -D_k'(b_k)."""
        cc = self.cc

        def fun(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            b = np.exp(u)
            D, nD1, _ = cc(b)
            return D - s, -b * nD1

        u, _, n = _newton_decreasing(fun, self.u_c)
        self.evals += n
        self.u_c = u
        b = np.exp(u)
        return b, cc(b)[1]

    # --- middle: G(T)
    def value(self, T: float) -> tuple[float, float, dict[str, np.ndarray] | None]:
        """G(T) = least sum of shares meeting T within the band, dG/dT, and the allocation."""
        inf = (np.inf, 0.0, None)
        if np.any(self.t.compute[self.idle] > T):
            return inf
        s_c = T - self.C_c
        if np.any(s_c <= self.cc.floor):
            return inf
        b_c, nD1_c = self._band_comm_only(s_c) if len(s_c) else (np.zeros(0), np.zeros(0))
        s_s = T - self.C_s
        if np.any(s_s <= 0):
            return inf
        phi_s = self.S_s / s_s
        B_left = self.B - b_c.sum()
        if B_left <= 0 and len(self.both):
            return inf
        G = phi_s.sum()
        dG = -(phi_s**2 / self.S_s).sum()
        out = {"b_c": b_c, "phi_s": phi_s}
        theta = 0.0
        if len(self.both):
            s_b = T - self.C_b
            if np.any(s_b <= self.cb.floor):
                return inf
            got = self._price(s_b, B_left)
            if got is None:
                return inf
            theta, u = got
            b = np.exp(u)
            _, nD1, _ = self.cb(b)
            phi_b = np.sqrt(theta * self.S_b / nD1)
            G += phi_b.sum()
            dG -= (phi_b**2 / self.S_b).sum()
            out.update(b_b=b, phi_b=phi_b)
        if len(self.comm_only) and len(self.both):
            dG -= theta * (1.0 / nD1_c).sum()  # band they take is band the others lose
        out["theta"] = np.array(theta)
        return G, dG, out

    def _price(self, s: np.ndarray, B_left: float) -> tuple[float, np.ndarray] | None:
        """theta with sum_k b_k(theta) = B_left (bracketed Newton on log theta), and log b."""
        target = np.log(B_left)
        if not np.isfinite(self.v):
            # KKT guess: shares ~ 1/K at bands ~ B/K
            n = len(s)
            b0 = np.full(n, B_left / n)
            _, nD1, _ = self.cb(b0)
            self.v = float(np.log(np.median(nD1 / self.S_b)) - 2.0 * np.log(n))
        v = self.v
        lo, hi = -np.inf, np.inf
        for _ in range(200):
            u, du_dv = self._band_both(s, np.exp(v))
            b = np.exp(u)
            tot = b.sum()
            F = np.log(tot) - target  # decreasing in v
            dF = (b * du_dv).sum() / tot
            if F > 0:
                lo = v
            elif F < 0:
                hi = v
            step = float(np.clip(-F / dF, -8.0, 8.0)) if dF < 0 else 8.0 * np.sign(F)
            vn = v + step
            if not (lo < vn < hi) and np.isfinite(lo) and np.isfinite(hi):
                vn = 0.5 * (lo + hi)
            if abs(F) <= 1e-14 or abs(vn - v) <= 1e-14 * max(1.0, abs(v)):
                self.v = v
                return float(np.exp(v)), u
            if v > 700 or v < -700:  # the band cannot be spent (or saved) at any price
                return None
            v = vn
        self.v = v
        return float(np.exp(v)), u

    def assemble(self, sol: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        k = len(self.t.compute)
        b = np.zeros(k)
        phi = np.zeros(k)
        b[self.comm_only] = sol["b_c"]
        phi[self.srv_only] = sol["phi_s"]
        if len(self.both):
            b[self.both] = sol["b_b"]
            phi[self.both] = sol["phi_b"]
        # land exactly on the resource budgets (the root finds are accurate to ~1e-13)
        if b.sum() > self.B:
            b *= self.B / b.sum()
        if phi.sum() > 1.0:
            phi /= phi.sum()
        return b, phi


class _Fused:
    """Newton's method on the whole KKT system (one device evaluation per step).

    Unknowns: u_k = log b_k (devices that talk), v = log theta, T. Equations:
      f_k = C_k + D_k(b_k) + sqrt(S_k (-D_k'(b_k)) / theta) - T = 0     (delays equal T)
      log sum b = log B,  log (sum_talk sqrt(theta S_k / -D_k') + sum_srv S_j/(T - C_j)) = 0.
    The Jacobian is diagonal plus a two-column border, so a step costs O(K); a backtracking line
    search on the squared residual makes it converge from any start.
    """

    def __init__(self, t: Terms, B: float, talk: np.ndarray, srv: np.ndarray, price: bool):
        self.B, self.price = B, price
        self.comm = _Comm(t.up_bits[talk], t.down_bits[talk], t.snr_ul[talk], t.snr_dl[talk])
        self.C, self.S = t.compute[talk], t.server_work[talk]
        self.Cs, self.Ss = t.compute[srv], t.server_work[srv]
        self.band = len(talk) > 0
        self.share = bool(price or len(srv))

    def residual(self, u: np.ndarray, v: float, T: float) -> dict[str, np.ndarray] | None:
        if len(self.Cs) and np.any(self.Cs >= T):
            return None
        b = np.exp(u)
        D, nD1, D2 = self.comm(b)
        q = np.sqrt(self.S * np.exp(-v)) if self.price else np.zeros_like(b)
        sq = np.sqrt(nD1)
        f = self.C + D + q * sq - T
        phi = np.sqrt(np.exp(v) * self.S / nD1) if self.price else np.zeros_like(b)
        phis = self.Ss / (T - self.Cs)
        P = phi.sum() + phis.sum()
        gB = np.log(b.sum()) - np.log(self.B) if self.band else 0.0
        gS = np.log(P) if self.share else 0.0
        return {"b": b, "nD1": nD1, "D2": D2, "q": q, "sq": sq, "f": f, "phi": phi,
                "phis": phis, "P": P, "gB": gB, "gS": gS}

    def merit(self, r: dict[str, np.ndarray], scale: float) -> float:
        return float(((r["f"] / scale) ** 2).sum() + r["gB"] ** 2 + r["gS"] ** 2)

    def step(self, r: dict[str, np.ndarray]) -> tuple[np.ndarray, float, float]:
        b, f, phi = r["b"], r["f"], r["phi"]
        a = b * (-r["nD1"] - r["q"] * r["D2"] / (2.0 * r["sq"]))  # d f_k / d u_k < 0
        c = -0.5 * r["q"] * r["sq"]  # d f_k / d v
        e = phi * b * r["D2"] / (2.0 * r["nD1"])  # d phi_k / d u_k
        rows, rhs = [], []
        if self.band:  # linearised log sum b: (sum b du) / sum b = -gB
            rows.append([(b / a).sum(), -(b * c / a).sum()])
            rhs.append(-r["gB"] * b.sum() + (b * f / a).sum())
        if self.share:  # linearised log P: dP / P = -gS
            rows.append([(e / a).sum() - (r["phis"] ** 2 / self.Ss).sum(),
                         0.5 * phi.sum() - (e * c / a).sum()])
            rhs.append(-r["gS"] * r["P"] + (e * f / a).sum())
        M = np.array(rows)
        if self.price:
            dT, dv = np.linalg.solve(M, np.array(rhs))
        else:
            dT, dv = rhs[0] / M[0, 0], 0.0
        du = (dT - f - c * dv) / a
        return du, float(dv), float(dT)

    def _search(self, u: np.ndarray, v: float, T: float, du: np.ndarray, dv: float, dT: float,
                m: float, scale: float) -> tuple | None:
        """Backtracking line search on the merit along the Newton direction (a descent
        direction), with the step first scaled so no log unknown moves by more than 3 (the local
        model is trusted within a factor ~e^3)."""
        big = max(np.abs(du).max(initial=0.0), abs(dv)) / 3.0
        alpha = 1.0 / big if big > 1.0 else 1.0
        if dT < 0 and len(self.Cs):  # keep T above every server-only device's compute
            alpha = min(alpha, 0.9 * (T - self.Cs.max()) / -dT)
        while alpha >= 1e-12:
            un, vn, Tn = u + alpha * du, v + alpha * dv, T + alpha * dT
            rn = self.residual(un, vn, Tn)
            if rn is not None:
                mn = self.merit(rn, scale)
                if mn <= (1.0 - 1e-4 * alpha) * m:
                    return un, vn, Tn, rn, mn, alpha
            alpha *= 0.5
        return None

    def solve(self, u: np.ndarray, v: float, T: float, tol: float, max_iter: int = 200
              ) -> tuple[np.ndarray, float, float, dict[str, np.ndarray], int] | None:
        r = self.residual(u, v, T)
        if r is None:
            return None
        scale = T
        m = self.merit(r, scale)
        for it in range(1, max_iter + 1):
            du, dv, dT = self.step(r)
            # cap the step in log units: the model is only trusted within a factor of ~e^3
            got = self._search(u, v, T, du, dv, dT, m, scale)
            if got is None:  # no decrease left: rounding level, or stuck (the bound decides)
                return (u, v, T, r, it) if m <= 1e-12 else None
            un, vn, Tn, rn, mn, alpha = got
            small = max(np.abs(un - u).max(initial=0.0), abs(vn - v), abs(Tn - T) / T)
            u, v, T, r, m = un, vn, Tn, rn, mn
            # converged, or at the rounding floor (a full step no longer decreases the merit;
            # the duality bound checks the answer)
            if m <= tol**2 or small <= 1e-15 or (m <= 1e-16 and alpha < 1.0):
                return u, v, T, r, it
        return None


def _fused_start(fz: _Fused, t: Terms, talk: np.ndarray, B: float
                 ) -> tuple[np.ndarray, float, float]:
    """Equal bands; theta making those bands' KKT shares sum to one; T the largest delay."""
    m = len(talk)
    b = np.full(m, B / max(m, 1))
    u = np.log(b)
    v = 0.0
    T = 0.0
    if m:
        D, nD1, _ = fz.comm(b)
        T = float((fz.C + D).max())
        if fz.price:
            # sqrt(theta) sum sqrt(S/-D') = 1 - (share the server-only devices take)
            v = float(-2.0 * np.log(np.sqrt(fz.S / nD1).sum()) + np.log(0.5))
            srv = np.sqrt(fz.S * np.exp(-v) * nD1)
            T = float((fz.C + D + srv).max())
    if len(fz.Cs):
        T = max(T, float((fz.Cs + len(fz.Cs) * 2.0 * fz.Ss).max()))
    return u, v, T


def _projected_start(fz: _Fused, t: Terms, talk: np.ndarray, B: float,
                     base: tuple[np.ndarray, float, float] | None = None
                     ) -> tuple[np.ndarray, float, float]:
    """A start (the plain one, or ``base``, e.g. the previous round's optimum) with every
    device's own equation f_k = 0 solved for its band (one vectorised root find), so Newton
    only has the two coupling equations left to fix."""
    u, v, T = base if base is not None else _fused_start(fz, t, talk, B)
    if len(talk):
        # every device must be able to reach T with some band
        reach = float((fz.C + fz.comm.floor).max())
        T = max(T, (1.1 if base is not None else 2.0) * reach)
        q = np.sqrt(fz.S * np.exp(-v)) if fz.price else np.zeros(len(talk))

        def fun(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            b = np.exp(x)
            D, nD1, D2 = fz.comm(b)
            sq = np.sqrt(nD1)
            return fz.C + D + q * sq - T, b * (-nD1 - q * D2 / (2.0 * sq))

        u = _newton_decreasing(fun, u, tol=1e-4, max_iter=30)[0]  # a start: coarse is enough
    return u, v, T


# --------------------------------------------------------------------------- compiled kernels
# The online path's per-device arithmetic (`_Online.residual`, `.project`, `.step`) fused into
# loops compiled by numba when it is installed (extra `fast`). numpy keeps the transcendental
# functions (exp, log1p, log: its SIMD versions are ~5x faster per element than the scalar
# libm calls a compiled loop makes); the loops do the rest -- the rate's derivatives, the
# delay equations, the Newton steps -- operation by operation as numpy does them, in one pass
# where numpy makes dozens of calls over 1,000-element arrays (each ~1-3 us of overhead, and at
# 10,000 devices a temporary array per operation). The loops have no calls and no branches
# the compiler cannot turn into selects, so LLVM vectorises them. numpy stays the reference and
# the fallback; tests hold the two to 1e-12. SFTOPT_NO_NUMBA=1 turns the kernels off.
_KERNELS: object | None | bool = False  # False: not built yet; None: no numba


def _kernels():
    """The compiled kernels (a namespace), or None: numba not installed, SFTOPT_NO_NUMBA=1 in
    the environment (read whenever an online system is built, so a process can time both
    paths), or a kernel that does not compile (a RuntimeWarning says why); core.jit.build."""
    global _KERNELS
    if jit.off():
        return None
    if _KERNELS is False:

        def warm(k) -> None:  # compile (or load) now, on one device
            one, two, none = np.ones(1), np.ones((2, 1)), np.zeros(0)
            out = k.residual(one, two, two, two, two, one, one, one, True, 1.0, 1.0)
            k.project(one, two, two, two, two, one, one, one, 1.0)
            k.project_move(one.copy(), one, one, one)
            k.step(one, out, one, none, none, 1.0, 0.0, 0.0, 1.0, True, True, True)

        _KERNELS = jit.build(globals(), {"_k_link_jit": _k_link, "_k_delay_jit": _k_delay},
                             {"residual": _k_residual, "project": _k_project,
                              "project_move": _k_project_move, "step": _k_step},
                             warm, "the online allocator")
    return _KERNELS


_k_link_jit = _k_link


def _k_delay(b, x, w, z, lg, k):
    """Device k's comm delay D, -D' and D'' over its two links (up and down)."""
    i0, a0, c0 = _k_link_jit(b[k], x[0, k], z[0, k], lg[0, k])
    i1, a1, c1 = _k_link_jit(b[k], x[1, k], z[1, k], lg[1, k])
    return (w[0, k] * i0 + w[1, k] * i1, w[0, k] * a0 + w[1, k] * a1,
            w[0, k] * c0 + w[1, k] * c1)


_k_delay_jit = _k_delay


def _k_residual(b, x, w, z, lg, floor, gap, rS, price, ev, et):
    """`_Online.residual` but its logs: rows D, -D', D'', qs, h, s, h/s, phi."""
    m = len(b)
    out = np.empty((8, m))
    for k in range(m):
        D, nD1, D2 = _k_delay_jit(b, x, w, z, lg, k)
        s = gap[k] + et
        sq = np.sqrt(nD1)
        h = D - floor[k]
        qs = (rS[k] / ev) * sq
        phi = (rS[k] * ev) / sq
        if price:
            h = h + qs
        else:
            qs = phi = 0.0
        h = h if (h >= 1e-300 or h != h) else 1e-300  # np.maximum: nan stays nan
        out[0, k], out[1, k], out[2, k], out[3, k] = D, nD1, D2, qs
        out[4, k], out[5, k], out[6, k], out[7, k] = h, s, h / s, phi
    return out


def _k_project(b, x, w, z, lg, floor, gap, q, et):
    """One sweep of `_Online.project` but its logs: rows h/s, h and b (-D' + qs D''/(2(-D')))
    (the Newton step is log(h/s) h / the third)."""
    m = len(b)
    out = np.empty((3, m))
    for k in range(m):
        D, nD1, D2 = _k_delay_jit(b, x, w, z, lg, k)
        s = gap[k] + et
        sq = np.sqrt(nD1)
        qs = q[k] * sq
        h = D - floor[k] + qs
        h = h if (h >= 1e-300 or h != h) else 1e-300
        out[0, k], out[1, k] = h / s, h
        out[2, k] = b[k] * (nD1 + qs * D2 / (2.0 * nD1))
    return out


def _k_project_move(u, lr, h, den):
    """u += clip(log(h/s) h / den, -4, 4); the largest |step| (nan if any is nan)."""
    big = 0.0
    for k in range(len(u)):
        st = lr[k] * h[k] / den[k]
        if st > 4.0:
            st = 4.0
        elif st < -4.0:
            st = -4.0
        u[k] += st
        a = abs(st)
        if a != a or (big == big and a > big):  # a nan stays
            big = a
    return big


def _k_step(b, out, F, phis, Ss, et, gB, gS, P, band, share, price):
    """`_Online.step`: the border's sums, Cramer's rule, then du. ok False: singular border.
    The per-device terms first (a loop the compiler vectorises), then the sums."""
    m = len(b)
    ia = np.empty(m)
    c = np.empty(m)
    d = np.empty(m)
    ba = np.empty(m)
    ea = np.empty(m)
    for k in range(m):
        nD1, D2, qs, h, s, phi = out[1, k], out[2, k], out[3, k], out[4, k], out[5, k], out[7, k]
        ia[k] = h / (-b[k] * (nD1 + qs * D2 / (2.0 * nD1)))  # 1 / (dF_k/du_k)
        c[k] = (-0.5 / h) * qs  # dF_k/dv
        d[k] = -et / s  # dF_k/dtau
        ba[k] = b[k] * ia[k]
        ea[k] = (phi * b[k] * D2 / (2.0 * nD1)) * ia[k]
    a11 = a12 = r1 = a21 = a22 = r2 = sb = sphi = 0.0
    for k in range(m):
        a11 -= ba[k] * d[k]
        a12 -= ba[k] * c[k]
        r1 += ba[k] * F[k]
        a21 -= ea[k] * d[k]
        a22 -= ea[k] * c[k]
        r2 += ea[k] * F[k]
        sb += b[k]
        sphi += out[7, k]
    r1 += -gB * sb
    if not band:
        a11 = a12 = r1 = 0.0
    sp2 = 0.0
    for j in range(len(Ss)):
        sp2 += phis[j] ** 2 / Ss[j]
    a21 += -et * sp2
    a22 += 0.5 * sphi
    r2 += -gS * P
    if not share:
        a21 = a22 = r2 = 0.0
    ok = True
    dtau = dv = 0.0
    if price:
        det = a11 * a22 - a12 * a21
        if det == 0.0 or det != det:
            ok = False
        else:
            dtau, dv = (r1 * a22 - a12 * r2) / det, (a11 * r2 - a21 * r1) / det
    else:
        dtau = r1 / a11 if band else r2 / a21
    du = ia  # reused: du_k = (F_k + c_k dv + d_k dtau) * -ia_k
    for k in range(m):
        du[k] = (F[k] + c[k] * dv + d[k] * dtau) * -ia[k]
    return du, dv, dtau, ok


class _Online:
    """Newton's method on the whole KKT system (one device evaluation per step).

    Every T must exceed R, the least delay some device needs whatever it gets (a talking device
    at its comm floor, with all the band, or a server-only device's compute); under fading the
    optimum sits barely above it (within 1e-4 of R at 10,000 devices: the deepest fade takes a
    huge band). So the unknowns are u_k = log b_k (devices that talk), v = log theta and
    tau = log(T - R), and each delay equation is written as a ratio of what is left above the
    floor, nearly linear in the log unknowns:
      F_k = log(D_k(b_k) - floor_k + sqrt(S_k (-D_k'(b_k)) / theta)) - log(T - C_k - floor_k)
      log sum b = log B,  log (sum_talk sqrt(theta S_k / -D_k') + sum_srv S_j/(T - C_j)) = 0.
    The Jacobian is diagonal plus a two-column border, so a step costs O(K); a backtracking line
    search on the squared residual makes it converge from any start.
    """

    def __init__(self, t: Terms, B: float, talk: np.ndarray, srv: np.ndarray, price: bool):
        self.B, self.price, self.talk = B, price, talk
        self.comm = _Comm(t.up_bits[talk], t.down_bits[talk], t.snr_ul[talk], t.snr_dl[talk])
        self.C, self.S = t.compute[talk], t.server_work[talk]
        self.rS = np.sqrt(self.S)
        self.Cs, self.Ss = t.compute[srv], t.server_work[srv]
        self.band = len(talk) > 0
        self.share = bool(price or len(srv))
        self._reach()
        self.fast = _kernels()  # compiled kernels (numba) or None: the numpy expressions

    def _reach(self) -> None:
        reach = self.C + self.comm.floor
        self.R = float(max(reach.max(initial=-np.inf), self.Cs.max(initial=-np.inf)))
        self.gap, self.gap_s = self.R - reach, self.R - self.Cs  # >= 0, exact 0 at the max

    def regain(self, t: Terms) -> _Online:
        """The same system for terms that differ from these in the channel only (a fading
        round of `Allocator`): the constants are kept, the scratch arrays too."""
        self.comm.regain(t.snr_ul[self.talk], t.snr_dl[self.talk])
        self._reach()
        return self

    def tau(self, T: float) -> float:
        """tau for a round delay T (T at or below R: just above R)."""
        return float(np.log(max(T - self.R, 1e-12 * abs(self.R), 1e-300)))

    def residual(self, u: np.ndarray, v: float, tau: float) -> dict[str, np.ndarray] | None:
        """The residuals at (u, v, tau), what the step needs, and the merit m (sum of squares);
        None where they are not finite."""
        if self.fast is not None:
            return self._residual_fast(u, v, tau)
        b = np.exp(u)
        D, nD1, D2 = self.comm(b)
        et = math.exp(tau)
        s = self.gap + et
        sq = np.sqrt(nD1)
        h = D - self.comm.floor
        if self.price:
            ev = math.exp(0.5 * v)
            qs = (self.rS / ev) * sq  # sqrt(S (-D') / theta): the server's part of the delay
            phi = (self.rS * ev) / sq
            h += qs
        else:
            qs = phi = np.zeros_like(b)
        # h > 0 in exact arithmetic; at a band so large that D rounds to its floor, the least
        # positive number keeps the log finite (the step then shrinks that band)
        np.maximum(h, 1e-300, out=h)
        F = np.log(h / s)
        phis = self.Ss / (self.gap_s + et)
        P = float(phi.sum() + phis.sum())
        with np.errstate(divide="ignore"):
            gB = math.log(b.sum() / self.B) if self.band else 0.0
            gS = math.log(P) if self.share and P > 0 else (0.0 if not self.share else np.inf)
        m = float(F @ F) + gB * gB + gS * gS
        if not math.isfinite(m):
            return None
        return {"u": u, "b": b, "D": D, "nD1": nD1, "D2": D2, "qs": qs, "h": h, "s": s,
                "et": et, "F": F, "phi": phi, "phis": phis, "P": P, "gB": gB, "gS": gS, "m": m}

    def _residual_fast(self, u: np.ndarray, v: float, tau: float
                       ) -> dict[str, np.ndarray] | None:
        """`residual` with its arithmetic in the compiled kernel."""
        et = math.exp(tau)
        ev = math.exp(0.5 * v) if self.price else 1.0
        x, w = self.comm._eval.x, self.comm._eval.w
        # (floating-point warnings are off here: see `_solve_parts`)
        b = np.exp(u)
        z = x / b
        out = self.fast.residual(b, x, w, z, np.log1p(z), self.comm.floor, self.gap, self.rS,
                                 self.price, ev, et)
        F = np.log(out[6])
        phi = out[7]
        if len(self.Ss):
            phis = self.Ss / (self.gap_s + et)
            P = float(phi.sum() + phis.sum())
        else:
            phis, P = self.Ss, float(phi.sum())
        sb = float(b.sum())
        gB = math.log(sb / self.B) if self.band and sb > 0 else (np.inf if self.band else 0.0)
        gS = math.log(P) if self.share and P > 0 else (0.0 if not self.share else np.inf)
        m = float(F @ F) + gB * gB + gS * gS
        if not math.isfinite(m):
            return None
        return {"u": u, "b": b, "D": out[0], "nD1": out[1], "D2": out[2], "qs": out[3],
                "h": out[4], "s": out[5], "et": et, "F": F, "phi": phi, "phis": phis,
                "P": P, "gB": gB, "gS": gS, "m": m, "out": out}

    def step(self, r: dict[str, np.ndarray]) -> tuple[np.ndarray, float, float]:
        """The Newton step (du, dv, dtau): du_k from row k given (dv, dtau), which solve the two
        linearised coupling equations (Cramer's rule)."""
        if "out" in r:  # the compiled kernel's residual: its step too
            du, dv, dtau, ok = self.fast.step(r["b"], r["out"], r["F"], r["phis"], self.Ss,
                                              r["et"], r["gB"], r["gS"], r["P"], self.band,
                                              self.share, self.price)
            if not ok:
                raise np.linalg.LinAlgError("singular border")
            return du, dv, dtau
        b, F, phi, h, nD1, D2 = r["b"], r["F"], r["phi"], r["h"], r["nD1"], r["D2"]
        # d F_k / d u_k = -b (-D' + qs D'' / (2 (-D'))) / h < 0; its inverse ia
        ia = h / (-b * (nD1 + r["qs"] * D2 / (2.0 * nD1)))
        c = (-0.5 / h) * r["qs"]  # dF_k/dv
        d = -r["et"] / r["s"]  # dF_k/dtau
        a11 = a12 = r1 = a21 = a22 = r2 = 0.0
        if self.band:  # linearised log sum b: (sum b du) / sum b = -gB
            ba = b * ia
            a11, a12, r1 = -(ba @ d), -(ba @ c), -r["gB"] * float(b.sum()) + ba @ F
        if self.share:  # linearised log P: dP / P = -gS
            ea = (phi * b * D2 / (2.0 * nD1)) * ia  # (d phi_k / d u_k) / (dF_k/du_k)
            dps = -r["et"] * float((r["phis"] ** 2 / self.Ss).sum())  # server-only, d/dtau
            a21, a22 = dps - ea @ d, 0.5 * float(phi.sum()) - ea @ c
            r2 = -r["gS"] * r["P"] + ea @ F
        if self.price:
            det = a11 * a22 - a12 * a21
            if not det != 0.0:
                raise np.linalg.LinAlgError("singular border")
            dtau, dv = (r1 * a22 - a12 * r2) / det, (a11 * r2 - a21 * r1) / det
        else:
            dtau, dv = (r1 / a11 if self.band else r2 / a21), 0.0
        du = (F + c * dv + d * dtau) * -ia
        return du, float(dv), float(dtau)

    def project(self, u: np.ndarray, v: float, tau: float, tol: float = 1e-4,
                max_iter: int = 30) -> np.ndarray:
        """log b solving every device's own equation F_k = 0 at (v, tau), from ``u``: Newton's
        method per device, vectorised, steps clipped to +-4; F_k is nearly linear in log b, so
        a few steps reach ``tol`` (no bracket needed: this only makes a start or a trial point,
        whose merit decides). A trial (v, tau) may ask a band beyond what rounding resolves:
        its slope is then nan, the trial's merit too, and the line search rejects it."""
        if not self.band:
            return u
        # from within e^100 of the whole band (a trial may propose any u): 30 steps of at most
        # 4 then keep every band a finite positive number
        lb = math.log(self.B)
        if self.fast is not None:
            return self._project_fast(u, v, tau, lb, tol, max_iter)
        s = self.gap + math.exp(tau)
        q = self.rS * math.exp(-0.5 * v) if self.price else np.zeros(len(u))
        u = np.clip(u, lb - 100.0, lb + 20.0)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            for _ in range(max_iter):
                b = np.exp(u)
                D, nD1, D2 = self.comm(b)
                sq = np.sqrt(nD1)
                qs = q * sq
                h = np.maximum(D - self.comm.floor + qs, 1e-300)
                # Newton: du = -F / F' with F' = -b (nD1 + qs D2 / (2 nD1)) / h
                step = np.log(h / s) * h / (b * (nD1 + qs * D2 / (2.0 * nD1)))
                np.clip(step, -4.0, 4.0, out=step)
                u += step
                if not np.abs(step).max(initial=0.0) > tol:  # converged (or nan: rejected)
                    break
        return u

    def _project_fast(self, u: np.ndarray, v: float, tau: float, lb: float, tol: float,
                      max_iter: int) -> np.ndarray:
        """`project` with its arithmetic in the compiled kernels."""
        x, w = self.comm._eval.x, self.comm._eval.w
        et = math.exp(tau)
        q = self.rS * math.exp(-0.5 * v) if self.price else np.zeros(len(u))
        u = np.minimum(np.maximum(u, lb - 100.0), lb + 20.0)  # np.clip, without its wrapper
        # (floating-point warnings are off here: see `_solve_parts`)
        for _ in range(max_iter):
            b = np.exp(u)
            z = x / b
            out = self.fast.project(b, x, w, z, np.log1p(z), self.comm.floor, self.gap, q, et)
            if not self.fast.project_move(u, np.log(out[0]), out[1], out[2]) > tol:
                break  # converged (or nan: rejected)
        return u

    def _search(self, u: np.ndarray, v: float, tau: float, du: np.ndarray, dv: float,
                dtau: float, m: float) -> tuple | None:
        """A point along the Newton direction that decreases the merit enough (Armijo):
        1. the Newton step, scaled so no log unknown moves by more than 3 (the local model is
           trusted within a factor ~e^3): taken near the answer, where Newton converges fast;
        2. far from it, the step in (v, tau) with every device's own equation solved again
           (`project`), halved up to 6 times: the step of Newton's method on the two coupling
           equations alone. The device equations are nearly linear in log b but not in tau,
           whose full step the plain one cannot take (a device whose band becomes most of the
           band once T nears its floor: the sum of bands bends like a hockey stick);
        3. the Newton step halved until the merit decreases (near the rounding floor, merit
           <= 1e-16, two halvings at most: what they do not decrease never will).
        """
        big = max(np.abs(du).max(initial=0.0), abs(dv), abs(dtau)) / 3.0
        alpha = 1.0 / big if big > 1.0 else 1.0
        rn = self.residual(u + alpha * du, v + alpha * dv, tau + alpha * dtau)
        if rn is not None and rn["m"] <= (1.0 - 1e-4 * alpha) * m:
            return rn["u"], v + alpha * dv, tau + alpha * dtau, rn, alpha
        if m > 1e-16 and self.band:
            a = min(1.0, 10.0 / max(abs(dv), abs(dtau), 1e-300))  # T - R, theta within e^10
            for _ in range(7):
                vn, tn = v + a * dv, tau + a * dtau
                rn = self.residual(self.project(u + a * du, vn, tn), vn, tn)
                if rn is not None and rn["m"] <= (1.0 - 1e-4 * a) * m:
                    return rn["u"], vn, tn, rn, a
                a *= 0.5
        least = 0.2 if m <= 1e-16 else 1e-12
        alpha *= 0.5
        while alpha >= least:
            un, vn, tn = u + alpha * du, v + alpha * dv, tau + alpha * dtau
            rn = self.residual(un, vn, tn)
            if rn is not None and rn["m"] <= (1.0 - 1e-4 * alpha) * m:
                return un, vn, tn, rn, alpha
            alpha *= 0.5
        return None

    def solve(self, u: np.ndarray, v: float, tau: float, tol: float, max_iter: int = 200
              ) -> tuple[np.ndarray, float, float, dict[str, np.ndarray], int] | None:
        r = self.residual(u, v, tau)
        if r is None:
            return None
        for it in range(1, max_iter + 1):
            m = r["m"]
            if m <= tol**2:
                return u, v, tau, r, it - 1
            try:
                du, dv, dtau = self.step(r)
            except np.linalg.LinAlgError:  # a singular border (extreme scales): next start
                return None
            if not (np.isfinite(du).all() and np.isfinite(dv) and np.isfinite(dtau)):
                return None
            got = self._search(u, v, tau, du, dv, dtau, m)
            if got is None:  # no decrease left: rounding level, or stuck (the bound decides)
                return (u, v, tau, r, it) if m <= 1e-16 else None
            un, vn, tn, rn, alpha = got
            small = max(np.abs(un - u).max(initial=0.0), abs(vn - v), abs(tn - tau))
            u, v, tau, r = un, vn, tn, rn
            # converged, or at the rounding floor (a full step no longer decreases the merit
            # enough to matter; the duality bound checks the answer)
            if r["m"] <= tol**2 or small <= 1e-15:
                return u, v, tau, r, it
        return None


def _online_start(fz: _Online, t: Terms, talk: np.ndarray, B: float
                 ) -> tuple[np.ndarray, float, float]:
    """Equal bands; theta making those bands' KKT shares sum to one half; T the largest delay."""
    m = len(talk)
    b = np.full(m, B / max(m, 1))
    u = np.log(b)
    v = 0.0
    T = 0.0
    if m:
        D, nD1, _ = fz.comm(b)
        T = float((fz.C + D).max())
        if fz.price:
            # sqrt(theta) sum sqrt(S/-D') = 1 - (share the server-only devices take)
            v = float(-2.0 * np.log(np.sqrt(fz.S / nD1).sum()) + np.log(0.5))
            srv = np.sqrt(fz.S * np.exp(-v) * nD1)
            T = float((fz.C + D + srv).max())
    if len(fz.Cs):
        T = max(T, float((fz.Cs + len(fz.Cs) * 2.0 * fz.Ss).max()))
    return u, v, fz.tau(T)


def _online_projected_start(fz: _Online, t: Terms, talk: np.ndarray, B: float,
                     base: tuple[np.ndarray, float, float] | None = None
                     ) -> tuple[np.ndarray, float, float]:
    """A start (the plain one, or ``base`` = (u, v, tau), e.g. the previous round's optimum:
    its margin T - R above the floor carries over, not T, which follows this round's deepest
    fade) with every device's own equation F_k = 0 solved for its band (`_Online.project`), so
    Newton only has the two coupling equations left to fix."""
    u, v, tau = _online_start(fz, t, talk, B) if base is None else base
    return fz.project(u, v, tau), v, tau  # a start: coarse is enough


def _dual_bound(t: Terms, B: float, talk: np.ndarray, srv: np.ndarray, b: np.ndarray,
                phi: np.ndarray, theta: float,
                comm_at_b: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    """Lagrangian lower bound on the optimal round delay from multipliers read off (b, phi).

    For any weights w >= 0 with sum w = 1 and prices lambda, nu >= 0, weak duality gives
    T* >= sum_k [w_k C_k + min_b (w_k D_k(b) + lambda b) + 2 sqrt(w_k S_k nu)] - lambda B - nu.
    The KKT conditions give w_k = lambda / -D_k'(b_k) (devices that talk) and
    w_k = nu phi_k^2 / S_k (server only), lambda = theta nu. With these weights b_k itself is
    the inner minimiser (w_k (-D_k'(b_k)) = lambda, and w_k D_k(b) + lambda b is convex), so
    the bound costs one evaluation of D and D' at b (``comm_at_b``: (D, -D') of the talking
    devices at b[talk], when the caller has them).
    """
    bt = b[talk]
    if comm_at_b is None:
        comm = _Comm(t.up_bits[talk], t.down_bits[talk], t.snr_ul[talk], t.snr_dl[talk])
        D, nD1 = comm(bt, order=1) if len(talk) else (np.zeros(0), np.zeros(0))
    else:
        D, nD1 = comm_at_b
    S_t, S_s = t.server_work[talk], t.server_work[srv]
    band_w = 1.0 / nD1 if np.isfinite(theta) or not len(srv) else np.zeros(len(talk))
    lam_rel = theta if np.isfinite(theta) else (1.0 if len(talk) else 0.0)
    ws = phi[srv] ** 2 / S_s
    w_talk = lam_rel * band_w
    total = w_talk.sum() + ws.sum()
    if not total > 0:
        return 0.0
    nu = 1.0 / total if (np.isfinite(theta) or len(srv)) else 0.0
    lam = lam_rel * nu if np.isfinite(theta) else (1.0 / total if len(talk) else 0.0)
    w_t, w_s = w_talk / total, ws / total
    q = float(w_t @ t.compute[talk] + w_s @ t.compute[srv]) - lam * B - nu
    q += float(2.0 * np.sqrt(w_t * S_t * nu).sum() + 2.0 * np.sqrt(w_s * S_s * nu).sum())
    if len(talk):
        q += float(w_t @ D + lam * bt.sum()) if lam > 0 else float(
            w_t @ (LN2 * (t.up_bits[talk] / t.snr_ul[talk] + t.down_bits[talk] / t.snr_dl[talk])))
    return q


def _solve_parts(t: Terms, B: float, talks: np.ndarray, serves: np.ndarray, tol: float,
                 warm: tuple[np.ndarray, float, float] | None, cache: dict | None = None
                 ) -> tuple[np.ndarray, np.ndarray, float, float, int,
                            tuple[np.ndarray, float, float] | None] | None:
    """Fused Newton on the devices that use a resource, to residuals ``tol``: (b, phi, theta,
    bound, steps, warm). Online (``cache`` given: `Allocator`'s, which keeps each part's
    system between rounds) by `_Online` from ``warm``; otherwise by `_Fused`."""
    k = len(t.compute)
    talk = np.flatnonzero(talks)
    srv = np.flatnonzero(~talks & serves)
    none = np.zeros(0, dtype=int)
    if (talks & serves).any():
        parts = [(talk, srv, True)]
    else:  # the two resources do not interact: two independent problems
        parts = [(talk, none, False), (none, srv, False)]
    b, phi = np.zeros(k), np.zeros(k)
    price, bound, its, new_warm = float("nan"), 0.0, 0, None
    for tk, sv, pr in parts:
        if len(tk) == 0 and len(sv) == 0:
            continue
        if cache is None:
            fz = _Fused(t, B, tk, sv, pr)
            # Newton converges in ~10-20 steps from a good start; a start that needs more is
            # abandoned early for the next one (the last gets the full budget)
            tries = [(_fused_start, 25), (_projected_start, 60), (_fused_start, 200)]
        else:
            key = (pr, len(tk), len(sv))
            fz = cache[key].regain(t) if key in cache else _Online(t, B, tk, sv, pr)
            cache[key] = fz
            start = warm if (warm is not None and pr and len(warm[0]) == len(tk)) else None
            # the previous round's optimum, then the plain starts
            tries = [] if start is None else [
                (lambda fz, t, tk, B, w=start: _online_projected_start(fz, t, tk, B, w), 25)]
            tries += [(_online_projected_start, 60), (_online_start, 200)]
        got = None
        # the compiled path leaves floating-point warnings off for the whole solve (one switch
        # instead of one per evaluation: each costs microseconds): a trial point may overflow
        # or divide by zero, its merit is then not finite and the line search rejects it
        quiet = getattr(fz, "fast", None) is not None
        with np.errstate(all="ignore") if quiet else contextlib.nullcontext():
            for guess, budget in tries:
                got = fz.solve(*guess(fz, t, tk, B), tol=tol, max_iter=budget)
                if got is not None:
                    break
        if got is None:
            return None
        u, v, T_or_tau, r, n = got
        its += n
        b[tk], phi[tk], phi[sv] = r["b"], r["phi"], r["phis"]
        theta = float(np.exp(v)) if pr else float("nan")
        if pr:
            price, new_warm = theta, (u, v, T_or_tau)
        bound = max(bound, _dual_bound(t, B, tk, sv, b, phi, theta,
                                       None if cache is None else (r["D"], r["nD1"])))
    return b, phi, price, bound, its, new_warm


def exact_allocation(t: Terms, bandwidth_hz: float, *, rel_tol: float = 1e-9,
                     warm: tuple[np.ndarray, float, float] | None = None,
                     _cache: dict | None = None) -> Allocation:
    """Minimise max_k T_k over b >= 0, sum b <= B, phi >= 0, sum phi <= 1 (to rel_tol).

    ``round_delay`` is the delay the returned (b, phi) give under the cost model and
    ``lower_bound`` a Lagrangian (weak duality) bound on the optimum: their gap certifies the
    answer; should Newton's method fail or the gap exceed rel_tol, the nested method takes over.
    ``price`` is theta = lambda/nu at the optimum (nan when the resources do not interact).
    Online (``warm``, a previous solution's ``warm``, or ``_cache``: `Allocator`'s, keeping the
    systems built for terms that differ in the channel only) the system is `_Online`'s, which
    copes with deep fades and reaches the certificate in fewer steps; otherwise `_Fused`'s,
    whose plans the committed references pin (tests/test_reference.py: a local search turns
    another allocator's last bits into other moves).
    """
    k = len(t.compute)
    if k == 0:
        return _empty()
    B = float(bandwidth_hz)
    talks = (t.up_bits > 0) | (t.down_bits > 0)
    serves = t.server_work > 0
    if B <= 0 and talks.any():
        return _infeasible(k, "bandwidth: B = 0 but devices have data to send")
    dead = ((t.up_bits > 0) & ~(t.snr_ul > 0)) | ((t.down_bits > 0) & ~(t.snr_dl > 0))
    if dead.any():
        return _infeasible(k, f"bandwidth: devices {np.flatnonzero(dead).tolist()} have zero "
                              "channel gain and data to send")
    idle = ~talks & ~serves
    T_idle = float(t.compute[idle].max()) if idle.any() else 0.0
    # online: residuals of 0.03 rel_tol give a gap of about that (the delay is first order in
    # them, the dual bound second order); when the certificate says otherwise, Newton goes on
    # to 1e-3 rel_tol, and only then the nested method takes over
    online = _cache is not None or warm is not None
    cache = ({} if _cache is None else _cache) if online else None
    steps = 0
    for tol in (0.03 * rel_tol, 1e-3 * rel_tol) if online else (1e-3 * rel_tol,):
        got = _solve_parts(t, B, talks, serves, tol, warm, cache)
        if got is None:
            continue
        b, phi, price, bound, its, new_warm = got
        steps += its
        warm = new_warm if new_warm is not None else warm
        # land on the budgets exactly (the residuals are ~tol)
        if b.sum() > B:
            b *= B / b.sum()
        if phi.sum() > 1.0:
            phi /= phi.sum()
        delay = float(max(_delay(t, b, phi).max(), T_idle))
        bound = max(bound, T_idle)
        if delay - bound <= rel_tol * delay:
            return Allocation(b, phi, delay, steps, price, warm=new_warm, lower_bound=bound)
    return _nested(t, B, rel_tol)


def _nested(t: Terms, bandwidth_hz: float, rel_tol: float) -> Allocation:
    """Fallback when Newton on the full system fails: nested safeguarded root finds."""
    k = len(t.compute)
    B = float(bandwidth_hz)
    talks = (t.up_bits > 0) | (t.down_bits > 0)
    ex = _Exact(t, B)
    # each device alone with the whole band and server: a lower bound on T
    full = np.full(k, B)
    alone = _delay(t, np.where(talks, full, 0.0), np.where(t.server_work > 0, 1.0, 0.0))
    T_lo = float(alone.max())
    eq = equal_allocation(t, B)
    T_hi = eq.round_delay
    if len(ex.idle) and t.compute[ex.idle].max() >= T_lo:
        G, _, sol = ex.value(T_lo)  # an idle device is the bottleneck: is T_lo reachable?
        if sol is not None and G <= 1.0 + 1e-12:
            b, phi = ex.assemble(sol)
            return Allocation(b, phi, float(_delay(t, b, phi).max()), 1,
                              float(sol["theta"]))
    if T_hi <= T_lo * (1 + rel_tol):
        return Allocation(eq.bandwidth, eq.share, T_hi, 0, message="equal shares are optimal")
    lo, hi = T_lo, T_hi
    T = T_hi
    best = None
    it = 0
    while it < 200:
        it += 1
        G, dG, sol = ex.value(T)
        if sol is None or G > 1.0:
            lo = T
        else:
            hi = T
        if sol is not None:
            best = (T, sol)
            h = 1.0 / G - 1.0  # increasing in T; roughly linear where G ~ sum S/(T - a)
            if abs(h) <= 1e-13:
                break
            dh = -dG / G**2
            Tn = T - h / dh if dh > 0 else 0.5 * (lo + hi)
        else:
            Tn = 0.5 * (lo + hi)
        if not (lo < Tn < hi):
            Tn = 0.5 * (lo + hi)
        if hi - lo <= 0.1 * rel_tol * hi or abs(Tn - T) <= 0.1 * rel_tol * T:
            T = Tn
            break
        T = Tn
    if best is None or abs(best[0] - T) > rel_tol * T:
        G, _, sol = ex.value(hi)
        if sol is not None:
            best = (hi, sol)
    if best is None:
        return Allocation(eq.bandwidth, eq.share, T_hi, it, message="fell back to equal shares")
    b, phi = ex.assemble(best[1])
    delay = float(_delay(t, b, phi).max())
    if not delay <= T_hi:  # never worse than the equal split we started from
        return Allocation(eq.bandwidth, eq.share, T_hi, it, message="fell back to equal shares")
    talk = np.flatnonzero(talks)
    srv = np.flatnonzero(~talks & (t.server_work > 0))
    none = np.zeros(0, dtype=int)
    if len(ex.both):
        bound = _dual_bound(t, B, talk, srv, b, phi, float(best[1]["theta"]))
    else:
        bound = max(_dual_bound(t, B, talk, none, b, phi, np.nan),
                    _dual_bound(t, B, none, srv, b, phi, np.nan))
    idle = ~talks & ~(t.server_work > 0)
    bound = max(bound, float(t.compute[idle].max()) if idle.any() else 0.0)
    return Allocation(b, phi, delay, it, float(best[1]["theta"]), message="nested method",
                      lower_bound=bound)


def delay_weights(t: Terms, alloc: Allocation) -> np.ndarray:
    """KKT weights w (w >= 0, sum w = 1) of an exact allocation: by the envelope theorem, adding
    a small constant delay dC_k to device k raises the optimal round delay by w_k dC_k.

    From the stationarity conditions, w_k = lambda / -D_k'(b_k) for devices that talk and
    w_k = nu phi_k^2 / S_k for the others, lambda = theta nu (see `exact_allocation`).
    """
    k = len(t.compute)
    w = np.zeros(k)
    if k == 0 or not np.isfinite(alloc.round_delay):
        return w
    talks = (t.up_bits > 0) | (t.down_bits > 0)
    serves = t.server_work > 0
    d = _delay(t, alloc.bandwidth, alloc.share)
    T = max(float(d.max()), alloc.round_delay)
    top = d >= T * (1.0 - 1e-7)
    idle = ~talks & ~serves
    if (idle & top).any():  # a device with nothing to share is the bottleneck
        w[idle & top] = 1.0
        return w / w.sum()
    comm = _Comm(t.up_bits[talks], t.down_bits[talks], t.snr_ul[talks], t.snr_dl[talks])
    nD1 = comm(np.maximum(alloc.bandwidth[talks], 1e-300))[1]
    theta = alloc.price
    srv = ~talks & serves
    w[talks] = (theta if np.isfinite(theta) else 1.0) / nD1
    w[srv] = alloc.share[srv] ** 2 / t.server_work[srv]
    if not np.isfinite(theta):  # separate problems: only the binding one moves T
        if not (top & talks).any():
            w[talks] = 0.0
        if not (top & srv).any():
            w[srv] = 0.0
        tot_t, tot_s = w[talks].sum(), w[srv].sum()
        w[talks] /= tot_t if tot_t > 0 else 1.0
        w[srv] /= tot_s if tot_s > 0 else 1.0
    total = w.sum()
    return w / total if total > 0 else w


# --------------------------------------------------------------------------- SLSQP
def sqp_allocation(t: Terms, bandwidth_hz: float, *, max_iter: int = 500, tol: float = 1e-10,
                   deadline: Deadline | None = None) -> Allocation:
    """The same problem by scipy's SLSQP (sequential quadratic programming), as published.

    Unknowns x = (b/B, phi, T/T_eq) from the equal split; constraints T_k <= T, sum b <= B,
    sum phi <= 1 with analytic gradients. A local method on a convex problem: it reaches the
    optimum when it converges, but cost grows with K^3 (dense QP subproblems) and it may stop
    early; ``round_delay`` is always what the returned (b, phi) give under the cost model.
    Past ``deadline`` SLSQP stops at its current iterate, made feasible by scaling (or the
    equal split if that is better).
    """
    from scipy.optimize import minimize

    k, B = len(t.compute), float(bandwidth_hz)
    done, eq = _equal_start(t, B)
    if done is not None:
        return done
    # SLSQP is stopped between iterations only, and one costs ~K^3: an iteration that cannot
    # end before the deadline is not started (the time limit holds at 1,000 devices)
    per_iter = [SLSQP_S_PER_K3 * k**3]
    if deadline is not None and deadline.remaining() < per_iter[0]:
        deadline.hit = True
        return Allocation(eq.bandwidth, eq.share, eq.round_delay, 0,
                          message=f"SLSQP not started: an iteration at {k} devices takes about "
                                  f"{per_iter[0]:.2g} s, more than the time left (kept the "
                                  "equal split)")
    last = [time.perf_counter()]

    def stop_at_deadline(_x: np.ndarray) -> None:
        now = time.perf_counter()
        per_iter[0] = max(per_iter[0], now - last[0])
        last[0] = now
        if deadline.expired() or deadline.remaining() < per_iter[0]:
            deadline.hit = True
            raise StopIteration  # scipy >= 1.11 ends SLSQP cleanly (status 99)
    scale = eq.round_delay
    talks = (t.up_bits > 0) | (t.down_bits > 0)
    serves = t.server_work > 0
    comm = _Comm(t.up_bits, t.down_bits, t.snr_ul, t.snr_dl)
    floor = 1e-12

    def parts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        beta, phi = np.maximum(x[:k], floor), np.maximum(x[k:2 * k], floor)
        D, nD1, _ = comm(beta * B)
        D = np.where(talks, D, 0.0)
        nD1 = np.where(talks, nD1, 0.0)
        srv = np.where(serves, t.server_work / phi, 0.0)
        return beta, phi, (t.compute + D + srv) / scale, (nD1, phi)

    def cons(x: np.ndarray) -> np.ndarray:
        _, _, Tk, _ = parts(x)
        return np.concatenate([x[-1] - Tk, [1.0 - x[:k].sum(), 1.0 - x[k:2 * k].sum()]])

    def jac(x: np.ndarray) -> np.ndarray:
        _, phi, _, (nD1, _) = parts(x)
        J = np.zeros((k + 2, 2 * k + 1))
        idx = np.arange(k)
        J[idx, idx] = nD1 * B / scale  # -dT_k/dbeta_k
        J[idx, k + idx] = np.where(serves, t.server_work / phi**2, 0.0) / scale
        J[:k, -1] = 1.0
        J[k, :k] = -1.0
        J[k + 1, k:2 * k] = -1.0
        return J

    x0 = np.concatenate([eq.bandwidth / B, eq.share, [1.0]])
    grad = np.zeros(2 * k + 1)
    grad[-1] = 1.0
    res = minimize(lambda x: x[-1], x0, jac=lambda x: grad, method="SLSQP",
                   bounds=[(floor, 1.0)] * (2 * k) + [(0.0, None)],
                   constraints=[{"type": "ineq", "fun": cons, "jac": jac}],
                   options={"maxiter": max_iter, "ftol": tol},
                   callback=None if deadline is None else stop_at_deadline)
    x = res.x
    b = np.where(talks, np.maximum(x[:k], 0.0) * B, 0.0)
    phi = np.where(serves, np.maximum(x[k:2 * k], 0.0), 0.0)
    if b.sum() > B:
        b *= B / b.sum()
    if phi.sum() > 1.0:
        phi /= phi.sum()
    delay = float(_delay(t, b, phi).max())
    if not delay <= eq.round_delay:  # SLSQP wandered off: keep the start
        return Allocation(eq.bandwidth, eq.share, eq.round_delay, int(res.nit),
                          message=f"SLSQP: {res.message} (kept the equal split)")
    return Allocation(b, phi, delay, int(res.nit), message=f"SLSQP: {res.message}")


# --------------------------------------------------------------------------- conic (cvxpy)
def conic_allocation(t: Terms, bandwidth_hz: float, *, solver: str = "CLARABEL") -> Allocation:
    """The same convex program as a conic model, solved by cvxpy (default CLARABEL): an
    independent route beside the exact allocator, for checking it or where a user wants a
    modelling-language formulation to extend.

    r(b) = b log2(1 + x/b) = -rel_entr(b, b + x) / ln 2 is concave (exponential cone); U/r
    and S/phi are inv_pos of it. Bands are scaled by B/K, shares by 1/K, times by the equal
    split's delay. ``round_delay`` is the cost model's delay of the returned (b, phi), scaled
    into the budgets; an interior-point solver is accurate to about 1e-6 relative here.
    """
    try:
        import cvxpy as cp
    except ImportError:
        raise Unavailable("the conic allocator needs cvxpy, not installed") from None

    k, B = len(t.compute), float(bandwidth_hz)
    done, eq = _equal_start(t, B)
    if done is not None:
        return done
    scale = eq.round_delay
    talk = np.flatnonzero((t.up_bits > 0) | (t.down_bits > 0))
    srv = np.flatnonzero(t.server_work > 0)
    unit = B / k  # bands in units of the equal split
    delay = t.compute / scale
    cons = []
    g = p = None
    if len(talk):
        g = cp.Variable(len(talk), nonneg=True)
        ru, rd = cp.Variable(len(talk)), cp.Variable(len(talk))
        cons += [cp.sum(g) <= k,  # sum b <= B (in units of B/K: coefficients near 1)
                 ru <= -cp.rel_entr(g, g + t.snr_ul[talk] / unit) / LN2,
                 rd <= -cp.rel_entr(g, g + t.snr_dl[talk] / unit) / LN2]
        comm = (cp.multiply(t.up_bits[talk] / (unit * scale), cp.inv_pos(ru))
                + cp.multiply(t.down_bits[talk] / (unit * scale), cp.inv_pos(rd)))
        delay = delay + _scatter(comm, talk, k)
    if len(srv):
        p = cp.Variable(len(srv), nonneg=True)
        cons.append(cp.sum(p) <= k)
        delay = delay + _scatter(cp.multiply(t.server_work[srv] * k / scale, cp.inv_pos(p)),
                                 srv, k)
    T = cp.Variable()
    prob = cp.Problem(cp.Minimize(T), [*cons, delay <= T])
    try:
        with warnings.catch_warnings():  # "optimal_inaccurate" is said in the message instead
            warnings.simplefilter("ignore", UserWarning)
            prob.solve(solver=solver)
    except cp.error.SolverError as exc:
        return Allocation(eq.bandwidth, eq.share, eq.round_delay,
                          message=f"cvxpy {solver} failed ({exc}); kept the equal split")
    if prob.status not in ("optimal", "optimal_inaccurate"):
        return Allocation(eq.bandwidth, eq.share, eq.round_delay,
                          message=f"cvxpy {solver}: {prob.status}; kept the equal split")
    b, phi = np.zeros(k), np.zeros(k)
    if g is not None:
        b[talk] = np.maximum(g.value, 0.0) * unit
    if p is not None:
        phi[srv] = np.maximum(p.value, 0.0) / k
    b *= min(1.0, B / b.sum()) if b.sum() > 0 else 1.0
    phi /= max(1.0, phi.sum())
    stats = prob.solver_stats
    return Allocation(b, phi, float(_delay(t, b, phi).max()),
                      int(stats.num_iters or 0) if stats is not None else 0,
                      message=f"cvxpy {solver}: {prob.status}")


def _scatter(expr, idx: np.ndarray, k: int):
    """A length-k expression with ``expr`` at positions ``idx`` and 0 elsewhere."""
    import scipy.sparse as sp

    place = sp.csr_matrix((np.ones(len(idx)), (idx, np.arange(len(idx)))), shape=(k, len(idx)))
    return place @ expr


# --------------------------------------------------------------------------- dispatch, online
def allocate(t: Terms, bandwidth_hz: float, method: str = "exact", **options: float) -> Allocation:
    """One allocation by name: "exact" (certified optimum), "sqp" (SLSQP), "conic" (cvxpy),
    "equal" (B/K, 1/K)."""
    if method == "exact":
        return exact_allocation(t, bandwidth_hz, **options)
    if method == "sqp":
        return sqp_allocation(t, bandwidth_hz, **options)
    if method == "conic":
        return conic_allocation(t, bandwidth_hz, **options)
    if method == "equal":
        if options:
            raise TypeError(f"equal allocation takes no options, got {sorted(options)}")
        return equal_allocation(t, bandwidth_hz)
    raise ValueError(f"allocation method must be one of {METHODS}, got {method!r}")


class Allocator:
    """Small-timescale allocator for fixed cuts and levels, called once per round.

    Builds the delay constants once; ``step(gains)`` re-allocates for one fading draw, where
    ``gains`` are per-device power-gain *factors* e_k (the Rayleigh draw, mean 1) multiplying the
    instance's large-scale gains h_k (None = the average channel, e = 1). The exact method
    warm-starts Newton from the previous round's solution.
    """

    def __init__(self, instance: SplitInstance, cuts: np.ndarray, levels: np.ndarray,
                 method: str = "exact", **options: float):
        if method not in METHODS:
            raise ValueError(f"allocation method must be one of {METHODS}, got {method!r}")
        self.method, self.options = method, options
        self.terms = terms(instance, cuts, levels)
        self.bandwidth = instance.arrays.bandwidth
        self.device_ids = list(instance.arrays.device_ids)
        self._index = {d: k for k, d in enumerate(self.device_ids)}
        self._warm: tuple[np.ndarray, float, float] | None = None
        self._systems: dict = {}  # the exact method's Newton systems, kept between rounds

    def gain_factors(self, gains: Mapping[str, float] | np.ndarray | Sequence[float]
                     ) -> np.ndarray:
        """``gains`` as one factor per device in the instance's order: a mapping from device id
        to factor (every device exactly once: a device left out is an error, likelier a bug
        than an average channel) or an array of one factor per device; each finite and > 0
        (ValueError naming what is wrong otherwise)."""
        K = len(self.device_ids)
        if isinstance(gains, Mapping):
            unknown = [d for d in gains if d not in self._index]
            missing = [d for d in self.device_ids if d not in gains]
            if unknown or missing:
                raise ValueError("gains: one factor per device id" +
                                 (f"; unknown ids {unknown[:5]}" if unknown else "") +
                                 (f"; missing ids {missing[:5]}" if missing else ""))
            e = np.array([gains[d] for d in self.device_ids], dtype=float)
        else:
            try:
                e = np.asarray(gains, dtype=float)
            except (TypeError, ValueError):
                raise ValueError(f"gains: expected {K} numbers or a mapping from device id to "
                                 f"factor, got {type(gains).__name__}") from None
            if e.shape != (K,):
                raise ValueError(f"gains: expected {K} factors (one per device, in the "
                                 f"instance's order), got shape {e.shape}")
        bad = np.flatnonzero(~(np.isfinite(e) & (e > 0)))
        if len(bad):
            raise ValueError(f"gains: factors must be finite and > 0; device "
                             f"{self.device_ids[bad[0]]!r} has {e[bad[0]]!r}")
        return e

    def step(self, gains: Mapping[str, float] | np.ndarray | Sequence[float] | None = None
             ) -> Allocation:
        """The allocation for one fading draw: ``gains`` by device id (a mapping) or one per
        device in the instance's order (an array); None: the average channel."""
        t = self.terms if gains is None else self.terms.with_gains(self.gain_factors(gains))
        if self.method != "exact":
            return allocate(t, self.bandwidth, self.method, **self.options)
        alloc = exact_allocation(t, self.bandwidth, warm=self._warm, _cache=self._systems,
                                 **self.options)
        self._warm = alloc.warm
        return alloc
