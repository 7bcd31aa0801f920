"""The verifier (formal Pyomo model) and the cost model agree; infeasible plans are rejected."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sftopt import load_instance, solve
from sftopt.generate import random_instance
from sftopt.solvers.base import make_result
from sftopt.verifier import verify

INST = load_instance(random_instance(4, model="gpt2-small", seed=3, memory_pressure=0.0,
                                     max_distortion=1.0))


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_cost_model_and_verifier_agree(data):
    inst = INST
    k = inst.n_devices
    a = inst.arrays
    cuts = np.array(data.draw(st.lists(st.sampled_from(list(a.cuts)), min_size=k, max_size=k)))
    levels = np.array(data.draw(st.lists(st.integers(0, len(a.beta) - 1), min_size=k,
                                         max_size=k)))
    w_b = np.array(data.draw(st.lists(st.floats(0.05, 1.0), min_size=k, max_size=k)))
    w_p = np.array(data.draw(st.lists(st.floats(0.05, 1.0), min_size=k, max_size=k)))
    b = a.bandwidth * w_b / w_b.sum()
    phi = w_p / w_p.sum()
    res = make_result(inst, cuts, levels, b, phi)
    rep = verify(inst, res)
    assert rep.feasible == (res.total_delay_s is not None), (rep.violations, res.message)
    if rep.feasible:
        assert rep.objective == pytest.approx(res.total_delay_s, rel=1e-9)
        assert rep.round_delay == pytest.approx(res.round_delay_s, rel=1e-9)
        assert rep.ok


@pytest.mark.parametrize("method", ["greedy", "baseline-equal"])
def test_solver_plans_verify(tiny, method):
    inst = load_instance(tiny)
    res = solve(inst, method)
    rep = verify(inst, res)
    assert rep.ok, rep.violations + rep.claims
    assert rep.objective == pytest.approx(res.total_delay_s, rel=1e-9)


def test_rejects_infeasible_plans(tiny):
    inst = load_instance(tiny)
    good = solve(inst, "greedy")

    def broken(**change):
        plan = good.model_copy(deep=True)
        for key, value in change.items():
            setattr(plan.devices[0], key, value)
        return verify(inst, plan)

    rep = broken(bandwidth_hz=inst.channel.bandwidth_hz)  # sum b > B
    assert not rep.feasible and any(v.startswith("bandwidth") for v in rep.violations)
    rep = broken(server_share=1.0)
    assert any(v.startswith("server_share") for v in rep.violations)
    rep = broken(bandwidth_hz=0.0)
    assert any("bandwidth 0" in v for v in rep.violations)
    rep = broken(level=0)  # allowed; only the stated objective no longer matches
    assert rep.feasible and any("total_delay_s" in c for c in rep.claims)
    rep = broken(cut=7)
    assert not rep.feasible and "outside" in rep.violations[0]


def test_memory_and_accuracy_violations(tiny):
    tiny["devices"][1]["memory_bytes"] = 1.5e8  # cut 2 needs about 1.83e8
    tiny["training"]["max_distortion"] = 0.01
    inst = load_instance(tiny)
    plan = make_result(inst, np.array([2, 2]), np.array([2, 0]), np.array([1e7, 1e7]),
                       np.array([0.5, 0.5]))
    assert plan.total_delay_s is None
    rep = verify(inst, plan)
    names = " ".join(rep.violations)
    assert "device_memory[1]" in names and "accuracy[0]" in names


def test_minimal_plan_from_another_tool(tiny, tmp_path):
    """Only schema, instance name and the per-device decisions: the verifier fills in the rest."""
    from sftopt.cli import main

    plan = {"schema": "sftopt.plan/1", "instance": "tiny-example", "devices": [
        {"id": "phone-0", "cut": 0, "level": 2, "bandwidth_hz": 2e6, "server_share": 0.2},
        {"id": "phone-1", "cut": 0, "level": 2, "bandwidth_hz": 1.8e7, "server_share": 0.8}]}
    rep = verify(load_instance(tiny), plan)
    assert rep.ok and rep.objective > 0
    inst_path, plan_path = tmp_path / "i.json", tmp_path / "p.json"
    inst_path.write_text(json.dumps(tiny))
    plan_path.write_text(json.dumps(plan))
    assert main(["check", str(inst_path), str(plan_path)]) == 0


def test_public_verify_and_simulate_stay_functions() -> None:
    """`sftopt.verify` / `sftopt.simulate` load lazily; the modules are named otherwise
    (verifier, simulation) so importing them cannot rebind the public names to modules."""
    from pathlib import Path

    import sftopt
    import sftopt.simulation  # noqa: F401
    import sftopt.verifier  # noqa: F401

    inst = load_instance(Path(__file__).parents[1] / "data/instances/tiny-example.json")
    res = solve(inst, "greedy")
    for _ in range(2):  # the second access used to find the submodule
        assert sftopt.verify(inst, res).ok
        assert callable(sftopt.simulate)
