"""Figures of a `split` plan: where each device's round goes, and the rounds of a simulation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.plots import new_figure, plain_log_ticks, save_figure
from ...core.result import Result
from .cost import evaluate
from .schema import SEQUENTIAL, SplitInstance


def plot_plan(inst: SplitInstance, result: Result, path: str | Path) -> Path:
    """Per device: compute, air and server seconds of a round (stacked) beside its memory use
    against its capacity; the round delay as a line."""
    plan = result.plan
    if plan is None:
        raise ValueError(f"result of {result.solver!r} holds no plan ({result.message})")
    ev = evaluate(inst, plan.cuts, plan.levels, plan.bandwidth, plan.share,
                  schedule=plan.schedule)
    ids = [d.id for d in inst.devices]
    x = np.arange(len(ids))
    fig, (ax1, ax2) = new_figure(2, width=max(8.0, 0.35 * len(ids) + 4))
    bottom = np.zeros(len(ids))
    for label, part in (("device compute", ev.compute_s), ("on air", ev.comm_s),
                        ("server", ev.server_s)):
        ax1.bar(x, part, bottom=bottom, label=label)
        bottom = bottom + part
    if plan.schedule != SEQUENTIAL:
        ax1.axhline(ev.round_delay, color="black", lw=0.8, ls="--", label="round delay")
    ax1.set_ylabel("seconds per round")
    ax1.set_title(f"{inst.name}: {result.solver} plan, R x T = {ev.total_delay:.4g} s")
    ax1.legend(fontsize=8)
    ax2.bar(x, ev.device_memory / 1e9, label="used")
    ax2.plot(x, inst.arrays.memory / 1e9, "k_", ms=12, label="capacity")
    ax2.set_ylabel("device memory, GB")
    for ax in (ax1, ax2):
        ax.set_xticks(x, [f"{d}\ncut {c}, lv {lv}" for d, c, lv in
                          zip(ids, plan.cuts, plan.levels, strict=True)],
                      rotation=90 if len(ids) > 12 else 0, fontsize=7)
    ax2.legend(fontsize=8)
    return save_figure(fig, path)


def plot_rounds(per_round: np.ndarray, average: float | None, path: str | Path,
                title: str = "") -> Path:
    """Round delay over a simulation's fading trace, its running mean, and the average-channel
    round delay the plan was solved for."""
    fig, (ax,) = new_figure(1, width=9.0)
    r = np.arange(1, len(per_round) + 1)
    ax.plot(r, per_round, lw=0.6, alpha=0.7, label="round delay (fading draw)")
    ax.plot(r, np.cumsum(per_round) / r, lw=1.5, label="running mean")
    if average is not None:
        ax.axhline(average, color="black", ls="--", lw=0.8, label="average channel")
    ax.set_xlabel("round")
    ax.set_ylabel("round delay, s")
    ax.set_yscale("log")
    plain_log_ticks(ax)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return save_figure(fig, path)
