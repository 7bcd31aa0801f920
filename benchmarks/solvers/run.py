"""Benchmark of every registered `split` solver against certified lower bounds, and its scaling.

Instances: data/instances/*.json and seeded random ones (the split family's random_instance,
GPT-2 small) of the configured sizes; a scaling suite (100 to 100,000 devices) for the fast
solvers. Every plan is certified by `sftopt.certify` (as `sftopt solve` does): the best bound
known for its instance and schedule, the largest of the lagrangian bound (up to
``lagrangian_max_devices``), the relaxation bound and every lower bound a solver returned;
sequential plans (`vanilla-sl`) are measured against the exact sequential optimum.
Writes results/solvers.csv, results/solvers.json (versions, machine, config), results/tables.md
and results/solvers.png. Usage:
    .venv/bin/python benchmarks/solvers/run.py [--config cfg.json] [--seed 0] [--time-limit 60]
                                              [--out benchmarks/solvers/results]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import multiprocessing
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import sftopt
from sftopt import Instance, Result, certify, verify
from sftopt.core.result import versions
from sftopt.families.split.bounds import lower_bound
from sftopt.families.split.generate import random_instance

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

DEFAULT_CONFIG: dict[str, Any] = {
    "data_instances": True,
    "random_sizes": [5, 10, 20, 50],
    "random_seeds": 1,  # seeds seed, seed+1, ... per size
    "scaling_sizes": [100, 1000, 10000, 100000],
    # solvers too slow for the scaling suite (a solver is also dropped at larger sizes once a
    # run exceeds scaling_drop_s)
    "scaling_skip": ["exhaustive", "minlp", "sqp"],
    "scaling_max_devices": {"milp": 100},  # its model build alone grows with K x options
    # a solver is skipped at a size where its last wall time x (growth in K)^scaling_growth
    # exceeds this (for solvers with a time_limit, at most 1.5 x the limit + 5 s is predicted)
    "scaling_budget_s": 120.0,
    "scaling_growth": 1.5,
    "lagrangian_max_devices": 50,
    "scaling_lagrangian_max_devices": 10000,  # the scaling suite's gap uses it up to this size
    "verify_max_devices": 50,  # the Pyomo verifier is slow on huge instances
    "solver_options": {"exhaustive": {"max_combinations": 100000}},
    "solvers": None,  # None: every available registered solver; else a list of names
    "instances": None,  # None: every data instance; else a list of instance names
}


def _instances(cfg: dict[str, Any], seed: int) -> list[tuple[str, Instance]]:
    out = []
    if cfg["data_instances"]:
        for path in sorted((ROOT / "data" / "instances").glob("*.json")):
            inst = sftopt.load_instance(path)
            if inst.family != "split":  # the other families' instances have their own suites
                continue
            if cfg["instances"] is None or inst.name in cfg["instances"]:
                out.append(("data", inst))
    for n in cfg["random_sizes"]:
        for s in range(seed, seed + cfg["random_seeds"]):
            out.append(("random", sftopt.load_instance(random_instance(n, seed=s))))
    return out


def scaled_instance(n: int, seed: int) -> dict[str, Any]:
    """The generator's scaled fleet (band, server memory and FLOP/s grown with n)."""
    return random_instance(n, seed=seed, scaled=True, name=f"scaled-{n}-s{seed}")


def _options(info, cfg: dict[str, Any], time_limit: float) -> dict[str, Any]:
    opts = dict(cfg["solver_options"].get(info.name, {}))
    if "time_limit" in info.options:
        opts.setdefault("time_limit", time_limit)
    if "seed" in info.options:
        opts.setdefault("seed", 0)
    return opts


