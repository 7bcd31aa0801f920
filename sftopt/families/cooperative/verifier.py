"""Independent verifier: a plan's values fixed in the formal Pyomo model; feasibility, slacks.

It shares no formula with cost.py: it evaluates the Pyomo expressions of formal.py. Tests hold
the two to 1e-9 relative on every plan.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyomo.environ as pyo

from ...core.family import Report
from ...core.formal import REL_TOL, claims, open_plan, read_constraints
from ...core.result import Result
from .formal import build_cooperative_model
from .plans import structure_problems
from .schema import DEVICES, CooperativeInstance

# rows left out of the binding list: epigraph rows (tight by construction) and the assignment's
# own rows (tight whenever a device is busy); the resources are band and memory
EPIGRAPH = ("comm[", "delay[", "top_held[", "below_top[", "one_top[", "max_blocks[")


def verify(inst: CooperativeInstance, result: Result | dict[str, Any] | str | Path) -> Report:
    """Check a plan (a Result, a plan file or its dict) against the formal model of ``inst``.

    ``objective`` of the report: the round delay; ``figures``: round_delay, rounds, total."""
    result, rejected = open_plan(inst, result, structure_problems, EPIGRAPH)
    if rejected is not None:
        return rejected
    plan = result.plan

    m = build_cooperative_model(inst, plan_class=plan.plan_class)
    if plan.plan_class == DEVICES:
        for k, p in enumerate(plan.devices):
            top = min(p.blocks, default=None)
            for j in m.J:
                m.x[k, j].fix(1 if j in p.blocks else 0)
                m.z[k, j].fix(1 if j == top else 0)
    violations: list[str] = []
    skip: set[str] = set()
    for k, p in enumerate(plan.devices):
        m.b[k].fix(p.bandwidth_hz)
        bits = pyo.value(m.bits[k])
        if bits <= 0:
            tc = 0.0
        elif p.bandwidth_hz > 0:
            tc = bits / pyo.value(m.rate[k])
        else:
            violations.append(f"comm[{k}]: device {p.id} has bandwidth 0 but {bits:.4g} bits "
                              "to upload (infinite delay)")
            tc = math.inf
        if tc == 0.0 or not math.isfinite(tc):
            skip.add(m.comm[k].name)  # a rate at b = 0 is not evaluable; handled above
        m.tc[k].set_value(tc if math.isfinite(tc) else 0.0, skip_validation=True)
    T = max(pyo.value(m.delay_k[k]) for k in m.K) + pyo.value(m.server_time)
    m.T.set_value(T)

    slacks, found = read_constraints(m, skip, {"K": [d.id for d in inst.devices]})
    violations += found
    for k in m.K:
        v, hi = m.b[k].value, m.b[k].ub
        if v < 0 or v > hi * (1 + REL_TOL):
            violations.append(f"b[{k}] = {v:.6g} outside [0, {hi:g}]")
    if violations:
        return Report(False, None, violations, slacks, epigraph=EPIGRAPH)
    objective = pyo.value(m.objective)
    rounds = pyo.value(m.rounds)
    stated = claims(result, inst, [("objective", result.objective, objective),
                                   ("round_delay_s", plan.round_delay_s, T),
                                   ("rounds", plan.rounds, rounds),
                                   ("total_delay_s", plan.total_delay_s, rounds * T)])
    return Report(True, objective, [], slacks, stated,
                  {"round_delay": T, "rounds": rounds, "total": rounds * T},
                  epigraph=EPIGRAPH)
