"""Executor benchmark: split fine-tuning of all-MiniLM-L6-v2 on the topic task, run for real.

1. levels: the data instance's plan (alm) with every device at codec level c, for every level of
   the codec table, ``--rounds`` rounds each (seed 1; two runs at a time): test accuracy over the
   rounds and the bits per element each level cost on the run's own activations and gradients.
2. accuracy model: eta fitted to the rounds each level needs to reach level 0's final accuracy
   less one point (R_c / R_0 - 1 = eta delta_c, least squares through the origin), and the
   largest distortion whose final accuracy is within one point of level 0's. Written where
   instances read them: the codec table (sftopt/models/codec-minilm-l6-topics.json: bits per element
   measured in step 1, eta and max_distortion in its provenance) and the data instance
   (data/instances/minilm-topics-4dev.json: training.eta, max_distortion, codec).
3. main: the updated instance solved again (alm) and executed with baselines (seed 0):
   accuracy, rounds to target, bytes per round against the cost model (goal 1%), every party's
   compute time against the calibrated profile (goal 10%).
   cuts (run with the levels or alone): a level's coded size depends on the tensor it codes,
   so it is measured at every cut the hidden state can cross (0..L), in runs of their own with
   every device at level c (seed 1; the plan's cuts first, then the others, as many devices
   at a time as the plan has): ``--cut-rounds`` rounds at the levels the accuracy model
   allows, ``--cut-rounds-other`` at the others (``--cut-levels allowed`` leaves those out),
   10 at raw fp16 (its size is fixed by the shape); both directions together, as the cost
   model charges them. Finished runs are not run again. Written as each level's
   `bits_per_elem_by_cut` (a cut never measured: the level's own figure; a level never
   measured: no per-cut figures) into the codec table and the split data instance; the
   per-level `bits_per_elem` stay the levels runs' figures. The cooperative and hierarchical
   instances keep their codec without the per-cut figures (their recorded results were
   predicted from the per-level figures).
4. processes: ``--process-rounds`` rounds of the plan with one process per party against the
   same run in one process.
5. cooperative: data/instances/minilm-topics-coop-4dev.json (the same devices, data and batches;
   each device fine-tunes its own blocks of the model, the classifier one of them; family
   `cooperative`) solved by `exact` and run for ``--rounds`` rounds (seed 0): its accuracy
   against the split plan's of step 3, bytes and compute against the cost model.
6. hierarchical: data/instances/minilm-topics-hier-4user.json (the same users, data and batches
   on 2 edges of 2 users each; family `hierarchical`, its accuracy model and codec table kept
   in step with the split instance's, both links at the most compressed level within
   max_distortion) solved by `exact` (the three-tier plan) and by `two-tier` (the two-tier
   comparison), both run for ``--rounds`` epochs (seed 0, so the same shards and batches):
   the three-tier plan with its baselines (uncompressed, centralized LoRA), the two-tier plan
   alone; accuracy, bytes and compute against the cost model; then ``--process-rounds``
   rounds of the three-tier plan with one process per party (users, edges, cloud) against the
   same run in one process. Writes results/hierarchical/ (plans, runs, summary.json,
   accuracy.png).
Writes benchmarks/executor/results/ (RESULTS.md summarises them). Usage (about 60 minutes on 2
cores):
    .venv/bin/python benchmarks/executor/run.py [--rounds 100] [--eval-every 5]
    .venv/bin/python benchmarks/executor/run.py --steps hierarchical   # step 6 alone
Steps left out are read from their earlier results; their plans and summary.json are only
rewritten when a step that uses them runs.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

import sftopt
from sftopt.core.files import write_text
from sftopt.core.plots import new_figure, save_figure, series_style

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
INSTANCE = ROOT / "data" / "instances" / "minilm-topics-4dev.json"
CODEC = ROOT / "sftopt" / "models" / "codec-minilm-l6-topics.json"
COOP = ROOT / "data" / "instances" / "minilm-topics-coop-4dev.json"
HIER = ROOT / "data" / "instances" / "minilm-topics-hier-4user.json"
STEPS = ["levels", "cuts", "main", "processes", "cooperative", "hierarchical"]
SFTOPT = [sys.executable, "-m", "sftopt"]


def sh(*args: str) -> None:
    subprocess.run([*SFTOPT, *args], check=True, stdout=subprocess.DEVNULL)


def solve(instance: Path, out: Path, solver: str = "alm") -> Path:
    sh("solve", str(instance), "--solver", solver, "--seed", "0", "--no-simulate", "--bound",
       "none", "--out", str(out))
    return out / f"{instance.stem}.{solver}.plan.json"


def solved(instance: Path, out: Path, solver: str, again: bool) -> Path:
    """The plan of ``instance`` by ``solver`` in ``out``: solved ``again`` (or when missing),
    else the earlier one (so a step left out leaves its plan as it was)."""
    path = out / f"{instance.stem}.{solver}.plan.json"
    return solve(instance, out, solver) if again or not path.exists() else path


def execute(instance: Path, plan: Path, out: Path, *extra: str) -> dict[str, Any]:
    sh("execute", str(instance), str(plan), "--out", str(out), *extra)
    return repo_relative(out / "result.json")


def repo_relative(path: Path) -> dict[str, Any]:
    """The result document at ``path``, its data file named relative to the repository (the
    committed results name no folder of the machine that made them)."""
    doc = json.loads(path.read_text())
    data = Path(doc["options"]["data"])
    if data.is_absolute() and data.is_relative_to(ROOT):
        doc["options"]["data"] = str(data.relative_to(ROOT))
        write_text(path, json.dumps(doc, indent=1) + "\n")
    return doc


def at_level(instance: Path, plan: Path, level: int, folder: Path,
             cuts: list[int] | None = None) -> tuple[Path, Path]:
    """The instance without an accuracy bound and the plan with every device at ``level``
    (and, given ``cuts``, at those cuts)."""
    data = json.loads(instance.read_text())
    data["training"]["max_distortion"] = 1.0
    data["training"]["eta"] = 0.0
    inst_path = folder / "instance.json"
    write_text(inst_path, json.dumps(data, indent=1) + "\n")
    res = sftopt.load_plan(plan)
    for k, d in enumerate(res.plan.devices):
        d.level = level
        if cuts is not None:
            d.cut = cuts[k]
    res = res.model_copy(update={"objective": None, "bound": None, "gap": None,
                                 "instance_sha256": None})  # the instance was changed
    res.plan.round_delay_s = res.plan.rounds = res.plan.bytes_per_round = None
    res.plan.peak_memory_bytes = None
    return inst_path, res.save(folder / "plan.json")


def reach(records: list[dict[str, Any]], target: float) -> float:
    """Rounds to reach ``target`` accuracy, linear between evaluations (inf: never)."""
    pts = [(r["round"], r["accuracy"]) for r in records if r.get("accuracy") is not None]
    for (r0, a0), (r1, a1) in zip(pts, pts[1:], strict=False):
        if a1 >= target:
            return r1 if a1 == a0 else r0 + (target - a0) / (a1 - a0) * (r1 - r0)
    return math.inf


def fit(levels: dict[int, dict[str, Any]], table: list[dict[str, Any]]) -> dict[str, Any]:
    base = levels[0]
    target = base["final_accuracy"] - 0.01
    r0 = reach(base["rounds"], target)
    rows, xs, ys = [], [], []
    for c, run in sorted(levels.items()):
        delta = table[c]["distortion"]
        rc = reach(run["rounds"], target)
        rows.append({"level": c, "keep_ratio": table[c]["keep_ratio"], "bits": table[c]["bits"],
                     "distortion": delta, "final_accuracy": run["final_accuracy"],
                     "rounds_to_target": None if math.isinf(rc) else rc,
                     "bits_per_elem_measured": run["bits_per_elem"]})
        if c > 0 and math.isfinite(rc) and delta > 0:
            xs.append(delta)
            ys.append(rc / r0 - 1.0)
    eta = float(np.dot(xs, ys) / np.dot(xs, xs)) if xs else None
    within = [r["distortion"] for r in rows
              if r["final_accuracy"] >= base["final_accuracy"] - 0.01]
    return {"target": target, "rounds_level0": r0, "eta": None if eta is None else max(eta, 0.0),
            "eta_raw": eta, "fitted_on": len(xs), "max_distortion": max(within),
            "levels": rows}


def figures(levels: dict[int, dict[str, Any]], model: dict[str, Any], out: Path) -> None:
    fig, (ax1, ax2) = new_figure(2, width=8.0, height=3.4)
    for c, run in sorted(levels.items()):
        pts = [(r["round"], r["accuracy"]) for r in run["rounds"] if r.get("accuracy") is not None]
        d = model["levels"][c]["distortion"]
        ax1.plot(*zip(*pts, strict=True), ms=3, lw=1, fillstyle="none", **series_style(c),
                 label=f"level {c} (delta {d:.3g})")
    ax1.axhline(model["target"], color="grey", ls="--", lw=0.8, label="target")
    ax1.set_xlabel("round")
    ax1.set_ylabel("test accuracy")
    ax1.legend(fontsize=7)
    rows = [r for r in model["levels"] if r["rounds_to_target"] is not None]
    x = [r["distortion"] for r in rows]
    y = [r["rounds_to_target"] / model["rounds_level0"] for r in rows]
    ax2.plot(x, y, "o", label="measured R_c / R_0")
    if model["eta"] is not None:
        grid = np.linspace(0, max(x + [0.05]), 50)
        ax2.plot(grid, 1 + model["eta"] * grid, "-",
                 label=f"1 + eta delta, eta = {model['eta']:.2f}")
    ax2.set_xlabel("distortion delta of the level")
    ax2.set_ylabel("rounds to target / level 0's")
    ax2.legend(fontsize=7)
    save_figure(fig, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--eval-every", type=int, default=5)
    ap.add_argument("--process-rounds", type=int, default=10)
    ap.add_argument("--cut-rounds", type=int, default=100,
                    help="rounds of each run measuring bytes per cut, at the levels the "
                         "accuracy model allows")
    ap.add_argument("--cut-rounds-other", type=int, default=20,
                    help="the same at the levels it rules out")
    ap.add_argument("--cut-levels", choices=["all", "allowed"], default="all",
                    help="levels measured per cut: all, or those the accuracy model allows "
                         "(the others keep one figure for every cut)")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--steps", nargs="+", default=STEPS, choices=STEPS,
                    help="steps to run; the others are read from their earlier results")
    ap.add_argument("--write", action=argparse.BooleanOptionalAction, default=True,
                    help="write the fitted accuracy model into the codec table and the data "
                         "instance (--no-write for smoke runs)")
    args = ap.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    common = ["--rounds", str(args.rounds), "--eval-every", str(args.eval_every)]

    # 1. levels
    n_levels = len(json.loads(INSTANCE.read_text())["codec"]["levels"])
    if "levels" in args.steps:
        # the earlier plan when there is one: a rerun repeats the same runs
        plan0 = solved(INSTANCE, out / "plans-before", "alm", False)
        with cf.ThreadPoolExecutor(max_workers=2) as pool:
            jobs = []
            for c in range(n_levels):
                folder = out / "levels" / f"level-{c}"
                folder.mkdir(parents=True, exist_ok=True)
                inst, plan = at_level(INSTANCE, plan0, c, folder)
                jobs.append(pool.submit(execute, inst, plan, folder / "run", *common, "--seed",
                                        "1"))
            for job in jobs:
                job.result()
    # 1b. bytes per element at every cut 0..L, per level (runs of their own: the accuracy
    # sweep's per-level figures stay as they are)
    n_blocks = sftopt.load_instance(INSTANCE).model.n_blocks
    if "cuts" in args.steps:
        plan0 = out / "plans-before" / f"{INSTANCE.stem}.alm.plan.json"
        data = json.loads(INSTANCE.read_text())
        n_dev = len(data["devices"])
        with cf.ThreadPoolExecutor(max_workers=2) as pool:
            jobs = []
            for c, lv in enumerate(data["codec"]["levels"]):
                allowed = lv["distortion"] <= data["training"]["max_distortion"]
                if args.cut_levels == "allowed" and not allowed:
                    continue  # no plan of the instance uses the level: its own figure stays
                # raw fp16: the stream's length is fixed by the tensor's shape; levels the
                # accuracy model rules out are measured in shorter runs
                n = min(args.cut_rounds, 10) if (lv["keep_ratio"], lv["bits"]) == (1.0, 16) \
                    else args.cut_rounds if allowed else min(args.cut_rounds,
                                                             args.cut_rounds_other)
                rounds = ["--rounds", str(n), "--eval-every", str(n)]
                # the plan's cuts first, then the others (finished runs are not run again)
                seen = measured_cuts(out / "cuts" / f"level-{c}", n)
                for cuts in cut_groups(plan0, n_blocks, n_dev, seen):
                    folder = out / "cuts" / f"level-{c}" / ("cuts-" + "-".join(map(str, cuts)))
                    folder.mkdir(parents=True, exist_ok=True)
                    inst, plan = at_level(INSTANCE, plan0, c, folder, cuts)
                    jobs.append(pool.submit(execute, inst, plan, folder / "run", *rounds,
                                            "--seed", "1"))
            for job in jobs:
                job.result()
    by_cut = per_cut_table(out, n_levels, n_blocks)
    levels, table = {}, []
    for c in range(n_levels):
        doc = json.loads((out / "levels" / f"level-{c}" / "run" / "result.json").read_text())
        run = doc["runs"]["plan"]
        levels[c] = {"final_accuracy": run["final_accuracy"], "rounds": doc["rounds"],
                     "bits_per_elem": run["bits_per_elem_measured"].get(str(c))}
        inst = json.loads((out / "levels" / f"level-{c}" / "instance.json").read_text())
        table.append({k: v for k, v in inst["codec"]["levels"][c].items()})
    # 2. accuracy model (on the table the levels ran with), written where instances read it
    model = fit(levels, table)
    figures(levels, model, out / "accuracy_model.png")
    codec = json.loads(CODEC.read_text())
    instance = INSTANCE
    if not args.write:  # a smoke run: leave the committed table and instance alone
        instance = out / INSTANCE.name
        write_text(instance, INSTANCE.read_text())
    for c, row in enumerate(model["levels"]):
        if row["bits_per_elem_measured"] is not None:
            codec["levels"][c]["bits_per_elem"] = row["bits_per_elem_measured"]
        codec["levels"][c].pop("bits_per_elem_by_cut", None)
        if by_cut is not None and any(x is not None for x in by_cut["table"][c]):
            # a cut never measured: the level's own figure (a level never measured per cut
            # keeps one figure for every cut)
            codec["levels"][c]["bits_per_elem_by_cut"] = [
                codec["levels"][c]["bits_per_elem"] if x is None else x
                for x in by_cut["table"][c]]
    codec["provenance"]["accuracy"] = {
        "eta": model["eta"], "max_distortion": model["max_distortion"],
        "how": "benchmarks/executor/run.py: all-MiniLM-L6-v2 on the fortunes topic task, "
               f"4 devices, {args.rounds} rounds per codec level, seed 1",
        "bits_per_elem": "measured on the executor's own activations and gradients (both "
                         "directions) in those runs"}
    if by_cut is not None:
        codec["provenance"]["bits_per_elem_by_cut"] = {
            "how": "benchmarks/executor/run.py: bytes x 8 / elements of the hidden states and "
                   "their gradients crossing at each cut (both directions together), all "
                   "rounds of runs with every device at the level and at the cuts measured "
                   "(seed 1; results/cuts/level-c/cuts-...); the rounds of the runs behind "
                   "each (level, cut) in 'rounds'",
            "rounds": by_cut["rounds"]}
    if args.write:
        write_text(CODEC, json.dumps(codec, indent=1, sort_keys=True) + "\n")
    inst = json.loads(instance.read_text())
    inst["training"]["eta"] = round(model["eta"], 4) if model["eta"] is not None else 0.0
    inst["training"]["max_distortion"] = model["max_distortion"]
    inst["codec"]["levels"] = codec["levels"]
    write_text(instance, json.dumps(inst, indent=1) + "\n")
    # 3. main run
    plan = solved(instance, out / "plans", "alm", bool({"main", "processes"} & set(args.steps)))
    if "main" in args.steps:
        execute(instance, plan, out / "main", *common, "--seed", "0", "--baselines")
    main_doc = json.loads((out / "main" / "result.json").read_text())
    # 4. processes
    small = ["--rounds", str(args.process_rounds), "--eval-every", str(args.process_rounds),
             "--seed", "0"]
    if "processes" in args.steps:
        execute(instance, plan, out / "processes" / "in-process", *small)
        execute(instance, plan, out / "processes" / "processes", *small, "--processes")
    a, b = (json.loads((out / "processes" / k / "result.json").read_text())
            for k in ("in-process", "processes"))
    keys = ("round", "loss", "accuracy", "bytes_sent")
    same = [{k: r.get(k) for k in keys} for r in a["rounds"]] == \
        [{k: r.get(k) for k in keys} for r in b["rounds"]]
    # 5. cooperative: the same devices, data and batches, each device fine-tuning its own
    # blocks (exact plan), with the accuracy model and codec table of the split instance
    coop = json.loads(COOP.read_text())
    coop["training"]["eta"] = inst["training"]["eta"]
    coop["training"]["max_distortion"] = inst["training"]["max_distortion"]
    coop["codec"] = per_level_codec(inst["codec"])
    coop_path = COOP if args.write else out / COOP.name
    write_text(coop_path, json.dumps(coop, indent=1) + "\n")
    coop_plan = solved(coop_path, out / "plans", "exact", "cooperative" in args.steps)
    if "cooperative" in args.steps:
        execute(coop_path, coop_plan, out / "cooperative", *common, "--seed", "0")
    coop_doc = json.loads((out / "cooperative" / "result.json").read_text())
    # 6. hierarchical: the same users, data and batches on two edges (three tiers), and the
    # two-tier comparison, with the accuracy model and codec table of the split instance
    hier_path = hierarchical_instance(inst, HIER if args.write else out / HIER.name)
    hier = hierarchical(hier_path, out / "hierarchical", common, "hierarchical" in args.steps,
                        args.process_rounds)
    if set(args.steps) == {"hierarchical"}:  # nothing else ran: the summary stays as it was
        print(json.dumps({**{k: v["final_accuracy"] for k, v in hier["runs"].items()},
                          "processes_identical": hier["processes"]["identical"]}, indent=1))
        return
    summary = {"accuracy_model": model, "main": {k: main_doc[k] for k in (
        "final_accuracy", "baseline_accuracy", "target", "rounds_to_target",
        "bytes_predicted_per_round", "runs", "data")},
               "cooperative": {k: coop_doc[k] for k in ("final_accuracy", "runs",
                                                         "bytes_predicted_per_round")},
               "hierarchical": {k: hier[k] for k in ("plans", "runs", "processes")},
               "processes": {"rounds": args.process_rounds, "identical": same,
                             "wall_s": {"in_process": a["wall_s"], "processes": b["wall_s"]}},
               "versions": main_doc["versions"],
               "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
               "args": {k: str(v.relative_to(ROOT) if isinstance(v, Path) and
                                 v.is_relative_to(ROOT) else v) for k, v in vars(args).items()}}
    write_text(out / "summary.json", json.dumps(summary, indent=1) + "\n")
    print(json.dumps({"eta": model["eta"], "max_distortion": model["max_distortion"],
                      "main": {k: summary["main"][k] for k in ("final_accuracy",
                                                              "baseline_accuracy",
                                                              "rounds_to_target")},
                      "processes_identical": same}, indent=1))


def finished_runs(level_dir: Path, rounds: int = 0) -> list[dict[str, Any]]:
    """The result documents of the finished runs in ``level_dir`` (any of its folders) of at
    least ``rounds`` rounds."""
    docs = []
    for path in sorted(level_dir.glob("*/run/result.json")):
        doc = json.loads(path.read_text())
        if doc["options"]["rounds"] >= rounds and not doc.get("interrupted") and \
                not doc.get("failed"):
            docs.append(doc)
    return docs


def measured_cuts(level_dir: Path, rounds: int) -> set[int]:
    """The cuts the finished runs in ``level_dir`` measured, over at least ``rounds`` rounds."""
    return {int(s) for doc in finished_runs(level_dir, rounds)
            for cuts in doc["runs"]["plan"].get("bits_per_elem_measured_by_cut", {}).values()
            for s in cuts}


def cut_groups(plan: Path, n_blocks: int, k: int, seen: set[int]) -> list[list[int]]:
    """The cuts 0..L not yet ``seen``, the plan's own first, as plans of ``k`` devices (a
    group short of k filled up with its last cut)."""
    own = sorted({d.cut for d in sftopt.load_plan(plan).plan.devices} - seen)
    rest = [s for s in range(n_blocks + 1) if s not in seen and s not in own]
    groups = ([own] if own else []) + [rest[i:i + k] for i in range(0, len(rest), k)]
    return [g + [g[-1]] * (k - len(g)) for g in groups if g]


def per_cut_table(out: Path, n_levels: int, n_blocks: int) -> dict[str, Any] | None:
    """Bits per element per (level, cut) over every finished run in cuts/level-c (bytes and
    elements summed over the runs that measured a cut); None where a cut was never measured,
    None in all if nothing was."""
    table: list[list[float | None]] = [[None] * (n_blocks + 1) for _ in range(n_levels)]
    rounds: dict[str, dict[str, list[int]]] = {}
    found = False
    for c in range(n_levels):
        sums: dict[int, list[int]] = {}
        for doc in finished_runs(out / "cuts" / f"level-{c}"):
            for s, v in doc["runs"]["plan"].get("bits_per_elem_measured_by_cut", {}).get(
                    str(c), {}).items():
                acc = sums.setdefault(int(s), [0, 0])
                acc[0], acc[1] = acc[0] + v["bytes"], acc[1] + v["elements"]
                rounds.setdefault(str(c), {}).setdefault(s, []).append(doc["options"]["rounds"])
        for s, (nbytes, elems) in sums.items():
            table[c][s] = 8 * nbytes / elems
            found = True
    return {"table": table, "rounds": rounds} if found else None


def per_level_codec(codec: dict[str, Any]) -> dict[str, Any]:
    """The codec with one figure per level (no `bits_per_elem_by_cut`), as the cooperative and
    hierarchical instances recorded their results with."""
    out = json.loads(json.dumps(codec))
    for lv in out["levels"]:
        lv.pop("bits_per_elem_by_cut", None)
    return out


def hierarchical_instance(split: dict[str, Any], path: Path) -> Path:
    """The hierarchical data instance with the split instance's accuracy model and codec
    table, both links at the most compressed level the accuracy model allows, at ``path``."""
    data = json.loads(HIER.read_text())
    tr = data["training"]
    tr["eta"] = split["training"]["eta"]
    tr["max_distortion"] = split["training"]["max_distortion"]
    data["codec"] = per_level_codec(split["codec"])
    tr["level"] = max(c for c, lv in enumerate(data["codec"]["levels"])
                      if lv["distortion"] <= tr["max_distortion"])
    write_text(path, json.dumps(data, indent=1) + "\n")
    return path


def hierarchical(instance: Path, out: Path, common: list[str], run: bool,
                 process_rounds: int = 10) -> dict[str, Any]:
    """Step 6: the three-tier plan (`exact`, with its baselines) and the two-tier plan
    (`two-tier`) run on the same shards and batches; their figures beside the cost model's;
    and ``process_rounds`` rounds of the three-tier plan with one process per party against
    the same rounds in one process."""
    plans = {"three-tier": solved(instance, out / "plans", "exact", run),
             "two-tier": solved(instance, out / "plans", "two-tier", run)}
    small = ["--rounds", str(process_rounds), "--eval-every", str(process_rounds), "--seed",
             "0"]
    if run:
        execute(instance, plans["three-tier"], out / "three-tier", *common, "--seed", "0",
                "--baselines")
        execute(instance, plans["two-tier"], out / "two-tier", *common, "--seed", "0")
        execute(instance, plans["three-tier"], out / "processes" / "in-process", *small)
        execute(instance, plans["three-tier"], out / "processes" / "processes", *small,
                "--processes")
    a, b = (json.loads((out / "processes" / k / "result.json").read_text())
            for k in ("in-process", "processes"))
    keys = ("round", "loss", "accuracy", "test_loss", "bytes_sent", "bytes")
    same = [{k: r.get(k) for k in keys} for r in a["rounds"]] == \
        [{k: r.get(k) for k in keys} for r in b["rounds"]]
    docs = {k: json.loads((out / k / "result.json").read_text()) for k in plans}
    names = {"plan": "three-tier", "uncompressed": "three-tier uncompressed",
             "centralized": "centralized LoRA"}
    runs = {**{names[k]: v for k, v in docs["three-tier"]["runs"].items()},
            "two-tier": docs["two-tier"]["runs"]["plan"]}
    described = {}
    for name, path in plans.items():
        res = sftopt.load_plan(path)
        p = res.plan
        described[name] = {
            "solver": res.solver, "epoch_delay_s": p.epoch_delay_s,
            "bytes_per_epoch": p.bytes_per_epoch,
            "cloud_peak_memory_bytes": p.peak_memory_bytes.cloud,
            "edges": [{"id": e.id, "cuts": [e.user_cut, e.edge_cut], "users": e.users,
                       "cloud_share": e.cloud_share} for e in p.edges],
            "users": [{"id": d["id"], "cut": d["cut"]} for d in (p.two_tier or {}).get(
                "devices", [])]}
    summary = {"instance": str(instance.relative_to(ROOT) if instance.is_relative_to(ROOT)
                               else instance),
               "level": json.loads(instance.read_text())["training"]["level"],
               "plans": described, "runs": runs,
               "processes": {"rounds": len(a["rounds"]) - 1, "identical": same,
                             "wall_s": {"in_process": a["wall_s"], "processes": b["wall_s"]}},
               "data": docs["three-tier"]["data"], "versions": docs["three-tier"]["versions"],
               "machine": {"platform": platform.platform(), "cpus": os.cpu_count()}}
    write_text(out / "summary.json", json.dumps(summary, indent=1) + "\n")
    series = {"three-tier (exact)": docs["three-tier"]["rounds"],
              "two-tier": docs["two-tier"]["rounds"],
              **{names[k]: v for k, v in docs["three-tier"]["baseline_rounds"].items()}}
    fig, (ax,) = new_figure(1, width=5.5, height=3.4)
    for i, (label, records) in enumerate(series.items()):
        pts = [(r["round"], r["accuracy"]) for r in records if r.get("accuracy") is not None]
        ax.plot(*zip(*pts, strict=True), ms=3, lw=1, fillstyle="none", **series_style(i),
                label=label)
    ax.set_xlabel("epoch (round)")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=7)
    save_figure(fig, out / "accuracy.png")
    return summary


if __name__ == "__main__":
    main()
