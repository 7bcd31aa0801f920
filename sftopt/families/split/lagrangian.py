"""The `split` family's Lagrangian bound: R x T of every parallel plan, certified, fast at scale.

For a round delay T, each device k picks an option o (cut, level) and a band and server share
with c + D(b) + S/phi <= T (D the comm delay, convex and decreasing in b), under sum b <= B,
sum phi <= 1 and the server memory. D(T), the least mean distortion of such a plan, is bounded
below by the Lagrangian dual

    L(nu) = sum_k min_o (w_k delta_o + nu g_ko(T)) - nu,   nu >= 0,

for every *resource test* g: a per-option lower estimate of a need whose sum over devices is at
most 1 in every plan meeting T (the share with the whole band; the band with the whole server;
theta b/B + (1 - theta) phi for theta in (0, 1); each of these mixed with the option's share
of the server-memory budget). Then R x T >= rounds (1 + eta L(nu)) T.

Certificates, not root finding to the last bit: for any band b, weak duality of the device's
own problem min theta b/B + (1 - theta) phi over c + D(b') + S/phi <= T, b' <= B, phi <= 1
with the multiplier mu = theta / (B (-D'(b))) (for which b is the unconstrained minimiser of
theta b'/B + mu D(b')) gives

    g >= theta b/B + mu (D(b) - (T - c)) + min_{0 < phi <= 1} ((1 - theta) phi + mu S / phi),

valid for every b, exact at the optimal one and off by a second-order term near it: a few
Newton steps from a warm start suffice, and iteration caps cannot make the bound invalid. Each
certificate is affine in T, so on an interval [T_l, T_r] every option's certified need is an
affine function, L (nu fixed) is concave in T, and rounds (1 + eta L(T)) T, a product of
positive concave functions, is quasi-concave: its least value on the interval is at an end. So
one evaluation at T_r bounds R x T for every plan whose round delay lies in [T_l, T_r], with no
loss from the interval's width. Intervals are refined best first (docs/solvers.md, "Lower
bounds").

Server memory: the plans whose shallowest cut lies in [s_lo, s_hi] keep activations within the
budget M_s - srv_static[s_hi] (bounds.memory_case); the bound is the least over a partition of
the shallowest cut's range into such cases.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict

import numpy as np

from ...channel import inv_rate, inv_rate_link
from ...core import jit
from ...core.options import Deadline
from .options import OptionTable
from .schema import SplitInstance

THETAS = (0.1, 0.3, 0.5, 0.7, 0.9)  # priced tests: weights of the band against the share
ALPHAS = (0.25, 0.5, 0.75)  # weights of a test against the server-memory share
_B_FLOOR = 1e-12  # least band tried, as a fraction of B
_STEP_TOL = 1e-3  # Newton stops below this relative step (certificate error ~ its square)
_MARGIN = 1e-12  # relative rounding margin of a certificate (its terms' magnitudes)
# tables from this many entries run the tests' Newton steps in compiled loops when numba is
# installed (below it numpy's per-call overhead is small and its bits are the references')
KERNEL_MIN_ENTRIES = 5000
# seconds one evaluation (tests and duals at a round delay) takes per valid entry, before any
# is timed: 1.4e-6 measured at 100,000 devices (3.2 million entries, compiled kernels, 2 shared
# cores), rounded up; so that a search given too little time does not start one
POINT_S_PER_ENTRY = 2e-6
SETUP_S_PER_ENTRY = 1e-6  # the same for building a LagrangianBound (0.5-0.7e-6 measured)


class _Entries:
    """The valid (device, option) entries of an option table, flat, sorted by (device, level),
    with the T-independent parts of their delays."""

    def __init__(self, inst: SplitInstance, table: OptionTable):
        a = inst.arrays
        k, o = np.nonzero(table.valid)
        levels = np.asarray(a.allowed_levels, dtype=int)
        lpos = np.searchsorted(levels, table.level[k, o])
        order = np.lexsort((o, lpos, k))
        k, o, lpos = k[order], o[order], lpos[order]
        t = table.terms
        shape = table.valid.shape
        self.k, self.o, self.lpos = k, o, lpos
        self.c = t.compute[k, o]
        self.U = t.up_bits[k, o]
        self.V = t.down_bits[k, o]
        self.S = t.server_work[k, o]
        self.xu = np.broadcast_to(t.snr_ul, shape)[k, o]
        self.xd = np.broadcast_to(t.snr_dl, shape)[k, o]
        self.cut = table.cut[k, o]
        self.act = table.srv_act[k, o]
        self.B = float(a.bandwidth)
        self.n = len(k)
        self.K, self.L = inst.n_devices, len(levels)
        # groups: one per (device, level); only the least need of a group enters the dual
        gid = k * self.L + lpos
        self.starts = np.flatnonzero(np.r_[True, gid[1:] != gid[:-1]])
        self.gk, self.gl = k[self.starts], lpos[self.starts]
        # (level, device) layout: the min over the few levels is elementwise across devices
        self.W = np.full((self.L, self.K), np.inf)  # w_k delta_l (inf: no such option)
        self.W[self.gl, self.gk] = a.sample_weight[self.gk] * a.delta[levels[self.gl]]
        self.bits = (self.U > 0) | (self.V > 0)
        with np.errstate(all="ignore"):
            self.DB, self.gB, _ = self.delay(np.full(self.n, self.B))
            self.Dfl = self.delay(np.full(self.n, self.B * _B_FLOOR), order=0)[0]

    def sample(self, ks: np.ndarray) -> tuple[_Entries, np.ndarray]:
        """The entries of the devices ``ks`` (sorted) as entries of a fleet of len(ks)
        devices, and their positions here."""
        sel = np.flatnonzero(np.isin(self.k, ks))
        sub = object.__new__(_Entries)
        for name in ("o", "lpos", "c", "U", "V", "S", "xu", "xd", "cut", "act", "bits", "DB",
                     "gB", "Dfl"):
            setattr(sub, name, getattr(self, name)[sel])
        sub.k = np.searchsorted(ks, self.k[sel])
        sub.B, sub.n, sub.K, sub.L = self.B, len(sel), len(ks), self.L
        gid = sub.k * sub.L + sub.lpos
        sub.starts = np.flatnonzero(np.r_[True, gid[1:] != gid[:-1]])
        sub.gk, sub.gl = sub.k[sub.starts], sub.lpos[sub.starts]
        sub.W = self.W[:, ks]
        return sub, sel

    def delay(self, b: np.ndarray, idx: np.ndarray | None = None, order: int = 1
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """D(b), -D'(b) (> 0) and D''(b) of the entries ``idx`` (all: None); orders above
        ``order`` are 0. Where nothing is sent all are 0."""
        sel = slice(None) if idx is None else idx
        return _delay_terms(self.U[sel], self.V[sel], self.xu[sel], self.xd[sel], b, order)

    def group_min(self, val: np.ndarray) -> np.ndarray:
        """(..., n) per-entry values -> (..., L, K) least per (device, level) (inf: none)."""
        mins = np.minimum.reduceat(val, self.starts, axis=-1)
        out = np.full(val.shape[:-1] + (self.L, self.K), np.inf)
        out[..., self.gl, self.gk] = mins
        return out


def _delay_terms(U: np.ndarray, V: np.ndarray, xu: np.ndarray, xd: np.ndarray, b: np.ndarray,
                 order: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The comm delay U/r_ul(b) + V/r_dl(b), minus its slope and its curvature (orders above
    ``order`` are 0), from channel.inv_rate; 0 where nothing is sent."""
    out = [0.0, 0.0, 0.0]
    for bits, x in ((U, xu), (V, xd)):
        terms = inv_rate(b, x, order=max(order, 0))
        send = bits > 0
        every = bool(send.all())
        for j, f in enumerate(terms):
            out[j] = out[j] + (bits * f if every else np.where(send, bits * f, 0.0))
    return out[0], out[1], out[2]