def _peak_mb() -> float:
    """This process's peak resident memory so far, MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    """This process's resident memory now, MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _solve(inst: Instance, info, opts: dict[str, Any], check: bool
           ) -> tuple[dict[str, Any], Result | None]:
    t0 = time.perf_counter()
    try:
        res = sftopt.solve(inst, info.name, certify=False, **opts)  # certified apart
        err = None
    except Exception as exc:  # a crashing solver is a result too
        res, err = None, f"{type(exc).__name__}: {exc}"
    wall = time.perf_counter() - t0
    if res is None:
        return _crash(inst, info, opts, err, wall), None
    row = _base_row(inst, info, opts, wall)
    ok = None
    if check and res.success:
        rep = verify(inst, res)
        ok = bool(rep.feasible and rep.ok)
    return {**row, "status": res.outcome,
            "schedule": res.plan.schedule if res.plan is not None else None,
            "objective": res.objective, "own_bound": res.bound, "message": res.message[:200],
            "verified": ok}, res


def _base_row(inst: Instance, info, opts: dict[str, Any], wall: float) -> dict[str, Any]:
    """What every row of a run names: instance, solver, options, wall time."""
    return {"instance": inst.name, "instance_sha256": inst.sha256[:16],
            "devices": inst.n_devices, "solver": info.name, "exact": info.exact,
            "options": json.dumps(opts, sort_keys=True), "wall_s": wall}


def _crash(inst: Instance, info, opts: dict[str, Any], why: str,
           wall: float = math.nan) -> dict[str, Any]:
    """The row of a run that ended without a result."""
    return {**_base_row(inst, info, opts, wall), "status": "crash", "objective": None,
            "own_bound": None, "verified": None, "message": why, "peak_mb": None,
            "solve_mb": None}


def _run(inst: Instance, info, opts: dict[str, Any], check: bool
         ) -> tuple[dict[str, Any], Result | None]:
    """One solver run in a process of its own (forked: the instance is inherited), so that the
    memory it needs is its own and a crash of the process is a row, not the end of the
    benchmark. ``peak_mb``: the process's peak RSS (the interpreter, the loaded instance and
    what the benchmark held when it forked included); ``solve_mb``: that peak less the RSS
    the process started with, the memory the solve (and its check) added."""
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)

    def child() -> None:
        start = _rss_mb()
        try:
            row, res = _solve(inst, info, opts, check)
        except Exception as exc:  # the check (verify) failing is a result too
            row, res = _crash(inst, info, opts, f"{type(exc).__name__}: {exc}"), None
        peak = _peak_mb()
        send.send(({**row, "peak_mb": peak, "solve_mb": max(peak - start, 0.0)}, res))

    proc = ctx.Process(target=child)
    proc.start()
    send.close()
    try:
        return recv.recv()
    except EOFError:  # the process died (e.g. out of memory) before it answered
        proc.join()
        return _crash(inst, info, opts, f"the solver's process died (exit {proc.exitcode})"), None
    finally:
        recv.close()
        proc.join()


def _certify(inst: Instance, cfg: dict[str, Any], rows: list[dict],
             results: list[Result | None]) -> dict[str, Any]:
    """The bounds of an instance (timed, for the tables) and every plan certified with them."""
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    out["relaxation"] = lower_bound(inst, method="relaxation")
    out["relaxation_s"] = time.perf_counter() - t0
    if inst.n_devices <= cfg["lagrangian_max_devices"]:
        t0 = time.perf_counter()
        out["lagrangian"] = lower_bound(inst, method="lagrangian")
        out["lagrangian_s"] = time.perf_counter() - t0
    # sequential plans (vanilla-sl): the exact sequential optimum bounds them
    t0 = time.perf_counter()
    out["sequential"] = lower_bound(inst, schedule="sequential")
    out["sequential_s"] = time.perf_counter() - t0
    parallel = max(out["relaxation"], out.get("lagrangian", -math.inf))
    done = [(r, res) for r, res in zip(rows, results, strict=True) if res is not None]
    certified = certify(inst, [res for _, res in done], "none",
                        bounds={"parallel": parallel, "sequential": out["sequential"]})
    sources = {"relaxation": out["relaxation"], "lagrangian": out.get("lagrangian")}
    sources.update({r["solver"]: r["own_bound"] for r in rows
                    if r.get("schedule") == "parallel" and r["own_bound"] is not None})
    out["best"] = max(v for v in sources.values() if v is not None)
    out["best_source"] = next(k for k, v in sources.items() if v == out["best"])
    for r in rows:
        r["best_bound"] = r["bound_source"] = r["ratio"] = r["gap"] = None
    for (r, _), res in zip(done, certified, strict=True):
        if res.objective is None or res.bound is None:
            continue
        # each schedule has its own bound: a sequential plan (vanilla-sl) holds one device's
        # activations at a time on the server, so the parallel bounds do not bound it
        sequential = r["schedule"] == "sequential"
        r["best_bound"] = res.bound
        r["bound_source"] = "sequential optimum" if sequential else out["best_source"]
        r["gap"] = res.gap
        r["ratio"] = res.objective / res.bound if res.bound > 0 else None
    return out


