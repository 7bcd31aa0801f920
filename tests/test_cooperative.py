"""Family `cooperative`: every solver against exhaustive search on small instances, the exact
optimum below every heuristic and above every bound (property test), the depth monotonicity
the matching relies on checked on the real profiles, infeasible instances named, the verifier
held to the cost model at 1e-9, and the command line end to end."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sftopt
from sftopt.core.family import get_family
from sftopt.families.cooperative.allocation import equal_bands, pair_delays
from sftopt.families.cooperative.bounds import relaxation
from sftopt.families.cooperative.cost import evaluate
from sftopt.families.cooperative.solvers.crunch import counting_check, nested
from sftopt.profiles import list_profiles, load_profile

from .conftest import ROOT, draw_cut_tables

FAMILY = get_family("cooperative")
HEURISTICS = ("crunch", "dual-ascent", "greedy", "random")


def make(**params) -> sftopt.Instance:
    params.setdefault("model", "roberta-base")
    return sftopt.load_instance(FAMILY.generate(**params))


def check(inst, res) -> None:
    """The plan passes the verifier, which agrees with the cost model to 1e-9."""
    rep = sftopt.verify(inst, res)
    assert rep.ok, (res.solver, rep.violations, rep.claims)
    ev = FAMILY.evaluate(inst, res.plan)
    assert rep.objective == pytest.approx(ev.round_delay, rel=1e-9)
    assert res.objective == pytest.approx(ev.round_delay, rel=1e-12)


SMALL = [dict(n_devices=k, n_blocks=n, seed=s, memory_pressure=p)
         for k, n, s, p in ((3, 3, 0, 0.3), (4, 3, 1, 0.8), (5, 4, 2, 0.5), (4, 4, 3, 1.0),
                            (6, 3, 4, 0.0))]


@pytest.mark.parametrize("params", SMALL, ids=lambda p: f"{p['n_devices']}x{p['n_blocks']}")
def test_every_solver_against_exhaustive_search(params):
    inst = make(**params)
    ref = sftopt.solve(inst, "exhaustive", certify=False)
    assert ref.status == "optimal"
    check(inst, ref)
    exact = sftopt.solve(inst, "exact", certify=False)
    check(inst, exact)
    assert exact.status == "optimal"
    assert exact.objective == pytest.approx(ref.objective, rel=1e-7)
    assert exact.bound <= ref.objective * (1 + 1e-9)
    for name in HEURISTICS:
        res = sftopt.solve(inst, name, certify=False)
        check(inst, res)
        assert res.objective >= ref.objective * (1 - 1e-9), name
        if res.bound is not None:
            assert res.bound <= ref.objective * (1 + 1e-9), name
    off = sftopt.solve(inst, "offload", certify=False)
    check(inst, off)
    assert off.plan.server_blocks == list(range(inst.n_blocks))


@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_per_cut_codec_table_charges_the_offload_at_cut_0(data):
    """With `bits_per_elem_by_cut` the offloading plan's embeddings cost the cut-0 figure, the
    gradient uploads the level's own; the verifier agrees with the cost model at 1e-9."""
    inst = draw_cut_tables(data, make(n_devices=4, n_blocks=3, seed=data.draw(
        st.integers(0, 100))))
    level = inst.codec.levels[inst.training.upload_level]
    a = inst.arrays
    assert a.offload_bits == pytest.approx(a.batch * inst.model.cut_elems * level.beta(0),
                                           rel=1e-12)
    assert a.upload_bits == pytest.approx(
        [inst.model.stages[j].lora_params * level.bits_per_elem for j in inst.blocks], rel=1e-12)
    for name in ("exact", "offload"):
        check(inst, sftopt.solve(inst, name))


@pytest.mark.parametrize("seed", range(3))
def test_several_blocks_per_device_exact_is_exhaustive(seed):
    inst = make(n_devices=3, n_blocks=5, seed=seed, max_blocks=2, memory_pressure=0.5)
    ref = sftopt.solve(inst, "exhaustive", certify=False)
    exact = sftopt.solve(inst, "exact", certify=False)
    check(inst, exact)
    assert exact.status == "optimal"
    assert exact.objective == pytest.approx(ref.objective, rel=1e-7)
    assert max(len(d.blocks) for d in exact.plan.devices) == 2  # 5 blocks on 3 devices
    for name in ("greedy", "random"):
        res = sftopt.solve(inst, name, certify=False)
        check(inst, res)
        assert res.objective >= ref.objective * (1 - 1e-9)
    for name in ("crunch", "dual-ascent"):  # the paper's methods are one block per device
        res = sftopt.solve(inst, name, certify=False)
        assert res.plan is None and res.termination == "refused" and "max_blocks" in res.message


