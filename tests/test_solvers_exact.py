"""Exact solvers (exhaustive, milp, minlp) against each other, the heuristics and the verifier."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

import sftopt
from sftopt import Status, Termination, load_instance, solve, verify
from sftopt.families.split.cost import server_memory
from sftopt.families.split.options import OptionSpace

TOL = 1e-5  # relative; milp runs at gap_tol 1e-5 here


def tiny_dict(seed: int, n_devices: int = 2, n_blocks: int = 2, n_levels: int = 3,
              server_pressure: float | None = None) -> dict:
    """A random tiny `split` instance: 2-3 devices, cuts 0..L or L+1, 2-3 codec levels.

    Device memories fall between what min_cut and the deepest cut need; with server_pressure
    in (0, 1] the server memory is squeezed towards the least any plan needs.
    """
    rng = np.random.default_rng(seed)
    stages = [{"name": "embed", "fwd_flops": 1e5, "bwd_flops": 0.0, "param_bytes": 7.7e7,
               "lora_params": 0, "act_bytes": 2e5}]
    for i in range(n_blocks):
        f = float(rng.uniform(1e9, 4e9))
        stages.append({"name": f"block{i + 1}", "fwd_flops": f,
                       "bwd_flops": f * float(rng.uniform(1, 2)),
                       "param_bytes": float(rng.uniform(1e7, 3e7)), "lora_params": 24576,
                       "act_bytes": float(rng.uniform(2e6, 8e6))})
    stages.append({"name": "head", "fwd_flops": 1e10, "bwd_flops": 1e10, "param_bytes": 7.7e7,
                   "lora_params": 0, "act_bytes": 1.3e7})
    levels = [{"keep_ratio": 1.0, "bits": 16, "bits_per_elem": 16.0, "distortion": 0.0}]
    beta, dist = 16.0, 0.0
    for _ in range(n_levels - 1):
        beta *= float(rng.uniform(0.1, 0.6))
        dist += float(rng.uniform(0.002, 0.05))
        levels.append({"keep_ratio": 0.5, "bits": 8, "bits_per_elem": round(beta, 4),
                       "distortion": round(dist, 5)})
    top = int(rng.integers(n_blocks, n_blocks + 2))  # sometimes the head on the device
    devices = [{"id": f"d{k}", "flops": float(10 ** rng.uniform(11, 12.7)), "memory_bytes": 1e3,
                "tx_power_w": float(rng.choice([0.1, 0.2])),
                "distance_m": float(rng.uniform(50, 250)), "batch": int(rng.choice([4, 8]))}
               for k in range(n_devices)]
    d = {"schema": "sftopt.instance/1", "family": "split", "name": f"tiny-{seed}",
         "model": {"name": "toy", "seq_len": 128, "cut_elems": 98304, "stages": stages},
         "training": {"rounds": 100, "eta": float(rng.uniform(0, 3)),
                      "max_distortion": float(rng.uniform(0.01, 0.1)), "agg_every": 10,
                      "min_cut": 0, "max_cut": top},
         "server": {"flops": float(10 ** rng.uniform(12, 14)), "memory_bytes": 1e12,
                    "tx_power_w": 1.0},
         "channel": {"bandwidth_hz": float(rng.uniform(5e6, 2e7)), "noise_dbm_hz": -174,
                     "pathloss": {"a_db": 128.1, "g": 3.76}},
         "codec": {"levels": levels}, "devices": devices}
    a = load_instance(d).arrays
    for x in devices:
        n = x["batch"]
        lo = a.dev_static[0] + n * a.dev_act[0]
        hi = a.dev_static[top] + n * a.dev_act[top]
        x["memory_bytes"] = float(lo + (hi - lo) * rng.uniform(0.3, 1.1))
    if server_pressure is None:
        server_pressure = float(rng.uniform()) if rng.uniform() < 0.5 else 0.0
    if server_pressure > 0:
        inst = load_instance(d)
        least = server_memory(inst, OptionSpace(inst).deepest())
        most = server_memory(inst, np.zeros(n_devices, dtype=int))
        d["server"]["memory_bytes"] = float(most - (most - least) * server_pressure * 0.99)
    return d


def tiny_instance(seed: int, **kw) -> sftopt.Instance:
    return load_instance(tiny_dict(seed, **kw))


CASES = [dict(seed=s, n_devices=2 + s % 2, n_blocks=1 + (s // 2) % 2, n_levels=2 + (s // 4) % 2)
         for s in range(8)]
HAS_SCIP = sftopt.available("split", "minlp")


def _check_plan(inst: sftopt.Instance, res: sftopt.Result) -> None:
    assert res.success, res.message
    rep = verify(inst, res)
    assert rep.feasible and rep.ok, (rep.violations, rep.claims)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"seed{c['seed']}")
def test_exact_solvers_match_exhaustive(case):
    inst = tiny_instance(**case)
    ref = solve(inst, "exhaustive", certify=False)
    assert ref.status == Status.OPTIMAL
    _check_plan(inst, ref)
    opt = ref.objective
    assert ref.bound <= opt
    m = solve(inst, "milp", gap_tol=1e-5, time_limit=20, certify=False)
    _check_plan(inst, m)
    assert m.status == Status.OPTIMAL, m.message
    assert m.objective == pytest.approx(opt, rel=TOL)
    assert m.bound <= opt * (1 + 1e-9)
    assert m.gap <= 1e-5
    for name in ("greedy", "baseline-equal"):
        h = solve(inst, name, certify=False)
        if h.success:  # baseline-equal may find no common cut
            _check_plan(inst, h)
            assert h.objective >= opt * (1 - 1e-9)


def test_pruning_keeps_the_optimum():
    for case in CASES[:4]:
        inst = tiny_instance(**case)
        pruned = solve(inst, "exhaustive", certify=False)
        full = solve(inst, "exhaustive", prune=False, certify=False)
        assert pruned.objective == pytest.approx(full.objective, rel=1e-9)


def test_spec_example():
    inst = load_instance(Path(__file__).resolve().parent.parent / "data"
                         / "instances" / "tiny-example.json")
    ref = solve(inst, "exhaustive", certify=False)
    m = solve(inst, "milp", certify=False)
    _check_plan(inst, ref)
    _check_plan(inst, m)
    assert m.objective == pytest.approx(ref.objective, rel=1e-4)
    assert solve(inst, "greedy", certify=False).objective >= ref.objective


def test_exhaustive_refuses_large():
    inst = tiny_instance(1, n_devices=3, n_blocks=2, n_levels=3)
    res = solve(inst, "exhaustive", max_combinations=10, certify=False)
    assert res.status == Status.NONE and res.termination == Termination.REFUSED
    assert "max_combinations" in res.message and res.plan is None
    assert res.objective is None


def test_milp_time_limit_keeps_a_plan_and_bound():
    inst = tiny_instance(3, n_devices=3, n_blocks=2, n_levels=3)
    res = solve(inst, "milp", max_iter=1, gap_tol=0.0, certify=False)
    _check_plan(inst, res)
    assert res.bound <= solve(inst, "exhaustive", certify=False).objective * (1 + 1e-9)


def _infeasible_variants() -> list[tuple[str, dict]]:
    base = tiny_dict(2, n_devices=2, server_pressure=0.0)
    dev = copy.deepcopy(base)
    dev["devices"][1]["memory_bytes"] = 1e3  # the least valid: far below any stage
    srv = copy.deepcopy(base)
    srv["server"]["memory_bytes"] = 1e3
    acc = copy.deepcopy(base)
    acc["codec"]["levels"][0]["distortion"] = 0.5
    for lev in acc["codec"]["levels"]:
        lev["distortion"] = max(lev["distortion"], 0.5)
    acc["training"]["max_distortion"] = 0.1
    return [("device memory", dev), ("server memory", srv), ("accuracy", acc)]


@pytest.mark.parametrize("solver", ["exhaustive", "milp", "minlp"])
@pytest.mark.parametrize("binding,data", _infeasible_variants(), ids=lambda x: x
                         if isinstance(x, str) else "")
def test_infeasible_names_binding_constraint(solver, binding, data):
    if solver == "minlp" and not HAS_SCIP:
        pytest.skip("pyscipopt (SCIP) is not installed")
    inst = load_instance(data)
    res = solve(inst, solver, certify=False)
    assert res.status == Status.NONE and res.termination == Termination.INFEASIBLE
    assert binding in res.message and res.plan is None
    assert res.objective is None


@pytest.mark.skipif(not HAS_SCIP, reason="pyscipopt (SCIP) is not installed")
@pytest.mark.parametrize("case", CASES[:3], ids=lambda c: f"seed{c['seed']}")
def test_minlp_against_exhaustive(case):
    inst = tiny_instance(**case)
    opt = solve(inst, "exhaustive", certify=False).objective
    res = solve(inst, "minlp", time_limit=10, certify=False)
    _check_plan(inst, res)
    assert res.objective >= opt * (1 - 1e-9)
    if res.bound is not None:
        assert res.bound <= opt * (1 + 1e-6)
    if res.status == Status.OPTIMAL:
        assert res.objective == pytest.approx(opt, rel=1e-3)
