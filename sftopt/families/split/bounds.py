"""Certified lower bounds on the `split` objective R x T, from the pruned option table.

Every bound here is a relaxation: it never exceeds the objective of any feasible plan.

- ``relaxation``: R_min x T_lb. R_min = rounds (1 + eta sum_k w_k min_c delta_c) over the allowed
  levels. T_lb is the largest of (i) each device alone with the whole band and the whole server at
  its best option, (ii) the server-sum test: a round delay T is impossible if even with the whole
  band each device needs server shares summing above 1, (iii) the band-sum test: T is impossible if
  even with the whole server each device needs bands summing above B. Both tests are monotone in T;
  regula falsi on log T keeps the lower end of its bracket certified impossible. Server memory is
  dropped (a relaxation). Options that cannot give a device's least band need are pruned first.
- ``lagrangian`` (lagrangian.py): the Lagrangian dual of the least mean distortion at a round
  delay T over resource tests (share, band, theta-priced, each mixed with the server-memory
  share), from per-option weak-duality certificates that are affine in T; on an interval of T
  rounds (1 + eta L(T)) T is quasi-concave, so one evaluation bounds the interval. Server memory
  by the shallowest cut (memory_coupled_bound); lagrange_effort sets its resolution by the
  table size. The priced tests of resource_needs (_priced_need) remain for round_delay_bound's
  callers.
(The `milp` solver's dual bound is the third method; the family object, above both, runs it.)
"""

from __future__ import annotations

import math

import numpy as np

from ...core.options import Deadline
from .cost import (
    REL_TOL,
    Terms,
    comm_delay,
    comm_delay_and_slope,
    device_delays,
)
from .lagrangian import (
    ALPHAS,
    POINT_S_PER_ENTRY,
    SETUP_S_PER_ENTRY,
    THETAS,
    LagrangianBound,
    interval_search,
)
from .options import OptionSpace, OptionTable
from .schema import PARALLEL, SEQUENTIAL, SplitInstance

METHODS = ("relaxation", "lagrangian")
_B_FLOOR = 1e-12  # smallest band tried, as a fraction of B (below it a device is not served)


# --------------------------------------------------------------------------- comm helpers
def _fixed_delays(t: Terms, B: float, cache: dict | None) -> tuple[np.ndarray, np.ndarray]:
    """Comm delay with the whole band and at the floor band (shape of t; T-independent)."""
    if cache is not None and "full" in cache:
        return cache["full"], cache["floor"]
    full = comm_delay(t, np.full(t.up_bits.shape, B))
    at_floor = comm_delay(t, np.full(t.up_bits.shape, B * _B_FLOOR))
    if cache is not None:
        cache["full"], cache["floor"] = full, at_floor
    return full, at_floor


def _flat_terms(t: Terms, shape: tuple[int, ...], idx: np.ndarray) -> Terms:
    """The comm fields of ``t`` broadcast to ``shape``, at the flat indices ``idx``."""
    def at(f: np.ndarray) -> np.ndarray:
        return np.broadcast_to(f, shape).reshape(-1)[idx]

    return Terms(None, at(t.up_bits), at(t.down_bits), None, at(t.snr_ul), at(t.snr_dl))