def test_crunch_is_the_min_max_matching_for_its_bands():
    for seed in range(4):
        inst = make(n_devices=5, n_blocks=4, seed=seed, memory_pressure=0.6)
        a = inst.arrays
        d = pair_delays(a, equal_bands(a))
        best = min(max(d[k, j] for j, k in enumerate(p))
                   for p in itertools.permutations(range(a.n_devices), a.n_blocks))
        res = sftopt.solve(inst, "crunch", certify=False)
        assert res.objective == pytest.approx(best, rel=1e-12)
        again = sftopt.solve(inst, "crunch", reallocate=True, certify=False)
        check(inst, again)
        assert again.objective <= res.objective * (1 + 1e-9)


def test_counting_check_is_halls_condition():
    rng = np.random.default_rng(0)
    for _ in range(300):
        K, N = int(rng.integers(1, 6)), int(rng.integers(1, 5))
        first = rng.integers(0, N + 1, K)  # device k reaches blocks first_k..N-1
        allowed = np.arange(N)[None, :] >= first[:, None]
        assert np.array_equal(nested(allowed), first)
        owner = counting_check(first, N)
        exists = any(all(allowed[k, j] for j, k in enumerate(p))
                     for p in itertools.permutations(range(K), N)) if N <= K else False
        assert (owner is not None) == exists
        if owner is not None:
            assert len(set(owner)) == N and all(allowed[k, j] for j, k in enumerate(owner))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), k=st.integers(2, 6), n=st.integers(1, 4),
       pressure=st.floats(0, 1), hetero=st.floats(0, 1))
def test_exact_is_below_every_heuristic_and_above_every_bound(seed, k, n, pressure, hetero):
    n = min(n, k)
    inst = make(n_devices=k, n_blocks=n, seed=seed, memory_pressure=pressure,
                heterogeneity=hetero, model="minilm-l6", seq_len=64)
    exact = sftopt.solve(inst, "exact", certify=False)
    assert exact.status == "optimal"
    opt = exact.objective
    assert relaxation(inst.arrays) <= opt * (1 + 1e-9)
    for name in HEURISTICS:
        res = sftopt.solve(inst, name, certify=False)
        assert res.objective >= opt * (1 - 1e-9), name
        if res.bound is not None:
            assert res.bound <= opt * (1 + 1e-9), name
    for method in FAMILY.bound_methods:
        assert FAMILY.lower_bound(inst, method) <= opt * (1 + 1e-9), method


@pytest.mark.parametrize("name", list_profiles())
def test_depth_monotonicity_holds_on_the_real_profiles(name):
    """What the counting check relies on: a deeper block takes no more compute and no more
    memory, on every profile shipped (analytic and measured), blocks at every layer."""
    prof = load_profile(name)
    L = len(prof["stages"]) - 2
    data = FAMILY.generate(n_devices=L, model="minilm-l6", seq_len=16)
    data.update(model=prof, blocks=list(range(1, L + 1)))
    a = sftopt.load_instance(data).arrays
    assert (np.diff(a.work) <= 0).all() and (np.diff(a.act) <= 0).all()
    assert (np.diff(a.pair_memory, axis=1) <= 0).all()
    assert (np.diff(a.compute, axis=1) <= 0).all()


def test_a_block_no_device_can_hold_is_named():
    data = FAMILY.generate(n_devices=4, n_blocks=3, seed=0, model="roberta-base")
    a = sftopt.load_instance(data).arrays
    for dev in data["devices"]:  # room for the two deeper blocks only
        dev["memory_bytes"] = float(a.pair_memory[0, 1]) * 1.001
    inst = sftopt.load_instance(data)
    for name in ("exact", "exhaustive", *HEURISTICS):
        res = sftopt.solve(inst, name, certify=False)
        assert res.plan is None and res.termination == "infeasible", name
        assert f"layer {inst.blocks[0]}" in res.message and "memory" in res.message, name
    # two devices for three blocks: the shortage is named with the devices
    data["devices"] = data["devices"][:2]
    for dev in data["devices"]:
        dev["memory_bytes"] = 1e12
    res = sftopt.solve(sftopt.load_instance(data), "exact", certify=False)
    assert res.termination == "infeasible" and "max_blocks 1" in res.message


