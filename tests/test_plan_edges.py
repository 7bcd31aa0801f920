"""The cost model, the verifier and the simulation at the edges of a plan: a vanishing band or
share is an infinite delay, a plan that does not fit its instance is named, stated figures are
held to the recomputed ones, and the API's warm start, certification and online gains."""

from __future__ import annotations

import copy
import logging
import math
import time
from pathlib import Path

import numpy as np
import pytest

import sftopt
from sftopt.families.split.allocation import Allocator
from sftopt.families.split.cost import evaluate
from sftopt.families.split.simulation import MAX_ROUNDS, trace_chunks

TINY = Path(__file__).resolve().parents[1] / "data" / "instances" / "tiny-example.json"


@pytest.fixture(scope="module")
def inst():
    return sftopt.load_instance(TINY)


@pytest.fixture(scope="module")
def plan(inst):
    return sftopt.solve(inst, "greedy", certify=False).to_dict()


def _with(plan: dict, k: int = 0, **changes) -> sftopt.Result:
    d = copy.deepcopy(plan)
    for key, value in changes.items():
        if key in ("objective", "instance", "instance_sha256"):
            d[key] = value
        elif key == "round_delay_s":
            d["plan"][key] = value
        else:
            d["plan"]["devices"][k][key] = value
    return sftopt.load_plan(d)


@pytest.mark.parametrize("band", [1e-300, 5e-324])
def test_a_vanishing_band_is_never_a_zero_delay(inst, plan, band):
    res = _with(plan, bandwidth_hz=band)
    ev = sftopt.get_family("split").evaluate(inst, res.plan)
    assert not ev.feasible and "phone-0" in " ".join(ev.violations)
    rep = sftopt.verify(inst, res)  # no ZeroDivisionError, no raw Pyomo warning
    assert not rep.feasible and not rep.ok
    assert any("phone-0" in v and "infinite delay" in v for v in rep.violations)


def test_an_absurd_band_breaks_the_band_not_the_arithmetic(inst, plan):
    # 1e308 Hz: the rate tends to its wideband limit p g / (N0 ln 2), finite; the plan breaks
    # the band's sum, and nothing divides by zero or overflows on the way
    res = _with(plan, bandwidth_hz=1e308)
    ev = sftopt.get_family("split").evaluate(inst, res.plan)
    assert not ev.feasible and any("bandwidth" in v for v in ev.violations)
    rep = sftopt.verify(inst, res)
    assert not rep.feasible and any("bandwidth" in v for v in rep.violations)


def test_a_share_whose_delay_overflows_is_infinite(inst, plan):
    res = _with(plan, server_share=5e-324)
    assert not sftopt.get_family("split").evaluate(inst, res.plan).feasible
    assert not sftopt.verify(inst, res).feasible


@pytest.mark.parametrize("field, value, said", [
    ("server_share", math.inf, "not a finite number >= 0"),
    ("bandwidth_hz", math.inf, "not a finite number >= 0"),
    ("cut", -1, "cut -1 outside"), ("level", -1, "level -1 is not an index"),
    ("cut", 4, "cut 4 outside"), ("level", 3, "level 3 is not an index"),
    ("id", "stranger", "id 'stranger'"),
])
def test_structure_is_checked_by_verify_check_and_simulate(inst, plan, field, value, said):
    res = _with(plan, **{field: value})
    fam = sftopt.get_family("split")
    assert any(said in p for p in fam.check_structure(inst, res))
    rep = sftopt.verify(inst, res)
    assert not rep.feasible and any(said in v for v in rep.violations)
    with pytest.raises(ValueError, match="does not fit"):
        sftopt.simulate(inst, res)


def test_another_device_count(inst, plan):
    d = copy.deepcopy(plan)
    d["plan"]["devices"].pop()
    res = sftopt.load_plan(d)
    assert "plan has 1 devices, instance 2" in sftopt.verify(inst, res).violations
    with pytest.raises(ValueError, match="plan has 1 devices"):
        sftopt.simulate(inst, res)
    ev = sftopt.get_family("split").evaluate(inst, res.plan)
    assert not ev.feasible and math.isnan(ev.total_delay)


@pytest.mark.parametrize("changes, said", [
    ({"objective": math.nan}, "objective: plan says nan"),
    ({"objective": 1.0}, "objective: plan says 1, model gives"),
    ({"round_delay_s": math.nan}, "round_delay_s: plan says nan"),
    ({"instance_sha256": "0" * 64}, "with sha256 000000000000..."),
    ({"instance_sha256": None, "instance": "elsewhere"}, "'elsewhere' (no sha256"),
])
def test_stated_figures_and_the_instance_named_are_held(inst, plan, changes, said):
    rep = sftopt.verify(inst, _with(plan, **changes))
    assert rep.feasible and not rep.ok
    assert any(said in c for c in rep.claims), rep.claims


def test_a_renamed_instance_with_the_same_hash_is_a_note(inst, plan):
    rep = sftopt.verify(inst, _with(plan, instance="renamed"))
    assert rep.ok and any("renamed" in n for n in rep.notes)


def test_pyomo_messages_are_captured_not_printed(inst, plan, capsys, caplog):
    with caplog.at_level(logging.DEBUG, logger="sftopt.verify"):
        rep = sftopt.verify(inst, _with(plan, bandwidth_hz=3e7))  # above B: Pyomo's W1002
    out = capsys.readouterr()
    assert "W1002" not in out.out + out.err
    assert not rep.feasible and any("b[0]" in v for v in rep.violations)


