"""Wireless channel: noise, path loss, the Shannon rate and its derivatives, seeded fading traces.

The rate and everything derived from it live here, once; every family's cost model, allocator
and bound call these functions.
"""

from __future__ import annotations

import numpy as np

LN2 = float(np.log(2.0))


# z = x/b below which the rate and its slope are computed differently: a deep fade given a
# huge band (z ~ 1e-8 at 10,000 faded devices) made log2(1 + z) lose ~1e-16/z of its value
# and ln(1 + z) - z/(1 + z) ~ z^2/2 lose ~2e-16/z^2, enough to cost the allocator its 1e-9
# certificate; above it (every usual SNR) the arithmetic, and so every bit, is as before
SMALL_Z = 1e-3


def noise_w_per_hz(noise_dbm_hz: float) -> float:
    """Noise power spectral density N0 in W/Hz from dBm/Hz."""
    return 10.0 ** ((noise_dbm_hz - 30.0) / 10.0)


def pathloss_gain(distance_m: np.ndarray | float, a_db: float, g: float) -> np.ndarray:
    """Linear large-scale gain h = 10^(-PL/10) with PL = a_db + 10 g log10(d_km)."""
    d_km = np.asarray(distance_m, dtype=float) / 1000.0
    return 10.0 ** (-(a_db + 10.0 * g * np.log10(d_km)) / 10.0)


