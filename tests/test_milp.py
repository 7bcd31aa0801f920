"""`milp` internals: the least-need rows, the LP rounds and the raised T_lo keep the bound valid."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

from sftopt import Status, solve
from sftopt.core import highs
from sftopt.core.options import Deadline
from sftopt.families.split.allocation import exact_allocation
from sftopt.families.split.cost import (
    comm_delay,
    comm_delay_and_slope,
    device_delays,
    rounds_needed,
    server_memory,
)
from sftopt.families.split.options import option_table
from sftopt.families.split.solvers.milp import (
    _SPLITS,
    _least_needs,
    _Model,
    _option_terms,
    _Points,
    _priced_points,
    _split_points,
)

from .test_solvers_exact import CASES, _check_plan, tiny_instance


@pytest.mark.parametrize("seed", range(6))
def test_least_needs_are_below_every_plan(seed):
    """For every option choice, each device's exact band and share at the allocated round
    delay T are at least the least needs computed for T (the rows beta >= bmin x, phi >= smin x
    cut off no plan with round delay <= T_hi)."""
    inst = tiny_instance(seed, n_devices=2 + seed % 2, n_blocks=2, n_levels=3)
    table = option_table(inst)
    B = inst.arrays.bandwidth
    K = inst.n_devices
    opts = [np.flatnonzero(table.valid[k]) for k in range(K)]
    for choice in itertools.islice(itertools.product(*opts), 60):
        choice = np.array(choice)
        alloc = exact_allocation(table.gather(choice), B)
        if not np.isfinite(alloc.round_delay):
            continue
        T = alloc.round_delay
        # the plan's own delays, and the needs at T (and at a larger T_hi: still below)
        t = _option_terms(table, np.arange(K), choice)
        assert device_delays(t, alloc.bandwidth, alloc.share).max() <= T * (1 + 1e-12)
        for T_hi in (T, 1.5 * T):
            bmin, smin = _least_needs(t, T_hi, B)
            assert np.all(alloc.bandwidth / B >= bmin - 1e-12)
            assert np.all(alloc.share >= smin - 1e-12)
        # at T itself the needs are tight for a device with nothing else to share
        assert np.all(comm_delay(t, np.full(K, B)) <= T * (1 + 1e-9))


@pytest.mark.parametrize("seed", range(4))
def test_split_points_finish_at_the_round_delay(seed):
    """At an option's split point theta, its link takes at least theta of the slack (the band
    is a lower estimate) and its server exactly the rest: the point lies where the option
    finishes at round delay T."""
    inst = tiny_instance(seed, n_devices=3, n_blocks=2, n_levels=3)
    table = option_table(inst)
    B = inst.arrays.bandwidth
    kk, oo = np.nonzero(table.valid)
    t = _option_terms(table, kk, oo)
    T = 1.5 * float(device_delays(t, np.full(len(kk), B), np.ones(len(kk))).max())
    band, share = _split_points(t, T, B)
    slack = T - t.compute
    for j, theta in enumerate(_SPLITS):
        ok = np.isfinite(band[:, j])
        assert ok.any()
        tj = _option_terms(table, kk[ok], oo[ok])
        assert np.all(comm_delay(tj, band[ok, j] * B) >= theta * slack[ok] * (1 - 1e-9))
        on = np.isfinite(share[:, j])
        np.testing.assert_allclose(t.server_work[on] / share[on, j], (1 - theta) * slack[on])


def _allocated_choices(inst, table, n):
    """Up to n option choices of ``inst`` within server memory, with a finite exact allocation
    and a KKT price."""
    B = inst.arrays.bandwidth
    K = inst.n_devices
    opts = [np.flatnonzero(table.valid[k]) for k in range(K)]
    out = []
    for choice in itertools.islice(itertools.product(*opts), 200):
        choice = np.array(choice)
        if server_memory(inst, table.cut[np.arange(K), choice]) > inst.arrays.server_memory:
            continue
        alloc = exact_allocation(table.gather(choice), B)
        if np.isfinite(alloc.round_delay) and np.isfinite(alloc.price) and alloc.price > 0:
            out.append((choice, alloc))
        if len(out) == n:
            break
    return out


@pytest.mark.parametrize("seed", range(4))
def test_priced_points_finish_at_the_round_delay_at_the_price(seed):
    """At an option's priced point it finishes exactly at round delay T, and its band and
    share trade at the price: -D'(b) phi^2 / S = theta (the allocator's KKT ratio)."""
    inst = tiny_instance(seed, n_devices=3, n_blocks=2, n_levels=3)
    table = option_table(inst)
    B = inst.arrays.bandwidth
    kk, oo = np.nonzero(table.valid)
    t = _option_terms(table, kk, oo)
    (_, alloc), = _allocated_choices(inst, table, 1)
    T = 1.2 * alloc.round_delay
    band, share = _priced_points(t, T, B, alloc.price)
    both = np.isfinite(band) & np.isfinite(share)
    assert both.any()
    tb = _option_terms(table, kk[both], oo[both])
    d, g = comm_delay_and_slope(tb, band[both] * B)
    np.testing.assert_allclose(t.compute[both] + d + t.server_work[both] / share[both], T,
                               rtol=1e-9)
    np.testing.assert_allclose(-g * share[both] ** 2 / t.server_work[both], alloc.price,
                               rtol=1e-6)
    # an option that cannot finish by T even with the whole band and server has no point
    late = t.compute + comm_delay(t, np.full(len(kk), B)) + t.server_work >= T
    assert np.all(np.isnan(band[late])) and np.all(np.isnan(share[late]))


@pytest.mark.parametrize("seed", range(4))
def test_priced_points_of_a_plan_are_its_allocation(seed):
    """Priced at the exact allocator's round delay and price, each chosen option's point is the
    band and share the allocator gave it (the KKT conditions of the allocation)."""
    inst = tiny_instance(seed, n_devices=3, n_blocks=2, n_levels=3)
    table = option_table(inst)
    B = inst.arrays.bandwidth
    K = inst.n_devices
    for choice, alloc in _allocated_choices(inst, table, 5):
        t = _option_terms(table, np.arange(K), choice)
        band, share = _priced_points(t, alloc.round_delay, B, alloc.price)
        both = np.isfinite(band) & np.isfinite(share)
        assert both.any()
        np.testing.assert_allclose(band[both] * B, alloc.bandwidth[both], rtol=1e-6)
        np.testing.assert_allclose(share[both], alloc.share[both], rtol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_tangents_at_priced_points_make_the_relaxation_exact(seed):
    """With every option fixed to a plan's and tangents only at the priced points of its
    allocation, the LP relaxation's value is the plan's total (the tangent LP has the same KKT
    point), while tangents a factor 2 off leave it below: why milp adds them at its start."""
    inst = tiny_instance(seed, n_devices=3, n_blocks=2, n_levels=3)
    table = option_table(inst)
    B = inst.arrays.bandwidth
    K = inst.n_devices
    a = inst.arrays
    choice, alloc = _allocated_choices(inst, table, 1)[0]
    total = rounds_needed(inst, table.level[np.arange(K), choice]) * alloc.round_delay
    valid = np.zeros_like(table.valid)
    valid[np.arange(K), choice] = True
    fixed = replace(table, valid=valid)
    t = _option_terms(table, np.arange(K), choice)
    band, share = _priced_points(t, alloc.round_delay, B, alloc.price)
    tau = alloc.round_delay

    def lp_value(scale: float) -> float:
        points = _Points()
        for k in range(K):
            points.add(k, int(choice[k]), band[k] * scale, share[k] * scale)
        model = _Model(inst, fixed, tau, Deadline(None))
        h = model.build(points, 0.5, 2.0, relax=True)
        return a.rounds * tau * highs.run(h, None).objective

    assert lp_value(1.0) == pytest.approx(total, rel=1e-7)
    assert lp_value(2.0) < total * (1 - 1e-3)


def test_milp_starts_with_tangents_at_the_incumbents_priced_points(monkeypatch):
    """milp prices its initial points at the incumbent's round delay and KKT price, and every
    option's priced point is among its initial tangent points."""
    from sftopt.families.split.solvers import milp

    calls = []
    original = milp._priced_points

    def spy(t, t_at, B, price, deadline=None):
        got = original(t, t_at, B, price, deadline)
        calls.append((t_at, price, got))
        return got

    monkeypatch.setattr(milp, "_priced_points", spy)
    inst = tiny_instance(3, n_devices=4, n_blocks=2, n_levels=3)
    table = option_table(inst)
    m = solve(inst, "milp", incumbent="exhaustive", max_iter=1, lp_rounds=0, certify=False)
    assert len(calls) == 1
    t_at, price, (band, share) = calls[0]
    K = inst.n_devices
    choice = np.array([np.flatnonzero((table.cut[k] == m.plan.cuts[k])
                                      & (table.level[k] == m.plan.levels[k]))[0]
                       for k in range(K)])
    alloc = exact_allocation(table.gather(choice), inst.arrays.bandwidth)
    assert t_at == pytest.approx(alloc.round_delay, rel=1e-9)  # the incumbent: the optimum
    assert price == pytest.approx(alloc.price, rel=1e-6)
    points = milp._initial_points(table, 2 * t_at, inst.arrays.bandwidth, 2, Deadline(None),
                                  t_at, price)
    kk, oo = np.nonzero(table.valid)
    for p, (k, o) in enumerate(zip(kk, oo, strict=True)):
        for got, want in ((points.band[(k, o)], band[p]), (points.share[(k, o)], share[p])):
            if np.isfinite(want):
                assert min(abs(np.array(got) / max(want, 1e-7) - 1)) <= 1e-3


