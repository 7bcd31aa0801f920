"""`dual-ascent`: joint block and band allocation by the Lagrangian split (one block per device).

Weights mu (a point of the simplex, one per device) turn the round delay max_k T_k into
sum_k mu_k T_k, a price lambda >= 0 charges the band. For fixed (mu, lambda) the Lagrangian
separates: each (device, block) pair costs min_b mu_k (t_kj + U_j / r_k(b)) + lambda b (the
band subproblem, one root of mu_k U_j (1/r)'(b) = -lambda per pair, solved for all pairs at
once), and the blocks go to devices by the Hungarian method on those costs (the assignment
subproblem). The dual value g(mu, lambda) = that least cost - lambda B is a lower bound on the
optimal round delay for every (mu, lambda) (weak duality); projected subgradient steps (Polyak
steps towards the best plan's delay) raise it. Every assignment met is a plan: its bands are
split exactly (the shared allocator) and the best is kept.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ....channel import LN2, inv_rate
from ....core.options import ITER_MAX, whole, work_deadline
from ....core.registry import register
from ....core.result import Result, Status, Termination
from ..allocation import allocate
from ..arrays import Arrays
from ..cost import upload_delay
from ..matching import as_assignment, cheapest
from ..plans import infeasible, make_result, preflight
from ..schema import CooperativeInstance


def band_subproblem(a: Arrays, mu: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Per pair (K, N): the band b minimising mu_k U_j / r_k(b) + lam b, and the pair's cost
    mu_k (t_kj + U_j / r_k(b)) + lam b (inf where the pair breaks memory)."""
    K, N = a.compute.shape
    U = np.broadcast_to(a.upload_bits[None, :], (K, N))
    x = np.broadcast_to(a.snr_ul[:, None], (K, N))
    w = np.broadcast_to(mu[:, None], (K, N)) * U  # weight of 1/r
    b = np.zeros((K, N))
    talk = (w > 0) & a.fits
    if lam <= 0:  # a free band: as wide as it helps (1/r tends to ln2 / x)
        cost = np.where(U > 0, mu[:, None] * (a.compute + U * LN2 / x), mu[:, None] * a.compute)
        b = np.where(talk, np.inf, 0.0)
        return b, np.where(a.fits, cost, np.inf)
    # root of w (1/r)'(b) + lam = 0: -(1/r)' falls from inf to 0, bisect in log b
    lo = np.full((K, N), -30.0)
    hi = np.full((K, N), math.log(max(a.bandwidth, 1.0)) + 10.0)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        _, slope = inv_rate(np.exp(mid), x, order=1)
        big = w * slope > lam  # the delay still falls faster than the band costs
        lo = np.where(big, mid, lo)
        hi = np.where(big, hi, mid)
    b = np.where(talk, np.exp(0.5 * (lo + hi)), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(talk, inv_rate(np.where(talk, b, 1.0), x, order=0)[0], 0.0)
    cost = mu[:, None] * a.compute + w * inv + lam * b
    return b, np.where(a.fits, cost, np.inf)


def project_simplex(v: np.ndarray) -> np.ndarray:
    """The Euclidean projection of v onto {mu >= 0, sum mu = 1}."""
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    rho = np.flatnonzero(u - css / np.arange(1, len(v) + 1) > 0)[-1]
    return np.maximum(v - css[rho] / (rho + 1.0), 0.0)


@register("cooperative", "dual-ascent", bound=True,
          description="Lagrangian split: Hungarian assignment + band subproblem, dual bound",
          options={"max_iter": whole(1, ITER_MAX, "most dual (subgradient) steps")})
def solve_dual_ascent(instance: CooperativeInstance, *, max_iter: int = 200,
                      time_limit: float | None = None, gap_tol: float = 1e-4) -> Result:
    """Projected subgradient ascent on the dual for ``max_iter`` iterations (or until the gap
    to the best plan is within ``gap_tol``); the best plan and the best dual bound."""
    stop = preflight(instance, "dual-ascent", one_block=True)
    if stop is not None:
        return stop
    a = instance.arrays
    deadline = work_deadline(time_limit, a.n_devices)
    K = a.n_devices
    mu = np.full(K, 1.0 / K)
    # a first price: the band's marginal worth to the mean pair at an equal split
    share = np.full(K, a.bandwidth / K)
    slope = inv_rate(share, a.snr_ul, order=1)[1]
    lam = float(np.mean(mu * slope) * a.upload_bits.mean())
    best, best_T, bound = None, math.inf, 0.0
    seen: set[tuple[int, ...]] = set()
    theta, stall, it = 1.0, 0, 0
    slowest = 0.0  # seconds of the slowest iteration: the next one must end by the deadline
    while it < max_iter:
        it += 1
        clock = time.perf_counter()
        b, cost = band_subproblem(a, mu, lam)
        got = cheapest(cost)
        if got is None:
            return infeasible(instance, "no assignment of blocks to devices fits in memory")
        owner, value = got
        g = value - lam * a.bandwidth
        stall = 0 if g > bound else stall + 1
        bound = max(bound, g)
        key = tuple(int(k) for k in owner)
        if key not in seen:  # a new assignment: its exact bands give a plan
            seen.add(key)
            bands = allocate(a, as_assignment(a, owner))
            if bands.round_delay < best_T:
                best, best_T = owner, bands.round_delay
        slowest = max(slowest, time.perf_counter() - clock)
        if best_T - bound <= gap_tol * best_T or deadline.expired(slowest):
            break
        if stall >= 10:  # Polyak steps towards an unreachable target: shorten them
            theta, stall = theta / 2.0, 0
        # subgradients: each device's delay under the subproblem's bands (s), the band excess
        # (Hz, scaled by s_lam = best_T / B to seconds: lambda = s_lam x a unitless price)
        bk = np.zeros(K)
        bk[owner] = b[owner, np.arange(len(owner))]
        bits = np.zeros(K)
        bits[owner] = a.upload_bits
        Tk = np.zeros(K)
        Tk[owner] = a.compute[owner, np.arange(len(owner))]
        Tk = Tk + upload_delay(bits, np.where(np.isfinite(bk), bk, a.bandwidth), a.snr_ul)
        s_lam = best_T / a.bandwidth
        g_lam = s_lam * (float(np.where(np.isfinite(bk), bk, a.bandwidth).sum())
                         - a.bandwidth)
        norm = float(Tk @ Tk + g_lam * g_lam)
        if norm <= 0:
            break
        step = theta * (best_T - g) / norm
        # kept off the simplex's faces: a zero weight frees a device's band (b = 0, no delay)
        mu = 0.999 * project_simplex(mu + step * Tk) + 0.001 / K
        lam = max(0.0, lam + step * g_lam * s_lam)
    assignment = as_assignment(a, best)
    bands = allocate(a, assignment)
    optimal = bands.round_delay - bound <= gap_tol * bands.round_delay
    stopped = Termination.CONVERGED if optimal else (
        Termination.TIME_LIMIT if deadline.hit else Termination.ITERATION_LIMIT)
    return make_result(instance, assignment, bands.bandwidth,
                       status=Status.OPTIMAL if optimal else Status.FEASIBLE,
                       termination=stopped, lower_bound=bound, iterations=it,
                       message=f"{it} iterations, {len(seen)} assignments allocated; the dual "
                               f"bound {bound:.6g} s")