def shannon_rate(bandwidth_hz: np.ndarray, snr_coef: np.ndarray) -> np.ndarray:
    """Rate b log2(1 + x/b) in bit/s, x = p h / N0 in Hz; 0 where b = 0 (its limit)."""
    b = np.asarray(bandwidth_hz, dtype=float)
    x = np.asarray(snr_coef, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = x / b
        r = b * np.log2(1.0 + z)
        # at z < SMALL_Z, 1 + z keeps few of z's digits (a relative error ~ 1e-16 / z: 1e-8 at
        # a deep fade's z = 1e-8, and 0 below 1.1e-16): log1p there, the same bits elsewhere
        small = z < SMALL_Z
        if np.ndim(small) == 0:
            r = b * np.log1p(z) / LN2 if small else r
        elif small.any():
            r[small] = (b * np.log1p(z) / LN2)[small] if np.ndim(b) else \
                b * np.log1p(z[small]) / LN2
    return np.where(b > 0, r, 0.0)


def inv_rate(b: np.ndarray, x: np.ndarray, order: int = 2) -> tuple[np.ndarray, ...]:
    """1/r(b), -(1/r)'(b) > 0 and (1/r)''(b) > 0 for the rate r(b) = b log2(1 + x/b), b > 0
    (the first ``order`` + 1 of them).

    1/r is convex and decreasing in b (r is concave and increasing): what makes every
    communication delay convex in the band.
    """
    return _inv_rate_terms(np.asarray(b, dtype=float), np.asarray(x, dtype=float), None, order,
                           None)


class InvRateSum:
    """sum_i w_i / r_i(b), its -d/db and d2/db2 for rates r_i(b) = b log2(1 + x_i/b) sharing
    one band b per device: ``x`` and ``w`` stacked as (links, devices), e.g. a device's uplink
    and downlink, evaluated in one pass (`inv_rate`'s arithmetic, bit for bit).

    For a solver's inner loop: the intermediates live in scratch arrays kept between calls
    (at 10,000 devices, fresh ones cost more than the arithmetic: every call's temporaries
    were handed back to the system and faulted in again, about 4x the time); the results are
    new arrays.
    """

    def __init__(self, x: np.ndarray, w: np.ndarray):
        self.x = np.asarray(x, dtype=float)
        self.w = np.asarray(w, dtype=float)
        self._buf: list[np.ndarray] | None = None

    def __call__(self, b: np.ndarray, order: int = 2) -> tuple[np.ndarray, ...]:
        """The sums for bands ``b`` (one per device, or one for all)."""
        if self._buf is None:
            self._buf = [np.empty(self.x.shape) for _ in range(7)]
        return _inv_rate_terms(b, self.x, self.w, order, self._buf)




def _series(z: np.ndarray) -> np.ndarray:
    """ln(1 + z) - z/(1 + z) = z^2/2 - 2z^3/3 + 3z^4/4 - 4z^5/5 + 5z^6/6 - ..., |z| small."""
    return z * z * (0.5 - z * (2.0 / 3.0 - z * (0.75 - z * (0.8 - z * (5.0 / 6.0)))))


def _small_z_fix(d: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``d`` = ln(1 + z) - z/(1 + z) with its entries at z < SMALL_Z from the series (6 terms:
    a relative error below 2e-15; the others keep their bits)."""
    if np.ndim(z) == 0:
        return _series(z) if z < SMALL_Z else d
    small = z < SMALL_Z
    if small.any():
        d[small] = _series(z[small])
    return d


def _inv_rate_terms(b: np.ndarray, x: np.ndarray, w: np.ndarray | None, order: int,
                    buf: list[np.ndarray] | None) -> tuple[np.ndarray, ...]:
    """The one implementation of 1/r and its derivatives (`inv_rate`): per link (w None) or
    weighted by ``w`` and summed over the first axis (two links: w0 f0 + w1 f1), computed in
    ``buf`` (7 scratch arrays) or in fresh arrays (buf None). The operations and their order
    are those the solvers' reference results were made with: any other order moves last bits,
    and a local search can turn last bits into another plan."""
    Z, LG, R, R1, INV, T1, T2 = buf if buf is not None else (None,) * 7

    def total(v: np.ndarray) -> np.ndarray:
        if w is None:
            return v.copy()  # v's buffer is worked on further
        p = np.multiply(w, v, out=T2)
        return p[0] + p[1] if len(p) == 2 else p.sum(axis=0)

    z = np.divide(x, b, out=Z)
    lg = np.log1p(z, out=LG)
    r = np.divide(np.multiply(b, lg, out=R), LN2, out=R)
    inv = np.divide(1.0, r, out=INV)
    out = [total(inv)]
    if order >= 1:
        # r1 = (lg - z / (1 + z)) / ln2
        r1 = np.divide(z, np.add(z, 1.0, out=R1), out=R1)
        r1 = np.subtract(lg, r1, out=R1)
        r1 = _small_z_fix(r1, z)
        r1 = np.divide(r1, LN2, out=R1)
        t = np.multiply(np.multiply(r1, inv, out=T1), inv, out=T1)
        out.append(total(t))
        if order >= 2:
            # r2 = -(x z) / (ln2 (b + x)^2); (1/r)'' = (2 r1 r1 - r r2) inv^3
            t = np.add(b, x, out=T1)
            t = np.multiply(LN2, np.power(t, 2, out=T1), out=T1)
            r2 = np.negative(np.multiply(x, z, out=LG), out=LG)  # lg is free from here
            r2 = np.divide(r2, t, out=LG)
            t = np.multiply(np.multiply(2.0, r1, out=T1), r1, out=T1)
            t = np.subtract(t, np.multiply(r, r2, out=LG), out=T1)
            t = np.multiply(np.multiply(np.multiply(t, inv, out=T1), inv, out=T1), inv, out=T1)
            out.append(total(t))
    return tuple(out)


def inv_rate_link(b: float, x: float, z: float, lg: float) -> tuple[float, float, float]:
    """1/r, -(1/r)' and (1/r)'' of one link at one band, from z = x/b and lg = log1p(z), for
    compiled loops (core.jit): `_inv_rate_terms`' operations in its order (SMALL_Z = 1e-3 and
    its series inlined), so the same bits."""
    ln2 = 0.6931471805599453
    r = (b * lg) / ln2
    inv = 1.0 / r
    if z < 1e-3:
        r1 = z * z * (0.5 - z * (2.0 / 3.0 - z * (0.75 - z * (0.8 - z * (5.0 / 6.0)))))
    else:
        r1 = lg - z / (z + 1.0)
    r1 = r1 / ln2
    t1 = (r1 * inv) * inv
    t = ln2 * ((b + x) * (b + x))
    r2 = -(x * z) / t
    t2 = ((((2.0 * r1) * r1 - r * r2) * inv) * inv) * inv
    return inv, t1, t2


def band_for_rate(rate: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The band b with b log2(1 + x/b) = ``rate`` (the inverse of `shannon_rate` in b): 0 for a
    rate of 0, inf for a rate the channel cannot reach (rate >= x / ln 2, its limit as b grows).

    Closed form: with y = x/b and a = rate ln2 / x in (0, 1), ln(1 + y) = a y, so 1 + y =
    -W_{-1}(-a e^-a) / a (Lambert W, lower branch); two Newton steps polish it to rounding.
    """
    from scipy.special import lambertw

    rate = np.asarray(rate, dtype=float)
    x = np.asarray(x, dtype=float)
    shape = np.broadcast_shapes(rate.shape, x.shape)
    rate, x = np.broadcast_to(rate, shape), np.broadcast_to(x, shape)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        a = rate * LN2 / x
        ok = (a > 0) & (a < 1)
        aa = np.where(ok, a, 0.5)
        u = -lambertw(-aa * np.exp(-aa), k=-1).real / aa
        b = x / np.where(ok, u - 1.0, 1.0)
        target = rate * LN2
        for _ in range(2):  # Newton on f(b) = b ln(1 + x/b) - rate ln2, increasing, concave
            z = x / b
            f = b * np.log1p(z) - target
            df = np.log1p(z) - z / (1.0 + z)
            b = np.where(ok & (df > 0), b - f / df, b)
    out = np.where(ok, b, np.where(rate <= 0, 0.0, np.inf))
    return out if out.ndim else float(out)


def fading_trace(n_devices: int, n_rounds: int, seed: int) -> np.ndarray:
    """Rayleigh power fading e[t, k] ~ Exp(1), independent over rounds and devices.

    Uplink and downlink of a round share the draw. Drawn in one block from
    ``numpy.random.default_rng(seed)`` so a trace is reproducible from its seed.
    """
    rng = np.random.default_rng(seed)
    return rng.exponential(1.0, size=(n_rounds, n_devices))
