"""The figure of an execution: training loss and test accuracy per round, one curve per run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.plots import new_figure, save_figure, series_style


def plot_curves(records: dict[str, list[dict[str, Any]]], target: float | None,
                path: str | Path, title: str = "") -> Path:
    fig, (ax1, ax2) = new_figure(2, width=8.0, height=3.2)
    for i, (name, recs) in enumerate(records.items()):
        style = series_style(i)  # runs that coincide (a plan and its uncompressed twin) stay
        loss = [(r["round"], r["loss"]) for r in recs if r.get("loss") is not None]
        acc = [(r["round"], r["accuracy"]) for r in recs if r.get("accuracy") is not None]
        if loss:  # told apart by colour and dash
            ax1.plot(*zip(*loss, strict=True), lw=1.0, label=name, color=style["color"],
                     linestyle=style["linestyle"])
        if acc:
            ax2.plot(*zip(*acc, strict=True), ms=3.5, lw=1.2, label=name, **style,
                     fillstyle="none")
    if target is not None:
        ax2.axhline(target, color="grey", ls="--", lw=0.8, label=f"target {target:.3f}")
    ax1.set_ylabel("training loss")
    ax1.set_title(title)
    ax2.set_ylabel("test accuracy")
    ax2.set_xlabel("round")
    for ax in (ax1, ax2):
        ax.legend(fontsize=8)
    return save_figure(fig, path)


def redraw(out: str | Path) -> Path:
    """Draw ``out``/curves.png again from the run's own files (result.json, rounds.jsonl)."""
    out = Path(out)
    doc = json.loads((out / "result.json").read_text())
    records: dict[str, list[dict[str, Any]]] = {}
    for line in (out / "rounds.jsonl").read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            records.setdefault(rec["run"], []).append(rec)
    return plot_curves(records, doc.get("target"), out / "curves.png",
                       title=f"{doc['instance']}: {doc['solver']} plan")
