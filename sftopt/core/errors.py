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


class Problems(ValueError):
    """Raised inside a model's validator for problems it can address precisely: each path is
    relative to the model being validated (``$`` is that model), and `problems_from` puts them
    under the model's own place in the input."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class Unavailable(RuntimeError):
    """An optional backend a method needs is not installed."""


def json_path(loc: tuple[Any, ...]) -> str:
    """Pydantic's error location as a JSON path: ("devices", 1, "batch") -> $.devices[1].batch."""
    out = "$"
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith(("function-", "tagged")) or "[" in str(part):
            continue  # pydantic's names of validators and union branches, not JSON keys
        else:
            out += f".{part}"
    return out


def short(value: Any) -> str:
    """A value as it appears in an error message, cut to 60 characters. Never fails and never
    walks far: a huge integer is described by its digits, a deep or foreign value by a bounded
    rendering (the value may be hostile input)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = repr(value[:80]) if isinstance(value, str) else _render(value, 3)
    return text if len(text) <= 60 else text[:57] + "..."


def _render(value: Any, depth: int) -> str:
    """JSON-like text of ``value``, at most ``depth`` levels and a few items per level."""
    if isinstance(value, dict):
        if depth == 0:
            return "{...}"
        items = [f"{_render(k, 0)}: {_render(v, depth - 1)}" for k, v in list(value.items())[:4]]
        return "{" + ", ".join(items) + (", ..." if len(value) > 4 else "") + "}"
    if isinstance(value, list | tuple):
        if depth == 0:
            return "[...]"
        items = [_render(v, depth - 1) for v in value[:4]]
        return "[" + ", ".join(items) + (", ..." if len(value) > 4 else "") + "]"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"<integer of about {int(value.bit_length() * 0.30103) + 1} digits>"
    if isinstance(value, str):
        value = value[:80]
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return f"<{type(value).__name__}>"


def _expected(msg: str) -> str:
    """Pydantic's "Input should be greater than 0" -> "a number greater than 0"."""
    text = msg.removeprefix("Input should be ").removeprefix("Value error, ")
    if text.startswith(("greater", "less")):
        text = "a number " + text
    return text


def problems_from(err: ValidationError, prefix: tuple[Any, ...] = ()) -> list[Problem]:
    """Every error of a pydantic validation as a Problem, its path under ``prefix``."""
    problems = []
    errors = err.errors(include_url=False)
    # a sequence whose items failed is also "too short after validation": its items say more
    failed_within = {tuple(e["loc"][:i]) for e in errors for i in range(len(e["loc"]))}
    for e in errors:
        loc = prefix + tuple(e["loc"])
        kind = e["type"]
        if kind == "too_short" and tuple(e["loc"]) in failed_within:
            continue
        if kind in ("too_short", "too_long"):
            ctx = e.get("ctx", {})
            bound = ctx.get("min_length" if kind == "too_short" else "max_length")
            word = "at least" if kind == "too_short" else "at most"
            problems.append(Problem(json_path(loc), f"{word} {bound} items",
                                    f"{ctx.get('actual_length', '?')} items"))
        elif kind == "missing":
            problems.append(Problem(json_path(loc), "a value (required field)", "nothing"))
        elif kind == "extra_forbidden":
            problems.append(
                Problem(json_path(loc), "no such field (unknown field)", short(e["input"])))
        elif kind == "value_error" and isinstance(e.get("ctx", {}).get("error"), Problems):
            # a validator that addressed its problems itself: paths below this model's place
            base = json_path(loc)
            problems += [Problem(base + p.path.removeprefix("$"), p.expected, p.got)
                         for p in e["ctx"]["error"].problems]
        elif kind == "value_error":
            # our own validators: the message already says what is wrong
            msg = str(e.get("ctx", {}).get("error", e["msg"]))
            expected, _, got = msg.partition("; got ")
            problems.append(Problem(json_path(loc), expected, got or short(e.get("input"))))
        else:
            problems.append(Problem(json_path(loc), _expected(e["msg"]), short(e.get("input"))))
    return problems
