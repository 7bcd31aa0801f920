"""The figure of an execution: training loss and test accuracy per round, one curve per run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.plots import new_figure, save_figure


def plot_curves(records: dict[str, list[dict[str, Any]]], target: float | None,
                path: str | Path, title: str = "") -> Path:
    fig, (ax1, ax2) = new_figure(2, width=8.0, height=3.2)
    for name, recs in records.items():
        loss = [(r["round"], r["loss"]) for r in recs if r.get("loss") is not None]
        acc = [(r["round"], r["accuracy"]) for r in recs if r.get("accuracy") is not None]
        if loss:
            ax1.plot(*zip(*loss, strict=True), lw=1.0, label=name)
        if acc:
            ax2.plot(*zip(*acc, strict=True), marker="o", ms=3, lw=1.2, label=name)
    if target is not None:
        ax2.axhline(target, color="grey", ls="--", lw=0.8, label=f"target {target:.3f}")
    ax1.set_ylabel("training loss")
    ax1.set_title(title)
    ax2.set_ylabel("test accuracy")
    ax2.set_xlabel("round")
    for ax in (ax1, ax2):
        ax.legend(fontsize=8)
    return save_figure(fig, path)
