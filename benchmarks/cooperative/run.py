"""Benchmark of the `cooperative` family: round delay against devices, blocks and bandwidth for
every solver, the gap of `crunch` and `dual-ascent` to the certified optimum (`exact`), the
reduction against the paper's baselines, and wall time up to 1,000 devices x 48 blocks.

Instances are the family's seeded generator (docs/model.md section 7): RoBERTa-base counted at
128 tokens (a block per layer) for the sweeps, RoBERTa-large (24 blocks) and GPT-2 XL (48
blocks) for the scaling runs. Every plan is checked by the cost model; every plan of the sweeps
also by the verifier (Pyomo). Writes results/sweeps.csv, results/scaling.csv, results/summary.json
(versions, machine, config), results/tables.md and the figures results/latency.png,
results/scaling.png. Usage
(about 10 minutes on 2 cores):
    .venv/bin/python benchmarks/cooperative/run.py [--seeds 5] [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import sftopt
from sftopt.calibrate.device import machine
from sftopt.core.family import get_family
from sftopt.core.files import write_csv, write_text
from sftopt.core.plots import new_figure, plain_log_ticks, save_figure, series_style
from sftopt.core.result import versions

HERE = Path(__file__).resolve().parent
FAMILY = get_family("cooperative")
SOLVERS = ("exact", "crunch", "dual-ascent", "greedy", "random", "offload")
BASE = {"model": "roberta-base", "n_devices": 16, "bandwidth_hz": 10e6}
SWEEPS = {
    "devices": ("n_devices", [12, 16, 24, 32, 48, 64]),
    "blocks": ("n_blocks", [2, 3, 4, 6, 8, 12]),
    "bandwidth": ("bandwidth_hz", [5e6, 10e6, 15e6, 20e6]),
}
SCALING = [("roberta-large", 24, k) for k in (100, 300, 1000)] + \
          [("gpt2-xl", 48, k) for k in (100, 300, 1000)]
SCALING_SOLVERS = ("exact", "crunch", "dual-ascent", "greedy")


def run(inst: sftopt.Instance, name: str, verify: bool, **options: Any) -> dict[str, Any]:
    res = sftopt.solve(inst, name, certify=False, **options)  # the solver's own bound
    row = {"solver": name, "status": res.outcome, "round_s": res.objective,
           "bound_s": res.bound, "wall_s": res.wall_s, "iterations": res.iterations}
    if res.plan is not None:
        ev = FAMILY.evaluate(inst, res.plan)
        assert ev.feasible and abs(ev.round_delay - res.objective) <= 1e-12 * ev.round_delay
        if verify:
            rep = sftopt.verify(inst, res)
            assert rep.ok, (inst.name, name, rep.violations, rep.claims)
            row["verified"] = True
    return row


def sweeps(seeds: int, quick: bool) -> list[dict[str, Any]]:
    rows = []
    jobs = [(sweep, key, v, s) for sweep, (key, values) in SWEEPS.items()
            for v in (values[:2] if quick else values) for s in range(seeds)]
    for sweep, key, value, seed in tqdm(jobs, desc="sweeps", unit="instance"):
        params = {**BASE, key: value, "seed": seed}
        inst = sftopt.load_instance(FAMILY.generate(**params))
        for name in SOLVERS:
            row = run(inst, name, verify=True)
            rows.append({"sweep": sweep, "param": key, "value": value, "seed": seed,
                         "devices": inst.n_devices, "blocks": inst.n_blocks, **row})
    return rows


def scaling(quick: bool) -> list[dict[str, Any]]:
    rows = []
    cases = SCALING[:1] if quick else SCALING
    for model, n, k in tqdm(cases, desc="scaling", unit="instance"):
        inst = sftopt.load_instance(FAMILY.generate(n_devices=k, model=model, n_blocks=n,
                                                    bandwidth_hz=20e6, seed=0))
        for name in SCALING_SOLVERS:
            opts = {"time_limit": 60.0} if name == "dual-ascent" else {}
            row = run(inst, name, verify=False, **opts)
            rows.append({"model": model, "devices": k, "blocks": n, **row})
    return rows


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per sweep value: mean round delay per solver, and gaps to exact (mean, worst)."""
    out: dict[str, Any] = {}
    for sweep in SWEEPS:
        part = [r for r in rows if r["sweep"] == sweep]
        per: dict[str, Any] = {}
        for value in sorted({r["value"] for r in part}):
            at = [r for r in part if r["value"] == value]
            opt = {r["seed"]: r["round_s"] for r in at if r["solver"] == "exact"}
            entry = {}
            for name in SOLVERS:
                got = [(r["seed"], r["round_s"]) for r in at if r["solver"] == name
                       and r["round_s"] is not None]
                gaps = [t / opt[s] - 1 for s, t in got if s in opt]
                entry[name] = {"mean_round_s": float(np.mean([t for _, t in got])),
                               "mean_gap": float(np.mean(gaps)), "max_gap": float(max(gaps)),
                               "plans": len(got)}
            per[str(value)] = entry
        out[sweep] = per
    return out


