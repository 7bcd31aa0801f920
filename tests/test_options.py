"""Solver options: one declaration per option (type and range), every bad value named."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sftopt
from sftopt import SolverOptionError
from sftopt.core.options import COMMON_OPTIONS, real, whole
from sftopt.core.registry import check, get, register, solvers


@pytest.fixture(scope="module")
def tiny_inst(tiny_path):
    return sftopt.load_instance(tiny_path)


@pytest.fixture(scope="module")
def tiny_path():
    from pathlib import Path

    return Path(__file__).resolve().parents[1] / "data" / "instances" / "tiny-example.json"


def test_every_solver_option_is_declared_and_its_default_valid():
    for info in solvers():
        for name in info.options:
            if name == "warm_start":
                continue
            spec = info.specs[name]
            assert spec.expected()  # says what a valid value is
            if name in COMMON_OPTIONS:
                assert spec is COMMON_OPTIONS[name]  # one declaration of a common option


@pytest.mark.parametrize("option, value, expected", [
    ("time_limit", -1, "[0, 1e+09], or null"), ("threads", -1, "[1, 1024]"),
    ("gap_tol", -1, "[0, 1)"), ("rho", 0, "(0, 1e+12]"), ("tol", math.nan, "(0, 1)"),
    ("seed", -5, "[0, 2147483647]"), ("max_iter", 1e12, "[0, 10000000]"),
    ("polish", 1, "true or false"), ("samples", 2.5, "a whole number"),
    ("rho", "10", "a number"), ("max_iter", True, "a whole number"),
])
def test_bad_values_are_named_before_the_solver_runs(tiny_inst, option, value, expected):
    with pytest.raises(SolverOptionError, match=f"option {option}: expected .*") as err:
        sftopt.solve(tiny_inst, "alm", **{option: value}, certify=False)
    assert expected in str(err.value) and err.value.problems[0].name == option


def test_every_bad_value_at_once_and_unknown_options(tiny_inst):
    with pytest.raises(SolverOptionError) as err:
        sftopt.solve(tiny_inst, "alm", rho=0, tol=-1, certify=False)
    assert [p.name for p in err.value.problems] == ["rho", "tol"]
    with pytest.raises(SolverOptionError, match="has no option 'depth'"):
        sftopt.solve(tiny_inst, "greedy", depth=3, certify=False)
    # a common option the solver has no use for is still checked
    with pytest.raises(SolverOptionError, match="seed"):
        sftopt.solve(tiny_inst, "greedy", seed=-1, certify=False)


def test_integral_floats_become_whole_numbers():
    info = get("split", "alm")
    assert check(info, {"max_iter": 1e1, "samples": None}) == {"max_iter": 10, "samples": None}


def test_time_limit_zero_is_the_first_plan_at_once(tiny_inst):
    res = sftopt.solve(tiny_inst, "greedy-delay", time_limit=0, certify=False)
    assert res.termination == "time_limit" and res.plan is not None


def test_declarations_are_checked_at_registration():
    def solver(instance, *, depth: int = 3):
        raise AssertionError

    with pytest.raises(ValueError, match="'depth' has no declaration"):
        register("split", "test-undeclared")(solver)
    with pytest.raises(ValueError, match="default depth=3 is not"):
        register("split", "test-bad-default", options={"depth": whole(5, 9)})(solver)
    with pytest.raises(ValueError, match="does not take"):
        register("split", "test-extra", options={"depth": whole(0, 9),
                                                 "width": real(0, 1)})(solver)


def test_the_cli_exits_2_naming_the_option(tiny_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "sftopt", "solve", str(tiny_path), "--solver",
                          "alm", "--option", "rho=0", "--no-simulate"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "option rho: expected a number in (0, 1e+12]" in out.stderr
    assert "Traceback" not in out.stderr


@settings(derandomize=True, max_examples=60, deadline=None)
@given(value=st.one_of(st.none(), st.booleans(), st.integers(-10**15, 10**15),
                       st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5),
                       st.lists(st.integers(0, 3), max_size=3)))
def test_any_value_is_accepted_or_named(value):
    """Each declared option of every solver either takes the value or names it: never a raw
    error from the check itself."""
    for info in solvers():
        for name, spec in info.specs.items():
            ok, norm = spec.normalise(value)
            if ok and norm is not None and spec.kind in ("whole", "real"):
                assert math.isfinite(norm)
            if not ok:
                with pytest.raises(SolverOptionError, match=f"option {name}: expected"):
                    check(info, {name: value})


def test_a_deadline_counts_the_time_kept_for_later_work() -> None:
    from sftopt.core.options import Deadline

    d = Deadline(10.0)
    assert not d.expired() and not d.hit
    assert d.expired(reserve=20.0) and d.hit  # 10 s left, 20 s needed after: stop now
    assert not Deadline(None).expired(reserve=1e9)
