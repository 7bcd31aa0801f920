"""Benchmark of the `hierarchical` family: the peak cloud memory of three-tier split fine-tuning
against two-tier (the same users served concurrently by the cloud), swept over users and edges,
with the epoch delay each scheme pays; and the wall time of the solvers at scale.

Instances are the family's seeded generator (docs/model.md section 8): GPT-2 medium counted at
512 tokens, users at their nearest edge, the cloud's memory left unbounded (1 PB) so that both
schemes have a plan and the memory each needs is what is compared. Three-tier: `exact` (the
certified optimum) and `fixed-cut` (the published scheme's fixed cuts); two-tier: the `split`
family's `alm` on the two-tier instance. Every plan is checked by the cost model; plans up to 100
users also by the verifier. Writes results/memory.csv, results/summary.json, results/tables.md,
results/memory.png, and with users to associate `greedy`'s wall time at scale
(results/scaling.csv). Usage (a few minutes on 2 cores):
    .venv/bin/python benchmarks/hierarchical/run.py [--seeds 3] [--out DIR] [--quick]
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
from sftopt.core.plots import new_figure, save_figure
from sftopt.core.result import versions

HERE = Path(__file__).resolve().parent
FAMILY = get_family("hierarchical")
USERS = [10, 30, 100, 300, 1000]
EDGES = [2, 5, 10, 20]
BASE = {"model": "gpt2-medium", "seq_len": 512, "cloud_memory_bytes": 1e15}
SCHEMES = {"three-tier (exact)": ("exact", {}), "three-tier (fixed-cut)": ("fixed-cut", {}),
           "two-tier (split, alm)": ("two-tier", {"split_solver": "alm", "time_limit": 60.0})}


def run_case(n_users: int, n_edges: int, seed: int) -> list[dict[str, Any]]:
    inst = sftopt.load_instance(FAMILY.generate(n_users=n_users, n_edges=n_edges, seed=seed,
                                                **BASE))
    rows = []
    for label, (name, opts) in SCHEMES.items():
        res = sftopt.solve(inst, name, certify=False, **opts)
        row = {"users": n_users, "edges": n_edges, "seed": seed, "scheme": label,
               "solver": name, "status": res.outcome, "epoch_s": res.objective,
               "wall_s": res.wall_s, "cloud_gb": None, "max_edge_gb": None}
        if res.plan is not None:
            ev = FAMILY.evaluate(inst, res.plan)
            assert ev.feasible, (inst.name, name, ev.violations)
            mem = res.plan.peak_memory_bytes
            row["cloud_gb"] = mem.cloud / 1e9
            row["max_edge_gb"] = max(mem.edges, default=0.0) / 1e9
            if n_users <= 100:
                rep = sftopt.verify(inst, res)
                assert rep.ok, (inst.name, name, rep.violations, rep.claims)
                row["verified"] = True
        rows.append(row)
    return rows


SCALING = [(100, 5), (300, 10), (1000, 20)]


def scaling(seeds: int) -> list[dict[str, Any]]:
    """Users to associate: `greedy`'s wall time and epoch delay at 100-1,000 users, beside
    `exact` on the same users fixed at their nearest edge (a certified optimum of that
    association)."""
    rows = []
    for (u, e), seed in tqdm([(c, s) for c in SCALING for s in range(seeds)], desc="scaling"):
        params = dict(n_users=u, n_edges=e, seed=seed, **BASE)
        free = sftopt.load_instance(FAMILY.generate(associate=True, **params))
        near = sftopt.load_instance(FAMILY.generate(associate=False, **params))
        g = sftopt.solve(free, "greedy", certify=False)
        x = sftopt.solve(near, "exact", certify=False)
        assert FAMILY.evaluate(free, g.plan).feasible
        rows.append({"users": u, "edges": e, "seed": seed, "greedy_wall_s": g.wall_s,
                     "greedy_epoch_s": g.objective, "exact_nearest_wall_s": x.wall_s,
                     "exact_nearest_epoch_s": x.objective, "exact_status": x.outcome})
    return rows


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (users, edges): mean over seeds of each scheme's cloud memory and epoch delay, and
    the three-tier optimum's memory saving against two-tier."""
    out = []
    keys = sorted({(r["users"], r["edges"]) for r in rows})
    for u, e in keys:
        part = [r for r in rows if (r["users"], r["edges"]) == (u, e)]
        rec: dict[str, Any] = {"users": u, "edges": e}
        for label in SCHEMES:
            got = [r for r in part if r["scheme"] == label and r["cloud_gb"] is not None]
            rec[label] = {"cloud_gb": float(np.mean([r["cloud_gb"] for r in got])),
                          "epoch_s": float(np.mean([r["epoch_s"] for r in got])),
                          "plans": len(got)} if got else None
        three, two = rec["three-tier (exact)"], rec["two-tier (split, alm)"]
        if three and two:
            rec["saving"] = 1.0 - three["cloud_gb"] / two["cloud_gb"]
            rec["delay_ratio"] = three["epoch_s"] / two["epoch_s"]
        out.append(rec)
    return out


