"""`milp` internals: the least-need rows, the LP rounds and the raised T_lo keep the bound valid."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sftopt import Status, solve
from sftopt.families.split.allocation import exact_allocation
from sftopt.families.split.cost import comm_delay, device_delays, server_memory
from sftopt.families.split.options import option_table
from sftopt.families.split.solvers.milp import _SPLITS, _least_needs, _option_terms, _split_points

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
