"""Bad input as a value: every problem with its JSON path, what was expected and what was found."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where (JSON path), what was expected, what was found."""

    path: str
    expected: str
    got: str

    def __str__(self) -> str:
        return f"{self.path}: expected {self.expected}, got {self.got}"


class InstanceError(ValueError):
    """Bad input (instance, plan). Carries every problem found, each with its JSON path."""

    def __init__(self, problems: list[Problem], source: str | None = None):
        self.problems = problems
        self.source = source
        head = f"{source}: " if source else ""
        n = len(problems)
        lines = [f"{head}{n} problem{'s' if n != 1 else ''}:"] + [f"  {p}" for p in problems]
        super().__init__("\n".join(lines))


class Unavailable(RuntimeError):
    """An optional backend a method needs is not installed."""


def json_path(loc: tuple[Any, ...]) -> str:
    """Pydantic's error location as a JSON path: ("devices", 1, "batch") -> $.devices[1].batch."""
    out = "$"
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before") or str(part).startswith("tagged"):
            continue
        else:
            out += f".{part}"
    return out


def short(value: Any) -> str:
    """A value as it appears in an error message, cut to 60 characters."""
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _expected(msg: str) -> str:
    """Pydantic's "Input should be greater than 0" -> "a number greater than 0"."""
    text = msg.removeprefix("Input should be ").removeprefix("Value error, ")
    if text.startswith(("greater", "less")):
        text = "a number " + text
    return text


def problems_from(err: ValidationError, prefix: tuple[Any, ...] = ()) -> list[Problem]:
    """Every error of a pydantic validation as a Problem, its path under ``prefix``."""
    problems = []
    for e in err.errors(include_url=False):
        loc = prefix + tuple(e["loc"])
        kind = e["type"]
        if kind == "missing":
            problems.append(Problem(json_path(loc), "a value (required field)", "nothing"))
        elif kind == "extra_forbidden":
            problems.append(
                Problem(json_path(loc), "no such field (unknown field)", short(e["input"])))
        elif kind == "value_error":
            # our own validators: the message already says what is wrong
            msg = str(e.get("ctx", {}).get("error", e["msg"]))
            expected, _, got = msg.partition("; got ")
            problems.append(Problem(json_path(loc), expected, got or short(e.get("input"))))
        else:
            problems.append(Problem(json_path(loc), _expected(e["msg"]), short(e.get("input"))))
    return problems
