"""Small timescale: the exact allocator against the conic route (cvxpy/CLARABEL), SLSQP and a
duality bound."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from sftopt import load_instance
from sftopt.channel import fading_trace
from sftopt.families.split.allocation import (
    Allocator,
    allocate,
    conic_allocation,
    delay_weights,
    equal_allocation,
    exact_allocation,
    sqp_allocation,
)
from sftopt.families.split.cost import Terms, comm_delay, device_delays, terms

TINY = json.loads((Path(__file__).parents[1] / "data/instances/tiny-example.json").read_text())
LN2 = np.log(2.0)


def instance(n: int, seed: int, max_cut: int = 3):
    """The tiny-example model with n random devices (cut 3 = L+1: nothing on the server)."""
    rng = np.random.default_rng(seed)
    d = copy.deepcopy(TINY)
    d["name"] = f"alloc-{n}-{seed}"
    d["training"]["max_cut"] = max_cut
    d["devices"] = [{"id": f"d{k}", "flops": float(10 ** rng.uniform(11, 12.7)),
                     "memory_bytes": 8e9, "tx_power_w": float(rng.choice([0.1, 0.2])),
                     "distance_m": float(rng.uniform(50, 400)), "batch": int(rng.choice([4, 8]))}
                    for k in range(n)]
    return load_instance(d)


def random_terms(n: int, seed: int) -> tuple[Terms, float]:
    inst = instance(n, seed)
    rng = np.random.default_rng(seed + 1000)
    cuts = rng.integers(0, 4, n)
    levels = rng.integers(0, 3, n)
    return terms(inst, cuts, levels), inst.arrays.bandwidth


def dual_bound(t: Terms, B: float, b: np.ndarray, phi: np.ndarray, w: np.ndarray) -> float:
    """Weak duality, computed here from scratch: for any w >= 0 (sum 1), lambda, nu >= 0,
    T* >= sum w C + sum min_b (w D(b) + lambda b) + sum 2 sqrt(w S nu) - lambda B - nu.
    lambda and nu are read off (b, phi) by finite differences (any value gives a valid bound)."""
    talks = (t.up_bits > 0) | (t.down_bits > 0)
    serves = t.server_work > 0
    h = 1e-6 * b
    slope = (comm_delay(t, b - h) - comm_delay(t, b + h)) / (2 * h)  # -D'(b)
    lam = float(np.median((w * slope)[talks & (w > 0)])) if talks.any() else 0.0
    nu = float(np.median((w * t.server_work / np.where(phi > 0, phi, 1) ** 2)[serves & (w > 0)]))\
        if serves.any() else 0.0
    q = float(w @ t.compute) - lam * B - nu + float(2 * np.sqrt(w * t.server_work * nu).sum())
    for k in np.flatnonzero(talks):
        tk = t.subset(np.array([k]))

        def f(u: float, tk: Terms = tk, wk: float = w[k]) -> float:
            return wk * float(comm_delay(tk, np.array([np.exp(u)]))[0]) + lam * np.exp(u)

        u0 = np.log(b[k])
        res = minimize_scalar(f, bounds=(u0 - 20, u0 + 20), method="bounded",
                              options={"xatol": 1e-10})
        q += min(res.fun, f(u0))
    return q


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 6), seed=st.integers(0, 10_000))
def test_exact_matches_cvxpy_and_is_certified(n: int, seed: int) -> None:
    t, B = random_terms(n, seed)
    a = exact_allocation(t, B)
    assert a.bandwidth.sum() <= B * (1 + 1e-12) and a.share.sum() <= 1 + 1e-12
    assert a.round_delay == pytest.approx(device_delays(t, a.bandwidth, a.share).max(), rel=1e-12)
    ref = conic_allocation(t, B)
    assert ref.bandwidth.sum() <= B * (1 + 1e-12) and ref.share.sum() <= 1 + 1e-12
    assert ref.round_delay == pytest.approx(device_delays(t, ref.bandwidth, ref.share).max(),
                                            rel=1e-12)
    # never worse than the conic route's plan, which is within CLARABEL's accuracy of it
    assert a.round_delay <= ref.round_delay * (1 + 1e-9)
    assert ref.round_delay <= a.round_delay * (1 + 1e-5), ref.message
    # certified: an independent weak-duality bound within 1e-6
    lb = dual_bound(t, B, a.bandwidth, a.share, delay_weights(t, a))
    assert lb <= a.round_delay * (1 + 1e-9)
    assert (a.round_delay - lb) / a.round_delay <= 1e-6
    assert (a.round_delay - a.lower_bound) / a.round_delay <= 1e-9


@pytest.mark.parametrize("n,seed", [(1, 0), (2, 1), (3, 2), (5, 3)])
def test_exact_agrees_with_cvxpy_to_1e6(n: int, seed: int) -> None:
    t, B = random_terms(n, seed)
    ref = allocate(t, B, "conic")
    assert ref.message.startswith("cvxpy CLARABEL: optimal")
    assert exact_allocation(t, B).round_delay == pytest.approx(ref.round_delay, rel=1e-6)


def test_conic_route_online_and_in_simulation(tiny) -> None:
    """The conic allocator is selectable wherever an allocator is: online and in simulation."""
    import sftopt

    tiny["training"]["rounds"] = 20  # a short simulation: cvxpy takes ~30 ms a round
    inst = load_instance(tiny)
    res = sftopt.solve(inst, "greedy-delay", certify=False)
    online = Allocator(inst, res.plan.cuts, res.plan.levels, method="conic")
    exact = Allocator(inst, res.plan.cuts, res.plan.levels)
    for e in fading_trace(inst.n_devices, 3, seed=5):
        assert online.step(e).round_delay == pytest.approx(exact.step(e).round_delay, rel=1e-5)
    sim = sftopt.simulate(inst, res, allocator="conic", seed=1)
    assert sim.allocator == "conic"
    assert sim.total_delay_s == pytest.approx(
        sftopt.simulate(inst, res, seed=1).total_delay_s, rel=1e-5)


@pytest.mark.parametrize("n,seed", [(1, 4), (2, 5), (3, 6), (4, 7)])
def test_slsqp_never_beats_exact(n: int, seed: int) -> None:
    t, B = random_terms(n, seed)
    exact = exact_allocation(t, B)
    sqp = sqp_allocation(t, B)
    assert sqp.round_delay >= exact.round_delay * (1 - 1e-9)
    assert sqp.round_delay <= equal_allocation(t, B).round_delay * (1 + 1e-12)
    assert sqp.round_delay == pytest.approx(exact.round_delay, rel=1e-3)  # it converges here


def test_allocator_step_matches_exact_under_scaled_gains() -> None:
    inst = instance(6, 11)
    rng = np.random.default_rng(11)
    cuts, levels = rng.integers(0, 4, 6), rng.integers(0, 3, 6)
    base = terms(inst, cuts, levels)
    B = inst.arrays.bandwidth
    for method in ("exact", "sqp", "equal"):
        al = Allocator(inst, cuts, levels, method=method)
        assert al.step().round_delay == pytest.approx(
            allocate(base, B, method).round_delay, rel=1e-9)
        for e in fading_trace(6, 5, seed=3):
            got = al.step(e)
            want = allocate(base.with_gains(e), B, method)
            assert got.round_delay == pytest.approx(want.round_delay, rel=1e-9 if
                                                    method != "sqp" else 1e-6)


def test_delay_weights_are_the_sensitivity() -> None:
    t, B = random_terms(4, 21)
    a = exact_allocation(t, B)
    w = delay_weights(t, a)
    assert w.sum() == pytest.approx(1.0) and (w >= 0).all()
    eps = 1e-5 * a.round_delay
    for k in range(4):
        c = t.compute.copy()
        c[k] += eps
        moved = exact_allocation(Terms(c, t.up_bits, t.down_bits, t.server_work, t.snr_ul,
                                       t.snr_dl), B).round_delay
        assert (moved - a.round_delay) / eps == pytest.approx(w[k], abs=1e-3)


def _terms(**kw: np.ndarray) -> Terms:
    n = len(next(iter(kw.values())))
    base = {f: np.zeros(n) for f in ("compute", "up_bits", "down_bits", "server_work")}
    base.update(snr_ul=np.full(n, 1e9), snr_dl=np.full(n, 1e10))
    base.update(kw)
    return Terms(**base)


def test_edge_cases() -> None:
    # no devices
    empty = exact_allocation(_terms(compute=np.zeros(0)), 1e6)
    assert empty.round_delay == 0.0 and len(empty.bandwidth) == 0
    # one device: everything to it
    one = exact_allocation(_terms(compute=np.array([1.0]), up_bits=np.array([1e7]),
                                  server_work=np.array([0.5])), 1e6)
    assert one.bandwidth[0] == pytest.approx(1e6) and one.share[0] == pytest.approx(1.0)
    # no server work (cut L+1) beside server-only work: two independent resources
    mix = _terms(compute=np.array([0.1, 0.2, 0.3]), up_bits=np.array([1e7, 0, 2e7]),
                 down_bits=np.array([1e7, 0, 0]), server_work=np.array([0.0, 0.4, 0.0]))
    a = exact_allocation(mix, 2e6)
    d = device_delays(mix, a.bandwidth, a.share)
    assert a.share[0] == 0 and a.share[2] == 0 and a.bandwidth[1] == 0
    assert a.round_delay == pytest.approx(d.max())
    assert (a.round_delay - a.lower_bound) <= 1e-9 * a.round_delay
    # an idle device (nothing to send, no server work) that is the bottleneck
    idle = _terms(compute=np.array([100.0, 0.1]), up_bits=np.array([0.0, 1e6]),
                  server_work=np.array([0.0, 0.1]))
    assert exact_allocation(idle, 1e6).round_delay == pytest.approx(100.0)
    # zero channel gain with data to send: infeasible, reason given
    dead = _terms(compute=np.array([0.1]), up_bits=np.array([1e6]), snr_ul=np.array([0.0]))
    bad = exact_allocation(dead, 1e6)
    assert not bad.feasible and "bandwidth" in bad.message


def test_allocate_rejects_unknown_method() -> None:
    t, B = random_terms(2, 0)
    with pytest.raises(ValueError, match="allocation method"):
        allocate(t, B, "magic")


def test_many_devices_stay_exact() -> None:
    t, B = random_terms(300, 42)
    a = exact_allocation(t, B)
    assert (a.round_delay - a.lower_bound) <= 1e-9 * a.round_delay
    assert a.round_delay <= equal_allocation(t, B).round_delay


@pytest.mark.parametrize("n,seed", [(2, 31), (5, 32)])
def test_nested_fallback_agrees(n: int, seed: int) -> None:
    from sftopt.families.split.allocation import _nested  # the fallback, exercised directly

    t, B = random_terms(n, seed)
    fast, slow = exact_allocation(t, B), _nested(t, B, 1e-9)
    assert slow.round_delay == pytest.approx(fast.round_delay, rel=1e-6)
    assert slow.lower_bound <= fast.round_delay * (1 + 1e-9)


def test_online_allocator_stays_certified_through_deep_fades() -> None:
    """`Allocator.step` (issue 21): every fading round certified to 1e-9 by its own Newton
    method (never the slow nested fallback), equal to a cold exact solve, in a few steps, also
    when one device fades by 1e-6 (its band then becomes most of the band)."""
    n = 300
    inst = instance(n, 21)
    rng = np.random.default_rng(21)
    cuts, levels = rng.integers(0, 4, n), rng.integers(0, 3, n)
    al = Allocator(inst, cuts, levels)
    base = terms(inst, cuts, levels)
    B = inst.arrays.bandwidth
    al.step()
    rounds = list(fading_trace(n, 12, seed=21))
    deep = rounds[3].copy()
    deep[7] = 1e-6
    rounds.insert(4, deep)
    steps = []
    for e in rounds:
        a = al.step(e)
        assert a.message == "", a.message  # no fallback
        assert (a.round_delay - a.lower_bound) / a.round_delay <= 1e-9
        assert a.lower_bound <= a.round_delay
        assert a.bandwidth.sum() <= B * (1 + 1e-12) and a.share.sum() <= 1 + 1e-12
        cold = exact_allocation(base.with_gains(e), B)
        assert a.round_delay == pytest.approx(cold.round_delay, rel=1e-9)
        steps.append(a.iterations)
    assert max(steps) <= 12 and float(np.median(steps)) <= 6, steps


def test_rate_and_slope_keep_their_digits_at_low_snr() -> None:
    """At z = x/b down to 1e-17 (a deep fade given a huge band) the rate and the derivatives of
    1/r match 50-digit arithmetic; above channel.SMALL_Z every bit is the plain formula's."""
    from mpmath import log1p, mp, mpf

    from sftopt.channel import SMALL_Z, InvRateSum, inv_rate, shannon_rate

    mp.dps = 50
    b = 1e6
    for z in (0.5, 1e-3, 2e-4, 1e-5, 1e-9, 1e-17):
        x = z * b
        zz = mpf(x) / b
        lg = log1p(zz)
        r = b * lg / mp.log(2)
        r1 = (lg - zz / (1 + zz)) / mp.log(2)
        r2 = -(mpf(x) * zz) / (mp.log(2) * (b + mpf(x)) ** 2)
        want = [1 / r, r1 / r**2, (2 * r1 * r1 - r * r2) / r**3]
        # the plain formulas, kept above SMALL_Z, lose ~1e-16/z (rate) and ~2e-16/z^2 (slope)
        assert float(shannon_rate(b, x)) == pytest.approx(float(r), rel=max(1e-14, 3e-16 / z))
        got = inv_rate(np.array([b]), np.array([x]))
        for g, w in zip(got, want, strict=True):
            assert g[0] == pytest.approx(float(w), rel=max(1e-14, 5e-16 / z**2)), z
    rng = np.random.default_rng(0)
    bb = 10 ** rng.uniform(2, 9, 500)
    x = bb * 10 ** rng.uniform(np.log10(SMALL_Z), 6, 500)
    assert np.array_equal(shannon_rate(bb, x), bb * np.log2(1.0 + x / bb))
    # the stacked, weighted sum is the per-link function's, bit for bit
    w = np.stack([rng.uniform(1, 5, 500), rng.uniform(1, 5, 500)])
    xs = np.stack([x, 3 * x])
    ev = InvRateSum(xs, w)
    for _ in range(2):  # its scratch arrays are reused
        for s, a, c in zip(ev(bb), inv_rate(bb, xs[0]), inv_rate(bb, xs[1]), strict=True):
            assert np.array_equal(s, w[0] * a + w[1] * c)


