"""The family-agnostic core: every family implements the protocol, the registry is keyed by
(family, name), plan files of both versions load, placements agree with the cost model, a
missing optional backend only makes its solver unavailable."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import sftopt
from sftopt import Result, Status, Termination, load_instance, load_plan
from sftopt.core.family import FAMILIES, Family, get_family, implemented
from sftopt.core.options import COMMON_OPTIONS, Deadline
from sftopt.core.registry import get, register, solvers
from sftopt.families.split.simulation import default_allocator

from .conftest import ROOT

TINY = ROOT / "data" / "instances" / "tiny-example.json"


def _members(proto: type) -> set[str]:
    hints = set(proto.__annotations__)
    methods = {n for n, v in vars(proto).items() if callable(v) and not n.startswith("_")}
    return hints | methods


@pytest.mark.parametrize("name", implemented())
def test_family_implements_the_protocol(name):
    family = get_family(name)
    missing = [m for m in _members(Family) if not hasattr(family, m)]
    assert not missing, f"family {name} lacks {missing}"
    assert family.name == name and family.default_solver in {s.name for s in solvers(name)}
    assert family.bound_methods and all(isinstance(c, str) for c in family.columns)


def test_family_map_and_errors():
    assert implemented() == ["split", "cooperative", "hierarchical"]
    assert set(FAMILIES) == {"split", "cooperative", "hierarchical"}
    with pytest.raises(ValueError, match="one of") as err:
        get_family("federated")
    assert "'federated'" in str(err.value) and "not implemented" not in str(err.value)


def test_registry_is_keyed_by_family():
    info = get("split", "alm")
    assert info.family == "split" and info.common == ("time_limit", "seed")
    assert get("split", "baseline-equal").online == "equal"
    assert get("split", "vanilla-sl").online == "fixed"
    with pytest.raises(KeyError, match="for family 'split'"):
        get("split", "crunch")
    assert get("cooperative", "crunch").family == "cooperative"
    assert get("hierarchical", "exact").family == "hierarchical"
    with pytest.raises(ValueError, match="registered twice"):
        register("split", "alm")(lambda instance: None)
    with pytest.raises(ValueError, match="unknown family"):
        register("federated", "x")
    assert {s.family for s in solvers()} == {"split", "cooperative", "hierarchical"}
    # every common option a solver takes is declared once, with its meaning
    assert set(COMMON_OPTIONS) == {"time_limit", "seed", "threads", "gap_tol"}
    assert get("split", "milp").common == ("time_limit", "seed", "threads", "gap_tol")


def test_deadline():
    never = Deadline()
    assert not never.expired() and never.remaining() == float("inf") and not never.hit
    assert never.part(0.5) is None
    now = Deadline(0.0)
    assert now.expired() and now.hit and now.remaining() == 0.0
    later = Deadline(100.0)
    assert not later.expired() and 49 < later.part(0.5) <= 50


def test_work_deadline_keeps_time_for_the_result():
    from sftopt.core.options import RESULT_S, work_deadline

    kept = RESULT_S * 100_000  # building the result of 100,000 devices
    assert 10.0 - kept - 0.5 < work_deadline(10.0, 100_000).remaining() <= 10.0 - kept
    assert work_deadline(1.0, 100_000).expired()  # less time than the result needs
    assert work_deadline(None, 100_000).remaining() == float("inf")


def test_no_time_limit_is_a_valid_time_limit():
    inst = load_instance(TINY)
    for method in ("milp", "minlp", "alm", "greedy-delay"):
        if sftopt.available("split", method):
            res = sftopt.solve(inst, method, time_limit=None, certify=False)
            assert res.success and res.termination != Termination.TIME_LIMIT, method


def test_stopping_at_max_iter_is_said():
    inst = load_instance(ROOT / "data" / "instances" / "default.json")
    capped = sftopt.solve(inst, "greedy-delay", max_iter=1, lifts=0, certify=False)
    assert capped.termination == Termination.ITERATION_LIMIT and capped.success
    assert "stopped at max_iter" in capped.message
    free = sftopt.solve(inst, "greedy-delay", lifts=0, certify=False)
    assert free.termination == Termination.CONVERGED
    assert free.objective <= capped.objective


def test_common_options_are_validated_once():
    inst = load_instance(TINY)
    for key, bad in (("time_limit", -1), ("seed", 1.5), ("threads", 0), ("gap_tol", 2),
                     ("seed", True)):
        with pytest.raises(TypeError, match=f"option {key}: expected"):
            sftopt.solve(inst, "milp", **{key: bad}, certify=False)
    res = sftopt.solve(inst, "greedy", time_limit=None, threads=2, certify=False)
    assert res.ignored_options == ["time_limit", "threads"]


def test_no_plan_means_no_plan(tmp_path):
    data = json.loads(TINY.read_text())
    data["server"]["memory_bytes"] = 1e3  # the least the schema takes: far too little
    inst = load_instance(data)
    res = sftopt.solve(inst, "greedy-delay", certify=False)
    assert res.plan is None and not res.success and res.objective is None
    assert res.status == Status.NONE and res.termination == Termination.INFEASIBLE
    assert res.message.startswith("server memory")
    back = load_plan(res.save(tmp_path / "none.json"))
    assert back == res and back.plan is None
    rep = sftopt.verify(inst, back)
    assert not rep.feasible and "no plan" in rep.violations[0]
    assert sftopt.certify(inst, [res]) == [res]


def test_plan_files_of_both_versions(tmp_path):
    inst = load_instance(TINY)
    res = sftopt.solve(inst, "greedy-delay", certify=False)
    path = res.save(tmp_path / "sub" / "plan.json")  # folders made; no temporary file left
    assert sorted(p.name for p in path.parent.iterdir()) == ["plan.json"]
    assert load_plan(path) == res
    p = res.plan
    # the same plan in the old format: the plan's fields at the top, status folded in
    old = {"schema": "sftopt.plan/1", "family": "split", "instance": "tiny-example",
           "solver": "milp", "status": "time_limit", "total_delay_s": res.objective,
           "round_delay_s": p.round_delay_s, "rounds": p.rounds, "lower_bound_s": 30.0,
           "gap": 0.1, "devices": [d.model_dump() for d in p.devices], "schedule": "parallel"}
    up = load_plan(old)
    assert up.status == Status.FEASIBLE and up.termination == Termination.TIME_LIMIT
    assert up.objective == res.objective and up.bound == 30.0 and up.plan.devices == p.devices
    assert sftopt.verify(inst, up).ok
    gone = load_plan({**old, "status": "infeasible", "total_delay_s": None})
    assert gone.plan is None and gone.termination == Termination.INFEASIBLE
    # a /1 result stopped at its time limit without a plan held placeholder devices: no plan
    late = load_plan({**old, "total_delay_s": None})
    assert late.plan is None and late.status == Status.NONE
    assert late.termination == Termination.TIME_LIMIT
    # errors at renamed fields name the field the /1 file has
    with pytest.raises(sftopt.InstanceError) as err:
        load_plan({**old, "total_delay_s": "slow", "status": ["x"]})
    assert sorted(q.path for q in err.value.problems) == ["$.status", "$.total_delay_s"]
    # errors keep the paths the user wrote: /1 at the top, /2 under $.plan
    with pytest.raises(sftopt.InstanceError) as err:
        load_plan({**old, "devices": [{**old["devices"][0], "cut": "deep"}, old["devices"][1]]})
    assert [q.path for q in err.value.problems] == ["$.devices[0].cut"]
    new = json.loads(res.to_json())
    new["plan"]["devices"][1]["level"] = "x"
    new["status"] = "great"
    with pytest.raises(sftopt.InstanceError) as err:
        load_plan(new)
    assert sorted(q.path for q in err.value.problems) == ["$.plan.devices[1].level", "$.status"]
    with pytest.raises(sftopt.InstanceError, match=r"\$\.family"):
        load_plan({**new, "family": "federated"})
    for family in ([], {}, None):
        with pytest.raises(sftopt.InstanceError, match=r"\$\.family"):
            load_plan({**new, "family": family})
        with pytest.raises(sftopt.InstanceError, match=r"\$\.family"):
            load_instance({**json.loads(TINY.read_text()), "family": family})
    nameless = {k: v for k, v in new.items() if k != "family"}
    with pytest.raises(sftopt.InstanceError, match="required field"):
        load_plan(nameless)
    # status and plan agree: none exactly when there is no plan
    with pytest.raises(sftopt.InstanceError, match=r"\$\.status"):
        load_plan({**json.loads(res.to_json()), "plan": None})
    with pytest.raises(sftopt.InstanceError, match=r"\$\.status"):
        load_plan({**json.loads(res.to_json()), "status": "none"})
    with pytest.raises(sftopt.InstanceError, match="sftopt.plan/2"):
        load_plan({**new, "schema": "sftopt.plan/3"})


def _link_bytes(inst, placement) -> float:
    """Bytes per round the placement says cross the air: hidden states up, gradients down,
    adapters every `every` rounds."""
    beta = [c.bits_per_elem for c in inst.codec.levels]
    lora = [s.lora_params for s in inst.model.stages]
    bits = sum(2 * r.batch * link.elems * beta[link.level] for r in placement.routes
               for link in r.links)
    bits += sum(8 * inst.model.adapter_dtype_bytes * sum(lora[i] for i in u.stages) / u.every
                for u in placement.uploads)
    return bits / 8


@pytest.mark.parametrize("solver", ["greedy-delay", "baseline-equal", "vanilla-sl"])
def test_placement_agrees_with_the_cost_model(tiny, solver):
    tiny["training"]["max_cut"] = 3  # cut L+1 allowed: some devices may keep everything
    tiny["devices"][0]["memory_bytes"] = 1e12
    for cut in (None, 3):
        inst = load_instance(tiny)
        res = sftopt.solve(inst, solver, certify=False)
        if cut is not None:  # a device with the whole model: no link, only its adapters
            res.plan.devices[0].cut = cut
        pl = sftopt.placement(inst, res)
        ev = get_family("split").evaluate(inst, res.plan)
        assert _link_bytes(inst, pl) == pytest.approx(ev.bytes_per_round, rel=1e-12)
        n_stages = len(inst.model.stages)
        for route, d in zip(pl.routes, res.plan.devices, strict=True):
            stages = [i for seg in route.segments for i in seg.stages]
            assert stages == list(range(n_stages))  # every stage once, in order
            assert route.segments[0].party == d.id and route.segments[0].last == d.cut
        sequential = res.plan.schedule == "sequential"
        assert len(pl.groups) == (1 if sequential else inst.n_devices)
        copies = pl.copies()
        for i, s in enumerate(inst.model.stages):
            holders = copies.get(i, {})
            assert (sum(holders.values()) == sum(x.batch for x in inst.devices)) == \
                (s.lora_params > 0)


def test_simulation_allocator_comes_from_the_solver():
    inst = load_instance(TINY)
    assert default_allocator(sftopt.solve(inst, "baseline-equal", certify=False)) == "equal"
    assert default_allocator(sftopt.solve(inst, "vanilla-sl", certify=False)) == "fixed"
    res = sftopt.solve(inst, "alm", certify=False)
    assert default_allocator(res) == "exact"
    assert default_allocator(res.model_copy(update={"solver": "my-own-tool"})) == "exact"


def test_a_missing_backend_only_makes_its_solver_unavailable(tmp_path):
    """With highspy, pyscipopt and cvxpy blocked, discovery, listing and the other solvers
    work; milp and minlp say they are unavailable."""
    code = ("import sys\n"
            "for m in ('highspy', 'pyscipopt', 'cvxpy'): sys.modules[m] = None\n"
            "from sftopt.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    script = tmp_path / "blocked.py"
    script.write_text(code)

    def run(*args):
        return subprocess.run([sys.executable, str(script), *args], capture_output=True,
                              text=True, timeout=300)

    listed = run("solvers")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines() if line.strip()}
    assert " no " in rows["milp"].replace("  ", " ") and "alm" in rows
    solved = run("solve", str(TINY), "--solver", "greedy-delay,milp", "--no-simulate",
                 "--bound", "relaxation")
    assert solved.returncode == 0  # greedy-delay covered the instance; milp is only noted
    alone = run("solve", str(TINY), "--solver", "milp", "--no-simulate", "--bound", "relaxation")
    assert alone.returncode == 1  # no solver covered it: the run failed
    assert "milp needs highspy, not installed" in solved.stderr
    assert "Traceback" not in solved.stderr
    assert "greedy-delay" in solved.stdout and "unavailable" in solved.stdout
    assert "milp: needs highspy" not in solved.stdout


def test_results_carry_instance_hash_options_and_versions():
    inst = load_instance(TINY)
    res = sftopt.solve(inst, "alm", seed=4, certify=False)
    assert res.instance_sha256 == inst.sha256 and res.options == {"seed": 4}
    assert {"sftopt", "numpy", "pyomo"} <= set(res.versions)
    assert isinstance(res, Result) and res.family == "split"
    assert np.array_equal(res.plan.cuts, [d.cut for d in res.plan.devices])
