"""Figure of a `cooperative` plan: where each device's round goes, and its memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.plots import new_figure, save_figure
from ...core.result import Result
from .cost import evaluate
from .schema import CooperativeInstance


def plot_plan(inst: CooperativeInstance, result: Result, path: str | Path) -> Path:
    """Per device: compute and upload seconds of a round (stacked), labelled with the layers
    of its blocks, beside its memory use against its capacity; the round delay as a line (and
    for the offloading baseline the server's compute after the uploads)."""
    plan = result.plan
    if plan is None:
        raise ValueError(f"result of {result.solver!r} holds no plan ({result.message})")
    ev = evaluate(inst, plan.assignment, plan.bandwidth, plan.server_blocks)
    ids = [d.id for d in inst.devices]
    x = np.arange(len(ids))
    fig, (ax1, ax2) = new_figure(2, width=max(8.0, 0.35 * len(ids) + 4))
    ax1.bar(x, ev.compute_s, label="compute")
    ax1.bar(x, ev.comm_s, bottom=ev.compute_s, label="upload")
    if plan.server_blocks:
        ax1.axhline(ev.round_delay - ev.server_s, color="grey", lw=0.8, ls=":",
                    label="uploads done; the server trains for the rest")
    ax1.axhline(ev.round_delay, color="black", lw=0.8, ls="--", label="round delay")
    ax1.set_ylabel("seconds per round")
    ax1.set_title(f"{inst.name}: {result.solver} plan, round delay {ev.round_delay:.4g} s")
    ax1.legend(fontsize=8)
    ax2.bar(x, ev.device_memory / 1e9, label="used")
    ax2.plot(x, inst.arrays.memory / 1e9, "k_", ms=12, label="capacity")
    ax2.set_ylabel("device memory, GB")
    where = ["embedding" if plan.server_blocks else
             ("layer " + ",".join(str(inst.blocks[j]) for j in d.blocks) if d.blocks else "idle")
             for d in plan.devices]
    for ax in (ax1, ax2):
        ax.set_xticks(x, [f"{d}\n{w}" for d, w in zip(ids, where, strict=True)],
                      rotation=90 if len(ids) > 12 else 0, fontsize=7)
    ax2.legend(fontsize=8)
    return save_figure(fig, path)
