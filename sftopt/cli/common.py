"""What every subcommand shares: exit codes, the usage error, the text table, option parsing."""

from __future__ import annotations

import argparse
import json
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
