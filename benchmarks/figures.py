"""Figures and the headline table from `sftopt bench` runs (the suite's rows are the one source
of every figure and claim here; nothing is solved again but the one plan the fading trace
simulates).

    .venv/bin/python benchmarks/figures.py [--results benchmarks/results]

reads RESULTS/published/runs.csv, RESULTS/sweeps/runs.csv and RESULTS/scaling/runs.csv (those
present) and writes RESULTS/headline.md, RESULTS/delay_sweeps.png, RESULTS/scaling.png,
RESULTS/bytes.png, RESULTS/fading.png and, from benchmarks/allocation's rows,
RESULTS/reallocation.png.
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from sftopt.bench import read_rows
from sftopt.core.files import write_text
from sftopt.core.plots import new_figure, plain_log_ticks, save_figure, series_style

HERE = Path(__file__).resolve().parent
FULL = ("alm", "greedy-delay", "milp")  # the full scheme: cuts, compression, optimised shares
BASELINES = ("baseline-equal", "no-compression", "equal-bandwidth", "fixed-cut", "server-only",
             "vanilla-sl")


def num(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def params(row: dict[str, Any]) -> dict[str, str]:
    """The generator parameters of a row's instance (from its task key), {} for a file."""
    label = row["task"].split("|")[1]
    return dict(p.split("=", 1) for p in label.split(",") if "=" in p)