@pytest.mark.parametrize("case", CASES[:4], ids=lambda c: f"seed{c['seed']}")
@pytest.mark.parametrize("bound", ["lagrangian", "none"])
def test_starting_bound_keeps_bound_valid(case, bound):
    """The lagrangian start (lower bound, T_lo) and the gap-closing objective bound given to
    HiGHS: the bound stays below the optimum, one MILP or to optimality."""
    inst = tiny_instance(**case)
    opt = solve(inst, "exhaustive", certify=False).objective
    one = solve(inst, "milp", max_iter=1, gap_tol=1e-3, lp_rounds=0, cuts_per_device=2,
                bound=bound, certify=False)
    _check_plan(inst, one)
    assert one.bound <= opt * (1 + 1e-9)
    full = solve(inst, "milp", gap_tol=1e-5, time_limit=20, bound=bound, certify=False)
    _check_plan(inst, full)
    assert full.status == Status.OPTIMAL, full.message
    assert full.objective == pytest.approx(opt, rel=1e-5)
    assert full.bound <= opt * (1 + 1e-9)


@pytest.mark.parametrize("case", CASES[:4], ids=lambda c: f"seed{c['seed']}")
@pytest.mark.parametrize("lp_rounds", [0, 3, 40])
def test_lp_rounds_keep_bound_valid(case, lp_rounds):
    inst = tiny_instance(**case)
    opt = solve(inst, "exhaustive", certify=False).objective
    # one MILP only (and a loose gap): the bound must still not exceed the optimum
    m = solve(inst, "milp", max_iter=1, gap_tol=0.0, lp_rounds=lp_rounds, cuts_per_device=2,
              certify=False)
    _check_plan(inst, m)
    assert m.bound <= opt * (1 + 1e-9)
    assert m.objective >= opt * (1 - 1e-9)
    full = solve(inst, "milp", gap_tol=1e-5, time_limit=20, lp_rounds=lp_rounds, certify=False)
    _check_plan(inst, full)
    assert full.status == Status.OPTIMAL, full.message
    assert full.objective == pytest.approx(opt, rel=1e-5)
    assert full.bound <= opt * (1 + 1e-9)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_server_memory_pressure_bound_valid(seed):
    """With the server memory squeezed, the min-cut rows and the raised T_lo stay valid."""
    inst = tiny_instance(seed, n_devices=3, n_blocks=2, n_levels=3, server_pressure=0.8)
    ref = solve(inst, "exhaustive", certify=False)
    m = solve(inst, "milp", gap_tol=1e-5, time_limit=20, certify=False)
    _check_plan(inst, m)
    assert server_memory(inst, m.plan.cuts) <= inst.arrays.server_memory * (1 + 1e-9)
    assert m.bound <= ref.objective * (1 + 1e-9)
    assert m.objective == pytest.approx(ref.objective, rel=1e-5)


