"""The verifier's two routes -- formal.py's Pyomo model and the same constraints on arrays
(formal_arrays.py, used above verifier.PYOMO_MAX_DEVICES devices) -- give the same report on
random plans, feasible and violated; the cost model agrees with the arrays route too."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sftopt
from sftopt import load_instance
from sftopt.families.split import verifier
from sftopt.families.split.generate import random_instance
from sftopt.families.split.plans import make_result

from .conftest import draw_cut_tables

# tight memory and accuracy so that random plans violate device memory and accuracy too; a
# small server so that server memory binds; given gains and path-loss distances both
INSTANCES = [
    load_instance(random_instance(4, seed=3, memory_pressure=0.0, max_distortion=1.0)),
    load_instance(random_instance(5, seed=7, memory_pressure=0.8, max_distortion=0.02, eta=0.5)),
]
_small = random_instance(3, seed=11, memory_pressure=0.5)
_small["server"]["memory_bytes"] = 2.0e9
for _d in _small["devices"]:
    _d.pop("gain", None)
    _d["distance_m"] = 120.0
INSTANCES.append(load_instance(_small))


def _plan(inst, cuts, levels, band, share, schedule) -> sftopt.Result:
    """A plan of decisions alone, as another tool would write it (no figures to check)."""
    return sftopt.load_plan({"schema": "sftopt.plan/2", "family": "split", "instance": inst.name,
                             "plan": {"schedule": schedule, "devices": [
                                 {"id": d.id, "cut": int(s), "level": int(c),
                                  "bandwidth_hz": float(b), "server_share": float(p)}
                                 for d, s, c, b, p in zip(inst.devices, cuts, levels, band, share,
                                                          strict=True)]}})


def _same(pyomo, arrays) -> None:
    assert arrays.feasible == pyomo.feasible
    # the same rows violated, in the same order (the figures in a message may differ in the
    # last printed digit: compare the names)
    assert [v.split(":")[0] for v in arrays.violations] == \
        [v.split(":")[0] for v in pyomo.violations]
    assert list(arrays.slacks) == list(pyomo.slacks)
    for name, rel in pyomo.slacks.items():
        assert arrays.slacks[name] == pytest.approx(rel, rel=1e-9, abs=1e-9), name
    assert [c.split(":")[0] for c in arrays.claims] == [c.split(":")[0] for c in pyomo.claims]
    if pyomo.feasible:
        assert arrays.objective == pytest.approx(pyomo.objective, rel=1e-9)
        for key, value in pyomo.figures.items():
            assert arrays.figures[key] == pytest.approx(value, rel=1e-9), key


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_arrays_route_equals_pyomo_route(data):
    inst = draw_cut_tables(data, data.draw(st.sampled_from(INSTANCES)))
    k, a = inst.n_devices, inst.arrays
    cuts = data.draw(st.lists(st.sampled_from(list(a.cuts)), min_size=k, max_size=k))
    levels = data.draw(st.lists(st.integers(0, len(a.beta) - 1), min_size=k, max_size=k))
    w_b = np.array(data.draw(st.lists(st.floats(0.05, 1.0), min_size=k, max_size=k)))
    w_p = np.array(data.draw(st.lists(st.floats(0.05, 1.0), min_size=k, max_size=k)))
    # a zero band or share is an infinite delay; a total above 1 oversubscribes
    hole = data.draw(st.sampled_from(["none", "none", "band", "share"]))
    (w_b if hole == "band" else w_p if hole == "share" else np.zeros(k))[0] = 0.0
    total = data.draw(st.sampled_from([1.0, 1.0, 1.0, 1.3]))
    band = a.bandwidth * total * w_b / max(w_b.sum(), 1e-9)
    share = total * w_p / max(w_p.sum(), 1e-9)
    schedule = data.draw(st.sampled_from(["parallel", "sequential"]))
    if schedule == "sequential":  # each device may take the whole band and server
        band, share = a.bandwidth * np.minimum(w_b * total, 1.3), np.minimum(w_p * total, 1.3)
    plan = _plan(inst, cuts, levels, band, share, schedule)
    pyomo = verifier.verify(inst, plan, route="pyomo")
    arrays = verifier.verify(inst, plan, route="arrays")
    _same(pyomo, arrays)
    res = make_result(inst, np.array(cuts), np.array(levels), band, share, schedule=schedule)
    assert arrays.feasible == (res.plan is not None), (arrays.violations, res.message)
    if res.plan is not None:  # a plan with its figures: no claim may disagree on either route
        assert arrays.ok and pyomo.ok
        assert arrays.objective == pytest.approx(res.objective, rel=1e-9)


def test_routes_agree_on_solver_plans_and_claims():
    inst = INSTANCES[0]
    for method in ("greedy", "baseline-equal", "vanilla-sl"):
        res = sftopt.solve(inst, method, certify=False)
        if res.plan is None:
            continue
        _same(verifier.verify(inst, res, route="pyomo"), verifier.verify(inst, res, route="arrays"))
        wrong = res.model_copy(deep=True)
        wrong.objective *= 1.01  # a stated figure the model does not give
        pyomo, arrays = (verifier.verify(inst, wrong, route=r) for r in ("pyomo", "arrays"))
        _same(pyomo, arrays)
        assert pyomo.feasible and not arrays.ok and arrays.claims[0].startswith("objective")


def test_auto_route_switches_above_the_documented_size(monkeypatch):
    inst = INSTANCES[0]
    res = sftopt.solve(inst, "greedy", certify=False)
    assert not any("arrays" in n for n in verifier.verify(inst, res).notes)
    monkeypatch.setattr(verifier, "PYOMO_MAX_DEVICES", inst.n_devices - 1)
    rep = verifier.verify(inst, res)
    assert rep.ok and any("verified on arrays" in n for n in rep.notes)
    with pytest.raises(ValueError, match="route"):
        verifier.verify(inst, res, route="fast")