class _Tests:
    """Certified per-entry needs at a round delay T, each as an affine function of T (value at
    T and slope): the share test, the band test and the priced tests (THETAS). Warm starts of
    the Newton steps are kept between calls."""

    def __init__(self, e: _Entries, thetas: tuple[float, ...], newton_iters: int = 30,
                 fast: bool | None = None):
        self.e = e
        self.set_thetas(thetas)
        self.iters = newton_iters
        # compiled Newton loops (None: numba missing or off); ``fast`` None: by table size
        use = e.n >= KERNEL_MIN_ENTRIES if fast is None else fast
        self.fast = _kernels() if use else None
        self.warm: dict[object, np.ndarray] = {}
        self.priced_warm: dict[float, np.ndarray] = {}  # per theta: the bands of its last call

    def set_thetas(self, thetas: tuple[float, ...]) -> None:
        """The priced tests of the next calls."""
        self.thetas = tuple(float(t) for t in thetas)
        self.n_tests = 2 + len(self.thetas)

    def at(self, T: float) -> tuple[np.ndarray, np.ndarray]:
        """(values, slopes), each (n_tests, n): values inf where the option cannot meet T."""
        e = self.e
        s = T - e.c
        with np.errstate(all="ignore"):
            # b <= B, phi <= 1: an option meets T only if c + D(B) + S <= T
            impossible = s - e.S < e.DB
            val = np.empty((self.n_tests, e.n))
            slope = np.empty((self.n_tests, e.n))
            val[0], slope[0] = self._share(s)
            val[1], slope[1], b_band = self._band(s - e.S)
            if self.thetas:
                val[2:], slope[2:] = self._priced(s, b_band)
        val[:, impossible] = np.inf
        slope[:, impossible] = 0.0
        return val, slope

    def _share(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """phi = S / (s - D(B)), exact and convex in T: its tangent is a certificate."""
        e = self.e
        rest = s - e.DB
        phi = np.where(e.S > 0, e.S / rest, 0.0)
        slope = np.where(e.S > 0, -e.S / (rest * rest), 0.0)
        phi = phi * (1.0 - _MARGIN)
        return np.where(rest > 0, phi, np.inf), np.where(rest > 0, slope, 0.0)

    def _band(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """b0 / B, b0 the least band with D(b0) <= r (the whole server): for any b,
        b0 >= b + (D(b) - r) / (-D'(b)) (D convex). Newton's method on 1/D picks b.
        Also returns the bands (a lower estimate of b0, floor where b0 is below it)."""
        e, B = self.e, self.e.B
        floor = B * _B_FLOOR
        val = np.zeros(e.n)
        slope = np.zeros(e.n)
        bands = np.full(e.n, floor)
        idx = np.flatnonzero(e.bits & (r >= e.DB) & (r < e.Dfl))
        if idx.size == 0:
            return val, slope, bands
        rr = r[idx]
        start = self.warm.get("band")
        b = np.full(idx.size, floor) if start is None else np.clip(start[idx], floor, B)
        b = np.array(b, dtype=float)
        if self.fast is not None:
            self.fast.band(e.U, e.V, e.xu, e.xd, idx, rr, b, floor, B, self.iters, _STEP_TOL,
                           _MARGIN, val, slope, bands)
            self.warm["band"] = bands.copy()
            return val, slope, bands
        act = np.arange(idx.size)  # entries still moving
        d_at, g_at, b_at = np.empty(idx.size), np.empty(idx.size), np.empty(idx.size)
        for it in range(self.iters):  # capped: every b gives a certificate
            cur = b[act]
            d, g, _ = e.delay(cur, idx[act], order=1)
            d_at[act], g_at[act], b_at[act] = d, g, cur  # the certificate's point
            new = np.clip(cur + (d / rr[act] - 1.0) * d / g, floor, B)
            new = np.where(np.isfinite(new), new, cur)
            b[act] = new
            # the certificate's error is of second order in the step: 1e-3 -> 1e-6
            act = act[np.abs(new - cur) > _STEP_TOL * cur]
            if act.size == 0 or it == self.iters - 1:
                break
        below = np.minimum(b, b_at)  # a step from above the root lands below it
        b, d, g = b_at, d_at, g_at
        cert = (b + (d - rr) / g) / B
        cert = cert - _MARGIN * (b + (np.abs(d) + np.abs(rr)) / g) / B
        ok = np.isfinite(cert) & (cert > 0)
        val[idx] = np.where(ok, cert, 0.0)
        slope[idx] = np.where(ok, -1.0 / (B * g), 0.0)
        bands[idx] = below
        full = np.full(e.n, floor)
        full[idx] = below
        self.warm["band"] = full
        return val, slope, bands

    def _priced(self, s: np.ndarray, b_band: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """theta b/B + (1 - theta) phi for every theta, certified (module docstring). b by
        Newton in log b on q(b) = (s - D)/sqrt(-D') - sqrt((1 - theta) S B / theta),
        increasing in b and 0 at the unconstrained minimiser; from the band test's b (no plan
        has less band) up to B. Shape (thetas, n)."""
        e, B = self.e, self.e.B
        th = np.asarray(self.thetas)[:, None]
        val = np.zeros((len(self.thetas), e.n))
        slope = np.zeros((len(self.thetas), e.n))
        # nothing sent: b -> 0, phi = S/s
        quiet = ~e.bits & (s > 0)
        val[:, quiet] = (1.0 - th) * (e.S[quiet] / s[quiet] * (1.0 - _MARGIN))
        slope[:, quiet] = -(1.0 - th) * (e.S[quiet] / s[quiet] ** 2)
        idx = np.flatnonzero(e.bits & (s - e.S >= e.DB))
        if idx.size == 0:
            return val, slope
        ss, S = s[idx], e.S[idx]
        lo = np.maximum(b_band[idx], B * _B_FLOOR)
        if self.priced_warm:  # each theta from the bands of the nearest theta priced before
            known = np.array(sorted(self.priced_warm))
            near = known[np.abs(known[None, :] - th).argmin(axis=1)]
            start = np.stack([self.priced_warm[float(x)] for x in near])
            b = np.clip(start[:, idx], lo, B)
        else:
            b = np.broadcast_to(np.minimum(lo * 1.5, B), (len(self.thetas), idx.size))
        if self.fast is not None:  # the loop below and the dual values, entry by entry
            b = np.ascontiguousarray(b, dtype=float)
            warm = np.full((len(self.thetas), e.n), B * _B_FLOOR)
            self.fast.priced(e.U, e.V, e.xu, e.xd, e.DB, e.gB, s, e.S, idx, lo, b,
                             np.asarray(self.thetas), B, self.iters, _STEP_TOL, _MARGIN, val,
                             slope, warm)
            for i, theta in enumerate(self.thetas):
                self.priced_warm[float(theta)] = warm[i]
            return val, slope
        shape = b.shape
        flat = np.array(b, dtype=float).reshape(-1)  # (thetas x entries), theta-major
        col = np.tile(idx, len(self.thetas))  # entry of each flat position
        # the working set: positions still moving, with their constants (compacted as it
        # shrinks, so late iterations cost little)
        pos = np.arange(flat.size)
        k0 = np.broadcast_to(np.sqrt((1.0 - th) * B / th) * np.sqrt(S), shape).reshape(-1)
        w = {"U": e.U[col], "V": e.V[col], "xu": e.xu[col], "xd": e.xd[col],
             "s": s[col], "k0": k0, "lo": np.tile(lo, len(self.thetas)), "b": flat.copy()}
        d_at, g_at, b_at = np.empty(flat.size), np.empty(flat.size), np.empty(flat.size)
        for it in range(self.iters):  # capped: every b gives a certificate
            cur = w["b"]
            d, g, d2 = _delay_terms(w["U"], w["V"], w["xu"], w["xd"], cur, order=2)
            d_at[pos], g_at[pos], b_at[pos] = d, g, cur  # the certificate's point
            rest = w["s"] - d
            sg = np.sqrt(g)
            q = rest / sg - w["k0"]
            dq = sg + 0.5 * rest * d2 / (g * sg)  # dq/db
            step = -q / (cur * dq)  # Newton in log b
            step = np.where(np.isfinite(step) & (rest > 0) & (dq > 0), step, 1.0)
            new = np.clip(cur * np.exp(np.clip(step, -2.0, 2.0)), w["lo"], B)
            flat[pos] = new
            moving = np.abs(new - cur) > _STEP_TOL * cur  # the certificate's error: 2nd order
            if not moving.any() or it == self.iters - 1:
                break
            w["b"] = new
            if moving.sum() < 0.8 * moving.size:
                pos = pos[moving]
                w = {k: v[moving] for k, v in w.items()}
        full = np.full((len(self.thetas), e.n), B * _B_FLOOR)
        full[:, idx] = flat.reshape(shape)
        for i, theta in enumerate(self.thetas):
            self.priced_warm[float(theta)] = full[i]
        b, d, g = (x.reshape(shape) for x in (b_at, d_at, g_at))
        v1, m1 = _dual_value(th, b / B, d, ss, S, th / (B * g))
        # the dual's other branch: mu >= mu_B, where the minimiser in b is B itself
        dB, gB = e.DB[idx], e.gB[idx]
        rest = ss - dB
        with np.errstate(all="ignore"):
            mu_star = np.where(rest > 0, (1.0 - th) * S / (rest * rest), 0.0)
        mu = np.maximum(th / (B * gB), np.where(np.isfinite(mu_star), mu_star, 0.0))
        v2, m2 = _dual_value(th, 1.0, dB, ss, S, mu)
        v1 = np.where(np.isfinite(v1), v1, -np.inf)
        v2 = np.where(np.isfinite(v2), v2, -np.inf)
        use2 = v2 > v1
        v = np.where(use2, v2, v1)
        m = np.where(use2, m2, m1)
        keep = v > 0
        val[:, idx] = np.where(keep, v, 0.0)
        slope[:, idx] = np.where(keep, -m, 0.0)
        return val, slope


def _dual_value(theta: np.ndarray, frac: np.ndarray, d: np.ndarray, s: np.ndarray, S: np.ndarray,
                mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """theta frac + mu (d - s) + min_{0 < phi <= 1} ((1 - theta) phi + mu S/phi), less a
    rounding margin, and the multiplier mu (the certificate's slope in T is -mu)."""
    w = 1.0 - theta
    inner = mu * S
    phi_term = np.where(inner <= w, 2.0 * np.sqrt(w * inner), w + inner)
    v = theta * frac + mu * (d - s) + phi_term
    v = v - _MARGIN * (theta * frac + mu * (np.abs(d) + np.abs(s)) + phi_term)
    return v, mu


# --------------------------------------------------------------------------- compiled kernels
# The tests' Newton steps entry by entry (numba, extra `fast`): one pass per entry with no
# temporaries, where numpy makes ~30 passes over (thetas x entries) arrays per step (at 100,000
# devices, 9.6 million entries: ~80 MB each, most of the bound's time and memory). Each entry
# stops when its own step is small (numpy keeps stepping an entry until enough others stop:
# other bands, certificates as valid; tests hold the two paths together). `_k_dual_value` is
# `_dual_value`, `_k_delay` `_delay_terms`, scalar.
_KERNELS: object | None | bool = False  # False: not built yet; None: no numba


def _kernels():
    """The compiled kernels (core.jit.build), or None: numba missing, SFTOPT_NO_NUMBA=1, or a
    kernel that does not compile (the numpy path then runs)."""
    global _KERNELS
    if jit.off():
        return None
    if _KERNELS is False:

        def warm(k) -> None:
            one, none = np.ones(1), np.zeros(1)
            at = np.zeros(1, dtype=np.int64)
            k.band(one, one, one, one, at, one, one, 1e-12, 1.0, 2, 1e-3, 0.0, none.copy(),
                   none.copy(), none.copy())
            k.priced(one, one, one, one, one, one, one * 3, one, at, one, np.ones((1, 1)),
                     np.full(1, 0.5), 1.0, 2, 1e-3, 0.0, np.zeros((1, 1)), np.zeros((1, 1)),
                     np.zeros((1, 1)))
            k.rows_min(np.ones((1, 1)), np.ones((1, 1)), none, True, at, np.ones((1, 1)),
                       np.ones((1, 1)), np.ones((1, 1), dtype=bool), at, at, at, at,
                       np.ones((1, 1, 1, 1)))

        _KERNELS = jit.build(globals(), {"_link": inv_rate_link, "_delay": _k_delay,
                                         "_dual": _k_dual_value},
                             {"band": _k_band, "priced": _k_priced,
                              "rows_min": _k_rows_min}, warm,
                             "the lagrangian bound's tests")
    return _KERNELS


_link = inv_rate_link


def _k_delay(U, V, xu, xd, b):
    """D(b), -D'(b), D''(b) of one entry (0 where nothing is sent)."""
    d = g = c = 0.0
    if U > 0:
        z = xu / b
        i, a, q = _link(b, xu, z, math.log1p(z))
        d, g, c = d + U * i, g + U * a, c + U * q
    if V > 0:
        z = xd / b
        i, a, q = _link(b, xd, z, math.log1p(z))
        d, g, c = d + V * i, g + V * a, c + V * q
    return d, g, c


def _k_dual_value(theta, frac, d, s, S, mu, margin):
    w = 1.0 - theta
    inner = mu * S
    phi_term = 2.0 * math.sqrt(w * inner) if inner <= w else w + inner
    v = theta * frac + mu * (d - s) + phi_term
    return v - margin * (theta * frac + mu * (abs(d) + abs(s)) + phi_term)


_delay = _k_delay
_dual = _k_dual_value


def _k_rows_min(val, slope, dT, use_slope, tidx, al, mem, valid, cs, starts, gl, gk, out):
    """`LagrangianBound._rows_min`: out[c, r, l, k] = least over device k's valid entries of
    level l of row r (val + slope dT[c] if use_slope; its test mixed by al[c, r])."""
    n = val.shape[1]
    groups = len(starts)
    for ci in range(len(cs)):
        c = cs[ci]
        for gi in range(groups):
            hi = starts[gi + 1] if gi + 1 < groups else n
            lv, k = gl[gi], gk[gi]
            for j in range(starts[gi], hi):
                if not valid[c, j]:
                    continue
                m = mem[c, j]
                for r in range(len(tidx)):
                    t = tidx[r]
                    if t < 0:
                        x = m
                    else:
                        v = val[t, j] + slope[t, j] * dT[ci] if use_slope else val[t, j]
                        a = al[ci, r]
                        if v == math.inf:
                            x = math.inf
                        elif a == 1.0:
                            x = v
                        else:
                            x = a * v + (1.0 - a) * m
                    if x < out[ci, r, lv, k]:
                        out[ci, r, lv, k] = x


def _k_band(U, V, xu, xd, idx, rr, b0, floor, B, iters, tol, margin, val, slope, bands):
    """`_Tests._band`'s Newton steps and certificates for the entries idx (r: rr, starts b0),
    into val, slope and bands."""
    for j in range(len(idx)):
        i = idx[j]
        r = rr[j]
        b = b0[j]
        d = g = at = 0.0
        for _ in range(iters):
            cur = b
            d, g, _c = _delay(U[i], V[i], xu[i], xd[i], cur)
            at = cur
            new = cur + (d / r - 1.0) * d / g
            if new != new:
                new = cur
            elif new < floor:
                new = floor
            elif new > B:
                new = B
            b = new
            if not abs(new - cur) > tol * cur:
                break
        cert = (at + (d - r) / g) / B
        cert = cert - margin * (at + (abs(d) + abs(r)) / g) / B
        if abs(cert) < math.inf and cert > 0:
            val[i] = cert
            slope[i] = -1.0 / (B * g)
        bands[i] = min(b, at)


def _k_priced(U, V, xu, xd, DB, gB, s, S, idx, lo, b0, thetas, B, iters, tol, margin, val,
              slope, warm):
    """`_Tests._priced`'s Newton steps in log b and both dual branches for the entries idx
    (lower ends lo, starts b0 per theta), into val, slope and warm (the last bands)."""
    for t in range(len(thetas)):
        th = thetas[t]
        for j in range(len(idx)):
            i = idx[j]
            ss, Si = s[i], S[i]
            k0 = math.sqrt((1.0 - th) * B / th) * math.sqrt(Si)
            b = b0[t, j]
            d = g = at = 0.0
            for _ in range(iters):
                cur = b
                d, g, d2 = _delay(U[i], V[i], xu[i], xd[i], cur)
                at = cur
                rest = ss - d
                sg = math.sqrt(g)
                q = rest / sg - k0
                dq = sg + 0.5 * rest * d2 / (g * sg)
                step = -q / (cur * dq)
                if not (abs(step) < math.inf and rest > 0 and dq > 0):
                    step = 1.0
                step = min(max(step, -2.0), 2.0)
                new = min(max(cur * math.exp(step), lo[j]), B)
                b = new
                if not abs(new - cur) > tol * cur:
                    break
            warm[t, i] = b
            v1 = _dual(th, at / B, d, ss, Si, th / (B * g), margin)
            m1 = th / (B * g)
            rest = ss - DB[i]
            mu_star = (1.0 - th) * Si / (rest * rest) if rest > 0 else 0.0
            if not abs(mu_star) < math.inf:
                mu_star = 0.0
            m2 = max(th / (B * gB[i]), mu_star)
            v2 = _dual(th, 1.0, DB[i], ss, Si, m2, margin)
            v1 = v1 if abs(v1) < math.inf else -math.inf
            v2 = v2 if abs(v2) < math.inf else -math.inf
            v, m = (v2, m2) if v2 > v1 else (v1, m1)
            if v > 0:
                val[t, i] = v
                slope[t, i] = -m


def _columns(v: np.ndarray, m: np.ndarray, valid: np.ndarray, alphas: tuple[float, ...]
             ) -> list[np.ndarray]:
    """The test columns of the duals, on axis 1: the tests' needs ``v`` (inf where not
    ``valid``), each mixed with the memory share ``m`` for every alpha, and the memory share
    alone (no alphas: the tests only)."""
    if not alphas:
        return [v]
    return [v, *[al * v + (1.0 - al) * m for al in alphas], np.where(valid, m, np.inf)]


def _best_price(W: np.ndarray, G: np.ndarray, iters: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """max over nu >= 0 of sum_k min_l (W + nu G) - nu for each leading index of G (..., L, K)
    (W broadcast to G).

    Concave and piecewise linear in nu; bisection in log nu on the sign of its supergradient
    (sum of the chosen needs - 1), every point tried counting (any nu gives a bound). Returns
    (value, nu): inf where some device has no option or the needs' least sum exceeds 1 (no plan
    meets the round delay)."""
    lead = G.shape[:-2]
    with np.errstate(invalid="ignore"):
        value = np.where(np.isfinite(G), W, np.inf).min(axis=-2).sum(axis=-1)  # nu = 0
    nu_best = np.zeros(lead)
    least = G.min(axis=-2).sum(axis=-1)
    Wf = np.where(np.isfinite(W), W, 0.0)
    scale = float(Wf.max(axis=-2).sum(axis=-1).max()) or 1.0
    lo = np.full(lead, math.log(scale * 1e-4))
    hi = np.full(lead, math.log(scale * 1e4))
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        nu = np.exp(mid)
        v = W + nu[..., None, None] * G
        vmin = v.min(axis=-2)
        L = vmin.sum(axis=-1) - nu
        # the least need among the levels that attain the minimum: the right derivative
        grad = np.where(v == vmin[..., None, :], G, np.inf).min(axis=-2).sum(axis=-1) - 1.0
        better = value < L
        value = np.where(better, L, value)
        nu_best = np.where(better, nu, nu_best)
        up = grad > 0
        lo = np.where(up, mid, lo)
        hi = np.where(up, hi, mid)
    return np.where(least > 1.0, np.inf, value), nu_best


def _value_at(W: np.ndarray, G: np.ndarray, nu: np.ndarray) -> np.ndarray:
    """sum_k min_l (W + nu G) - nu for each leading index of G (..., L, K), nu fixed."""
    n = nu[..., None, None]
    with np.errstate(invalid="ignore"):
        v = np.where(n > 0, W + n * G, np.where(np.isfinite(G), W, np.inf))
    return v.min(axis=-2).sum(axis=-1) - nu


class LagrangianBound:
    """The bound on R x T over the cases of a partition (server-memory cases), evaluated at
    round delays and on intervals of them. Cases are stacked on a leading axis."""

    def __init__(self, inst: SplitInstance, table: OptionTable, cases: list[tuple[np.ndarray,
                 np.ndarray | None]], *, thetas: tuple[float, ...] = THETAS,
                 alphas: tuple[float, ...] = ALPHAS, newton_iters: int = 30,
                 price_iters: int = 12, adapt_thetas: bool = True, alpha_rounds: int = 3,
                 keep_thetas: bool = True):
        a = inst.arrays
        self.e = e = _Entries(inst, table)
        self.tests = _Tests(e, thetas, newton_iters)
        self.fast = self.tests.fast  # compiled kernels (or None: the numpy expressions)
        self.price_iters = price_iters
        # table-shaped masks and shares -> (cases, entries)
        self.valid = np.stack([v[e.k, e.o] for v, _ in cases])
        self.mem = np.stack([np.zeros(e.n) if m is None else m[e.k, e.o] for _, m in cases])
        # the memory share can bind only if the largest shares can sum above 1
        most = -e.group_min(np.where(self.valid, -self.mem, np.inf)).min(axis=-2).sum(axis=-1)
        self.alphas = tuple(alphas) if bool((most > 1.0).any()) else ()
        has = e.group_min(np.where(self.valid, 0.0, np.inf)) == 0.0
        self.W = np.where(has, e.W, np.inf)[:, None]  # (C, 1, L, K)
        self.d_floor = self.W[:, 0].min(axis=-2).sum(axis=-1)  # (C,)
        self.rounds, self.eta = float(a.rounds), float(a.eta)
        self.evaluations = 0
        self.theta_step = 0.1 if adapt_thetas else 0.0
        self.center = math.nan
        self.fixed_thetas = tuple(thetas) if keep_thetas else ()
        self.adapt = adapt_thetas
        self.alpha_rounds = alpha_rounds
        # a list: the points evaluated are kept in it, the best ``keep_points`` by their
        # value (with their duals) and the newest (for plans rounded from the duals)
        self.points: list[dict] | None = None
        self.keep_points = 0

    def _needs(self, val: np.ndarray, cs: np.ndarray, alpha: np.ndarray | None = None,
               slope: np.ndarray | None = None, dT: np.ndarray | None = None) -> np.ndarray:
        """(C', N, L, K) least needs per (level, device) in the cases ``cs``, from per-entry
        values ``val`` (tests, n), or val + slope dT[case] (dT: (C',)): each test, each test
        mixed with the memory share for every alpha of self.alphas, the memory share alone,
        and with ``alpha`` (C', tests) each test mixed by its own alpha."""
        if self.fast is not None:
            nt = val.shape[0]
            rows = [np.arange(nt)] * (1 + len(self.alphas))
            als = [np.ones((len(cs), nt))] + [np.full((len(cs), nt), a) for a in self.alphas]
            if self.alphas:
                rows.append(np.array([-1]))
                als.append(np.ones((len(cs), 1)))
                if alpha is not None:
                    rows.append(np.arange(nt))
                    als.append(alpha)
            return self._rows_min(val, cs, np.concatenate(rows), np.concatenate(als, axis=1),
                                  slope, dT)
        if slope is not None:
            val = val[None] + slope[None] * dT[:, None, None]
        valid = self.valid[cs][:, None, :]
        v = np.where(valid, val, np.inf)
        if self.alphas:
            m = self.mem[cs][:, None, :]
            parts = _columns(v, m, valid, self.alphas)
            if alpha is not None:
                parts.append(self._mix(v, m, alpha))
            v = np.concatenate(parts, axis=1)
        return self.e.group_min(v)

    def _rows_min(self, val: np.ndarray, cs: np.ndarray, tidx: np.ndarray, al: np.ndarray,
                  slope: np.ndarray | None = None, dT: np.ndarray | None = None) -> np.ndarray:
        """The compiled `_needs` / `_mix` + group_min: (C', R, L, K) least per (level,
        device) of row r = test tidx[r] mixed with the memory share by al[case, r] (-1: the
        memory share alone), bit for bit numpy's."""
        e = self.e
        out = np.full((len(cs), len(tidx), e.L, e.K), np.inf)
        use = slope is not None
        self.fast.rows_min(val, val if slope is None else slope,
                           np.zeros(len(cs)) if dT is None else np.asarray(dT, dtype=float),
                           use, tidx.astype(np.int64), np.ascontiguousarray(al, dtype=float),
                           self.mem, self.valid, cs.astype(np.int64), e.starts, e.gl, e.gk, out)
        return out

    @staticmethod
    def _mix(v: np.ndarray, m: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        al = alpha[..., None]
        with np.errstate(invalid="ignore"):
            return np.where(np.isinf(v), np.inf, al * v + (1.0 - al) * m)

    def guess(self, T0: float, devices: int = 500, steps: int = 10) -> float:
        """A round delay near the least one the tests allow, estimated on ``devices`` devices
        spread over the fleet (their needs scaled to it): where the search starts, NOT a
        certificate. The priced tests (thetas and alphas on a grid of 0.1) are centred there
        on the theta whose (estimated) dual is best. T0 (no guess, thetas unchanged) for a
        fleet of fewer than 20 times that many devices, or when no T up to ~T0 2^20 passes;
        ``steps`` bisections in log T."""
        e = self.e
        if 20 * devices > e.K:  # smaller fleets: the sample would cost a point or more
            return T0
        # the sample: the devices slowest with the whole band and server (few, with the
        # largest needs, weight 1) and the others evenly spread (each weighing for the others)
        alone = np.full(e.K, np.inf)
        np.minimum.at(alone, e.k, e.c + e.DB + e.S)
        slow = np.argsort(-alone, kind="stable")[:devices // 5]
        rest = np.setdiff1d(np.arange(e.K), slow)
        spread = rest[np.unique(np.linspace(0, len(rest) - 1, devices - len(slow)).round()
                                .astype(int))]
        ks = np.sort(np.concatenate([slow, spread]))
        scale = np.where(np.isin(ks, slow), 1.0, len(rest) / len(spread))
        sub, sel = e.sample(ks)
        grid = tuple(np.arange(1, 10) / 10.0) if self.tests.thetas else ()
        tests = _Tests(sub, grid, self.tests.iters, fast=False)
        valid, m = self.valid[:, None, sel], self.mem[:, None, sel]
        alphas = tuple(np.arange(1, 10) / 10.0) if self.alphas else ()

        def needs(T: float) -> np.ndarray:  # (C, N, L, devices), scaled to the fleet
            v = np.where(valid, tests.at(T)[0], np.inf)
            return sub.group_min(np.concatenate(_columns(v, m, valid, alphas), axis=1)) * scale

        def passes(T: float) -> bool:  # some case whose every column sums to at most 1
            return bool((needs(T).min(axis=-2).sum(axis=-1).max(axis=1) <= 1.0).any())

        lo, hi = math.log(T0), math.log(T0) + math.log(1.25)
        for _ in range(20):
            if passes(math.exp(hi)):
                break
            lo, hi = hi, hi + 2.0 * (hi - lo)
        else:
            return T0
        for _ in range(steps):
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if passes(math.exp(mid)) else (mid, hi)
        if grid and self.adapt:
            G = needs(math.exp(hi) * 1.02)
            L = _best_price(self.W[..., ks] * scale, G, self.price_iters)[0]
            L = np.where(np.isfinite(L), L, -np.inf)
            c = int(np.argmin(L.max(axis=1)))  # the case least bounded there
            t = int(np.argmax(L[c])) % (2 + len(grid))
            if t >= 2:
                self.center = grid[t - 2]
                self.theta_step = 0.05
                self.tests.set_thetas(tuple(sorted({*self.fixed_thetas, self.center - 0.05,
                                                    self.center, self.center + 0.05})))
        return math.exp(hi)

    def point(self, T: float) -> dict:
        """The certificates at T (every case's duals are computed when first asked for)."""
        thetas = self.tests.thetas
        val, slope = self.tests.at(T)
        self.evaluations += 1
        C = len(self.valid)
        p = {"T": T, "val": val, "slope": slope, "done": np.zeros(C, dtype=bool),
             "thetas": thetas, "L": None, "nu": None, "least": None, "alpha": None}
        if self.points is not None:
            self._keep(p)
        return p

    def _keep(self, p: dict) -> None:
        """Keep p among ``points``; past keep_points + 1 of them, the worst solved one goes
        (a point's arrays are large at scale: 100,000 devices, ~250 MB each)."""
        self.points.append(p)
        while len(self.points) > self.keep_points + 1:
            solved = [q for q in self.points[:-1] if q["done"].any()]
            pool = solved or self.points[:-1]
            worst = max(pool, key=self.point_value) if solved else pool[0]
            self.points.remove(worst)

    def duals(self, p: dict, cs: np.ndarray) -> None:
        """Solve the duals of the cases ``cs`` at p (once): every test's best price on the
        grid of alphas, then each test's alpha refined (halving steps around the best)."""
        cs = cs[~p["done"][cs]]
        if cs.size == 0:
            return
        nt = p["val"].shape[0]
        alpha = None
        G = self._needs(p["val"], cs)
        L, nu = _best_price(self.W[cs], G, self.price_iters)
        least = G.min(axis=-2).sum(axis=-1)
        if self.alphas:
            grid = np.array([1.0, *self.alphas, 0.0])
            Lg = np.concatenate([L[:, :nt * (1 + len(self.alphas))].reshape(
                len(cs), 1 + len(self.alphas), nt), np.repeat(L[:, -1:, None], nt, axis=2)],
                axis=1)  # (C', grid, tests)
            alpha = grid[Lg.argmax(axis=1)]
            Lbest = Lg.max(axis=1)
            nubest = np.zeros_like(Lbest)
            if self.fast is None:
                v = np.where(self.valid[cs][:, None, :], p["val"], np.inf)
                m = self.mem[cs][:, None, :]
            step = 0.5 * float(np.min(np.abs(np.diff(grid))))
            for _ in range(self.alpha_rounds):  # capped; every alpha tried gives a bound
                cand = np.clip(alpha[None] + np.array([-step, step])[:, None, None], 0.0, 1.0)
                if self.fast is None:
                    Gc = self.e.group_min(self._mix(v[None], m[None], cand))  # both at once
                else:
                    Gc = self._rows_min(p["val"], cs, np.tile(np.arange(nt), 2),
                                        np.concatenate(cand, axis=1))
                    Gc = Gc.reshape(len(cs), 2, nt, *Gc.shape[2:]).swapaxes(0, 1)
                Lc, nuc = _best_price(self.W[cs][None], Gc, self.price_iters)
                for i in range(2):
                    up = Lc[i] > Lbest
                    alpha, Lbest = np.where(up, cand[i], alpha), np.where(up, Lc[i], Lbest)
                    nubest = np.where(up, nuc[i], nubest)
                step *= 0.5
            # the refined mixes: their prices (nu 0 where no candidate beat the grid: the
            # grid's own column already counts)
            Gr = self.e.group_min(self._mix(v, m, alpha)) if self.fast is None else \
                self._rows_min(p["val"], cs, np.arange(nt), alpha)
            L = np.concatenate([L, _value_at(self.W[cs], Gr, nubest)], axis=1)
            nu = np.concatenate([nu, nubest], axis=1)
            least = np.concatenate([least, Gr.min(axis=-2).sum(axis=-1)], axis=1)
        if p["L"] is None:
            shape = (len(self.valid), L.shape[1])
            p["L"], p["nu"], p["least"] = np.zeros(shape), np.zeros(shape), np.zeros(shape)
            p["alpha"] = np.ones((len(self.valid), nt))
        p["L"][cs], p["nu"][cs] = L, nu
        p["least"][cs] = least
        if alpha is not None:
            p["alpha"][cs] = alpha
        p["done"][cs] = True
        self._adapt_thetas(p, nt)

    def _adapt_thetas(self, p: dict, nt: int) -> None:
        """Centre the next points' priced tests on the theta that gave the best dual here
        (pattern search: the step halves when the centre stays best)."""
        thetas = p["thetas"]
        if not thetas or not self.adapt:
            return
        cs = np.flatnonzero(p["done"])
        D = np.where(np.isfinite(p["L"][cs]), p["L"][cs], -np.inf)
        c = cs[int(np.argmin(D.max(axis=1)))]  # the case least bounded here
        col = int(np.argmax(np.where(np.isfinite(p["L"][c]), p["L"][c], -np.inf)))
        n_grid = nt * (1 + len(self.alphas))
        t = col % nt if col < n_grid else (col - n_grid - 1 if col > n_grid else -1)
        if t < 2:
            return  # the share, band or memory test is best: keep the priced tests
        best = thetas[t - 2]
        if best == self.center:
            self.theta_step = max(self.theta_step * 0.5, 0.01)
        center = min(max(best, self.theta_step), 1.0 - self.theta_step)
        self.center = center
        self.tests.set_thetas(tuple(sorted({*self.fixed_thetas, center - self.theta_step,
                                            center, center + self.theta_step})))

    def f(self, L: np.ndarray, T: np.ndarray | float) -> np.ndarray:
        """rounds (1 + eta L) T, elementwise; nan where 1 + eta L <= 0 (no bound)."""
        r = 1.0 + self.eta * L
        return np.where(r > 0, self.rounds * r * T, np.nan)

    def point_value(self, p: dict) -> float:
        """Least over the cases solved at p of rounds (1 + eta D(T)) T at the point itself."""
        cs = np.flatnonzero(p["done"])
        if cs.size == 0:
            return math.inf
        D = np.maximum(p["L"][cs].max(axis=1), self.d_floor[cs])
        return float((self.rounds * (1.0 + self.eta * D) * p["T"]).min())

    def interval(self, T_l: float, p: dict, cs: np.ndarray, iters: int = 6
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Certified least R x T over plans of each case in ``cs`` whose round delay lies in
        [T_l, p's T], from the certificates of the right end p, affine in T.

        Per case: if a test's needs (affine) sum above 1 at T_l, their sum (concave in T) does
        so on [T_l, T*) and T_l moves up towards T* (regula falsi, ``iters`` steps); then each
        test's price at T_r gives rounds (1 + eta L(T)) T, quasi-concave: least at an end.
        Returns the bounds and the left ends moved up, per case."""
        if cs.size == 0:
            return np.zeros(0), np.zeros(0)
        self.duals(p, cs)
        T_r = p["T"]
        L_r, nu, E_r = p["L"][cs], p["nu"][cs], p["least"][cs] - 1.0
        dead = np.isinf(L_r).any(axis=1)  # no plan of the case meets T_r, nor any T <= T_r

        def needs_at(T: np.ndarray) -> np.ndarray:  # T per case
            return self._needs(p["val"], cs, None if p["alpha"] is None else p["alpha"][cs],
                               p["slope"], T - T_r)

        lo = np.full(len(cs), T_l)
        G = needs_at(lo)
        for _ in range(iters):
            # regula falsi from the left: each test's sum of needs is concave in T, so its
            # chord from (lo, E > 0) to (T_r, E <= 0) lies below it; up to the chord's root
            # the test still proves every round delay impossible
            E = G.min(axis=-2).sum(axis=-1) - 1.0
            over = (E > 0) & ~dead[:, None]
            if not over.any():
                break
            with np.errstate(divide="ignore", invalid="ignore"):
                root = lo[:, None] + E / (E - E_r) * (T_r - lo[:, None])
            root = np.where(over & np.isfinite(root), np.minimum(root, T_r), lo[:, None])
            new = root.max(axis=1)
            if np.all(new <= lo * (1.0 + 1e-9)):
                break
            lo = np.maximum(lo, new)
            G = needs_at(lo)
        L_l = _value_at(self.W[cs], G, nu)
        with np.errstate(invalid="ignore"):  # nan (no bound at an end) stays nan
            both = np.minimum(self.f(L_l, lo[:, None]), self.f(L_r, T_r))
        both = np.where(np.isfinite(both), both, -np.inf).max(axis=1)
        floor = self.rounds * (1.0 + self.eta * self.d_floor[cs]) * lo
        return np.where(dead, np.inf, np.maximum(both, floor)), lo


def interval_search(lb: LagrangianBound, T0: float, r_min: float, r_max: float, *,
                    n_start: int = 6, max_points: int = 24, tol: float = 1e-3,
                    cache_bytes: float = 2e8, deadline: Deadline | None = None,
                    sample: int = 500) -> float:
    """min over [T0, inf) of R x T over every case, certified (T0: no plan is faster).

    Points T0 < T_1 < ... < T_n, geometric up to T0 r_max / r_min (beyond T_n, R x T >= r_min
    T_n; the last point is moved out, doubling, while no plan can meet it, at most 60 times).
    On fleets of at least 20 ``sample`` devices the first point is instead just above
    LagrangianBound.guess (the least round delay the tests allow, estimated on ``sample``
    devices; it also centres the priced tests), moved out in growing steps while no plan can
    meet it, and the geometric points run from it to it x r_max / r_min. Then best first: the
    interval of least bound is halved in log T (or the points extended to the right while the tail
    is least), at most ``max_points`` evaluations in all or until ``deadline``. A halved interval's
    parts start from its bound per case, and only the cases whose bound there is below every other
    interval's are solved again. Stops early once the least bound is within ``tol`` of the least
    point value (refinement cannot gain more, up to the certificates' own slack). Every stop gives a
    certified bound; before each evaluation the search stops if it would end past the deadline, as
    long as the slowest so far (one takes ~0.4 s at 10,000 devices, ~5 s at 100,000 with the
    compiled kernels; before the first, POINT_S_PER_ENTRY per entry)."""
    span = math.log(r_max / r_min) if r_max > r_min * (1.0 + 1e-9) else math.log(2.0)
    cache: OrderedDict[float, dict] = OrderedDict()
    keep = max(2, int(cache_bytes // max(1, lb.tests.n_tests * lb.e.n * 16)))
    every = np.arange(len(lb.valid))

    took: list[float] = []  # seconds of each evaluation

    def evaluate(x: float) -> dict:
        if x in cache:
            cache.move_to_end(x)
            return cache[x]
        clock = time.perf_counter()
        p = lb.point(T0 * math.exp(x))
        cache[x] = p
        took.append(time.perf_counter() - clock)
        while len(cache) > keep:
            # a point kept by lb.points past the cache is only read for its values and
            # duals: its slopes go (at 100,000 devices they are ~130 MB a point)
            cache.popitem(last=False)[1].pop("slope", None)
        return p

    def stop() -> bool:  # also when the next evaluation would end past the deadline, as long
        # as the slowest so far (before the first, an estimate from the size)
        return deadline is not None and deadline.expired(
            max(took) if took else lb.e.n * POINT_S_PER_ENTRY)

    # past the sampled guess of the least round delay the tests allow (none on small fleets),
    # points step up from just above it; otherwise the span doubles
    first = 0.0 if stop() else math.log(lb.guess(T0, sample) / T0)
    guessed = first > span
    x = first + math.log(1.02) if guessed else span
    for i in range(60):  # the last point must be one some plan may meet
        if stop():
            return r_min * T0
        p = evaluate(x)
        lb.duals(p, every)
        if not math.isinf(lb.point_value(p)):
            break
        x = x + 0.05 * 2.0 ** i if guessed else 2.0 * x
    if guessed:  # [T0, T_x] bounded by the certificates at T_x, then the span beyond
        xs = [0.0, *np.linspace(x, x + span, max(n_start - 1, 1))]
    else:
        xs = list(np.linspace(0.0, x, max(n_start, 2)))
    bounds: list[np.ndarray] = []  # per interval, per case
    lifted: list[np.ndarray] = []  # per interval, per case: log T below which none is proven
    point_values: list[float] = []

    def add(i: int, x_l: float, p: dict, cs: np.ndarray, parent: np.ndarray | None,
            parent_lift: np.ndarray | None) -> None:
        """Bound the interval (x_l, p) for the cases cs into slot i (the others keep the
        parent's bounds: a part of an interval is bounded by the interval's bound)."""
        b = np.full(len(every), -np.inf) if parent is None else parent.copy()
        lift = np.full(len(every), x_l) if parent_lift is None else np.maximum(parent_lift, x_l)
        got, lo = lb.interval(T0 * math.exp(x_l), p, cs)
        b[cs] = np.maximum(b[cs], got)
        lift[cs] = np.maximum(lift[cs], np.log(np.maximum(lo, T0 * math.exp(x_l))) - math.log(T0))
        bounds.insert(i, b)
        lifted.insert(i, lift)

    for i in range(1, len(xs)):
        if stop():  # [T0, T_i-1] is covered; beyond it, R x T >= r_min T
            return min([float(b.min()) for b in bounds] + [r_min * T0 * math.exp(xs[i - 1])])
        p = evaluate(xs[i])
        add(i - 1, xs[i - 1], p, every, None, None)
        point_values.append(lb.point_value(p))
    while lb.evaluations < max_points and not stop():
        tail = r_min * T0 * math.exp(xs[-1])  # R x T for every plan slower than the last point
        least = [float(b.min()) for b in bounds]
        j = int(np.argmin(least))
        if not math.isfinite(min(least[j], tail)) or \
                min(least[j], tail) >= (1.0 - tol) * min(point_values):
            break
        if tail < least[j]:  # extend to the right until the tail is no longer the least
            step = math.log(least[j] / tail) * 1.01 if math.isfinite(least[j]) else 0.0
            x_new = xs[-1] + max(step, 1e-3 * max(xs[-1], 1.0))
            p = evaluate(x_new)
            add(len(bounds), xs[-1], p, every, None, None)
            point_values.append(lb.point_value(p))
            xs.append(x_new)
            continue
        x_l, x_r = xs[j], xs[j + 1]
        # halve the part not yet proven impossible (for the case that is least there)
        k = int(np.argmin(bounds[j]))
        mid = 0.5 * (min(max(lifted[j][k], x_l), x_r) + x_r)
        if not x_l < mid < x_r:
            break
        others = min([tail] + least[:j] + least[j + 1:])
        cs = np.flatnonzero(bounds[j] <= others)  # the cases that can still be the least here
        parent, parent_lift = bounds.pop(j), lifted.pop(j)
        pm = evaluate(mid)
        add(j, x_l, pm, cs, parent, parent_lift)
        add(j + 1, mid, evaluate(x_r), cs, parent, None)
        point_values.append(lb.point_value(pm))
        xs.insert(j + 1, mid)
    tail = r_min * T0 * math.exp(xs[-1])
    return min(min(float(b.min()) for b in bounds), tail)
