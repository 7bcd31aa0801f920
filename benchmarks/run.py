"""Run the benchmark suites in turn (`make bench` runs the quick one); each writes its own folder.

    python -m benchmarks.run --quick              # the smoke config (sftopt bench), seconds
    python -m benchmarks.run --quick codec hierarchical   # those suites' smoke-sized runs
    python -m benchmarks.run                      # every suite at full size (hours on 2 cores)
    python -m benchmarks.run --dry-run ...        # print the commands, run nothing

Quick runs write under --out (default benchmarks/scratch, not committed), one folder per
suite, and never touch committed results. Full runs write each suite's results/ folder (the
committed results) as their own scripts document (calibration with --commit); `bench` runs the
published config into --out.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SMOKE = HERE / "configs" / "smoke.toml"


def _sftopt() -> list[str]:
    """`sftopt` of this interpreter (the console script may not be on PATH)."""
    return [sys.executable, "-m", "sftopt.cli"]


def commands(name: str, quick: bool, out: Path) -> list[str]:
    """The command line of one suite (quick: smoke-sized, into ``out``/<name>; the sftopt bench
    suite, `bench`, writes there in full runs too: its committed results come from the
    commands in docs/bench.md)."""
    o = str(out / name)
    if name == "bench":
        config = SMOKE if quick else HERE / "configs" / "published.toml"
        return [*_sftopt(), "bench", str(config), "--out", o, "--no-progress"]
    script = [sys.executable, str(HERE / name / "run.py")]
    full: dict[str, list[str]] = {"calibration": ["--commit"]}
    quick_args: dict[str, list[str]] = {
        "codec": ["--quick", "--no-minilm", "--out", o],
        "allocation": ["--sizes", "10", "100", "--seeds", "1", "--sqp-max", "10",
                       "--rounds", "3", "--out", o],
        "solvers": ["--config", str(HERE / "solvers" / "quick.json"), "--time-limit", "5",
                    "--out", o],
        "calibration": ["--quick", "--out", o],
        "executor": ["--rounds", "4", "--eval-every", "2", "--process-rounds", "2",
                     "--no-write", "--out", o],
        "cooperative": ["--quick", "--seeds", "1", "--out", o],
        "hierarchical": ["--quick", "--out", o],
    }
    return script + (quick_args[name] if quick else full.get(name, []))


SUITES = ("bench", "codec", "allocation", "solvers", "calibration", "executor", "cooperative",
          "hierarchical")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="smoke-sized runs into --out (default: off, full runs)")
    p.add_argument("--out", type=Path, default=HERE / "scratch",
                   help="folder of the quick runs, one subfolder per suite, replaced by each "
                        "run (default: benchmarks/scratch)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the commands and run nothing (default: off)")
    p.add_argument("suites", nargs="*", metavar="SUITE",
                   help=f"which suites, of {', '.join(SUITES)} (default: with --quick the "
                        "smoke config 'bench' only, else all)")
    args = p.parse_args(argv)
    unknown = [s for s in args.suites if s not in SUITES]
    if unknown:
        p.error(f"unknown suite(s) {', '.join(unknown)}; known: {', '.join(SUITES)}")
    if args.out.exists() and not args.out.is_dir():
        p.error(f"--out {args.out}: exists and is not a folder")
    suites = args.suites or (["bench"] if args.quick else list(SUITES))
    failed = []
    for name in suites:
        cmd = commands(name, args.quick, args.out)
        print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
        if args.dry_run:
            continue
        if args.quick:  # a quick run starts afresh (bench refuses an existing runs.csv)
            shutil.rmtree(args.out / name, ignore_errors=True)
            args.out.mkdir(parents=True, exist_ok=True)
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