def figures(rows: list[dict[str, Any]], scale: list[dict[str, Any]], out: Path) -> None:
    """latency.png: each sweep's mean round delay per solver (one colour, marker and dash each:
    exact and dual-ascent, crunch and greedy lie on top of each other); scaling.png: wall time
    against devices per solver (colour) and model (solid circles 24 blocks, dashed squares 48)."""
    fig, axes = new_figure(3, width=8.0, height=3.2)
    for ax, (sweep, (key, _)) in zip(axes, SWEEPS.items(), strict=True):
        part = [r for r in rows if r["sweep"] == sweep]
        values = sorted({r["value"] for r in part})
        for i, name in enumerate(SOLVERS):
            y = [np.mean([r["round_s"] for r in part if r["value"] == v and r["solver"] == name])
                 for v in values]
            x = [v / 1e6 for v in values] if key == "bandwidth_hz" else values
            ax.plot(x, y, label=name, ms=7 - i * 0.6, **series_style(i))
        ax.set_yscale("log")
        plain_log_ticks(ax)
        ax.set_xlabel({"n_devices": "devices", "n_blocks": "blocks",
                       "bandwidth_hz": "bandwidth, MHz"}[key])
        ax.set_ylabel("round delay, s\n(mean of the seeds)")
    axes[0].legend(fontsize=7, ncol=3)
    axes[0].set_title("cooperative, RoBERTa-base at 128 tokens: 16 devices, 12 blocks, 10 MHz "
                      "unless varied\n(exact and dual-ascent overlap, as do crunch and greedy)",
                      fontsize=9)
    save_figure(fig, out / "latency.png")
    fig, (ax,) = new_figure(1, width=8.0, height=4.2)
    for i, name in enumerate(SCALING_SOLVERS):
        st = series_style(i)
        for model, marker, dash in (("roberta-large", "o", "-"), ("gpt2-xl", "s", "--")):
            pts = [(r["devices"], r["wall_s"]) for r in scale
                   if r["solver"] == name and r["model"] == model]
            if pts:
                ax.plot(*zip(*pts, strict=True), color=st["color"], marker=marker, ls=dash,
                        label=f"{name}, {model} ({'24' if model == 'roberta-large' else '48'} "
                              "blocks)")
    ax.axhline(10.0, color="black", ls=":", lw=0.8, label="goal for exact: 10 s")
    ax.set_xscale("log")
    ax.set_yscale("log")
    devices = sorted({r["devices"] for r in scale})
    ax.set_xticks(devices, [f"{d:,}" for d in devices])
    ax.set_xticks([], minor=True)
    plain_log_ticks(ax)
    ax.set_xlabel("devices")
    ax.set_ylabel("wall time, s")
    ax.set_title("cooperative: solver wall time against devices")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    save_figure(fig, out / "scaling.png")


def read_rows(path: Path) -> list[dict[str, Any]]:
    """A results CSV back as rows, numbers as numbers (what `figures` was given)."""
    import csv

    def value(v: str) -> Any:
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError:
                return v

    with path.open(newline="") as fh:
        return [{k: value(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def tables(summary: dict[str, Any], scale: list[dict[str, Any]]) -> str:
    """The summary as markdown: per sweep value, each solver's mean round delay and its gap
    to `exact` (mean / worst over the seeds); the scaling runs' wall times."""
    out = []
    for sweep, per in summary.items():
        key = SWEEPS[sweep][0]
        out.append(f"### Round delay against {sweep} (mean over seeds; gap to exact: mean / "
                   "worst)\n")
        out.append(f"| {key} | " + " | ".join(SOLVERS) + " |")
        out.append("| --- " * (len(SOLVERS) + 1) + "|")
        for value, entry in per.items():
            shown = f"{float(value) / 1e6:g} MHz" if key == "bandwidth_hz" else value
            cells = []
            for name in SOLVERS:
                e = entry[name]
                cell = f"{e['mean_round_s']:.4g} s"
                if name != "exact":
                    cell += f" ({e['mean_gap']:+.1%} / {e['max_gap']:+.1%})"
                cells.append(cell)
            out.append(f"| {shown} | " + " | ".join(cells) + " |")
        out.append("")
    out.append("### Wall time (s) and round delay, scaling runs (20 MHz)\n")
    out.append("| model, blocks | devices | " + " | ".join(SCALING_SOLVERS) + " |")
    out.append("| --- " * (len(SCALING_SOLVERS) + 2) + "|")
    cases = dict.fromkeys((r["model"], r["blocks"], r["devices"]) for r in scale)
    for model, n, k in cases:
        cells = []
        for name in SCALING_SOLVERS:
            r = next(r for r in scale if (r["model"], r["blocks"], r["devices"], r["solver"])
                     == (model, n, k, name))
            delay = "-" if r["round_s"] is None else f"{r['round_s']:.4g} s"
            cells.append(f"{r['wall_s']:.3g} s ({delay}, {r['status']})")
        out.append(f"| {model}, {n} | {k} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--quick", action="store_true", help="two values per sweep, one scaling "
                                                         "case (a smoke run)")
    ap.add_argument("--plot-only", action="store_true",
                    help="redraw the figures from OUT's sweeps.csv and scaling.csv, run nothing")
    args = ap.parse_args()
    if args.plot_only:
        figures(read_rows(args.out / "sweeps.csv"), read_rows(args.out / "scaling.csv"), args.out)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    began = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = sweeps(args.seeds, args.quick)
    scale = scaling(args.quick)
    write_csv(args.out / "sweeps.csv", rows)
    write_csv(args.out / "scaling.csv", scale)
    figures(rows, scale, args.out)
    summary = {"summary": summarize(rows), "scaling": scale,
               "config": {"base": BASE, "sweeps": SWEEPS, "seeds": args.seeds,
                          "quick": args.quick},
               "machine": machine(),
               "started": began,
               "versions": versions(), "wall_s": time.time() - start}
    write_text(args.out / "summary.json", json.dumps(summary, indent=1) + "\n")
    write_text(args.out / "tables.md", tables(summary["summary"], scale))
    print(f"wrote {args.out} in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
