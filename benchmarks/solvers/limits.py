"""Do time limits hold at scale? Every solver of a family that takes ``time_limit`` on generated
instances of n devices (split: GPT-2 small fleets, `random_instance(n, seed=1, scaled=True)`;
cooperative and hierarchical: their generators with n devices / users, seed 1), wall time
against the limit.

Issue 20 asks for "within a second or 10%, whichever is larger"; a run is over when its wall time
(solve only, `certify=False`: certifying is not part of a solver's limit) exceeds
limit + max(1 s, 10% of limit). The instance's arrays and hash (computed once, on first use) are
built before the runs. Writes OUT/limits.json (every run, its message, versions, the
machine load before it). Usage:
    .venv/bin/python benchmarks/solvers/limits.py [--family split] [--sizes 1000 10000]
        [--limits 1 3 10] [--solvers alm milp ...] [--out benchmarks/solvers/results]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import sftopt
from sftopt.core.family import get_family
from sftopt.core.registry import solvers
from sftopt.core.result import versions

OUT = Path(__file__).resolve().parent / "results"


def allowed(limit: float) -> float:
    """The wall time a run given ``limit`` may take."""
    return limit + max(1.0, 0.1 * limit)


def generated(family: str, n: int) -> dict:
    """The instance of ``family`` with ``n`` devices (users) this benchmark runs."""
    if family == "split":
        return get_family(family).generate(n_devices=n, seed=1, scaled=True)
    return get_family(family).generate(**{"hierarchical": {"n_users": n}}.get(
        family, {"n_devices": n}), seed=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--family", default="split", choices=["split", "cooperative",
                                                          "hierarchical"])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--limits", type=float, nargs="+", default=[1.0, 3.0, 10.0])
    ap.add_argument("--solvers", nargs="+", default=None,
                    help="default: every available solver of the family that takes time_limit")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    names = args.solvers or sorted(s.name for s in solvers(args.family)
                                   if "time_limit" in s.options and s.available())
    rows = []
    for n in args.sizes:
        inst = sftopt.load_instance(generated(args.family, n))
        _ = inst.arrays, inst.sha256  # computed once per instance, on first use: not timed
        for name in names:
            for limit in args.limits:
                load = os.getloadavg()[0]
                t0 = time.perf_counter()
                res = sftopt.solve(inst, name, time_limit=limit, certify=False)
                wall = time.perf_counter() - t0
                row = {"family": args.family, "devices": n, "solver": name,
                       "time_limit": limit, "wall_s": wall, "over": wall > allowed(limit),
                       "status": res.outcome,
                       "objective": res.objective, "load_before": load,
                       "message": res.message}
                rows.append(row)
                print(f"{n:>7} {name:<16} limit {limit:>5g} s  wall {wall:7.2f} s  "
                      f"{'OVER' if row['over'] else 'ok':<4}  {res.outcome}", flush=True)
    out = {"command": "benchmarks/solvers/limits.py " + " ".join(
        f"--{k} {' '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in vars(args).items() if k != "out" and v is not None),
           "versions": versions(), "rows": rows}
    name = "limits.json" if args.family == "split" else f"limits-{args.family}.json"
    tmp = args.out / (name + ".tmp")
    tmp.write_text(json.dumps(out, indent=1, default=float) + "\n")
    tmp.replace(args.out / name)
    over = [r for r in rows if r["over"]]
    print(f"{len(rows)} runs, {len(over)} over their limit")


if __name__ == "__main__":
    main()
