"""`sftopt bench`: run a benchmark config (solvers x instances x seeds x time limits), certified
and verified, rows to a CSV, a markdown summary."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..bench import ENGINES, ConfigError, load_config, run
from .common import (
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_USAGE,
    Terminated,
    count,
    progress_off,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("bench", help="run a benchmark config: every plan certified and "
                                     "verified, one CSV row per run")
    s.add_argument("config", help="the config file (JSON or TOML; see docs/bench.md)")
    s.add_argument("--out", default=None,
                   help="folder for runs.csv, summary.md, config.json (default: "
                        "bench-<config name>)")
    s.add_argument("--workers", type=count, default=1,
                   help="tasks at once (default 1: one after another in this process)")
    s.add_argument("--engine", choices=ENGINES, default="local",
                   help="local (processes on this machine), dask or ray (a local cluster, or "
                        "the one at --address); default local")
    s.add_argument("--address", default=None,
                   help="an existing Dask scheduler (tcp://host:8786) or Ray cluster (auto, "
                        "host:6379); default: a local one")
    s.add_argument("--resume", action="store_true",
                   help="continue the runs.csv in --out: finished tasks are skipped (default: "
                        "off; an existing runs.csv is then an error, never overwritten)")
    s.add_argument("--no-progress", action="store_true",
                   help="no progress bar (default: a bar when stderr is a terminal)")
    s.set_defaults(func=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    out = None
    try:
        config = load_config(args.config)
        out = Path(args.out or f"bench-{config.name}")
        folder = run(config, out, engine=args.engine, workers=args.workers,
                     address=args.address, resume=args.resume,
                     progress=False if args.no_progress or progress_off(args) else None)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (KeyboardInterrupt, Terminated) as exc:  # rows are appended whole, task by task
        stop = "terminated" if isinstance(exc, Terminated) else "interrupted"
        if out is not None and (out / "runs.csv").exists():
            print(f"{stop}: the finished tasks' rows are in {out / 'runs.csv'}; --resume "
                  "continues", file=sys.stderr)
        else:
            print(stop, file=sys.stderr)
        return EXIT_SIGTERM if isinstance(exc, Terminated) else EXIT_SIGINT
    print((folder / "summary.md").read_text(), end="")
    print(f"rows in {folder / 'runs.csv'}")
    return EXIT_OK