def tables(summary: list[dict[str, Any]]) -> str:
    lines = ["### Peak cloud memory (GB) and epoch delay (s), mean over seeds", "",
             "| users | edges | three-tier (exact) | three-tier (fixed-cut) | two-tier (split) "
             "| memory saved | delay, three / two |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for rec in summary:
        cells = []
        for label in SCHEMES:
            v = rec[label]
            cells.append("-" if v is None else f"{v['cloud_gb']:.1f} GB, {v['epoch_s']:.3g} s")
        saving = f"{rec['saving']:.1%}" if "saving" in rec else "-"
        ratio = f"{rec['delay_ratio']:.2f}x" if "delay_ratio" in rec else "-"
        lines.append(f"| {rec['users']} | {rec['edges']} | " + " | ".join(cells)
                     + f" | {saving} | {ratio} |")
    return "\n".join(lines) + "\n"


def scaling_table(rows: list[dict[str, Any]]) -> str:
    lines = ["### Users to associate: greedy at scale (mean over seeds)", "",
             "| users | edges | greedy wall | greedy epoch | exact, nearest edge: wall | "
             "epoch |", "| --- | --- | --- | --- | --- | --- |"]
    for u, e in SCALING:
        part = [r for r in rows if (r["users"], r["edges"]) == (u, e)]
        if not part:
            continue
        m = {k: float(np.mean([r[k] for r in part])) for k in part[0]
             if k.endswith("_s")}
        lines.append(f"| {u} | {e} | {m['greedy_wall_s']:.3g} s | {m['greedy_epoch_s']:.4g} s "
                     f"| {m['exact_nearest_wall_s']:.3g} s | {m['exact_nearest_epoch_s']:.4g} s |")
    return "\n".join(lines) + "\n"


def figure(summary: list[dict[str, Any]], path: Path) -> None:
    fig, (ax1, ax2) = new_figure(2, width=9.0, height=3.8)
    for e, marker in zip(EDGES, "osD^", strict=True):
        part = [r for r in summary if r["edges"] == e and "saving" in r]
        if not part:
            continue
        u = [r["users"] for r in part]
        ax1.plot(u, [r["three-tier (exact)"]["cloud_gb"] for r in part], marker=marker,
                 label=f"three-tier, {e} edges")
        ax2.plot(u, [r["delay_ratio"] for r in part], marker=marker, label=f"{e} edges")
    two = {}
    for r in summary:
        if r["two-tier (split, alm)"]:
            two.setdefault(r["users"], []).append(r["two-tier (split, alm)"]["cloud_gb"])
    ax1.plot(sorted(two), [np.mean(two[u]) for u in sorted(two)], "k--", marker="x",
             label="two-tier (all users at once)")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_ylabel("peak cloud memory, GB")
    ax1.set_title("GPT-2 medium, 512 tokens: cloud memory of three-tier against two-tier")
    ax1.legend(fontsize=7)
    ax2.set_xscale("log")
    ax2.axhline(1.0, color="grey", lw=0.8)
    ax2.set_xlabel("users")
    ax2.set_ylabel("epoch delay, three-tier / two-tier")
    ax2.legend(fontsize=7)
    save_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--quick", action="store_true", help="10 and 30 users, 2 and 5 edges, one "
                                                         "seed (a smoke run)")
    args = ap.parse_args()
    start = time.time()
    began = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    users, edges = (USERS[:2], EDGES[:2]) if args.quick else (USERS, EDGES)
    seeds = 1 if args.quick else args.seeds
    cases = [(u, e, s) for u in users for e in edges if e <= u for s in range(seeds)]
    rows = []
    for u, e, s in tqdm(cases, desc="instances", unit="instance"):
        rows.extend(run_case(u, e, s))
    summary = summarize(rows)
    scale = scaling(1 if args.quick else args.seeds) if not args.quick else []
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "memory.csv", rows)
    if scale:
        write_csv(args.out / "scaling.csv", scale)
    figure(summary, args.out / "memory.png")
    write_text(args.out / "summary.json", json.dumps(
        {"summary": summary, "config": {"base": BASE, "users": users, "edges": edges,
                                        "seeds": seeds, "schemes": SCHEMES},
         "machine": machine(),
         "scaling": scale, "started": began, "versions": versions(),
         "wall_s": time.time() - start},
        indent=1) + "\n")
    write_text(args.out / "tables.md", tables(summary) + ("\n" + scaling_table(scale)
                                                          if scale else ""))
    print(f"wrote {args.out} in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