def band_needed(t: Terms, slack: np.ndarray, bandwidth_hz: float, iters: int = 12,
                start: np.ndarray | None = None, cache: dict | None = None) -> np.ndarray:
    """Certified LOWER estimate of the least band b with comm delay <= slack (inf if even B fails).

    Newton's method on g(b) = 1/D(b), D the comm delay: g is concave and increasing (a weighted
    harmonic mean of the concave rates), so its tangent lies above it. From a band below the
    root every Newton step stays below it and rises monotonically towards it; from a band above
    the root one step lands below it (where the tangent meets the target, g is at most the
    target). So with a ``start`` (any bands, e.g. the estimate at a nearby slack: a warm start)
    every iterate after the first step is a valid lower estimate, and without one (start at the
    floor band) every iterate is. ``iters`` steps from the floor reach about machine precision;
    from a warm start 3-4 do; it stops early once no band moves by a relative 1e-10.
    ``cache`` (a dict for these terms and bandwidth_hz) keeps the slack-independent delays.
    """
    slack = np.broadcast_to(slack, np.broadcast_shapes(np.shape(slack), t.up_bits.shape))
    bits = (t.up_bits > 0) | (t.down_bits > 0)
    floor = bandwidth_hz * _B_FLOOR
    full, at_floor = _fixed_delays(t, bandwidth_hz, cache)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        target = np.where(slack > 0, 1.0 / slack, np.inf)
        if start is None:
            b = np.full(slack.shape, floor)
        else:
            b = np.clip(np.broadcast_to(start, slack.shape), floor, bandwidth_hz)
            iters = max(iters, 1)  # the first step from above the root lands below it
        b = np.array(b, dtype=float)  # own copy, updated in place
        tt, tg = t, target
        idx = None  # entries still moving (None: all); the others keep their last iterate
        for _ in range(iters):
            cur = b if idx is None else b.reshape(-1)[idx]
            d, ds = comm_delay_and_slope(tt, cur)
            step = (tg * d - 1.0) * d / -ds
            new = np.where(np.isfinite(step), np.clip(cur + step, floor, bandwidth_hz), cur)
            moving = np.abs(new - cur) > 1e-10 * cur
            if idx is None:
                b = new
                idx = np.flatnonzero(moving)
            else:
                b.reshape(-1)[idx] = new
                idx = idx[moving]
            if idx.size == 0:
                break
            if idx.size * 2 > b.size:  # compacting pays off once most entries have settled
                idx = None
                continue
            tt = _flat_terms(t, b.shape, idx)
            tg = np.broadcast_to(target, b.shape).reshape(-1)[idx]
        out = b * (1.0 - 1e-9)  # rounding margin: the exact iterate is below the root
    out = np.where(at_floor <= slack, 0.0, out)  # even the floor suffices (else root > floor)
    out = np.where(full > slack, np.inf, out)
    return np.where(bits, out, np.where(slack >= 0, 0.0, np.inf))


# --------------------------------------------------------------------------- round-delay bounds
def resource_needs(t: Terms, valid: np.ndarray, B: float, T: np.ndarray,
           thetas: tuple[float, ...], *, mem: np.ndarray | None = None,
           alphas: tuple[float, ...] = (), band_start: np.ndarray | None = None,
           band_iters: int = 12, cache: dict | None = None) -> list[np.ndarray]:
    """Certified lower estimates of each option's resource need at round delay T[n].

    Shape (N, K, O) each, as fractions of a capacity of 1 (inf for invalid or impossible
    options): the server share with the whole band, the band / B with the whole server, and
    for each theta the least theta b/B + (1 - theta) phi. With ``mem`` (each option's share of
    the server-memory activation budget, shape (K, O)), also alpha g + (1 - alpha) mem for every
    need g above and alpha in ``alphas``. A plan meeting T has, for each of these, a sum over
    devices of its options' needs <= 1. ``band_start``/``band_iters`` warm-start the band need
    (band_needed's ``start``: bands, e.g. out[1] * B of a call at nearby T); ``cache`` (a dict
    for these terms and B) keeps the T-independent delays between calls.
    """
    slack = T[:, None, None] - t.compute
    if band_start is None and cache is not None and "band_first" in cache:
        band_start = cache["band_first"]  # the first T of the previous call
    band = band_needed(t, slack - t.server_work, B, band_iters, band_start, cache)
    if cache is not None:
        cache["band_first"] = band[:1]
    out = [_share_needed(t, slack, B, cache), band / B]
    out += [_priced_need(t, slack, B, theta, cache=cache) for theta in thetas]
    if mem is not None:
        out += [al * g + (1.0 - al) * mem for g in out for al in alphas]
    return [np.where(valid, g, np.inf) for g in out]


