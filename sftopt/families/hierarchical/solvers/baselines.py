"""Comparison points: the published scheme's fixed cuts, and the two-tier `split` plan of the
same users served concurrently by the cloud."""

from __future__ import annotations

import numpy as np

from ....core.options import text, wholes
from ....core.registry import SolverOptionError, register, solve, solvers
from ....core.result import Result, Termination
from ..arrays import Arrays
from ..cost import Layout
from ..plans import infeasible, make_result, no_plan, preflight
from ..schema import TWO_TIER, HierarchicalInstance, HierarchicalPeakMemory, HierarchicalPlan
from ..twotier import two_tier_instance


def default_cuts(a: Arrays, L: int) -> tuple[int, int]:
    """SplitLLM's kind of fixed split: the user keeps the embedding and the first block, the
    edge the blocks up to the middle of the model, the cloud the rest (clipped to the
    instance's cut range)."""
    s1 = int(max(a.s1.min(), min(1, a.s1.max())))
    s2 = int(min(max(s1 + 1, L // 2), a.s2.max()))
    return s1, s2


@register("hierarchical", "fixed-cut",
          description="the published scheme: one cut pair for every edge (default user 0..1, "
                      "edge to L/2), best-uplink association, best cloud shares",
          options={"cuts": wholes(0, None, "[user_cut, edge_cut]", length=2, none=True)})
def solve_fixed_cut(instance: HierarchicalInstance, *, cuts: list[int] | None = None) -> Result:
    """Every edge at the pair ``cuts`` = [user_cut, edge_cut] (default `default_cuts`)."""
    a = instance.arrays
    s1, s2 = default_cuts(a, instance.model.n_blocks) if cuts is None else (
        tuple(int(c) for c in cuts) if len(cuts) == 2 else (-1, -1))
    p = a.pair_index(s1, s2)
    if p < 0:
        raise ValueError(f"cuts: [user_cut, edge_cut] with {a.s1.min()} <= user_cut < "
                         f"edge_cut <= {a.s2.max()}; got {cuts!r}")
    stop = preflight(instance)
    if stop is not None:
        return stop
    edge_of = a.fixed.copy()
    for u in np.flatnonzero(edge_of < 0):  # best uplink among edges that hold it at this pair
        ok = np.array([a.fits(e, [u])[0, p] for e in range(a.n_edges)])
        edge_of[u] = int(np.where(ok, a.rate_ul[u], -1.0).argmax())
    res = make_result(instance, Layout(edge_of, np.full(a.n_edges, p)),
                      message=f"cuts ({s1}, {s2}) at every edge")
    if res.plan is None:
        if (a.fixed >= 0).all():  # nothing was chosen but the pair: a proof for that pair
            return infeasible(instance, f"at cuts ({s1}, {s2}): {res.message}")
        return no_plan(instance, Termination.ERROR, f"at cuts ({s1}, {s2}) with best-uplink "
                       f"association: {res.message} (not a proof: another association may fit)")
    return res


@register("hierarchical", "two-tier",
          description="comparison point: the split plan of the same users, served "
                      "concurrently by the cloud (the split family's solver)",
          options={"split_solver": text("the split family's solver of the two-tier instance")})
def solve_two_tier(instance: HierarchicalInstance, *, split_solver: str = "greedy-delay",
                   time_limit: float | None = None) -> Result:
    """Solve the two-tier `split` instance (`twotier.py`) with the split family's solver
    ``split_solver``; the plan holds the split plan and the cloud's peak memory."""
    names = [s.name for s in solvers("split")]
    if split_solver not in names:
        raise SolverOptionError(f"option split_solver: expected one of the split family's "
                                f"solvers ({', '.join(sorted(names))}), got {split_solver!r}")
    split = two_tier_instance(instance)
    opts = {} if time_limit is None else {"time_limit": time_limit}
    res = solve(split, split_solver, **opts)
    if res.plan is None:
        return no_plan(instance, res.termination, f"two-tier ({split_solver}): {res.message}",
                       res.iterations, res.bound)
    sp = res.plan
    plan = HierarchicalPlan(
        scheme=TWO_TIER, epoch_delay_s=sp.round_delay_s, rounds=sp.rounds,
        total_delay_s=res.objective, bytes_per_epoch=sp.bytes_per_round,
        peak_memory_bytes=HierarchicalPeakMemory(
            cloud=sp.peak_memory_bytes.server or 0.0, edges=[],
            users=[m or 0.0 for m in sp.peak_memory_bytes.devices]),
        two_tier=sp.model_dump(mode="json"))
    # the split solver's optimality is on its total delay R x T; R is the same for every
    # two-tier plan (one codec level), so it carries over to the epoch delay T
    return res.model_copy(update={"family": "hierarchical", "instance": instance.name,
                                  "instance_sha256": instance.sha256, "plan": plan,
                                  "objective": sp.round_delay_s, "bound": None, "gap": None,
                                  "simulation": None, "options": {"split_solver": split_solver},
                                  "message": f"split solver {split_solver}: {res.message}"})
