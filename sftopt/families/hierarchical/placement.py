"""A `hierarchical` plan as a placement, and the cost model's predictions of a run of it.

Three-tier: each user runs stages 0..s1 of its edge's cuts, its edge s1+1..s2, the cloud
s2+1..L+1; the hidden state crosses the cell and then the backhaul at ``training.level``, its
gradient comes back over both. Each edge serves its users one at a time in the plan's order
(one group of routes per edge; the edges run at the same time). After each user's turn its
adapters go up over the cell and, relayed by the edge, over the backhaul, and the edge's own
adapters over the backhaul: what the cost model charges per turn (`Arrays.bits`). Every epoch
(one executor round: every user trains once) the cloud averages every stage's copies.

Two-tier (the comparison): the `split` family's placement and predictions of the two-tier
instance (`twotier.py`) with the plan's embedded split plan, its server named the cloud and its
one codec level mapped back to this instance's table.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import numpy as np

from ...core.placement import Link, Party, Placement, Route, Segment, Upload
from ...core.result import Result
from .plans import layout_of, structure_problems
from .schema import TWO_TIER, HierarchicalInstance

CLOUD = "cloud"


def _plan(instance: HierarchicalInstance, result: Result) -> Any:
    plan = result.plan
    if plan is None:
        raise ValueError(f"the result of {result.solver!r} holds no plan ({result.message}): "
                         "nothing to place")
    bad = structure_problems(instance, plan)
    if bad:
        raise ValueError("the plan does not fit the instance: " + "; ".join(bad[:5]))
    return plan


def _names(instance: HierarchicalInstance) -> None:
    """Users, edges and the cloud are parties of one run: their names must differ."""
    names = [u.id for u in instance.users] + [e.id for e in instance.edges] + [CLOUD]
    same = sorted({n for n in names if names.count(n) > 1})
    if same:
        raise ValueError(f"users, edges and the cloud ({CLOUD!r}) need different ids to run "
                         f"as parties; {same} name more than one")


def placement(instance: HierarchicalInstance, result: Result) -> Placement:
    """The placement of ``result``'s plan (ValueError if the result holds no plan or does
    not fit ``instance``)."""
    plan = _plan(instance, result)
    _names(instance)
    if plan.scheme == TWO_TIER:
        return _two_tier_placement(instance, result)
    stages = instance.model.stages
    last = len(stages) - 1  # L + 1, the output stage
    trained = [i for i, s in enumerate(stages) if s.lora_params > 0]
    level, elems = instance.training.level, instance.model.cut_elems
    index = {u.id: k for k, u in enumerate(instance.users)}
    cuts = {uid: (ep.id, ep.user_cut, ep.edge_cut) for ep in plan.edges for uid in ep.users}
    routes = []
    # routes in the instance's user order: route k is user k, as in the two-tier plan, so
    # both draw the same shard and batches for a user
    for u in instance.users:
        edge, s1, s2 = cuts[u.id]
        segments = (Segment(u.id, 0, s1, tuple(i for i in trained if i <= s1)),
                    Segment(edge, s1 + 1, s2, tuple(i for i in trained if s1 < i <= s2)),
                    Segment(CLOUD, s2 + 1, last, tuple(i for i in trained if i > s2)))
        links = (Link(u.id, edge, level, elems), Link(edge, CLOUD, level, elems))
        routes.append(Route(u.id, u.batch, segments, links))
    groups, uploads = [], []
    for ep in plan.edges:
        if not ep.users:
            continue
        served = tuple(index[uid] for uid in ep.users)  # the plan's serving order
        groups.append(served)
        for ri in served:
            user, mine = routes[ri].segments[0], routes[ri].segments[1]
            if user.trains:  # the user's adapters: over the cell, then relayed to the cloud
                uploads += [Upload(user.party, ep.id, user.trains, 1, after=ri),
                            Upload(ep.id, CLOUD, user.trains, 1, owner=user.party, after=ri)]
            if mine.trains:
                uploads.append(Upload(ep.id, CLOUD, mine.trains, 1, after=ri))
    parties = [Party(u.id, "device") for u in instance.users] + \
        [Party(e.id, "edge") for e in instance.edges] + [Party(CLOUD, "cloud")]
    return Placement(family="hierarchical", model=instance.model.name, n_stages=len(stages),
                     parties=tuple(parties), routes=tuple(routes), groups=tuple(groups),
                     uploads=tuple(uploads))


def predict(instance: HierarchicalInstance, result: Result, level: int | None = None
            ) -> dict[str, Any]:
    """What the cost model predicts a run of the plan measures per epoch (one executor round):
    ``bytes_per_round``, the bytes over every cell and backhaul (the plan's bytes_per_epoch),
    and ``compute_s`` per party (a user its stages on its batch; an edge its stages for all its
    users; the cloud its stages for every user, at the whole cloud). ``level``: both links at
    that codec level instead of ``training.level`` (the uncompressed baseline: 0)."""
    plan = _plan(instance, result)
    levels = instance.codec.levels
    if level is not None and not (isinstance(level, int) and 0 <= level < len(levels)):
        raise ValueError(f"level: one of the codec levels 0..{len(levels) - 1}; got {level!r}")
    if plan.scheme == TWO_TIER:
        return _two_tier_predict(instance, result, level)
    a = instance.arrays
    lay, _ = layout_of(instance, plan)
    pair = lay.pair[lay.edge_of]  # per user, its edge's cut pair
    users = np.arange(a.n_users)
    if level is not None and level != a.level:
        a = copy.copy(a)  # the same arrays at another codec level: only beta changes
        a.beta_cell, a.beta_back = a.pair_betas(levels[level])
    radio, backhaul = a.bits()
    n = a.batch
    compute = {uid: float(n[k] * a.user_work[pair[k]] / a.user_flops[k])
               for k, uid in enumerate(a.user_ids)}
    for e, eid in enumerate(a.edge_ids):
        u = lay.users(e)
        if len(u):
            compute[eid] = float((n[u] * a.edge_work[pair[u]]).sum() / a.edge_flops[e])
    compute[CLOUD] = float((n * a.cloud_work[pair]).sum() / a.cloud_flops)
    return {"bytes_per_round": float((radio[users, pair].sum() + backhaul[users, pair].sum())
                                     / 8.0),
            "compute_s": compute}


# --------------------------------------------------------------------------- two-tier
def _two_tier(instance: HierarchicalInstance, result: Result, level: int | None = None
              ) -> tuple[Any, Result]:
    """The two-tier split instance (its one codec level ``level``, default the instance's)
    and the split plan as a split Result."""
    from ...core.loading import load_instance
    from ..split.schema import SplitPlan
    from .twotier import two_tier_dict, two_tier_instance

    if level is None or level == instance.training.level:
        split = two_tier_instance(instance)
    else:
        data = two_tier_dict(instance)
        data["codec"] = {"levels": [instance.codec.levels[level].model_dump()]}
        split = load_instance(data)
    plan = SplitPlan.model_validate(result.plan.two_tier)
    res = Result(family="split", instance=split.name, solver=result.solver,
                 status=result.status, termination=result.termination, plan=plan)
    return split, res


def _rename(p: Party | Segment | Link | Upload, old: str, new: str) -> Any:
    fields = {k: new for k in ("name", "party", "src", "dst") if getattr(p, k, None) == old}
    return replace(p, **fields)


def _two_tier_placement(instance: HierarchicalInstance, result: Result) -> Placement:
    from ..split import placement as split_placement

    split, res = _two_tier(instance, result)
    pl = split_placement.placement(split, res)
    old, level = split_placement.SERVER, instance.training.level
    routes = tuple(replace(r, segments=tuple(_rename(s, old, CLOUD) for s in r.segments),
                           links=tuple(replace(_rename(lk, old, CLOUD), level=level)
                                       for lk in r.links))
                   for r in pl.routes)
    parties = tuple(Party(CLOUD, "cloud") if p.name == old else p for p in pl.parties)
    return replace(pl, family="hierarchical", parties=parties, routes=routes,
                   uploads=tuple(_rename(u, old, CLOUD) for u in pl.uploads))


def _two_tier_predict(instance: HierarchicalInstance, result: Result, level: int | None
                      ) -> dict[str, Any]:
    from ..split import FAMILY as SPLIT
    from ..split import placement as split_placement

    split, res = _two_tier(instance, result, level)
    out = SPLIT.predict(split, res)
    compute = out["compute_s"]
    compute[CLOUD] = compute.pop(split_placement.SERVER)
    return out
