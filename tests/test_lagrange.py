"""The `lagrange` solver: plans rounded from the lagrangian bound's dual, verified, with that
bound attached and reused by certify (not computed twice)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import sftopt
from sftopt import Termination
from sftopt.families.split import bounds
from sftopt.families.split.generate import random_instance

ROOT = Path(__file__).resolve().parents[1]
SPLIT = [p for p in sorted((ROOT / "data" / "instances").glob("*.json"))
         if sftopt.load_instance(p).family == "split"]


@pytest.mark.parametrize("path", SPLIT, ids=[p.stem for p in SPLIT])
def test_bundled_plans_verify_and_the_bound_is_the_lagrangian_one(path: Path) -> None:
    inst = sftopt.load_instance(path)
    res = sftopt.solve(inst, "lagrange", certify=False)
    assert res.termination == Termination.CONVERGED, res.message
    assert sftopt.verify(inst, res).ok
    # the bound is the one lower_bound gives (same function, complete), below every plan
    assert res.bound == bounds.lower_bound(inst, method="lagrangian")
    assert "lagrangian" in res.bound_methods
    other = sftopt.solve(inst, "greedy-delay", certify=False).objective
    assert res.bound <= min(res.objective, other) * (1 + 1e-9)


def test_certify_reuses_the_solvers_bound(monkeypatch: pytest.MonkeyPatch, tmp_path: Path
                                          ) -> None:
    inst = sftopt.load_instance(ROOT / "data" / "instances" / "default.json")
    res = sftopt.solve(inst, "lagrange", certify=False)
    calls = []
    real = bounds.lower_bound

    def counted(*args, **kw):
        calls.append(kw.get("method"))
        return real(*args, **kw)

    monkeypatch.setattr(bounds, "lower_bound", counted)
    done = sftopt.certify(inst, [res], method="lagrangian")[0]
    assert calls == [] and done.bound == res.bound and done.gap == res.gap
    # another method is computed; so is the lagrangian bound for a result that does not
    # carry it (a plan file loaded back: the mark is not written)
    sftopt.certify(inst, [res], method="relaxation")
    assert calls == ["relaxation"]
    loaded = sftopt.load_plan(res.save(tmp_path / "plan.json"))
    assert loaded.bound_methods == frozenset()
    again = sftopt.certify(inst, [loaded], method="lagrangian")[0]
    assert calls == ["relaxation", "lagrangian"] and again.bound == res.bound
    # certify marks what it computed: a second certify of its result computes nothing
    sftopt.certify(inst, [again], method="lagrangian")
    assert calls == ["relaxation", "lagrangian"]
    # a mark without a bound (the bound taken off by hand) does not count
    bare = res.model_copy(update={"bound": None, "gap": None})
    assert sftopt.certify(inst, [bare], method="lagrangian")[0].bound == res.bound
    assert calls == ["relaxation", "lagrangian", "lagrangian"]
    del calls[-1]
    # a heuristic's result in the same class gets the carried bound without a computation
    alm = sftopt.solve(inst, "alm", certify=False)
    both = sftopt.certify(inst, [alm, res], method="lagrangian")
    assert len(calls) == 2 and both[0].bound == res.bound


def test_a_bound_cut_by_the_time_limit_is_not_reused() -> None:
    inst = sftopt.load_instance(ROOT / "data" / "instances" / "default.json")
    res = sftopt.solve(inst, "lagrange", time_limit=0, certify=False)
    assert res.plan is not None and sftopt.verify(inst, res).ok
    assert "lagrangian" not in res.bound_methods
    assert res.bound == pytest.approx(bounds.lower_bound(inst, method="relaxation"), rel=1e-12)
    full = sftopt.certify(inst, [res], method="lagrangian")[0]
    assert full.bound == bounds.lower_bound(inst, method="lagrangian")
    assert res.message.startswith("no plan rounded from the lagrangian dual (0 tried)")
    # the bound alone cut short (a tiny share of a long limit): the result says time_limit
    cut = sftopt.solve(inst, "lagrange", time_limit=60, bound_share=1e-6, certify=False)
    assert "bound cut at the time limit" in cut.message
    assert cut.termination == Termination.TIME_LIMIT and cut.success


def test_a_bound_without_time_for_one_point_is_not_built(monkeypatch) -> None:
    """With less time left than building the bound and one evaluation take (estimated per
    entry), the bound is the relaxation's at once: nothing is started that would overrun."""
    from sftopt.core.options import Deadline
    from sftopt.families.split import lagrangian
    from sftopt.families.split.options import option_table

    inst = sftopt.load_instance(random_instance(200, seed=1, scaled=True))
    table = option_table(inst)
    need = int(table.valid.sum()) * (lagrangian.SETUP_S_PER_ENTRY +
                                     lagrangian.POINT_S_PER_ENTRY)
    relax = bounds.relaxation_bound(inst, table)[0]

    def refuse(*args, **kwargs):
        raise AssertionError("the bound was built")

    monkeypatch.setattr(bounds, "LagrangianBound", refuse)
    got, complete = bounds.lagrangian_bound(inst, table, deadline=Deadline(need * 0.5))
    assert got == relax and not complete
    monkeypatch.undo()
    got, complete = bounds.lagrangian_bound(inst, table, deadline=Deadline(need * 100 + 30))
    assert got > relax * 1.01 and complete


