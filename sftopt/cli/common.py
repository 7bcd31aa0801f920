"""What every subcommand shares: exit codes, the usage error, the text table, option parsing,
output checks made before any work, JSON output, logging."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# Exit codes (docs: README, "Command line"): 0 every task done; 1 a failure the run reports
# (a plan the verifier rejects, a solver error, an instance no solver found a plan for, an
# infeasible plan under `check`); 2 bad input, named before any work; 3 output that could not
# be written (disk full, a file that cannot be replaced); 130 / 143 interrupted by SIGINT /
# SIGTERM (what was finished is kept); 141 standard output closed (`| head`), quietly.
EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_OUTPUT = 0, 1, 2, 3
EXIT_SIGINT, EXIT_SIGPIPE, EXIT_SIGTERM = 130, 141, 143

log = logging.getLogger("sftopt")


class UsageError(Exception):
    """Bad input from the command line: printed without a traceback, exit 2."""


class Terminated(BaseException):
    """SIGTERM, raised where the program is (like KeyboardInterrupt for SIGINT), so that
    what was finished is kept and temporary files are removed on the way out."""


def out_folder(path: str, flag: str = "--out") -> Path:
    """A folder output will be written to, made if missing and checked writable now (a file
    made and removed in it), before any work; UsageError naming the problem otherwise."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{flag} {path}: exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".sftopt-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot write there ({exc.strerror or exc})") from None
    return folder


def out_file(path: str, flag: str = "--out") -> Path:
    """A file output will be written to: its folder must exist and be writable (checked now,
    before any work; a missing folder is named, not made) and the file, if it exists, must be
    a regular file (it is replaced whole, atomically)."""
    file = Path(path)
    if file.is_dir():
        raise UsageError(f"{flag} {path}: is a folder, expected a file name")
    if file.exists() and not file.is_file():
        raise UsageError(f"{flag} {path}: exists and is not a regular file")
    folder = file.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise UsageError(f"{flag} {path}: the folder {str(folder)!r} {what}")
    out_folder(str(folder), flag)
    return file


def print_json(doc: Any) -> None:
    """One JSON document on standard output (--json); non-finite numbers written as null."""
    sys.stdout.write(json.dumps(_finite(doc), indent=1) + "\n")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or Infinity
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def progress_off(args: argparse.Namespace) -> bool:
    """Progress bars only on a terminal, and never with -q or --json."""
    return (not sys.stderr.isatty() or getattr(args, "verbosity", 0) < 0
            or getattr(args, "json", False))


class _Stderr(logging.StreamHandler):
    """A handler writing to whatever sys.stderr is at the time (tests swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def setup_logging(verbosity: int) -> None:
    """The `sftopt` logger on stderr: warnings by default, -v info (solver progress), -vv
    debug, -q errors only. Python warnings and Pyomo's log go through the same handler, so
    nothing reaches the terminal as raw text (Pyomo's warnings shown from -v)."""
    handler = _Stderr()
    handler.setFormatter(logging.Formatter("%(levelname)s: %(name)s: %(message)s"))
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(
        max(-1, min(verbosity, 2)), logging.DEBUG)
    logging.captureWarnings(True)
    for name, lvl in (("sftopt", level), ("py.warnings", max(level, logging.WARNING)),
                      ("pyomo", logging.WARNING if verbosity >= 1 else logging.ERROR)):
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if isinstance(h, _Stderr)]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(lvl)
        logger.propagate = False


def table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain aligned text table: numbers right-aligned, text left-aligned."""
    cells = [[str(c) for c in columns]] + [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    numeric = [all(isinstance(r.get(c), int | float) or r.get(c) is None for r in rows)
               for c in columns]

    def line(row: list[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(row, widths, numeric, strict=True)).rstrip()

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths)]
                     + [line(r) for r in cells[1:]])


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.4e}"
    return str(v)


def parse_options(items: list[str], flag: str = "--option") -> dict[str, Any]:
    """key=value pairs; values parsed as JSON where they can be (numbers, true, null)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def _number(convert: Callable[[str], Any], ok: Callable[[Any], bool], what: str
            ) -> Callable[[str], Any]:
    """An argparse type: ``convert`` the text, which must be ``ok``, else name ``what``."""
    def parse(text: str) -> Any:
        try:
            v = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return v

    return parse


positive_float = _number(float, lambda v: v > 0, "a number > 0")
seed = _number(int, lambda v: v >= 0, "a whole number >= 0")
count = _number(int, lambda v: v >= 1, "a whole number >= 1")


def instance_and_plan(instance: str, plan: str, fit: bool = True) -> tuple[Any, Any, Any]:
    """The instance, the plan (of the instance's family, holding a plan, and with ``fit`` one
    that can be evaluated on the instance: `check` reports a misfit as the verifier's finding
    instead) and the family; UsageError naming the file otherwise."""
    from ..core.family import get_family
    from ..core.loading import load_instance, load_plan

    inst = load_instance(instance)
    res = load_plan(plan)
    if res.family != inst.family:
        raise UsageError(f"{plan} is a plan of family {res.family!r}, {instance} an instance "
                         f"of family {inst.family!r}")
    if res.plan is None:
        raise UsageError(f"{plan} holds no plan ({res.message or res.termination})")
    family = get_family(inst.family)
    bad = family.check_structure(inst, res) if fit else []
    if bad:
        raise UsageError(f"{plan} does not fit {instance}: " + "; ".join(bad[:5]))
    if fit and res.instance_sha256 not in (None, inst.sha256):
        print(f"note: {plan} was made for instance {res.instance!r} with another hash than "
              f"{instance}", file=sys.stderr)
    return inst, res, family