def test_tampered_plans_are_caught():
    inst = make(n_devices=4, n_blocks=3, seed=5)
    res = sftopt.solve(inst, "exact", certify=False)
    data = res.to_dict()
    data["plan"]["devices"][0]["bandwidth_hz"] += inst.channel.bandwidth_hz  # over B
    rep = sftopt.verify(inst, data)
    assert not rep.feasible and any("bandwidth" in v for v in rep.violations)
    data = res.to_dict()
    busy = [d for d in data["plan"]["devices"] if d["blocks"]]
    busy[1]["blocks"] = list(busy[0]["blocks"])  # a block held twice, another by nobody
    rep = sftopt.verify(inst, data)
    assert not rep.feasible and any("exactly one" in v for v in rep.violations)
    with pytest.raises(ValueError, match="exactly one"):
        evaluate(inst, [d["blocks"] for d in data["plan"]["devices"]],
                 [d["bandwidth_hz"] for d in data["plan"]["devices"]])
    data = res.to_dict()
    data["objective"] *= 0.9
    rep = sftopt.verify(inst, data)
    assert rep.feasible and not rep.ok and "objective" in rep.claims[0]
    data = res.to_dict()  # an infinite band (through the Python API: JSON has no inf)
    data["plan"]["devices"][0]["bandwidth_hz"] = float("inf")
    rep = sftopt.verify(inst, data)
    assert not rep.feasible and "devices[0].bandwidth_hz = inf: not a finite number >= 0" in \
        rep.violations


def test_instance_errors_name_the_field():
    data = FAMILY.generate(n_devices=3, n_blocks=2, seed=0)
    for change, needle in (({"blocks": [3, 2]}, "increase"), ({"blocks": [0]}, "blocks"),
                           ({"training": {**data["training"], "upload_level": 9}},
                            "upload_level"),
                           ({"training": {**data["training"], "agg_every": 5}}, "agg_every"),
                           ({"channel": {**data["channel"], "fading": "rayleigh"}}, "fading")):
        with pytest.raises(sftopt.InstanceError, match=needle):
            sftopt.load_instance({**data, **change})
    with pytest.raises(ValueError, match="n_devices x max_blocks"):
        FAMILY.generate(n_devices=2, n_blocks=5)


def test_command_line_end_to_end(tmp_path, capsys):
    from sftopt.cli import main

    inst = tmp_path / "c.json"
    assert main(["generate", "--family", "cooperative", "--devices", "5", "--param",
                 "n_blocks=3", "--seed", "2", "--out", str(inst)]) == 0
    assert json.loads(inst.read_text())["model"]["name"] == "roberta-base"
    assert main(["solve", str(inst), "--solver", "exact", "--solver", "crunch", "--solver",
                 "offload", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "plan class (offloading plans" in out and "optimal" in out
    plan = tmp_path / "c.exact.plan.json"
    res = sftopt.load_plan(plan)
    assert res.family == "cooperative" and res.plan.devices[0].id == "dev-0"
    assert main(["check", str(inst), str(plan)]) == 0
    assert main(["simulate", str(inst), str(plan)]) == 2
    assert "no simulation" in capsys.readouterr().err
    assert main(["plot", str(inst), str(plan), "--out", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_the_bundled_instances_solve_to_optimality():
    paths = [p for p in sorted((ROOT / "data" / "instances").glob("*.json"))
             if json.loads(p.read_text())["family"] == "cooperative"]
    assert len(paths) == 3
    for path in paths:
        inst = sftopt.load_instance(path)
        res = sftopt.solve(inst, "exact", certify=False)
        check(inst, res)
        assert res.status == "optimal", path


def test_band_for_rate_inverts_the_shannon_rate():
    from sftopt.channel import LN2, band_for_rate, shannon_rate

    rng = np.random.default_rng(1)
    x = 10 ** rng.uniform(5, 12, 2000)  # p h / N0, Hz
    rate = x / LN2 * rng.uniform(1e-9, 0.999, 2000)  # every reachable rate
    b = band_for_rate(rate, x)
    assert np.allclose(shannon_rate(b, x), rate, rtol=1e-12)
    assert band_for_rate(0.0, 1e9) == 0.0
    assert np.isinf(band_for_rate(1e9 / LN2, 1e9)) and np.isinf(band_for_rate(2e9, 1e9))


@pytest.mark.parametrize("seed", range(3))
def test_the_relaxation_bounds_several_blocks_per_device(seed):
    inst = make(n_devices=3, n_blocks=5, seed=seed, max_blocks=2, memory_pressure=0.5)
    opt = sftopt.solve(inst, "exhaustive", certify=False).objective
    assert relaxation(inst.arrays) <= opt * (1 + 1e-9)


def test_a_time_limit_stops_exact_with_its_best_plan_and_bound():
    inst = make(n_devices=8, n_blocks=6, seed=3)
    res = sftopt.solve(inst, "exact", time_limit=0, certify=False)
    assert res.plan is not None and res.termination == "time_limit"
    assert res.status == "feasible" and res.bound <= res.objective
    check(inst, res)
    full = sftopt.solve(inst, "exact", certify=False)
    assert full.termination == "converged" and full.objective <= res.objective * (1 + 1e-9)
