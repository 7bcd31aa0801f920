"""The `sftopt` command line: argument parsing and printing only, one module per group of
subcommands; every command dispatches on the instance's family."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from .. import __version__
from ..core.errors import InstanceError, Unavailable
from . import bench, catalogue, examine, execute, solve
from .common import (
    EXIT_OUTPUT,
    EXIT_SIGINT,
    EXIT_SIGPIPE,
    EXIT_SIGTERM,
    EXIT_USAGE,
    Terminated,
    UsageError,
    setup_logging,
)


def _verbosity(p: argparse.ArgumentParser, default: Any) -> None:
    g = p.add_argument_group("output")
    g.add_argument("-v", "--verbose", dest="verbose", action="count", default=default,
                   help="more messages on stderr through the 'sftopt' logger: -v info (solver "
                        "progress, Pyomo's warnings), -vv debug (default: warnings only)")
    g.add_argument("-q", "--quiet", dest="quiet", action="count", default=default,
                   help="errors only, no progress bars (default: off)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sftopt", description="sftopt: plan and check split "
                                "fine-tuning over wireless edge networks")
    p.add_argument("--version", action="version", version=f"sftopt {__version__}",
                   help="print the version and exit")
    _verbosity(p, 0)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    solve.add_parser(sub)
    catalogue.add_parsers(sub)
    examine.add_parsers(sub)
    execute.add_parser(sub)
    bench.add_parser(sub)
    from ..calibrate.cli import add_parser as add_calibrate_parser  # torch loads only when run

    add_calibrate_parser(sub)
    for s in sub.choices.values():  # -v/-q after the command too; SUPPRESS keeps the earlier
        _verbosity(s, argparse.SUPPRESS)
    return p


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated


def _stdout_gone() -> None:
    """Standard output cannot take more: point it at /dev/null so the interpreter's last
    flush does not fail again (and print a traceback) on the way out."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.verbosity = args.verbose - args.quiet
    setup_logging(args.verbosity)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: SIGTERM keeps its handler
        previous = None
    try:
        code = args.func(args)
        sys.stdout.flush()  # a full disk or a closed pipe shows here, not at exit
        return code
    except (InstanceError, UsageError, Unavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `| head`: the reader has what it wanted; end quietly
        _stdout_gone()
        return EXIT_SIGPIPE
    except OSError as exc:  # standard output or a file could not be written
        where = f" {exc.filename}" if exc.filename else " standard output"
        _stdout_gone()
        print(f"error: cannot write{where}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_OUTPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_SIGINT
    except Terminated:
        print("terminated", file=sys.stderr)
        return EXIT_SIGTERM
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
