"""The split family's certified bounds, timed: the `lagrangian` and `relaxation` bound of every
bundled `split` instance and of generated GPT-2 small fleets (`random_instance(n, seed=1,
scaled=True)`, as run.py), each computed ``--repeat`` times (wall and CPU seconds, min-max).

Writes results/bounds-<label>.json (values, times, versions, load average). Run it once with
the code before a change (``PYTHONPATH`` at that checkout) and once after, to compare:

    PYTHONPATH=. .venv/bin/python benchmarks/scale/bounds.py --label after
    PYTHONPATH=../main .venv/bin/python benchmarks/scale/bounds.py --label before
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import sftopt
from sftopt.core.result import versions
from sftopt.families.split.bounds import lower_bound
from sftopt.families.split.generate import random_instance

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "results"


def commit() -> str:
    """The commit of the sftopt checkout imported (the code measured)."""
    where = Path(sftopt.__file__).resolve().parent
    return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          cwd=where).stdout.strip()


def instances(sizes: list[int], tmp: Path) -> list[tuple[str, sftopt.Instance]]:
    out = []
    for path in sorted((ROOT / "data" / "instances").glob("*.json")):
        inst = sftopt.load_instance(path)
        if inst.family == "split":
            out.append((path.stem, inst))
    for n in sizes:
        path = tmp / f"scale-{n}-s1.json"
        path.write_text(json.dumps(random_instance(n, seed=1, scaled=True)))
        out.append((f"generated-{n}", sftopt.load_instance(path)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000])
    ap.add_argument("--repeat", type=int, default=3, help="runs per bound (default 3)")
    ap.add_argument("--label", default="after", help="names the output file (default after)")
    ap.add_argument("--methods", nargs="+", default=["lagrangian", "relaxation"])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for name, inst in instances(args.sizes, Path(d)):
            for method in args.methods:
                walls, cpus, value = [], [], None
                for _ in range(args.repeat if inst.n_devices < 10000 else 1):
                    load = os.getloadavg()
                    w0, c0 = time.perf_counter(), time.process_time()
                    value = lower_bound(inst, method=method)
                    walls.append(time.perf_counter() - w0)
                    cpus.append(time.process_time() - c0)
                row = {"instance": name, "devices": inst.n_devices, "method": method,
                       "bound": value, "wall_s": [min(walls), max(walls)],
                       "cpu_s": [min(cpus), max(cpus)], "load_average_before": load}
                rows.append(row)
                print(f"{name:22s} {method:10s} {value:.10g}  wall {min(walls):.3f}-"
                      f"{max(walls):.3f} s  cpu {min(cpus):.3f}-{max(cpus):.3f} s  "
                      f"load {load[0]:.1f}", flush=True)
    doc = {"label": args.label, "commit": commit(), "versions": versions(),
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count()}, "rows": rows}
    (args.out / f"bounds-{args.label}.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
