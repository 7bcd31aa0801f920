"""Independent verifier: a plan's values fixed in the formal Pyomo model; feasibility, slacks.

It shares no formula with cost.py: it evaluates the Pyomo expressions of formal.py. A two-tier
plan is the split family's plan of the two-tier instance, checked by that family's verifier.
Tests hold the verifier and the cost model to 1e-9 relative on every plan.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyomo.environ as pyo

from ...core.family import Report
from ...core.formal import claims, open_plan, read_constraints
from ...core.result import Result
from .formal import build_hierarchical_model
from .plans import structure_problems
from .schema import TWO_TIER, HierarchicalInstance

# epigraph rows (tight by construction) and the choice rows: not worth listing as binding
EPIGRAPH = ("delay[", "cloud_held[", "cloud_batch[", "busy_if[")


def verify(inst: HierarchicalInstance, result: Result | dict[str, Any] | str | Path) -> Report:
    """Check a plan (a Result, a plan file or its dict) against the formal model of ``inst``.

    ``objective`` of the report: the epoch delay; ``figures``: epoch_delay, rounds, total."""
    result, rejected = open_plan(inst, result, structure_problems, EPIGRAPH)
    if rejected is not None:
        return rejected
    plan = result.plan
    if plan.scheme == TWO_TIER:
        return _two_tier(inst, result)

    pairs = [[(ep.user_cut, ep.edge_cut)] for ep in plan.edges]
    m = build_hierarchical_model(inst, pairs=pairs)
    where = {uid: e for e, ep in enumerate(plan.edges) for uid in ep.users}
    violations: list[str] = []
    for u, user in enumerate(inst.users):
        e = where[user.id]
        if (u, e) not in m.UE:
            violations.append(f"users[{u}] ({user.id}): must be served by {user.edge}, the "
                              f"plan puts it at {plan.edges[e].id}")
    if violations:
        return Report(False, None, violations, epigraph=EPIGRAPH)
    for e, ep in enumerate(plan.edges):
        m.y[e, 0].fix(1)
        m.phi[e].fix(ep.cloud_share)
        m.busy[e].fix(1 if ep.users else 0)
    for (u, e) in m.UE:
        m.z[u, e].fix(1 if where[inst.users[u].id] == e else 0)
    skip: set[str] = set()
    delays = []
    f = m.figures
    for e, ep in enumerate(plan.edges):
        served = [u for u, user in enumerate(inst.users) if where[user.id] == e]
        own = sum(f["turn"](u, e, 0) for u in served)
        cloud = sum(f["cloud_s"](u, e, 0) for u in served)
        if not served:
            delays.append(0.0)
        elif ep.cloud_share > 0:
            delays.append(own + cloud / ep.cloud_share)
        else:
            violations.append(f"delay[{e}]: edge {ep.id} has users but cloud share 0 "
                              "(infinite delay)")
            skip.add(m.delay[e].name)
    T = max(delays) if not violations else 0.0
    m.T.set_value(T)
    m.Wc.set_value(max((f["cloud_weights"](e, 0) for e, ep in enumerate(plan.edges) if ep.users),
                       default=0.0))
    for e in m.E:
        m.act[e].set_value(max((f["cloud_batch"](u, e, 0) for u, user in enumerate(inst.users)
                                if where[user.id] == e), default=0.0))
    users, edges = [u.id for u in inst.users], [e.id for e in inst.edges]
    slacks, found = read_constraints(m, skip, {"U": users, "E": edges, "UE": (users, edges)})
    violations += found
    if violations:
        return Report(False, None, violations, slacks, epigraph=EPIGRAPH)
    objective = pyo.value(m.objective)
    rounds = pyo.value(m.rounds)
    stated = claims(result, inst, [("objective", result.objective, objective),
                                   ("epoch_delay_s", plan.epoch_delay_s, T),
                                   ("rounds", plan.rounds, rounds),
                                   ("total_delay_s", plan.total_delay_s, rounds * T)])
    return Report(True, objective, [], slacks, stated,
                  {"epoch_delay": T, "rounds": rounds, "total": rounds * T}, epigraph=EPIGRAPH)


def _two_tier(inst: HierarchicalInstance, result: Result) -> Report:
    from ..split.verifier import verify as verify_split
    from .twotier import two_tier_instance

    split = two_tier_instance(inst)
    sp = result.model_copy(update={"family": "split", "instance": split.name,
                                   "instance_sha256": split.sha256,
                                   "plan": result.plan.two_tier,
                                   "objective": result.plan.total_delay_s})  # split's: R x T
    rep = verify_split(split, sp.to_dict())
    if not rep.feasible:
        return rep
    T = rep.figures["round_delay"]
    stated = claims(result, inst, [("objective", result.objective, T),
                                   ("epoch_delay_s", result.plan.epoch_delay_s, T)])
    return Report(True, T, [], rep.slacks, stated + rep.claims,
                  {"epoch_delay": T, "rounds": rep.figures["rounds"],
                   "total": rep.figures["rounds"] * T}, epigraph=rep.epigraph)

