"""A `hierarchical` decision becomes a Result through the cost model (what every solver
returns), and the diagnosis of instances no layout fits."""

from __future__ import annotations

import numpy as np

from ...core import result
from ...core.result import Result, Status, Termination, finite, versions
from .arrays import REL_TOL, Arrays
from .cost import Layout, best_shares, evaluate, load
from .schema import EdgePlan, HierarchicalInstance, HierarchicalPeakMemory, HierarchicalPlan


def layout_of(inst: HierarchicalInstance, plan: HierarchicalPlan) -> tuple[Layout, np.ndarray]:
    """A three-tier plan as a Layout and its cloud shares (call `structure_problems` first)."""
    a = inst.arrays
    where = {uid: e for e, ep in enumerate(plan.edges) for uid in ep.users}
    edge_of = np.array([where.get(uid, -1) for uid in a.user_ids], dtype=int)
    pair = np.array([a.pair_index(ep.user_cut, ep.edge_cut) for ep in plan.edges], dtype=int)
    return Layout(edge_of, pair), np.array([ep.cloud_share for ep in plan.edges])


def structure_problems(inst: HierarchicalInstance, plan: HierarchicalPlan) -> list[str]:
    """Why a plan cannot even be evaluated on ``inst`` (empty: it can)."""
    if plan.scheme == "two-tier":
        if plan.two_tier is None:
            return ["a two-tier plan holds its split plan in 'two_tier'"]
        return []
    a = inst.arrays
    if [ep.id for ep in plan.edges] != a.edge_ids:
        return [f"edges: the instance's edges in order {a.edge_ids}; got "
                f"{[ep.id for ep in plan.edges]}"]
    out = []
    seen = [uid for ep in plan.edges for uid in ep.users]
    if sorted(seen) != sorted(a.user_ids):
        missing = sorted(set(a.user_ids) - set(seen))
        extra = sorted({u for u in seen if seen.count(u) > 1} | (set(seen) - set(a.user_ids)))
        out.append(f"users: every user at exactly one edge (missing {missing}, repeated or "
                   f"unknown {extra})")
    for e, ep in enumerate(plan.edges):
        if a.pair_index(ep.user_cut, ep.edge_cut) < 0:
            out.append(f"edges[{e}]: cuts ({ep.user_cut}, {ep.edge_cut}) are not a pair "
                       f"min_user_cut <= user_cut < edge_cut <= max_edge_cut of the instance")
    return out


def make_result(inst: HierarchicalInstance, lay: Layout, share: np.ndarray | None = None, *,
                status: Status = Status.FEASIBLE,
                termination: Termination = Termination.CONVERGED, message: str = "",
                lower_bound: float | None = None, iterations: int = 0) -> Result:
    """Evaluate a layout with the cost model and package it as a Result (``share`` None: the
    best cloud shares for it). A layout that breaks a constraint is no plan: termination
    infeasible, the message names the violated constraints."""
    a = inst.arrays
    if share is None:
        share = shares_for(a, lay)[1]
    ev = evaluate(a, lay, share)
    if ev.violations:
        why = "; ".join(ev.violations) + (f" ({message})" if message else "")
        return no_plan(inst, Termination.INFEASIBLE, why, iterations)
    plan = HierarchicalPlan(
        epoch_delay_s=finite(ev.epoch_delay), rounds=finite(ev.rounds),
        total_delay_s=finite(ev.total_delay), bytes_per_epoch=finite(ev.bytes_per_epoch),
        peak_memory_bytes=HierarchicalPeakMemory(cloud=ev.cloud_memory,
                                                 edges=[float(m) for m in ev.edge_memory],
                                                 users=[float(m) for m in ev.user_memory]),
        edges=[EdgePlan(id=eid, user_cut=int(a.s1[lay.pair[e]]),
                        edge_cut=int(a.s2[lay.pair[e]]), cloud_share=float(share[e]),
                        users=[a.user_ids[u] for u in lay.users(e)])
               for e, eid in enumerate(a.edge_ids)])
    res = Result(family="hierarchical", instance=inst.name, instance_sha256=inst.sha256,
                 status=status, termination=termination, message=message,
                 objective=finite(ev.epoch_delay), iterations=iterations, plan=plan,
                 versions=versions())
    return res.with_bound(finite(lower_bound))


def shares_for(a: Arrays, lay: Layout) -> tuple[float, np.ndarray]:
    """The epoch delay of ``lay`` with its best cloud shares, and those shares."""
    ld = load(a, lay)
    return best_shares(ld.turns, ld.cloud)


def no_plan(inst: HierarchicalInstance, termination: Termination, message: str,
            iterations: int = 0, bound: float | None = None) -> Result:
    """No plan: ``termination`` says why the solver stopped (infeasible: none exists, with the
    binding tier and constraint named in ``message``)."""
    return result.no_plan("hierarchical", inst, termination, message, iterations, bound)


def infeasible(inst: HierarchicalInstance, message: str, iterations: int = 0) -> Result:
    return no_plan(inst, Termination.INFEASIBLE, message, iterations)


def refused(inst: HierarchicalInstance, message: str) -> Result:
    return no_plan(inst, Termination.REFUSED, message)


def diagnose(a: Arrays) -> str | None:
    """Why no layout fits in memory, naming the binding tier (None: this check finds no reason;
    a solver may still prove infeasibility). Users whose every pair breaks their own memory;
    users no edge they may join can hold at any pair; edges whose fixed users share no pair;
    the cloud when even the deepest feasible edge cut of every edge with fixed users exceeds
    it."""
    # per user: some pair fits its own memory; some edge it may join holds it at some pair
    own = a.user_fits.any(axis=1)
    somewhere = np.zeros(a.n_users, dtype=bool)
    for e in range(a.n_edges):
        somewhere |= a.fits(e).any(axis=1)
    for u in np.flatnonzero(~own | ~somewhere):  # the first such user is named
        if not own[u]:
            least = a.user_mem[u].min()
            return (f"users[{u}] ({a.user_ids[u]}): memory {a.user_memory[u]:.6g} B is below "
                    f"its least need {least:.6g} B (user_cut = min_user_cut)")
        if not somewhere[u]:
            where = [a.edge_ids[e] for e in np.flatnonzero(a.allowed[u])]
            return (f"users[{u}] ({a.user_ids[u]}): no edge it may join ({', '.join(where)}) "
                    f"holds its batch at any cut pair (edge memory)")
    held, act = 0.0, 0.0
    for e in range(a.n_edges):
        u = np.flatnonzero(a.fixed == e)
        if not len(u):
            continue
        ok = a.fits(e, u).all(axis=0)
        if not ok.any():
            return (f"edges[{e}] ({a.edge_ids[e]}): no cut pair fits all its users "
                    f"{[a.user_ids[k] for k in u]} at once (edge memory {a.edge_memory[e]:.6g} B"
                    f" or the users' own)")
        deep = np.flatnonzero(ok)[np.argmax(a.s2[ok])]  # least cloud weights and activations
        held = max(held, a.cloud_held[deep])
        act += a.batch[u].max() * a.cloud_act[deep]
    if held + act > a.cloud_memory * (1 + REL_TOL):
        return (f"cloud memory: at least {held + act:.6g} B (every edge at its deepest "
                f"feasible edge cut), {a.cloud_memory:.6g} B available")
    return None


def preflight(inst: HierarchicalInstance) -> Result | None:
    """Infeasible with the binding tier named when `diagnose` finds a reason, else None."""
    why = diagnose(inst.arrays)
    return infeasible(inst, why) if why else None
