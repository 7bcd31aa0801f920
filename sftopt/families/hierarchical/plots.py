"""Figure of a `hierarchical` plan: where each edge's epoch goes, and memory per tier."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.plots import new_figure, save_figure
from ...core.result import Result
from .cost import evaluate
from .plans import layout_of
from .schema import TWO_TIER, HierarchicalInstance


def plot_plan(inst: HierarchicalInstance, result: Result, path: str | Path) -> Path:
    """Per edge: its users' turns and the cloud's seconds at its share (stacked), labelled with
    its cuts; below, the peak memory of the cloud and every edge against its capacity."""
    plan = result.plan
    if plan is None:
        raise ValueError(f"result of {result.solver!r} holds no plan ({result.message})")
    if plan.scheme == TWO_TIER:
        raise ValueError("a two-tier plan is a split plan: draw it with the split family "
                         "(its 'two_tier' block)")
    a = inst.arrays
    lay, share = layout_of(inst, plan)
    ev = evaluate(a, lay, share)
    x = np.arange(a.n_edges)
    own = np.bincount(lay.edge_of, ev.turn_s, a.n_edges)
    cloud = np.bincount(lay.edge_of, ev.cloud_s, a.n_edges)
    fig, (ax1, ax2) = new_figure(2, width=max(8.0, 0.6 * a.n_edges + 4))
    ax1.bar(x, own, label="users' turns (compute, radio, edge, backhaul)")
    ax1.bar(x, cloud, bottom=own, label="cloud at the edge's share")
    ax1.axhline(ev.epoch_delay, color="black", lw=0.8, ls="--", label="epoch delay")
    ax1.set_ylabel("seconds per epoch")
    ax1.set_title(f"{inst.name}: {result.solver} plan, epoch delay {ev.epoch_delay:.4g} s")
    ax1.set_xticks(x, [f"{ep.id}\n{len(ep.users)} users\ncuts {ep.user_cut},{ep.edge_cut}"
                       for ep in plan.edges], fontsize=7)
    ax1.legend(fontsize=8)
    names = ["cloud", *a.edge_ids]
    used = np.array([ev.cloud_memory, *ev.edge_memory]) / 1e9
    cap = np.array([a.cloud_memory, *a.edge_memory]) / 1e9
    xx = np.arange(len(names))
    ax2.bar(xx, used, label="peak")
    ax2.plot(xx, cap, "k_", ms=14, label="capacity")
    ax2.set_xticks(xx, names, fontsize=7)
    ax2.set_ylabel("memory, GB")
    ax2.legend(fontsize=8)
    return save_figure(fig, path)
