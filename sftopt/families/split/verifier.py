"""Independent verifier: a plan's values fixed in the formal model; feasibility, slacks.

It shares no formula with cost.py: up to ``PYOMO_MAX_DEVICES`` devices it evaluates the Pyomo
expressions of formal.py; above, building that model costs seconds to minutes, and the same
constraints are evaluated on arrays (formal_arrays.py, also written from docs/model.md; tests
hold the two routes to 1e-9 on random feasible and violated plans). Tests hold the verifier and
the cost model to 1e-9 relative on every plan.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from ...core.family import Report
from ...core.formal import (
    REL_TOL,
    captured_pyomo,
    claims,
    instance_notes,
    open_plan,
    read_constraints,
)
from ...core.result import Result
from .formal_arrays import Evaluation, evaluate_fixed
from .plans import structure_problems
from .schema import SplitInstance, SplitPlan

# rows that only define auxiliary variables (tight by construction): not worth listing as binding
EPIGRAPH = ("comm[", "server[", "delay", "holds[")
# above this many devices the arrays route checks a plan: building and reading the Pyomo model
# costs about 2-5 s at 1,000 devices and 20 s at 10,000 (benchmarks/scale, 2 loaded cores), the
# arrays 0.02 s and 0.2 s; every bundled instance and test fleet stays on the Pyomo route
PYOMO_MAX_DEVICES = 200


def verify(inst: SplitInstance, result: Result | dict[str, Any] | str | Path, *,
           route: Literal["auto", "pyomo", "arrays"] = "auto") -> Report:
    """Check a plan (a Result, a plan file or its dict) against the formal model of ``inst``.

    ``figures`` of the report: round_delay, rounds; ``objective`` the total delay R x T.
    ``route``: the Pyomo model, the same constraints on arrays, or (auto) Pyomo up to
    ``PYOMO_MAX_DEVICES`` devices and arrays above (said in the report's notes).
    """
    if route not in ("auto", "pyomo", "arrays"):
        raise ValueError(f"route must be 'auto', 'pyomo' or 'arrays', got {route!r}")
    with captured_pyomo() as notes:
        report = _verify(inst, result, route)
    report.notes += notes
    return report


def _rate(expr: Any) -> float | None:
    """The value of a rate expression if it is a finite positive number (None otherwise)."""
    import pyomo.environ as pyo

    try:
        r = float(pyo.value(expr))
    except (ValueError, ZeroDivisionError, OverflowError):  # log of 0 or less, x/0
        return None
    return r if math.isfinite(r) and r > 0 else None


def _verify(inst: SplitInstance, result: Result | dict[str, Any] | str | Path,
            route: str) -> Report:
    result, rejected = open_plan(inst, result, structure_problems, EPIGRAPH)
    if rejected is not None:
        return rejected
    plan = result.plan
    notes: list[str] = []
    if route == "arrays" or (route == "auto" and inst.n_devices > PYOMO_MAX_DEVICES):
        ev = evaluate_fixed(inst, plan)
        if route == "auto":
            notes.append(f"verified on arrays (formal_arrays): {inst.n_devices} devices, above "
                         f"the {PYOMO_MAX_DEVICES} checked in the Pyomo model")
    else:
        ev = _evaluate_pyomo(inst, plan)
    return _report(inst, result, ev, notes)


def _evaluate_pyomo(inst: SplitInstance, plan: SplitPlan) -> Evaluation:
    """The plan's values fixed in formal.py's Pyomo model; every constraint read."""
    import pyomo.environ as pyo

    from .formal import build_split_model  # Pyomo is slow to import: only on this route

    m = build_split_model(inst, schedule=plan.schedule)
    for k, p in enumerate(plan.devices):
        for s in m.S:
            m.x[k, s].fix(1 if s == p.cut else 0)
        for c in m.C:
            m.y[k, c].fix(1 if c == p.level else 0)
        # out-of-bounds values are this verifier's finding (below), not Pyomo's warning
        m.b[k].fix(p.bandwidth_hz, skip_validation=True)
        m.phi[k].fix(p.server_share, skip_validation=True)

    violations: list[str] = []
    skip: set[str] = set()
    for k, p in enumerate(plan.devices):
        up, down = pyo.value(m.bits_up[k]), pyo.value(m.bits_down[k])
        tc = 0.0
        if up + down > 0:
            # a rate that is not a finite positive number (no band, a band so small that x/b
            # overflows, or so large that log(1 + x/b) rounds to 0) is an infinite delay
            rates = [_rate(m.rate_up[k]) if up > 0 else 1.0,
                     _rate(m.rate_down[k]) if down > 0 else 1.0]
            if p.bandwidth_hz > 0 and all(r is not None for r in rates):
                tc = (up / rates[0] if up > 0 else 0.0) + (down / rates[1] if down > 0 else 0.0)
            else:
                why = "bandwidth 0" if p.bandwidth_hz == 0 else \
                    f"no finite rate at bandwidth {p.bandwidth_hz:.6g} Hz"
                violations.append(f"comm[{k}]: device {p.id} has {why} but {up + down:.4g} "
                                  "bits to move (infinite delay)")
                tc = math.inf
        if tc == 0.0 or not math.isfinite(tc):
            skip.add(m.comm[k].name)  # rates at b = 0 are not evaluable; handled above
        work = pyo.value(m.server_work[k])
        ts = work / p.server_share if p.server_share > 0 and work > 0 else 0.0
        if work > 0 and not (math.isfinite(ts) and ts > 0):
            why = "server share 0" if p.server_share == 0 else \
                f"server share {p.server_share:.6g} (the delay overflows)"
            violations.append(f"server[{k}]: device {p.id} has {why} but {work:.4g} s "
                              "of server work (infinite delay)")
            ts = math.inf
            skip.add(m.server[k].name)
        m.tc[k].set_value(tc if math.isfinite(tc) else 0.0, skip_validation=True)
        m.ts[k].set_value(ts if math.isfinite(ts) else 0.0, skip_validation=True)
    shallowest = min(p.cut for p in plan.devices)
    for i in m.I:  # the least u meeting the "holds" constraints: some device cuts below i
        m.u[i].set_value(1 if shallowest < i else 0)
    delays = [pyo.value(m.delay_k[k]) for k in m.K]
    T = max(delays) if plan.schedule == "parallel" else sum(delays)
    m.T.set_value(T, skip_validation=True)

    slacks, found = read_constraints(m, skip, {"K": [d.id for d in inst.devices]})
    violations += found
    for name, var in (("b", m.b), ("phi", m.phi)):
        for k in m.K:
            v, lo, hi = var[k].value, var[k].lb, var[k].ub
            if v < lo or v > hi * (1 + REL_TOL):
                violations.append(f"{name}[{k}] = {v:.6g} outside [{lo:g}, {hi:g}]")

    return Evaluation(violations, slacks, T, pyo.value(m.rounds), pyo.value(m.objective))


def _report(inst: SplitInstance, result: Result, ev: Evaluation, notes: list[str]) -> Report:
    """The report of either route's findings: violations, or the objective and the claims."""
    plan = result.plan
    if ev.violations:
        return Report(False, None, ev.violations, ev.slacks, epigraph=EPIGRAPH, notes=notes)
    objective, rounds, T = ev.objective, ev.rounds, ev.round_delay
    if not math.isfinite(objective):
        return Report(False, None, [f"objective: R x T = {rounds:.6g} x {T:.6g} s is not "
                                    "finite"], ev.slacks, epigraph=EPIGRAPH, notes=notes)
    stated = claims(result, inst, [("objective", result.objective, objective),
                                   ("round_delay_s", plan.round_delay_s, T),
                                   ("rounds", plan.rounds, rounds)])
    return Report(True, objective, [], ev.slacks, stated, {"round_delay": T, "rounds": rounds},
                  epigraph=EPIGRAPH, notes=notes + instance_notes(result, inst))
