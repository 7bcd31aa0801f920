"""`minlp` (SCIP warm-started from the best heuristic plan, given the lagrangian bound) against
`alm` and `greedy-delay`: objective, bound, gap and wall time per instance and time limit.

Every plan is checked by the verifier; minlp's gap is the one it reports (its own bound: the
given lagrangian bound or SCIP's dual bound, whichever is larger). Writes OUT/minlp.json
(versions, machine load, every run with its full message) and OUT/tables.md. Usage:
    .venv/bin/python benchmarks/solvers/minlp_warm.py [--time-limit 60 120] [--repeat 1]
        [--instances default gpt2m-20dev-hetero gpt2s-5dev-10mhz]
        [--out benchmarks/solvers/results/minlp]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import sftopt
from sftopt import verify
from sftopt.core.result import versions

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def _run(inst: sftopt.Instance, name: str, time_limit: float) -> dict:
    t0 = time.perf_counter()
    res = sftopt.solve(inst, name, time_limit=time_limit)
    wall = time.perf_counter() - t0
    rep = verify(inst, res) if res.success else None
    return {"instance": inst.name, "devices": inst.n_devices, "solver": name,
            "time_limit": time_limit, "status": res.outcome, "objective": res.objective,
            "bound": res.bound, "gap": res.gap, "wall_s": wall,
            "verified": None if rep is None else bool(rep.feasible and rep.ok),
            "message": res.message, "load_before": os.getloadavg()[0]}


def _table(rows: list[dict]) -> str:
    out = ["| instance | K | time limit (s) | run | alm (s) | greedy-delay (s) | minlp (s) | "
           "minlp vs best heuristic | minlp bound (s) | minlp gap | minlp wall (s) | "
           "SCIP's own plan better? | load |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    by = {}
    for r in rows:
        by.setdefault((r["instance"], r["time_limit"], r["run"]), {})[r["solver"]] = r
    for (name, tl, run), g in by.items():
        m, al, gd = g["minlp"], g["alm"], g["greedy-delay"]
        best = min(al["objective"], gd["objective"])
        better = "yes" if "plan: SCIP's" in m["message"] else "no"
        out.append(f"| {name} | {m['devices']} | {tl:g} | {run} | {al['objective']:.6g} | "
                   f"{gd['objective']:.6g} | {m['objective']:.6g} | "
                   f"{m['objective'] / best - 1:+.3%} | {m['bound']:.6g} | {m['gap']:.2%} | "
                   f"{m['wall_s']:.1f} | {better} | {m['load_before']:.1f} |")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--time-limit", type=float, nargs="+", default=[60.0, 120.0])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--instances", nargs="+",
                    default=["default", "gpt2m-20dev-hetero", "gpt2s-5dev-10mhz"])
    ap.add_argument("--out", type=Path, default=HERE / "results" / "minlp")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    rows = []
    for run in range(1, args.repeat + 1):
        for tl in args.time_limit:
            for name in args.instances:
                inst = sftopt.load_instance(ROOT / "data" / "instances" / f"{name}.json")
                for solver in ("alm", "greedy-delay", "minlp"):
                    r = _run(inst, solver, tl)
                    r["run"] = run
                    rows.append(r)
                    print(f"{name} {solver} {tl:g} s: {r['objective']:.6g} "
                          f"(bound {r['bound']}, {r['wall_s']:.1f} s)", flush=True)
    meta = {"started_utc": started,
            "finished_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": "benchmarks/solvers/minlp_warm.py " + " ".join(
                [f"--time-limit {' '.join(f'{t:g}' for t in args.time_limit)}",
                 f"--repeat {args.repeat}", f"--instances {' '.join(args.instances)}"]),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores "
                       "(shared with other jobs: see load)",
            "versions": versions(), "rows": rows}
    (args.out / "minlp.json").write_text(json.dumps(meta, indent=1) + "\n")
    (args.out / "tables.md").write_text(_table(rows))
    print(_table(rows))


if __name__ == "__main__":
    main()
