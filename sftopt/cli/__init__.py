"""The `sftopt` command line: argument parsing and printing only, one module per group of
subcommands; every command dispatches on the instance's family."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..core.errors import InstanceError, Unavailable
from . import bench, catalogue, examine, execute, solve
from .common import EXIT_USAGE, UsageError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sftopt", description="sftopt: plan and check split "
                                "fine-tuning over wireless edge networks")
    p.add_argument("--version", action="version", version=f"sftopt {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    solve.add_parser(sub)
    catalogue.add_parsers(sub)
    examine.add_parsers(sub)
    execute.add_parser(sub)
    bench.add_parser(sub)
    from ..calibrate.cli import add_parser as add_calibrate_parser  # torch loads only when run

    add_calibrate_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (InstanceError, UsageError, Unavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