def headline(rows: list[dict[str, Any]]) -> str:
    """Per split instance: the full scheme's best plan against each baseline, delay and bytes;
    per hierarchical instance: cloud memory against two-tier; per cooperative instance: the
    optimum against offloading and a random assignment."""
    by: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in rows:
        if num(r["objective"]) is not None:
            by[r["instance"]][r["solver"]] = r
    out = ["### Split: the full scheme against the baselines", "",
           "The full scheme is the best plan of " + ", ".join(f"`{s}`" for s in FULL)
           + " (cuts, codec levels, band and server shares optimised). Reduction = 1 - full / "
           "baseline; total delay R x T and bytes over the air per round.", "",
           "| instance | full (s) | " + " | ".join(f"vs `{b}`: delay / bytes" for b in BASELINES)
           + " |", "| --- | --- | " + " | ".join("---" for _ in BASELINES) + " |"]
    delay_red: dict[str, list[float]] = defaultdict(list)
    byte_red: dict[str, list[float]] = defaultdict(list)
    for inst, runs in sorted(by.items()):
        fam = next(iter(runs.values()))["family"]
        if fam != "split":
            continue
        full = [runs[s] for s in FULL if s in runs]
        if not full:
            continue
        best = min(full, key=lambda r: num(r["objective"]))
        cells = []
        for b in BASELINES:
            if b not in runs:
                cells.append("-")
                continue
            d = 1 - num(best["objective"]) / num(runs[b]["objective"])
            by_b = num(runs[b]["bytes"])
            c = None if not by_b else 1 - num(best["bytes"]) / by_b
            delay_red[b].append(d)
            if c is not None:
                byte_red[b].append(c)
            cells.append(f"{d:.1%} / {'-' if c is None else f'{c:.1%}'}")
        out.append(f"| {inst} | {num(best['objective']):.6g} ({best['solver']}) | "
                   + " | ".join(cells) + " |")
    out += ["", "Largest reductions over these instances: " + "; ".join(
        f"`{b}` delay {max(delay_red[b]):.1%}, bytes "
        f"{max(byte_red[b]) if byte_red[b] else float('nan'):.1%}"
        for b in BASELINES if delay_red[b]) + ".", ""]
    out += ["### Hierarchical: peak cloud memory, three tiers against two", "",
            "| instance | three-tier (exact) | two-tier | memory saved | epoch, three / two |",
            "| --- | --- | --- | --- | --- |"]
    for inst, runs in sorted(by.items()):
        if "exact" in runs and "two-tier" in runs and runs["exact"]["family"] == "hierarchical":
            a, b = runs["exact"], runs["two-tier"]
            out.append(f"| {inst} | {num(a['peak_memory']) / 1e9:.1f} GB | "
                       f"{num(b['peak_memory']) / 1e9:.1f} GB | "
                       f"{1 - num(a['peak_memory']) / num(b['peak_memory']):.1%} | "
                       f"{num(a['objective']) / num(b['objective']):.2f}x |")
    out += ["", "### Cooperative: the optimum against the paper's baselines", "",
            "| instance | exact (s) | crunch | random | offload |",
            "| --- | --- | --- | --- | --- |"]
    for inst, runs in sorted(by.items()):
        if "exact" in runs and runs["exact"]["family"] == "cooperative":
            t = num(runs["exact"]["objective"])
            cells = [f"{num(runs[s]['objective']) / t:.2f}x" if s in runs else "-"
                     for s in ("crunch", "random", "offload")]
            out.append(f"| {inst} | {t:.4g} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def delay_sweeps(rows: list[dict[str, Any]], path: Path) -> None:
    """Mean total delay per solver against band, memory pressure and heterogeneity."""
    sweeps = [("devices", "n_devices", "devices (band, server grown with the fleet)", 1.0),
              ("bandwidth", "bandwidth_hz", "band, MHz", 1e-6),
              ("memory", "memory_pressure", "device memory pressure", 1.0),
              ("heterogeneity", "heterogeneity", "device heterogeneity", 1.0)]
    fig, axes = new_figure(len(sweeps), width=9.0, height=3.4)
    # one style per solver across the panels; plans that coincide (the delay-optimal plan is
    # found by several) show as overlapping markers of different shapes
    names = sorted({r["solver"] for r in rows})
    style = {solver: series_style(k) for k, solver in enumerate(names)}
    for ax, (name, key, label, scale) in zip(axes, sweeps, strict=True):
        part = [r for r in rows if r["set"] == name and num(r["objective"]) is not None]
        if not part:
            continue
        for k, solver in enumerate(sorted({r["solver"] for r in part})):
            pts: dict[float, list[float]] = defaultdict(list)
            for r in part:
                if r["solver"] == solver:
                    pts[float(params(r)[key]) * scale].append(num(r["objective"]))
            xs = sorted(pts)
            ax.plot(xs, [statistics.mean(pts[x]) for x in xs], label=solver,
                    ms=8 - 0.4 * k, **style[solver])
        ax.set_yscale("log")
        if name in ("bandwidth", "devices"):
            ax.set_xscale("log")
        plain_log_ticks(ax, "xy" if name in ("bandwidth", "devices") else "y")
        ax.set_xlabel(label)
        ax.set_ylabel("total delay R x T, s")
        fleet = "5-200 devices" if name == "devices" else "20 devices"
        ax.set_title(f"GPT-2 small, {fleet}: {name} sweep (mean of 3 seeds)")
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    save_figure(fig, path)


def scaling(rows: list[dict[str, Any]], path: Path) -> None:
    """Wall time and certified gap against size, per family and solver (log-log; the median
    over the instances of one size)."""
    fig, (ax1, ax2) = new_figure(2, width=9.0, height=3.6)
    series: dict[tuple[str, str], list[tuple[int, float, float | None]]] = defaultdict(list)
    for r in rows:
        if num(r["objective"]) is not None:
            series[(r["family"], r["solver"])].append(
                (int(r["parties"]), num(r["wall_s"]), num(r["gap"])))
    for k, ((fam, solver), raw) in enumerate(sorted(series.items())):
        sizes = sorted({p[0] for p in raw})  # several instances of one size: their median
        pts = []
        for n in sizes:
            walls = [p[1] for p in raw if p[0] == n]
            gaps_n = [p[2] for p in raw if p[0] == n and p[2] is not None]
            pts.append((n, statistics.median(walls),
                        statistics.median(gaps_n) if gaps_n else None))
        label = f"{fam}: {solver}"
        style = {**series_style(k), "label": label}
        ax1.plot([p[0] for p in pts], [p[1] for p in pts], **style)
        gaps = [(p[0], max(p[2], 1e-6)) for p in pts if p[2] is not None]
        if gaps:
            ax2.plot([g[0] for g in gaps], [g[1] for g in gaps], **style)
    for ax, ylabel in ((ax1, "wall time, s (median)"),
                       (ax2, "certified gap (median;\n1e-06 = proved optimal)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        plain_log_ticks(ax, "xy")
        ax.set_xlabel("devices (users)")
        ax.set_ylabel(ylabel)
    ax1.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax1.set_title("solver wall time and certified gap against size (each family's generator)")
    save_figure(fig, path)


def bytes_by_scheme(rows: list[dict[str, Any]], path: Path) -> None:
    """Bytes over the air per round of every split solver on the published instances."""
    part = [r for r in rows if r["family"] == "split" and num(r["bytes"])]
    insts = sorted({r["instance"] for r in part})
    solvers = sorted({r["solver"] for r in part})
    fig, (ax,) = new_figure(1, width=10.0, height=4.0)
    w = 0.8 / max(1, len(solvers))
    for k, solver in enumerate(solvers):
        vals = [next((num(r["bytes"]) for r in part if r["instance"] == i
                      and r["solver"] == solver), 0.0) / 1e6 for i in insts]
        ax.bar([i + k * w for i in range(len(insts))], vals, width=w, label=solver,
               color=series_style(k)["color"], hatch="//" if k >= 10 else None,
               edgecolor="white", linewidth=0.3)
    ax.set_xticks([i + 0.4 - w / 2 for i in range(len(insts))], insts, fontsize=9)
    ax.set_yscale("log")
    plain_log_ticks(ax)
    ax.set_ylabel("MB over the air per round")
    ax.set_title("bytes per round by scheme, bundled split instances (no bar: no plan found)")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    save_figure(fig, path)


def reallocation_rate(path: Path, out: Path) -> None:
    """Online re-allocations per second against devices, from the allocation benchmark's rows
    (benchmarks/allocation: the warm-started `Allocator.step` and a cold exact solve)."""
    import csv

    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    fig, (ax,) = new_figure(1, width=8.0, height=3.6)
    series = (("step_warm_ms", "Allocator.step (warm, median per fading round)"),
              ("exact_ms_median", "exact allocator (cold)"))
    for k, (key, label) in enumerate(series):
        sizes = sorted({int(r["devices"]) for r in rows if num(r.get(key))})
        rate = [1000.0 / statistics.median(num(r[key]) for r in rows
                                           if int(r["devices"]) == n and num(r.get(key)))
                for n in sizes]
        ax.plot(sizes, rate, label=label, **series_style(k))
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain_log_ticks(ax, "xy")
    ax.set_xlabel("devices")
    ax.set_ylabel("re-allocations per second")
    ax.set_title("online re-allocation rate (one core; benchmarks/allocation)")
    ax.legend(fontsize=7)
    save_figure(fig, out)


def fading_trace(out: Path) -> None:
    """The two-timescale delay over a fading trace: `alm`'s plan of the bundled `default`
    instance simulated round by round (the exact allocator re-allocating every round)."""
    import sftopt

    inst = sftopt.load_instance(HERE.parent / "data" / "instances" / "default.json")
    res = sftopt.solve(inst, "alm", seed=0)
    sftopt.simulate(inst, res, seed=0, plot=out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=HERE / "results")
    args = ap.parse_args()
    res = args.results
    made = []
    if (res / "published" / "runs.csv").exists():
        rows = read_rows(res / "published" / "runs.csv")
        write_text(res / "headline.md", headline(rows))
        bytes_by_scheme(rows, res / "bytes.png")
        made += ["headline.md", "bytes.png"]
    if (res / "sweeps" / "runs.csv").exists():
        delay_sweeps(read_rows(res / "sweeps" / "runs.csv"), res / "delay_sweeps.png")
        made.append("delay_sweeps.png")
    alloc = HERE / "allocation" / "results" / "allocation.csv"
    if alloc.exists():
        reallocation_rate(alloc, res / "reallocation.png")
        made.append("reallocation.png")
    fading_trace(res / "fading.png")
    made.append("fading.png")
    if (res / "scaling" / "runs.csv").exists():
        scaling(read_rows(res / "scaling" / "runs.csv"), res / "scaling.png")
        made.append("scaling.png")
    print(f"wrote {', '.join(made) or 'nothing (no runs found)'} in {res}")


if __name__ == "__main__":
    main()