def _share_needed(t: Terms, slack: np.ndarray, B: float, cache: dict | None) -> np.ndarray:
    """Exact least server share meeting the slack with the whole band (inf: impossible)."""
    rest = slack - _fixed_delays(t, B, cache)[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        phi = np.where(t.server_work > 0, t.server_work / rest, 0.0)
    return np.where((rest < 0) | ((rest == 0) & (t.server_work > 0)), np.inf, phi)


def _band_representatives(t: Terms, valid: np.ndarray) -> tuple[Terms, np.ndarray]:
    """The options of shape-(1, K, O) terms that the band test needs, compacted to (1, K, O').

    The band need grows with compute + server_work, up_bits and down_bits, so an option that
    another valid one matches or beats in all three never gives a device's least band need:
    only the undominated ones are kept (ties keep the first). Padding repeats a kept option.
    """
    attr = np.stack([np.where(valid[0], f[0], np.inf) for f in
                     (t.compute + t.server_work, t.up_bits + 0 * t.compute,
                      t.down_bits + 0 * t.compute)], axis=2)  # (K, O, 3)
    k, o = attr.shape[:2]
    keep = np.zeros((k, o), dtype=bool)
    earlier = np.arange(o)[None, :] < np.arange(o)[:, None]
    step = max(1, int(2e7 // (o * o)))
    for i in range(0, k, step):
        A = [attr[i:i + step, :, j] for j in range(3)]
        # [., o, o']: o' as good as o in every attribute, better in one (or earlier)
        le = A[0][:, None, :] <= A[0][:, :, None]
        lt = A[0][:, None, :] < A[0][:, :, None]
        for x in A[1:]:
            le &= x[:, None, :] <= x[:, :, None]
            lt |= x[:, None, :] < x[:, :, None]
        dom = (le & (lt | earlier[None]) & ~np.eye(o, dtype=bool)[None]).any(axis=2)
        keep[i:i + step] = valid[0, i:i + step] & ~dom
    n_keep = keep.sum(axis=1)
    width = max(1, int(n_keep.max()))
    rank = np.cumsum(keep, axis=1) - 1
    sel = np.tile(np.argmax(keep, axis=1)[:, None], (1, width))  # pad: first kept option
    rows, cols = np.nonzero(keep)
    sel[rows, rank[rows, cols]] = cols
    r = np.arange(k)[:, None]

    def pick(f: np.ndarray) -> np.ndarray:
        f = np.broadcast_to(f, (1, k, o))
        return f[0][r, sel][None]

    tb = Terms(pick(t.compute), pick(t.up_bits), pick(t.down_bits), pick(t.server_work),
               t.snr_ul if np.shape(t.snr_ul)[-1] == 1 else pick(t.snr_ul),
               t.snr_dl if np.shape(t.snr_dl)[-1] == 1 else pick(t.snr_dl))
    vb = (np.arange(width)[None, :] < n_keep[:, None])[None]
    return tb, vb


def _plain_excess(t: Terms, valid: np.ndarray, tb: Terms, vb: np.ndarray, B: float,
                  T: np.ndarray, warm: dict) -> np.ndarray:
    """_excess of the server-share and band tests alone, the band on _band_representatives."""
    share = np.where(valid, _share_needed(t, T[:, None, None] - t.compute, B, warm), np.inf)
    cache = warm.setdefault("rep", {})
    start = cache.get("band")
    band = band_needed(tb, T[:, None, None] - tb.compute - tb.server_work, B,
                       12 if start is None else 4, start, cache)
    cache["band"] = band
    band = np.where(vb, band, np.inf)
    return np.maximum(share.min(axis=2).sum(axis=1), band.min(axis=2).sum(axis=1) / B) - 1.0


def _excess(t: Terms, valid: np.ndarray, B: float, T: np.ndarray,
            thetas: tuple[float, ...], mem: np.ndarray | None = None,
            alphas: tuple[float, ...] = (), warm: dict | None = None) -> np.ndarray:
    """Largest over the tests of resource_needs of (sum over devices of the least need) - 1.

    Positive where round delay T[n] is certified impossible (shape-(N, K, O) options); every
    test is non-increasing in T, so is this. ``warm`` (a dict, updated) carries the band needs
    of the previous call as a warm start.
    """
    start = None if warm is None else warm.get("band")
    needs = resource_needs(t, valid, B, T, thetas, mem=mem, alphas=alphas, band_start=start,
                   band_iters=12 if start is None else 4, cache=warm)
    if warm is not None:
        warm["band"] = needs[1] * B
    out = np.full(len(T), -np.inf)
    for g in needs:
        out = np.maximum(out, g.min(axis=2).sum(axis=1) - 1.0)
    return out


def _priced_need(t: Terms, slack: np.ndarray, B: float, theta: float,
                 iters: int = 14, cache: dict | None = None) -> np.ndarray:
    """Certified lower estimate of min_b theta b/B + (1-theta) phi(b), phi(b) = S/(slack - D(b)).

    h(b) is convex on (b0, B] (b0 the least band meeting the slack; S/(slack - D) is 1 over a
    positive concave function). We bracket its minimiser b* in [bl, bu] on the sign of the
    exact slope h' (h' <= 0 at bl, > 0 at bu unless bu = B), then by
    convexity h(b*) >= h(bu) - h'(bu) (bu - bl) and h(b*) >= h(bl) + h'(bl) (bu - bl) (the
    tangents at the two ends); we return the larger. At most ``iters`` bracketing steps (regula
    falsi, Illinois variant: superlinear); it stops once every bracket is within a relative
    1e-7, and the tangent error is of second order in the width. ``cache``: see resource_needs (warm
    start of b0).
    """
    S = t.server_work
    start = None if cache is None else cache.get("b0_first")
    b0 = band_needed(t, slack, B, cache=cache, start=start)
    if cache is not None:
        cache["b0_first"] = b0[:1]
    shape = b0.shape

    def h_and_slope(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d, ds = comm_delay_and_slope(t, b)
        rest = slack - d
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            phi = np.where(S > 0, S / rest, 0.0)
            dphi = np.where(S > 0, S * ds / (rest * rest), 0.0)
        bad = (S > 0) & (rest <= 0)
        phi = np.where(bad, np.inf, phi)
        dphi = np.where(bad, -np.inf, dphi)
        return theta * b / B + (1 - theta) * phi, theta / B + (1 - theta) * dphi

    def q_at(b: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """(slack - D)/sqrt(-D') - sqrt((1-theta) S B/theta): increasing in b, no pole, and
        of the sign of h' (h' > 0 iff (slack - D)^2/(-D') > (1-theta) S B/theta, slack > D)."""
        if idx is None:
            tt, sl, SS = t, slack, S
        else:
            tt = _flat_terms(t, shape, idx)
            sl = np.broadcast_to(slack, shape).reshape(-1)[idx]
            SS = np.broadcast_to(S, shape).reshape(-1)[idx]
        d, ds = comm_delay_and_slope(tt, b)
        return (sl - d) / np.sqrt(-ds) - np.sqrt((1 - theta) * SS * B / theta)

    ok = np.isfinite(b0)
    lo = np.maximum(np.where(ok, b0, B), B * _B_FLOOR).reshape(-1)
    hi = np.full(lo.shape, float(B))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        # the bracket keeps h' <= 0 at lo and h' > 0 at hi (or hi = B); the points come from
        # the Illinois variant of regula falsi on q (of the sign of h'; close to linear in b,
        # as D ~ 1/b), bisection where q is not finite; settled entries drop out (flat arrays,
        # indices idx)
        f_hi = np.broadcast_to(q_at(np.full(shape, B)), shape).reshape(-1).copy()
        f_lo = np.broadcast_to(q_at(lo.reshape(shape)), shape).reshape(-1).copy()
        side = np.zeros(lo.shape, dtype=np.int8)
        # entries with h'(B) <= 0 have their minimiser at B: the bracket stays [lo, B]
        idx = np.flatnonzero(ok.reshape(-1) & (f_hi > 0))
        for _ in range(iters):
            if idx.size == 0:
                break
            lo_i, hi_i, flo, fhi = lo[idx], hi[idx], f_lo[idx], f_hi[idx]
            w = hi_i - lo_i
            x = hi_i - fhi * w / (fhi - flo)
            x = np.where(np.isfinite(x) & np.isfinite(flo) & np.isfinite(fhi),
                         np.clip(x, lo_i + 0.01 * w, hi_i - 0.01 * w), lo_i + 0.5 * w)
            if idx.size == lo.size:  # every entry (idx is all of them, in order)
                f = np.broadcast_to(q_at(x.reshape(shape)), shape).reshape(-1)
            else:
                f = q_at(x, idx)
            rising = f > 0
            sd = side[idx]
            flo = np.where(rising & (sd == 1), flo * 0.5, flo)  # Illinois
            fhi = np.where(~rising & (sd == -1), fhi * 0.5, fhi)
            hi[idx], f_hi[idx] = np.where(rising, x, hi_i), np.where(rising, f, fhi)
            lo[idx], f_lo[idx] = np.where(rising, lo_i, x), np.where(rising, flo, f)
            side[idx] = np.where(rising, 1, -1)
            idx = idx[hi[idx] - lo[idx] > 1e-7 * hi[idx]]
        bl, bu = lo.reshape(shape), hi.reshape(shape)
        hu, gu = h_and_slope(bu)
        hl, gl = h_and_slope(bl)
        est = hu - np.maximum(gu, 0.0) * (bu - bl)
        low = hl + np.minimum(gl, 0.0) * (bu - bl)
        est = np.where(np.isnan(est), -np.inf, est)
        est = np.maximum(est, np.where(np.isfinite(low), low, -np.inf))
        est = est - 1e-12 * np.abs(est)  # rounding margin
    est = np.maximum(est, theta * b0 / B)  # never below the pure band need
    return np.where(ok, est, np.inf)


def round_delay_bound(t: Terms, valid: np.ndarray, bandwidth_hz: float, *,
                      thetas: tuple[float, ...] = (), iters: int = 40,
                      mem: np.ndarray | None = None,
                      alphas: tuple[float, ...] = ()) -> np.ndarray:
    """Lower bounds on the optimal round delay, one per leading index of shape-(N, K, O) options.

    Each device picks any valid option; R is ignored and server memory too unless ``mem`` (the
    options' shares of an activation budget, see resource_needs) is given (relaxations).

    The largest T the tests of resource_needs prove impossible is found by the Illinois variant of
    regula falsi on log T (superlinear; bisection steps where the excess is infinite): the
    lower end of the bracket is always certified impossible, and it is what we return. At most
    ``iters`` steps; it stops when the bracket is within a relative 1e-12.
    """
    B = bandwidth_hz
    alone = np.where(valid, device_delays(t, np.full(valid.shape, B), np.ones(valid.shape)),
                     np.inf)
    lo = alone.min(axis=2).max(axis=1)  # each device alone with everything
    n = lo.shape[0]
    warm: dict = {}

    if mem is None and not thetas and valid.shape[0] == 1 and valid.shape[2] > 1:
        tb, vb = _band_representatives(t, valid)

        def excess(T: np.ndarray) -> np.ndarray:
            return _plain_excess(t, valid, tb, vb, B, T, warm)
    else:
        def excess(T: np.ndarray) -> np.ndarray:
            return _excess(t, valid, B, T, thetas, mem, alphas, warm)

    hi = lo * 2.0
    h_hi = excess(hi)
    h_lo = np.full(n, np.inf)  # unknown at the start; only its sign (>= 0 at a bound) matters
    pending = h_hi > 0
    for _ in range(200):
        if not pending.any():
            break
        lo = np.where(pending, hi, lo)  # hi was certified impossible: it is a bound
        h_lo = np.where(pending, h_hi, h_lo)
        hi = np.where(pending, hi * 4.0, hi)
        h_new = excess(hi)
        h_hi = np.where(pending, h_new, h_hi)
        pending = pending & (h_new > 0)
    xa, xb = np.log(lo), np.log(hi)
    ha, hb = h_lo, h_hi
    side = np.zeros(n, dtype=int)  # which end moved last: -1 lower, 1 upper
    for _ in range(iters):
        act = np.isfinite(xa) & (xb - xa > 1e-12)
        if not act.any():
            break
        w = xb - xa
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            x = xb - hb * w / (hb - ha)
        mid = xa + 0.5 * w
        x = np.where(np.isfinite(x) & np.isfinite(ha), np.clip(x, xa + 1e-3 * w, xb - 1e-3 * w),
                     mid)
        x = np.where(act, x, xa)
        h = excess(np.exp(x))
        bad = act & (h > 0)
        good = act & ~bad
        hb = np.where(bad & (side == -1), hb * 0.5, hb)  # Illinois: halve the stale end
        ha = np.where(good & (side == 1), ha * 0.5, ha)
        xa, ha = np.where(bad, x, xa), np.where(bad, h, ha)
        xb, hb = np.where(good, x, xb), np.where(good, h, hb)
        side = np.where(bad, -1, np.where(good, 1, side))
    return np.exp(xa).reshape(n)


def min_rounds(inst: SplitInstance, table: OptionTable, valid: np.ndarray | None = None) -> float:
    """R with every device at its least-distortion (valid) option."""
    a = inst.arrays
    valid = table.valid if valid is None else valid
    dmin = np.where(valid, table.delta, np.inf).min(axis=1)
    return float(a.rounds * (1.0 + a.eta * (a.sample_weight @ dmin)))


def table_terms(table: OptionTable) -> Terms:
    t = table.terms
    return Terms(*(f[None] for f in (t.compute, t.up_bits, t.down_bits, t.server_work,
                                     t.snr_ul, t.snr_dl)))


def table_bound(inst: SplitInstance, table: OptionTable, thetas: tuple[float, ...] = ()) -> float:
    T = round_delay_bound(table_terms(table), table.valid[None], inst.arrays.bandwidth,
                          thetas=thetas)[0]
    return min_rounds(inst, table) * float(T)


# --------------------------------------------------------------------------- server memory
LAGRANGE_THETAS = THETAS


def memory_case(inst: SplitInstance, table: OptionTable, s_lo: int, s_hi: int
                ) -> tuple[np.ndarray, np.ndarray] | None:
    """Relaxation of the parallel plans whose shallowest cut lies in [s_lo, s_hi].

    Such a plan has every cut >= s_lo and server weights srv_static[min cut] >= srv_static[s_hi]
    (non-increasing in the cut), so its activations fit the budget M_s - srv_static[s_hi]:
    sum_k n_k srv_act[s_k] <= budget, one more linear resource. Returns (valid, mem): the
    options left (cut >= s_lo, and the option's activations fit beside every other device's
    least) and each option's share of the budget; None if no plan can have such a shallowest cut.
    """
    a = inst.arrays
    budget = a.server_memory * (1.0 + REL_TOL) - a.srv_static[s_hi]
    if budget <= 0:
        return None
    act = table.srv_act
    valid = table.valid & (table.cut >= s_lo)
    least = np.where(valid, act, np.inf).min(axis=1)
    if not np.all(np.isfinite(least)) or least.sum() > budget:
        return None
    valid = valid & (act + (least.sum() - least)[:, None] <= budget)
    return valid, act / budget


def coupled_bound(inst: SplitInstance, table: OptionTable, thetas: tuple[float, ...] = THETAS,
                  *, valid: np.ndarray | None = None, mem: np.ndarray | None = None,
                  alphas: tuple[float, ...] = ALPHAS, deadline: Deadline | None = None,
                  **search) -> float:
    """The Lagrangian bound on R x T (lagrangian.py) for one relaxation of the parallel plans:
    the options ``valid`` (default: the table's), with ``mem`` (each option's share of a
    server-memory activation budget) coupled if given. ``search`` goes to
    lagrangian.interval_search (n_start, max_points, tol) or to lagrangian.LagrangianBound
    (alpha_rounds, newton_iters, price_iters, keep_thetas)."""
    valid = table.valid if valid is None else valid
    return _search(inst, table, [(valid, mem)], thetas, alphas, deadline, search)


def memory_coupled_bound(inst: SplitInstance, table: OptionTable, *,
                         thetas: tuple[float, ...] = THETAS,
                         alphas: tuple[float, ...] = ALPHAS, max_cases: int = 64,
                         deadline: Deadline | None = None, **search) -> float:
    """coupled_bound with the parallel server-memory constraint, by the shallowest cut.

    Every plan's shallowest cut s lies in [min_cut, min_k deepest cut of k]; the range is cut
    into at most ``max_cases`` parts of consecutive cuts (each part one memory_case: a
    relaxation with one more resource), and the bound is the least over the parts. Singletons
    are the tightest; the parts share every certificate (one Newton pass per round delay).
    """
    lo = int(table.cut[table.valid].min())
    hi = int(np.where(table.valid, table.cut, -1).max(axis=1).min())
    cuts = np.arange(lo, hi + 1)
    cases = []
    for part in np.array_split(cuts, max(1, min(max_cases, len(cuts)))):
        case = memory_case(inst, table, int(part[0]), int(part[-1]))
        if case is not None:
            cases.append(case)
    if not cases:
        return math.inf
    return _search(inst, table, cases, thetas, alphas, deadline, search)


def _search(inst: SplitInstance, table: OptionTable,
            cases: list[tuple[np.ndarray, np.ndarray | None]], thetas: tuple[float, ...],
            alphas: tuple[float, ...], deadline: Deadline | None, search: dict) -> float:
    a = inst.arrays
    T0 = search.pop("T0", None)  # the relaxation's round delay, if the caller has it
    if T0 is None:
        T0 = float(round_delay_bound(table_terms(table), table.valid[None], a.bandwidth)[0])
    r_min = min(min_rounds(inst, table, v) for v, _ in cases)
    if not math.isfinite(T0) or T0 <= 0 or not math.isfinite(r_min):
        return r_min * T0
    wdelta = np.where(table.valid, a.sample_weight[:, None] * table.delta, -np.inf)
    r_max = a.rounds * (1.0 + a.eta * float(wdelta.max(axis=1).sum()))
    dual = {k: search.pop(k) for k in ("alpha_rounds", "newton_iters", "price_iters",
                                       "keep_thetas") if k in search}
    keep = search.pop("keep", None)  # a list to receive the LagrangianBound (its points kept)
    keep_points = search.pop("keep_points", 0)
    n = int(table.valid.sum())
    if deadline is not None and deadline.expired(n * (SETUP_S_PER_ENTRY + POINT_S_PER_ENTRY)):
        return r_min * T0  # no time to build the bound and evaluate one point
    lb = LagrangianBound(inst, table, cases, thetas=thetas, alphas=alphas, **dual)
    if keep is not None:
        lb.points, lb.keep_points = [], keep_points
        keep.append(lb)
    out = interval_search(lb, T0, r_min, r_max, deadline=deadline, **search)
    return r_min * T0 if math.isnan(out) else max(r_min * T0, out)


# --------------------------------------------------------------------------- sequential plans
def sequential_bound(inst: SplitInstance) -> float:
    """The optimal total delay of sequential plans (vanilla split learning), exactly.

    A sequential plan serves one device at a time with the whole band and server, so its total is
    R(levels) x sum_k T_k(s_k, c_k) with T_k at b = B, phi = 1; server memory holds the weights
    above the shallowest cut and one device's activations. For each shallowest cut s: every cut
    is >= s and each device alone must fit beside srv_static[s] (separable); all such plans are
    feasible. Then min (1 + eta D) C over per-device choices (D the mean distortion, C the sum of
    delays) is attained at a vertex of the lower-left convex hull of the achievable (D, C): the
    objective is quasi-concave and increasing. Those vertices are the minimisers of C + lam D
    over lam >= 0, and the per-device hull walks merged by slope enumerate all of them.
    ``math.inf`` if no sequential plan exists.
    """
    a = inst.arrays
    levels = np.asarray(a.allowed_levels, dtype=int)
    if len(levels) == 0:
        return math.inf
    cuts = np.asarray(a.cuts, dtype=int)
    sp = OptionSpace(inst, SEQUENTIAL)  # options: cuts outer, levels inner
    shape = (sp.K, len(cuts), len(levels))
    t = Terms(sp.C, sp.U, sp.V, sp.S, a.snr_ul[:, None], a.snr_dl[:, None])
    # (K, S, L) per-device delay alone with everything; inf where device memory fails
    cost = device_delays(t, np.full(sp.C.shape, a.bandwidth), np.ones(sp.C.shape)).reshape(shape)
    fits = sp.fits.reshape(shape)[:, :, 0]
    act = sp.srv_act.reshape(shape)[:, :, 0]
    d = a.sample_weight[:, None] * a.delta[levels][None, :]  # (K, L)
    best = math.inf
    for s in cuts:
        budget = a.server_memory * (1 + REL_TOL) - a.srv_static[s]
        ok = fits & (cuts[None, :] >= s) & (act <= budget)
        c = np.where(ok[:, :, None], cost, np.inf).min(axis=1)  # (K, L) best cut per level
        if not np.isfinite(c).any(axis=1).all():
            continue
        best = min(best, _min_product(c, d, a.rounds, a.eta))
    return best * (1.0 - 1e-12) if math.isfinite(best) else math.inf


def _min_product(c: np.ndarray, d: np.ndarray, rounds: float, eta: float) -> float:
    """min over one column per row of rounds (1 + eta sum d) x sum c (c inf: not allowed)."""
    k, n_lev = c.shape
    rows = np.arange(k)
    # start: least c, ties to least d
    cur = _argmin_tie(c, d)
    D0, C0 = d[rows, cur].sum(), c[rows, cur].sum()
    lam, dD, dC = [], [], []
    for _ in range(n_lev):
        dc = c - c[rows, cur][:, None]
        dd = d[rows, cur][:, None] - d
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where((dd > 0) & np.isfinite(c), dc / dd, np.inf)
        nxt = _argmin_tie(slope, d)
        step = np.isfinite(slope[rows, nxt])
        if not step.any():
            break
        lam.append(slope[rows, nxt][step])
        dD.append(-dd[rows, nxt][step])
        dC.append(dc[rows, nxt][step])
        cur = np.where(step, nxt, cur)
    if eta == 0 or not lam:
        return float(rounds * (1 + eta * D0) * C0)
    order = np.argsort(np.concatenate(lam), kind="stable")
    D = D0 + np.concatenate([[0.0], np.cumsum(np.concatenate(dD)[order])])
    C = C0 + np.concatenate([[0.0], np.cumsum(np.concatenate(dC)[order])])
    return float((rounds * (1 + eta * D) * C).min())


def _argmin_tie(key: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Per row the column of least key, ties broken to the least d."""
    tie = key == key.min(axis=1, keepdims=True)
    return np.where(tie, d, np.inf).argmin(axis=1)


def lagrange_effort(n_entries: int) -> dict:
    """Settings of the lagrangian bound for a table of ``n_entries`` valid (device, option)
    entries. Every setting gives a certified bound; more memory cases and points are tighter
    and slower. The memory cases share the certificates but each solves its own duals, so
    their number falls with the table (measured on 2 shared cores: see
    benchmarks/scale/RESULTS.md)."""
    if n_entries <= 5000:  # small tables: per-call overhead dominates, refine fully
        return {"max_cases": max(1, min(64, int(3e4 // max(n_entries, 1)))), "tol": 3e-4,
                "max_points": 24, "thetas": THETAS}
    if n_entries <= 1e5:
        return {"max_cases": 1, "tol": 1e-3, "max_points": 24, "thetas": (0.3, 0.7)}
    # the priced tests' Newton steps dominate (~0.7 s a point at 10,000 devices): three
    # thetas that follow the best one, fewer points and alpha steps
    return {"max_cases": 1, "tol": 1e-3, "max_points": 10, "thetas": (0.3, 0.5, 0.7),
            "keep_thetas": False, "n_start": 3, "alphas": (0.5,), "alpha_rounds": 2}


def lower_bound(inst: SplitInstance, *, method: str = "relaxation",
                schedule: str = PARALLEL, deadline: Deadline | float | None = None) -> float:
    """A certified lower bound on the total delay R x T of every feasible plan of ``inst``.

    ``schedule`` names the plans bounded: ``parallel`` (default) or ``sequential`` (vanilla split
    learning, one device at a time; every method then returns sequential_bound, the exact
    optimum). ``math.inf`` if no plan exists (every bound is then valid). Every loop is capped;
    ``deadline`` (a Deadline or seconds) stops the lagrangian refinement early, still with a
    certified (looser) bound, never below the relaxation.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if schedule not in (PARALLEL, SEQUENTIAL):
        raise ValueError(f"schedule must be {PARALLEL!r} or {SEQUENTIAL!r}, got {schedule!r}")
    if schedule == SEQUENTIAL:
        return sequential_bound(inst)
    space = OptionSpace(inst)
    if space.diagnose() is not None:
        return math.inf
    if method == "relaxation":
        return relaxation_bound(inst, space.table())[0]
    return lagrangian_bound(inst, space.table(), deadline=deadline)[0]


def relaxation_bound(inst: SplitInstance, table: OptionTable) -> tuple[float, float]:
    """The ``relaxation`` bound R_min x T_lb of the parallel plans of ``table``, and T_lb."""
    T0 = float(round_delay_bound(table_terms(table), table.valid[None], inst.arrays.bandwidth)[0])
    return min_rounds(inst, table) * T0, T0


def lagrangian_bound(inst: SplitInstance, table: OptionTable, *,
                     deadline: Deadline | float | None = None, keep: list | None = None,
                     keep_points: int = 0) -> tuple[float, bool]:
    """The ``lagrangian`` bound of the parallel plans of ``table`` (never below the relaxation)
    and whether it is complete (the refinement ran to its own stopping rule, not to
    ``deadline``): `lower_bound` and the `lagrange` solver both compute it here, so a complete
    one is the same number from either. ``keep``: a list that receives the LagrangianBound with
    the ``keep_points`` best points it evaluated (``points``, with their duals, and the last
    one), for plans rounded from it."""
    relax, T0 = relaxation_bound(inst, table)
    if not math.isfinite(relax):
        return relax, True
    if not isinstance(deadline, Deadline):
        deadline = Deadline(deadline)
    out = memory_coupled_bound(inst, table, deadline=deadline, T0=T0, keep=keep,
                               keep_points=keep_points, **lagrange_effort(int(table.valid.sum())))
    return max(relax, out), not deadline.hit