def _write_csv(rows: list[dict], path: Path, vers: dict[str, str]) -> None:
    fields = ["suite", "instance", "instance_sha256", "devices", "solver", "exact", "options",
              "status", "schedule", "objective", "own_bound", "best_bound", "bound_source",
              "gap", "ratio", "wall_s", "peak_mb", "solve_mb", "verified", "message"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields + ["versions"])
        w.writeheader()
        ver = json.dumps(vers, sort_keys=True)
        for r in rows:
            w.writerow({**{k: r.get(k) for k in fields}, "versions": ver})


def _figure(rows: list[dict], path: Path) -> None:
    """Left: each solver's objective / best certified bound on every instance up to 50 devices
    (one marker per instance). Right: wall time against devices, the scaling suite's fleets (one
    generator, grown) joined by lines, the bundled and random instances (unrelated to each
    other) as separate markers. Each solver its own colour and marker."""
    from sftopt.core.plots import new_figure, plain_log_ticks, save_figure, series_style

    fig, _ = new_figure(1, width=14, height=5.4)
    fig.clear()
    ax1, ax2 = fig.subplots(1, 2)
    names = sorted({r["solver"] for r in rows})
    style = {name: series_style(i) for i, name in enumerate(names)}
    small = [r for r in rows if r["suite"] != "scaling" and r["ratio"] is not None]
    for i, name in enumerate(names):
        vals = [r["ratio"] for r in small if r["solver"] == name]
        if vals:
            ax1.scatter(np.full(len(vals), i) + np.linspace(-0.2, 0.2, len(vals)), vals, s=18,
                        color=style[name]["color"], marker=style[name]["marker"])
    ax1.set_xticks(range(len(names)), names, rotation=60, ha="right")
    ax1.set_xlim(-0.6, len(names) - 0.4)
    ratios = [r["ratio"] for r in small]
    if ratios and max(ratios) > 3 * min(ratios):  # log only where it spans a wide range
        ax1.set_yscale("log")
        plain_log_ticks(ax1)
    ax1.axhline(1.01, color="grey", lw=0.8, ls="--", label="1% above the bound")
    ax1.set_ylabel("objective / best certified bound (1 = proved optimal)")
    ax1.set_title("quality: every instance up to 50 devices, one marker each")
    ax1.legend(fontsize=8, loc="upper right")
    for name in names:
        done = [r for r in rows if r["solver"] == name and r["objective"] is not None]
        st = style[name]
        pts = sorted((r["devices"], r["wall_s"]) for r in done if r["suite"] != "scaling")
        if pts:
            ax2.scatter(*zip(*pts, strict=True), s=16, color=st["color"], marker=st["marker"],
                        alpha=0.8)
        fleet = sorted((r["devices"], r["wall_s"]) for r in done if r["suite"] == "scaling")
        if fleet or pts:
            ax2.plot(*zip(*fleet, strict=True) if fleet else ([], []), ms=5, label=name, **st)
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    plain_log_ticks(ax2, "xy")
    ax2.set_xlabel("devices")
    ax2.set_ylabel("wall time, s")
    ax2.set_title("wall time: lines = scaled fleets (100-10,000), markers = other instances")
    ax2.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))  # off the markers
    save_figure(fig, path)


