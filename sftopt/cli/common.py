"""What every subcommand shares: exit codes, the usage error, the text table, option parsing."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input from the command line: printed without a traceback, exit 2."""


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
