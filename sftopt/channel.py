"""Wireless channel: noise, path loss, the Shannon rate and its derivatives, seeded fading traces.

The rate and everything derived from it live here, once; every family's cost model, allocator
and bound call these functions.
"""

from __future__ import annotations

import numpy as np

LN2 = float(np.log(2.0))


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
        r = b * np.log2(1.0 + x / b)
    return np.where(b > 0, r, 0.0)


def inv_rate(b: np.ndarray, x: np.ndarray, order: int = 2) -> tuple[np.ndarray, ...]:
    """1/r(b), -(1/r)'(b) > 0 and (1/r)''(b) > 0 for the rate r(b) = b log2(1 + x/b), b > 0
    (the first ``order`` + 1 of them).

    1/r is convex and decreasing in b (r is concave and increasing): what makes every
    communication delay convex in the band.
    """
    z = x / b
    lg = np.log1p(z)
    r = b * lg / LN2
    r1 = (lg - z / (1.0 + z)) / LN2
    inv = 1.0 / r
    if order < 2:
        return (inv, r1 * inv * inv)[: order + 1]
    r2 = -(x * z) / (LN2 * (b + x) ** 2)  # = -x^2 / (ln2 b (b+x)^2)
    return inv, r1 * inv * inv, (2.0 * r1 * r1 - r * r2) * inv * inv * inv


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