def test_simulate_streams_and_caps_huge_round_counts(tiny):
    tiny["training"]["rounds"] = 1e9
    tiny["training"].pop("rounds_per_frame", None)
    big = sftopt.load_instance(tiny)
    res = sftopt.solve(big, "greedy", certify=False)
    start = time.perf_counter()
    sim = sftopt.simulate(big, res, allocator="fixed")
    assert time.perf_counter() - start < 5
    assert sim.rounds == math.ceil(res.plan.rounds)
    assert sim.total_delay_s == pytest.approx(sim.mean_round_delay_s * sim.rounds, rel=1e-12)
    # the same first MAX_ROUNDS rounds as a plan needing exactly that many
    short = sftopt.simulate(big, res, allocator="fixed", max_rounds=100)
    assert short.rounds == sim.rounds and short.mean_round_delay_s != sim.mean_round_delay_s


def test_the_streamed_trace_is_the_channel_trace():
    from sftopt.channel import fading_trace

    whole = fading_trace(3, 1000, 7)
    assert np.array_equal(np.concatenate(list(trace_chunks(3, 1000, 7, 77))), whole)
    assert MAX_ROUNDS >= 10_000


def test_vectorised_fixed_allocator_matches_round_by_round(inst, plan):
    res = sftopt.load_plan(plan)
    sim = sftopt.simulate(inst, res, allocator="fixed", seed=3)
    e = next(trace_chunks(inst.n_devices, sim.rounds, 3, sim.rounds))
    p = res.plan
    each = [evaluate(inst, p.cuts, p.levels, p.bandwidth, p.share, gain_scale=r).round_delay
            for r in e]
    assert sim.total_delay_s == pytest.approx(sum(each), rel=1e-12)


def test_allocator_gains_by_id_or_array(inst, plan):
    p = sftopt.load_plan(plan).plan
    online = Allocator(inst, p.cuts, p.levels)
    by_array = online.step(np.array([0.5, 2.0])).round_delay
    by_id = Allocator(inst, p.cuts, p.levels).step({"phone-1": 2.0, "phone-0": 0.5})
    assert by_id.round_delay == pytest.approx(by_array, rel=1e-9)
    for bad, said in (([1.0], "expected 2 factors"), ({"phone-0": 1.0}, "missing ids"),
                      ({"phone-0": 1, "phone-1": 1, "x": 1}, "unknown ids"),
                      ([1.0, -1.0], "finite and > 0"), ("ab", "expected 2")):
        with pytest.raises(ValueError, match=said):
            online.step(bad)


def test_warm_start_on_a_changed_fleet(inst):
    first = sftopt.solve(inst, "greedy-delay", certify=False)
    joined = inst.with_devices([{"id": "phone-2", "flops": 1e12, "memory_bytes": 4e9,
                                 "tx_power_w": 0.2, "gain": 1e-12, "batch": 8}])
    for method in ("greedy-delay", "alm", "sqp"):
        res = sftopt.solve(joined, method, warm_start=first, certify=False)
        assert res.success and "warm start: 2 of 3 devices" in res.message
        assert "warm_start" not in res.ignored_options
        assert sftopt.verify(joined, res).ok
    left = sftopt.solve(joined.without_devices(["phone-0"]), "greedy-delay", warm_start=first,
                        certify=False)
    assert "warm start: 1 of 2 devices" in left.message
    ignored = sftopt.solve(joined, "greedy", warm_start=first, certify=False)
    assert ignored.ignored_options == ["warm_start"]
    with pytest.raises(sftopt.SolverOptionError, match="warm_start: expected a Result"):
        sftopt.solve(joined, "greedy-delay", warm_start={"plan": None}, certify=False)


def test_solve_can_certify(inst):
    plain = sftopt.solve(inst, "greedy", certify=False)
    assert plain.bound is None
    res = sftopt.solve(inst, "greedy", certify="relaxation")
    assert res.bound is not None and 0 <= res.gap < 1 and res.bound <= res.objective
    with pytest.raises(sftopt.SolverOptionError, match="certify"):
        sftopt.solve(inst, "greedy", certify="psychic")


@pytest.mark.parametrize("field, value, expected", [
    ("cut", "0", "expected a valid integer, got '0'"),
    ("level", True, "expected a valid integer, got true"),
    ("bandwidth_hz", "1e6", "expected a valid number, got '1e6'"),
])
def test_a_plan_file_is_read_without_coercion(plan, field, value, expected):
    # a number written as a string or a boolean is a mistake in the file, not a number
    with pytest.raises(sftopt.InstanceError) as err:
        _with(plan, **{field: value})
    assert f"$.plan.devices[0].{field}: {expected}" in str(err.value)
    assert _with(plan, bandwidth_hz=1_000_000).plan.devices[0].bandwidth_hz == 1e6  # int: fine


def test_a_plan_index_beyond_32_bits_is_named(plan):
    # found by the long fuzzing run: a cut of 2^63 passed the schema and overflowed numpy
    with pytest.raises(sftopt.InstanceError) as err:
        _with(plan, k=1, cut=2**63)
    assert "$.plan.devices[1].cut" in str(err.value)
