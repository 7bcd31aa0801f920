"""Independent verifier: a plan's values fixed in the formal Pyomo model; feasibility, slacks.

It shares no formula with cost.py: it evaluates the Pyomo expressions of formal.py. Tests hold the
two to 1e-9 relative on every plan.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyomo.environ as pyo

from ...core.family import Report
from ...core.formal import REL_TOL, claims, open_plan, read_constraints
from ...core.result import Result
from .formal import build_split_model
from .plans import structure_problems
from .schema import SplitInstance

# rows that only define auxiliary variables (tight by construction): not worth listing as binding
EPIGRAPH = ("comm[", "server[", "delay", "holds[")


def verify(inst: SplitInstance, result: Result | dict[str, Any] | str | Path) -> Report:
    """Check a plan (a Result, a plan file or its dict) against the formal model of ``inst``.

    ``figures`` of the report: round_delay, rounds; ``objective`` the total delay R x T.
    """
    result, rejected = open_plan(inst, result, structure_problems, EPIGRAPH)
    if rejected is not None:
        return rejected
    plan = result.plan

    m = build_split_model(inst, schedule=plan.schedule)
    for k, p in enumerate(plan.devices):
        for s in m.S:
            m.x[k, s].fix(1 if s == p.cut else 0)
        for c in m.C:
            m.y[k, c].fix(1 if c == p.level else 0)
        m.b[k].fix(p.bandwidth_hz)
        m.phi[k].fix(p.server_share)

    violations: list[str] = []
    skip: set[str] = set()
    for k, p in enumerate(plan.devices):
        up, down = pyo.value(m.bits_up[k]), pyo.value(m.bits_down[k])
        if p.bandwidth_hz > 0:
            tc = (up / pyo.value(m.rate_up[k]) if up > 0 else 0.0) + (
                down / pyo.value(m.rate_down[k]) if down > 0 else 0.0)
        elif up + down > 0:
            violations.append(f"comm[{k}]: device {p.id} has bandwidth 0 but {up + down:.4g} "
                              "bits to move (infinite delay)")
            tc = math.inf
        else:
            tc = 0.0
        if tc == 0.0 or not math.isfinite(tc):
            skip.add(m.comm[k].name)  # rates at b = 0 are not evaluable; handled above
        work = pyo.value(m.server_work[k])
        if p.server_share > 0:
            ts = work / p.server_share
        elif work > 0:
            violations.append(f"server[{k}]: device {p.id} has server share 0 but {work:.4g} s "
                              "of server work (infinite delay)")
            ts = math.inf
        else:
            ts = 0.0
        m.tc[k].set_value(tc if math.isfinite(tc) else 0.0, skip_validation=True)
        m.ts[k].set_value(ts if math.isfinite(ts) else 0.0, skip_validation=True)
    for i in m.I:  # the least u meeting the "holds" constraints
        m.u[i].set_value(max(pyo.value(sum(m.x[k, s] for s in m.S if s < i)) for k in m.K))
    delays = [pyo.value(m.delay_k[k]) for k in m.K]
    T = max(delays) if plan.schedule == "parallel" else sum(delays)
    m.T.set_value(T)

    slacks, found = read_constraints(m, skip)
    violations += found
    for name, var in (("b", m.b), ("phi", m.phi)):
        for k in m.K:
            v, lo, hi = var[k].value, var[k].lb, var[k].ub
            if v < lo or v > hi * (1 + REL_TOL):
                violations.append(f"{name}[{k}] = {v:.6g} outside [{lo:g}, {hi:g}]")

    if violations:
        return Report(False, None, violations, slacks, epigraph=EPIGRAPH)
    objective = pyo.value(m.objective)
    rounds = pyo.value(m.rounds)
    stated = claims(result, inst, [("objective", result.objective, objective),
                                   ("round_delay_s", plan.round_delay_s, T),
                                   ("rounds", plan.rounds, rounds)])
    return Report(True, objective, [], slacks, stated, {"round_delay": T, "rounds": rounds},
                  epigraph=EPIGRAPH)
