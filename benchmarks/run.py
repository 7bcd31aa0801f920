"""Run every benchmark of the suite in turn (`make bench`); each writes its own results folder.

    python -m benchmarks.run            # full runs (tens of minutes on 2 cores)
    python -m benchmarks.run --quick    # smoke-sized runs, results to scratch folders
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# suite -> (full arguments, quick arguments); quick runs never overwrite committed results
SUITES = {
    "codec": ([], ["--quick", "--no-minilm", "--out", str(HERE / "codec" / "scratch")]),
    "allocation": ([], ["--sizes", "10", "100", "--seeds", "1", "--sqp-max", "10",
                        "--rounds", "3", "--out", str(HERE / "allocation" / "scratch")]),
    "solvers": ([], ["--config", str(HERE / "solvers" / "quick.json"), "--time-limit", "5",
                     "--out", str(HERE / "solvers" / "scratch")]),
    "calibration": ([], ["--quick", "--no-commit-files"]),
    "executor": ([], ["--rounds", "4", "--eval-every", "2", "--process-rounds", "2",
                      "--no-write", "--out", str(HERE / "executor" / "scratch")]),
    "cooperative": ([], ["--quick", "--seeds", "1", "--out",
                         str(HERE / "cooperative" / "scratch")]),
    "hierarchical": ([], ["--quick", "--out", str(HERE / "hierarchical" / "scratch")]),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke-sized runs")
    p.add_argument("suites", nargs="*", choices=[*SUITES, []], default=list(SUITES),
                   help="which suites (default: all)")
    args = p.parse_args(argv)
    failed = []
    for name in args.suites:
        full, quick = SUITES[name]
        cmd = [sys.executable, str(HERE / name / "run.py"), *(quick if args.quick else full)]
        print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
        start = time.perf_counter()
        rc = subprocess.call(cmd)
        print(f"== {name}: exit {rc} after {time.perf_counter() - start:.0f} s", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