def _need_kernels() -> None:
    from sftopt.families.split import allocation

    if allocation._kernels() is None:
        pytest.skip("no compiled kernels: numba not installed, or SFTOPT_NO_NUMBA=1")


def _online_pair(n: int, seed: int, monkeypatch):
    """Two `Allocator`s of one instance: one on the compiled kernels, one on the numpy path."""
    from sftopt.families.split import allocation

    inst = instance(n, seed)
    rng = np.random.default_rng(seed)
    cuts, levels = rng.integers(0, 4, n), rng.integers(0, 3, n)
    fast = Allocator(inst, cuts, levels)
    fast.step()
    assert all(fz.fast is not None for fz in fast._systems.values())
    monkeypatch.setattr(allocation, "_KERNELS", None)  # what _kernels() gives without numba
    ref = Allocator(inst, cuts, levels)
    ref.step()
    assert all(fz.fast is None for fz in ref._systems.values())
    return terms(inst, cuts, levels), inst.arrays.bandwidth, fast, ref


@pytest.mark.parametrize("n,seed", [(40, 3), (300, 4)])
def test_compiled_kernels_match_the_numpy_path(n: int, seed: int, monkeypatch) -> None:
    """The online path on numba kernels (extra `fast`) and on numpy: the same steps, so the
    same allocation, Newton step count and certificate to 1e-12 round after round (the warm
    start carries any difference on), through deep fades (factors down to 1e-6)."""
    _need_kernels()
    base, B, fast, ref = _online_pair(n, seed, monkeypatch)
    rng = np.random.default_rng(seed)
    rounds = list(fading_trace(n, 10, seed=seed))
    deep = rounds[2] * 10 ** rng.uniform(-6, 0, n)  # every device in some fade
    rounds.insert(3, deep)
    one = rounds[5].copy()
    one[1] = 1e-6
    rounds.insert(6, one)
    for i, e in enumerate(rounds):
        a, b = fast.step(e), ref.step(e)
        assert a.message == b.message == ""
        assert a.iterations == b.iterations
        np.testing.assert_allclose(a.bandwidth, b.bandwidth, rtol=1e-12, atol=0)
        np.testing.assert_allclose(a.share, b.share, rtol=1e-12, atol=0)
        for f in ("round_delay", "lower_bound", "price"):
            assert getattr(a, f) == pytest.approx(getattr(b, f), rel=1e-12, abs=0), f
        assert a.lower_bound <= a.round_delay
        assert (a.round_delay - a.lower_bound) / a.round_delay <= 1e-9
        assert a.bandwidth.sum() <= B * (1 + 1e-12) and a.share.sum() <= 1 + 1e-12
        # the round delay is the cost model's, and the bound a valid one (weak duality with
        # multipliers read off the allocation here, independently of the allocator's)
        t = base.with_gains(e)
        assert float(device_delays(t, a.bandwidth, a.share).max()) == a.round_delay
        if i % 3 == 0 or i in (3, 6):  # the deep fades, and some rounds (a root find each)
            w = delay_weights(t, a)
            assert dual_bound(t, B, a.bandwidth, a.share, w) <= a.round_delay * (1 + 1e-12)


