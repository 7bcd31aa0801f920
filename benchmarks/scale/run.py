"""End to end at scale (issue 21, item 1): the phases of one `sftopt solve` -- load, solve,
certify, verify, write -- timed apart for generated `split` fleets of 1,000 / 10,000 / 100,000
devices, with the process's peak memory.

Instances: `sftopt.families.split.generate.random_instance(n, seed=seed, scaled=True)`
(GPT-2 small), written to a JSON file first so that loading is measured from a file, as the CLI
does. Writes results/<n>-<solver>[-tl<time limit>]-s<seed>.json (phases in seconds, objective,
bound, gap, verified and by which route (the Pyomo model up to verifier.PYOMO_MAX_DEVICES
devices, the same constraints on arrays above), peak RSS of the process so far, versions,
machine and load average). RESULTS.md tabulates them. `lagrange` returns the `lagrangian`
bound with its plan (its solve phase includes computing it), so its certify phase reuses it.
Usage:
    .venv/bin/python benchmarks/scale/run.py [--sizes 1000 10000]
        [--solvers lagrange alm greedy-delay] [--time-limit SECONDS]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import sftopt
from sftopt.core.result import versions
from sftopt.families.split.generate import random_instance
from sftopt.families.split.verifier import PYOMO_MAX_DEVICES

OUT = Path(__file__).resolve().parent / "results"


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def run(n: int, solver: str, seed: int, bound: str, tmp: Path,
        time_limit: float | None = None) -> dict:
    path = tmp / f"scale-{n}-s{seed}.json"
    if not path.exists():
        path.write_text(json.dumps(random_instance(n, seed=seed, scaled=True)))
    row: dict = {"devices": n, "solver": solver, "seed": seed, "bound_method": bound,
                 "time_limit": time_limit}
    opts = {} if time_limit is None else {"time_limit": time_limit}
    t0 = time.perf_counter()
    inst = sftopt.load_instance(path)
    t1 = time.perf_counter()
    res = sftopt.solve(inst, solver, seed=seed, certify=False, **opts)  # certify timed apart
    t2 = time.perf_counter()
    res = sftopt.certify(inst, [res], method=bound)[0]
    t3 = time.perf_counter()
    report = sftopt.verify(inst, res)
    t4 = time.perf_counter()
    res.save(tmp / f"scale-{n}-{solver}.plan.json")
    t5 = time.perf_counter()
    row.update(load_s=t1 - t0, solve_s=t2 - t1, certify_s=t3 - t2, verify_s=t4 - t3,
               write_s=t5 - t4, total_s=t5 - t0, status=res.outcome, message=res.message,
               objective=res.objective,
               bound=res.bound, gap=res.gap, verified=report.ok,
               verify_route="arrays" if n > PYOMO_MAX_DEVICES else "pyomo",
               peak_rss_bytes=peak_rss_bytes())
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--solvers", nargs="+", default=["lagrange", "alm", "greedy-delay"])
    ap.add_argument("--time-limit", type=float, default=None, help="each solver's time_limit")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bound", default="lagrangian", help="certify's bound method")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        for n in args.sizes:
            for solver in args.solvers:
                load = os.getloadavg()
                row = run(n, solver, args.seed, args.bound, Path(d), args.time_limit)
                row.update(versions=versions(), load_average_before=load,
                           machine={"platform": platform.platform(), "cpus": os.cpu_count()})
                limit = "" if args.time_limit is None else f"-tl{args.time_limit:g}"
                name = f"{n}-{solver}{limit}-s{args.seed}.json"
                (args.out / name).write_text(json.dumps(row, indent=1) + "\n")
                print({k: v for k, v in row.items() if k not in ("versions", "machine")},
                      flush=True)


if __name__ == "__main__":
    main()
