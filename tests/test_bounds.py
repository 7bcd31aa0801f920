"""Certified lower bounds never exceed a feasible plan's total delay; gaps attach to any result."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sftopt import load_instance, solve
from sftopt.bounds import METHODS, lower_bound, option_table, with_bound

# the tiny-instance generator lives beside the exact-solver tests (tests/ is not a package)
_spec = importlib.util.spec_from_file_location(
    "_exact_tests", Path(__file__).with_name("test_solvers_exact.py"))
_exact = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_exact)
tiny_instance, _infeasible_variants = _exact.tiny_instance, _exact._infeasible_variants


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n_devices=st.integers(2, 3), n_blocks=st.integers(1, 2),
       n_levels=st.integers(2, 3))
def test_bounds_never_exceed_feasible_plans(seed, n_devices, n_blocks, n_levels):
    inst = tiny_instance(seed, n_devices=n_devices, n_blocks=n_blocks, n_levels=n_levels)
    opt = solve(inst, "exhaustive")
    assert opt.success
    plans = [opt.total_delay_s] + [r.total_delay_s for r in
                                   (solve(inst, "greedy"), solve(inst, "baseline-equal"))
                                   if r.success]
    for method in ("relaxation", "lagrangian"):
        lb = lower_bound(inst, method=method)
        assert 0 < lb <= min(plans) * (1 + 1e-9), method
    m = solve(inst, "milp", max_iter=2, gap_tol=0.0)
    assert m.lower_bound_s <= min(plans) * (1 + 1e-9)


def test_methods_ordered_on_one_instance():
    inst = tiny_instance(5, n_devices=3, n_blocks=2, n_levels=3)
    opt = solve(inst, "exhaustive").total_delay_s
    lbs = {m: lower_bound(inst, method=m, time_limit=10) for m in METHODS}
    assert lbs["relaxation"] <= lbs["lagrangian"] * (1 + 1e-9)
    assert lbs["milp"] <= opt * (1 + 1e-9)
    assert lbs["milp"] >= opt * (1 - 1e-3)  # the MILP bound closes the gap here


def test_with_bound_attaches_gap():
    inst = tiny_instance(4)
    res = solve(inst, "greedy")
    out = with_bound(res, inst, method="lagrangian")
    assert out.lower_bound_s is not None and out.gap is not None
    assert out.gap == pytest.approx((out.total_delay_s - out.lower_bound_s) / out.total_delay_s)
    assert 0 <= out.gap < 1
    assert with_bound(res, inst, bound=1.0).lower_bound_s == 1.0
    assert with_bound(out, inst, bound=1.0).lower_bound_s == out.lower_bound_s  # keeps the larger
    other = tiny_instance(7)
    with pytest.raises(ValueError):
        with_bound(res, other)
    seq = res.model_copy(update={"schedule": "sequential"})  # e.g. vanilla-sl
    with pytest.raises(ValueError, match="parallel"):
        with_bound(seq, inst, bound=1.0)


def test_infeasible_instances_have_infinite_bound():
    for _, data in _infeasible_variants():
        assert math.isinf(lower_bound(load_instance(data)))
        with pytest.raises(ValueError):
            option_table(load_instance(data))


def test_unknown_method():
    with pytest.raises(ValueError):
        lower_bound(tiny_instance(0), method="magic")