def _fmt(x: Any, spec: str = ".4g") -> str:
    return "" if x is None else format(x, spec)


def _tables(rows: list[dict], bounds: dict[str, dict], path: Path) -> None:
    lines = ["| instance | K | solver | status | objective (s) | best bound (s) | gap | wall (s) |"
             " solve memory (MB) | verified |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["suite"] == "scaling":
            continue
        lines.append(f"| {r['instance']} | {r['devices']} | {r['solver']} | {r['status']} | "
                     f"{_fmt(r['objective'], '.6g')} | {_fmt(r['best_bound'], '.6g')} | "
                     f"{_fmt(r['gap'], '.2%') if r['gap'] is not None else ''} | "
                     f"{r['wall_s']:.2f} | {_fmt(r.get('solve_mb'), '.0f')} | "
                     f"{'' if r['verified'] is None else r['verified']} |")
    lines += ["", "Best solver per instance (parallel-schedule plans):", "",
              "| instance | K | best solver | objective (s) | best bound (s) (source) | gap |",
              "|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["instance"] for r in rows):
        rs = [r for r in rows if r["instance"] == name and r["objective"] is not None
              and r.get("schedule", "parallel") == "parallel"]
        if not rs:
            continue
        b = min(rs, key=lambda r: r["objective"])
        lines.append(f"| {name} | {b['devices']} | {b['solver']} | {b['objective']:.6g} | "
                     f"{_fmt(b['best_bound'], '.6g')} ({b['bound_source']}) | "
                     f"{_fmt(b['gap'], '.3%') if b['gap'] is not None else ''} |")
    lines += ["", "Scaling (wall seconds; objective relative to the best bound: lagrangian up to "
              "scaling_lagrangian_max_devices devices, else relaxation):", "",
              "| K | solver | status | wall (s) | solve memory (MB) | peak RSS (MB) "
              "| objective / bound | note |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["suite"] == "scaling":
            lines.append(f"| {r['devices']} | {r['solver']} | {r['status']} | "
                         f"{r['wall_s']:.2f} | {_fmt(r.get('solve_mb'), '.0f')} | "
                         f"{_fmt(r.get('peak_mb'), '.0f')} | {_fmt(r['ratio'], '.4f')} | "
                         f"{r['message'] if r['status'] == 'skipped' else ''} |")
    lines += ["", "Bounds (s) and their wall time:", "",
              "| instance | K | relaxation | (s) | lagrangian | (s) | best parallel | source |"
              " sequential optimum | (s) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, b in bounds.items():
        lines.append(f"| {name} | {b['devices']} | {b['relaxation']:.6g} | "
                     f"{b['relaxation_s']:.2f} | {_fmt(b.get('lagrangian'), '.6g')} | "
                     f"{_fmt(b.get('lagrangian_s'), '.2f')} | {b['best']:.6g} | "
                     f"{b['best_source']} | {_fmt(b.get('sequential'), '.6g')} | "
                     f"{_fmt(b.get('sequential_s'), '.2f')} |")
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=Path, help="JSON overriding keys of the default config")
    ap.add_argument("--seed", type=int, default=0, help="first seed of the random instances")
    ap.add_argument("--time-limit", type=float, default=60.0, help="per solver run, seconds")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--from-json", type=Path,
                    help="rebuild tables.md and the figure from a solvers.json, run nothing")
    args = ap.parse_args()
    if args.from_json:
        meta = json.loads(args.from_json.read_text())
        _tables(meta["rows"], meta["bounds"], args.from_json.parent / "tables.md")
        _figure(meta["rows"], args.from_json.parent / "solvers.png")
        _write_csv(meta["rows"], args.from_json.parent / "solvers.csv", meta["versions"])
        args.from_json.write_text(json.dumps(meta, indent=1, default=str) + "\n")
        return
    cfg = dict(DEFAULT_CONFIG)
    if args.config:
        cfg.update(json.loads(args.config.read_text()))
    args.out.mkdir(parents=True, exist_ok=True)
    infos = [s for s in sftopt.list_solvers("split") if s.available()
             and (cfg["solvers"] is None or s.name in cfg["solvers"])]
    rows: list[dict] = []
    bounds: dict[str, dict] = {}
    suite = _instances(cfg, args.seed)
    scaling = [n for n in cfg["scaling_sizes"]]
    total = len(suite) * len(infos) + len(scaling) * len(infos)
    bar = tqdm(total=total, desc="solver runs", unit="run")
    for kind, inst in suite:
        inst_rows, inst_results = [], []
        for info in infos:
            bar.set_postfix_str(f"{inst.name}: {info.name}")
            r, res = _run(inst, info, _options(info, cfg, args.time_limit),
                          inst.n_devices <= cfg["verify_max_devices"])
            r["suite"] = kind
            inst_rows.append(r)
            inst_results.append(res)
            bar.update()
        b = _certify(inst, cfg, inst_rows, inst_results)
        b["devices"] = inst.n_devices
        bounds[inst.name] = b
        rows += inst_rows
    dropped: set[str] = set(cfg["scaling_skip"])
    last: dict[str, tuple[int, float]] = {}  # solver -> (devices, wall) of its largest run
    for r in rows:
        if r["objective"] is not None and r["devices"] >= last.get(r["solver"], (0, 0.0))[0]:
            last[r["solver"]] = (r["devices"], r["wall_s"])
    for n in scaling:
        inst = sftopt.load_instance(scaled_instance(n, args.seed))
        inst_rows, inst_results = [], []
        for info in infos:
            bar.update()
            if info.name in dropped or n > cfg["scaling_max_devices"].get(info.name, n):
                continue
            n0, w0 = last.get(info.name, (n, 0.0))
            predicted = w0 * (n / n0) ** cfg["scaling_growth"]
            if "time_limit" in info.options:  # these stop at their limit (tests check it)
                predicted = min(predicted, 1.5 * args.time_limit + 5.0)
            if predicted > cfg["scaling_budget_s"]:
                inst_rows.append({"suite": "scaling", "instance": inst.name,
                                  "instance_sha256": inst.sha256[:16], "devices": n,
                                  "solver": info.name, "exact": info.exact, "options": "{}",
                                  "status": "skipped", "objective": None, "own_bound": None,
                                  "wall_s": math.nan, "verified": None,
                                  "message": f"skipped: {w0:.3g} s at {n0} devices predicts "
                                             f"{predicted:.3g} s"})
                inst_results.append(None)
                continue
            bar.set_postfix_str(f"{inst.name}: {info.name}")
            r, res = _run(inst, info, _options(info, cfg, args.time_limit),
                          inst.n_devices <= cfg["verify_max_devices"])
            r["suite"] = "scaling"
            inst_rows.append(r)
            inst_results.append(res)
            if r["objective"] is not None:
                last[info.name] = (n, r["wall_s"])
        b = _certify(inst, {**cfg, "lagrangian_max_devices":
                            cfg["scaling_lagrangian_max_devices"]}, inst_rows, inst_results)
        b["devices"] = n
        bounds[inst.name] = b
        rows += inst_rows
    bar.close()
    _write_csv(rows, args.out / "solvers.csv", versions())
    meta = {"config": cfg, "seed": args.seed, "time_limit": args.time_limit,
            "versions": versions(), "machine": {"platform": platform.platform(),
                                                "processor": platform.processor(),
                                                "cpus": os.cpu_count()},
            "rows": rows, "bounds": bounds}
    (args.out / "solvers.json").write_text(json.dumps(meta, indent=1, default=str) + "\n")
    _tables(rows, bounds, args.out / "tables.md")
    _figure(rows, args.out / "solvers.png")
    print(f"wrote {args.out}/solvers.csv, solvers.json, tables.md, solvers.png")


if __name__ == "__main__":
    main()