def test_compiled_kernels_match_numpy_at_any_point(monkeypatch) -> None:
    """Residual, projection and Newton step of `_Online` at random points, also far from the
    answer (bands from e^-60 to e^12 of the equal share, where rates lose their digits or the
    slope is nan): kernels and numpy agree to 1e-12, and on which points are rejected."""
    _need_kernels()
    from sftopt.families.split import allocation

    n = 200
    t, B = random_terms(n, 9)
    t = t.with_gains(10 ** np.random.default_rng(9).uniform(-6, 0.5, n))
    talks = (t.up_bits > 0) | (t.down_bits > 0)
    talk = np.flatnonzero(talks)
    srv = np.flatnonzero(~talks & (t.server_work > 0))
    fast = allocation._Online(t, B, talk, srv, True)
    assert fast.fast is not None
    ref = allocation._Online(t, B, talk, srv, True)
    ref.fast = None
    rng = np.random.default_rng(1)
    rejected = 0
    with np.errstate(all="ignore"):
        for spread in (0.1, 3.0, 30.0):
            for _ in range(6):
                u = np.log(B / n) + rng.normal(0.0, spread, len(talk))
                v, tau = rng.normal(-40.0, 5.0), rng.normal(np.log(fast.R), 3.0)
                ra, rb = fast.residual(u, v, tau), ref.residual(u, v, tau)
                assert (ra is None) == (rb is None)
                if ra is None:
                    rejected += 1
                    continue
                for key in ("b", "D", "nD1", "D2", "qs", "h", "s", "F", "phi", "phis"):
                    np.testing.assert_allclose(ra[key], rb[key], rtol=1e-12, atol=0,
                                               err_msg=key)
                for key in ("P", "gB", "gS", "m"):
                    assert ra[key] == pytest.approx(rb[key], rel=1e-12, abs=1e-300), key
                # the step's sums run in another order (a loop, not BLAS), and Cramer's rule
                # cancels digits at points this far from the answer: 4e-11 seen here
                for x, y in zip(fast.step(ra), ref.step(rb), strict=True):
                    np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12 * np.abs(y).max())
                pa, pb = fast.project(u, v, tau), ref.project(u, v, tau)
                np.testing.assert_array_equal(np.isnan(pa), np.isnan(pb))
                ok = ~np.isnan(pb)
                np.testing.assert_allclose(pa[ok], pb[ok], rtol=1e-12, atol=1e-12)
    assert rejected < 18  # most points are evaluated, not just rejected