def test_rounded_plans_close_the_gap_on_a_generated_fleet() -> None:
    """200 GPT-2 small devices (benchmarks/scale's generator): the certified gap of the rounded
    plan is under 1% (0.13% measured), below greedy-delay's."""
    inst = sftopt.load_instance(random_instance(200, seed=1, scaled=True))
    res = sftopt.solve(inst, "lagrange")
    assert sftopt.verify(inst, res).ok
    assert math.isfinite(res.bound) and res.gap < 0.01, res.gap
    greedy = sftopt.solve(inst, "greedy-delay", certify=False)
    assert res.objective < greedy.objective


def _entries(n: int, seed: int):
    from sftopt.families.split import lagrangian
    from sftopt.families.split.options import option_table

    inst = sftopt.load_instance(random_instance(n, seed=seed, scaled=True))
    return lagrangian, lagrangian._Entries(inst, option_table(inst))


def _feasible_needs(e, T: float, thetas, rng):
    """Per entry, the resource use of random (band, share) pairs meeting T: rows band/B and
    theta b/B + (1 - theta) phi per theta (inf where a pair misses T), 40 pairs each."""
    from sftopt.families.split.lagrangian import _delay_terms

    out = []
    for _ in range(40):
        b = e.B * rng.uniform(1e-4, 1.0, e.n) ** 3  # many small bands: the least needs
        d = _delay_terms(e.U, e.V, e.xu, e.xd, b, 0)[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            phi = np.where(e.S > 0, e.S / (T - e.c - d), 0.0)
        ok = (phi >= 0) & (phi <= 1) & (e.c + d + np.where(e.S > 0, e.S / phi, 0.0) <= T)
        rows = [b / e.B] + [t * b / e.B + (1 - t) * phi for t in thetas]
        out.append(np.where(ok, np.array(rows), np.inf))
    return np.min(out, axis=0)


def test_compiled_tests_are_certificates_like_the_numpy_ones() -> None:
    """The compiled Newton loops (numba) give per-entry needs within 1e-6 of numpy's (each
    entry stops on its own step, numpy's a few steps later) and, like numpy's, never above
    what a plan meeting the round delay uses."""
    lagrangian, e = _entries(200, 3)
    assert e.n >= lagrangian.KERNEL_MIN_ENTRIES  # the size from which the kernels run
    fast = lagrangian._Tests(e, (0.3, 0.5, 0.7), fast=True)
    if fast.fast is None:
        pytest.skip("no compiled kernels: numba not installed, or SFTOPT_NO_NUMBA=1")
    ref = lagrangian._Tests(e, (0.3, 0.5, 0.7), fast=False)
    assert ref.fast is None
    rng = np.random.default_rng(0)
    for T in (2.0, 3.0, 3.05, 6.0):  # the steps warm-start from the previous T
        vf, vr = fast.at(T)[0], ref.at(T)[0]
        assert np.array_equal(np.isfinite(vf), np.isfinite(vr))
        fin = np.isfinite(vr)
        assert fin[1:].any() and (vr[1:][fin[1:]] > 0).any()
        assert np.abs(vf[fin] - vr[fin]).max() <= 1e-6
        used = _feasible_needs(e, T, (0.3, 0.5, 0.7), rng)
        for v in (vf, vr):  # band and priced tests below every sampled plan's use
            assert np.all(v[1:] <= used * (1 + 1e-9) + 1e-12)


def test_compiled_tests_switch_off(monkeypatch) -> None:
    lagrangian, e = _entries(200, 3)
    monkeypatch.setenv("SFTOPT_NO_NUMBA", "1")
    assert lagrangian._Tests(e, (0.5,)).fast is None
    monkeypatch.delenv("SFTOPT_NO_NUMBA")
    small = _entries(5, 3)[1]
    assert small.n < lagrangian.KERNEL_MIN_ENTRIES
    assert lagrangian._Tests(small, (0.5,)).fast is None  # small tables: numpy


def test_compiled_least_needs_are_numpys_bit_for_bit() -> None:
    """The compiled least needs per (level, device) -- every test, mixed with the memory share
    by the grid's and by refined alphas, moved along the certificates' slopes -- and so the
    duals equal the numpy expressions exactly."""
    from sftopt.families.split import lagrangian
    from sftopt.families.split.options import option_table

    inst = sftopt.load_instance(random_instance(200, seed=3, scaled=True))
    table = option_table(inst)
    cases = [c for c in (bounds.memory_case(inst, table, s, s) for s in range(4))
             if c is not None]
    assert len(cases) >= 2
    got = []
    for compiled in (True, False):
        lb = lagrangian.LagrangianBound(inst, table, cases, thetas=(0.3, 0.5, 0.7),
                                        alphas=(0.5,))
        if lb.fast is None:
            pytest.skip("no compiled kernels: numba not installed, or SFTOPT_NO_NUMBA=1")
        if not compiled:
            lb.fast = None
        p = lb.point(3.4)
        cs = np.arange(len(cases))
        lb.duals(p, cs)
        G = lb._needs(p["val"], cs, p["alpha"], p["slope"], np.linspace(-0.3, 0.2, len(cs)))
        got.append((p["L"], p["nu"], p["alpha"], G))
    assert np.isfinite(got[0][0]).any() and np.isfinite(got[0][3]).any()
    for a, b in zip(*got, strict=True):
        assert np.array_equal(a, b)


def test_a_sampled_start_keeps_the_bound_certified() -> None:
    """On large fleets the search starts at a round delay estimated on a sample of devices
    (not a certificate): the bound stays below every plan and close to the unsampled one."""
    from sftopt.families.split import lagrangian
    from sftopt.families.split.options import option_table

    inst = sftopt.load_instance(random_instance(400, seed=5, scaled=True))
    table = option_table(inst)
    effort = bounds.lagrange_effort(int(table.valid.sum()))
    lb = lagrangian.LagrangianBound(inst, table, [(table.valid, None)])
    _, T0 = bounds.relaxation_bound(inst, table)
    thetas = lb.tests.thetas
    assert lb.guess(T0, devices=20) > T0 * 1.5 and lb.tests.thetas != thetas
    assert lb.guess(T0, devices=21) == T0  # a fleet under 20 samples: no guess
    plain = bounds.memory_coupled_bound(inst, table, **effort, sample=10**6)
    sampled = bounds.memory_coupled_bound(inst, table, **effort, sample=20)
    plan = sftopt.solve(inst, "lagrange", certify=False).objective
    assert plain <= plan and sampled <= plan
    assert sampled >= plain * 0.995