def _knapsack():
    """A small MILP: min -(5a + 4b + 3c) with 2a + 3b + c <= 5, a, b, c binary (optimum -9:
    a = b = 1, c = 0)."""
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.addCols(3, np.array([-5.0, -4.0, -3.0]), np.zeros(3), np.ones(3), 0,
              np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
    h.addRows(1, np.array([-highspy.kHighsInf]), np.array([5.0]), 3, np.array([0], np.int32),
              np.arange(3, dtype=np.int32), np.array([2.0, 3.0, 1.0]))
    h.changeColsIntegrality(3, np.arange(3, dtype=np.int32),
                            np.full(3, highspy.HighsVarType.kInteger, dtype=np.uint8))
    return h


def test_highs_child_process_gives_the_same_outcome():
    """The isolated route (a child process) solves the same model to the same optimum, with a
    MIP start, as the run in process."""
    from sftopt.core import highs

    start = np.array([1.0, 0.0, 0.0])
    here = highs.run(_knapsack(), 10.0, options={"mip_rel_gap": 0.0}, start=start,
                     isolate=False)
    there = highs.run(_knapsack(), 10.0, options={"mip_rel_gap": 0.0}, start=start,
                      isolate=True)
    assert not there.killed and there.feasible
    assert there.status == here.status
    assert there.objective == here.objective == -9.0  # a + b: 5 + 4 (weight 5)
    np.testing.assert_array_equal(there.x.round(), here.x.round())
    assert there.dual_bound == pytest.approx(here.dual_bound)


def test_highs_child_process_is_killed_at_the_deadline():
    """No time left: the child is stopped from outside, and the outcome says so."""
    import time

    import highspy

    from sftopt.core import highs

    t0 = time.monotonic()
    out = highs.run(_knapsack(), 0.0, isolate=True)
    assert out.killed and not out.feasible and out.x is None
    assert out.status == highspy.HighsModelStatus.kTimeLimit
    assert time.monotonic() - t0 < 5.0  # killed, not waited for


def test_milp_through_child_processes_is_still_exact(monkeypatch):
    """Every HiGHS run of milp in a child process (as on large models): the same optimum."""
    from sftopt.core import highs

    monkeypatch.setattr(highs, "ISOLATE_NNZ", 0)
    inst = tiny_instance(**CASES[0])
    opt = solve(inst, "exhaustive", certify=False).objective
    m = solve(inst, "milp", gap_tol=1e-5, time_limit=60, certify=False)
    _check_plan(inst, m)
    assert m.status == Status.OPTIMAL, m.message
    assert m.objective == pytest.approx(opt, rel=1e-5)
    assert m.bound <= opt * (1 + 1e-9)


def test_milp_stops_while_building_the_model_at_its_deadline():
    """Past the deadline before HiGHS runs (on large instances the Python model build alone
    outlasts short limits): the incumbent, its bound, termination time_limit, no traceback."""
    inst = tiny_instance(**CASES[0])
    m = solve(inst, "milp", time_limit=0, certify=False)
    _check_plan(inst, m)
    assert m.termination == "time_limit"
    assert "while building the model" in m.message
    assert m.bound <= m.objective


def test_lagrange_seed_is_skipped_on_large_tables_under_a_time_limit(monkeypatch):
    """Above _LAGRANGE_MAX_ENTRIES the lagrange seed's bound set-up alone outlasts its share
    of a time limit (100,000 devices): it is skipped, and said; without a limit it runs."""
    from sftopt.families.split.solvers import milp

    inst = tiny_instance(**CASES[0])
    calls = []
    real = milp._seed
    monkeypatch.setattr(milp, "_seed", lambda i, t, p, name, *a: calls.append(name) or
                        real(i, t, p, name, *a))
    monkeypatch.setattr(milp, "_LAGRANGE_MAX_ENTRIES", 0)
    m = solve(inst, "milp", time_limit=30, certify=False)
    _check_plan(inst, m)
    assert calls == ["alm"] and "seed lagrange skipped" in m.message
    calls.clear()
    solve(inst, "milp", time_limit=None, certify=False)
    assert calls == ["lagrange", "alm"]