def test_kernels_switch_off(monkeypatch) -> None:
    """Without numba, or with SFTOPT_NO_NUMBA=1, the online path runs on numpy."""
    from sftopt.families.split import allocation

    monkeypatch.setattr(allocation, "_KERNELS", False)
    monkeypatch.setenv("SFTOPT_NO_NUMBA", "1")
    assert allocation._kernels() is None
    al = Allocator(instance(5, 2), np.array([0, 1, 2, 3, 1]), np.zeros(5, dtype=int))
    a = al.step()
    assert all(fz.fast is None for fz in al._systems.values())
    assert (a.round_delay - a.lower_bound) / a.round_delay <= 1e-9


def test_kernels_that_do_not_compile_leave_numpy(monkeypatch) -> None:
    """A kernel numba cannot compile (here: one returning a Python object) means a warning and
    the numpy path, not a failing allocator."""
    pytest.importorskip("numba")
    from sftopt.families.split import allocation

    monkeypatch.setattr(allocation, "_KERNELS", False)
    monkeypatch.setattr(allocation, "_k_link_jit", allocation._k_link_jit)
    monkeypatch.setattr(allocation, "_k_residual", lambda *args: object())
    monkeypatch.delenv("SFTOPT_NO_NUMBA", raising=False)
    with pytest.warns(RuntimeWarning, match="numba kernels unavailable"):
        assert allocation._kernels() is None
    a = Allocator(instance(5, 2), np.array([0, 1, 2, 3, 1]), np.zeros(5, dtype=int)).step()
    assert (a.round_delay - a.lower_bound) / a.round_delay <= 1e-9
