"""Options common to every solver, declared once, and the deadline a time limit becomes.

A solver takes a common option by naming it as a keyword argument of its function (with the
type below); `registry.solve` validates the values here and, when a solver has no use for one
it was given, records that in the result (``Result.ignored_options``) instead of failing.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def _real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) \
        and not math.isnan(value)


def _whole(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class CommonOption:
    name: str
    help: str
    check: str  # what a valid value is, for the error message
    valid: Callable[[Any], bool]


COMMON_OPTIONS: dict[str, CommonOption] = {o.name: o for o in (
    CommonOption("time_limit", "seconds; the solver stops with its best plan so far "
                 "(termination time_limit)", "a number of seconds >= 0, or null",
                 lambda v: v is None or (_real(v) and v >= 0)),
    CommonOption("seed", "seed of every random choice the solver makes", "a whole number >= 0",
                 lambda v: _whole(v) and v >= 0),
    CommonOption("threads", "threads the solver's backend may use", "a whole number >= 1",
                 lambda v: _whole(v) and v >= 1),
    CommonOption("gap_tol", "relative gap (objective - bound) / objective at which a solver "
                 "with a bound stops and reports optimal", "a number in [0, 1)",
                 lambda v: _real(v) and 0 <= v < 1),
)}


class Deadline:
    """A point in time a search must stop at (none: never), and whether it was reached.

    Searches ask ``expired()`` where they can stop; the first time it answers yes, ``hit`` is
    set, so the solver's result says it stopped at its time limit.
    """

    def __init__(self, seconds: float | None = None):
        self.seconds = seconds
        self.at = math.inf if seconds is None else time.perf_counter() + float(seconds)
        self.hit = False

    def expired(self) -> bool:
        """Past the deadline: the caller stops its work here (counted: ``hit``)."""
        if time.perf_counter() >= self.at:
            self.hit = True
        return self.hit

    def passed(self) -> bool:
        """Past the deadline, not counted as a stop: for a loop condition tested once more after
        its work is done, where stopping cuts nothing short."""
        return self.hit or time.perf_counter() >= self.at

    def remaining(self) -> float:
        """Seconds left (inf without a limit, never below 0)."""
        return max(0.0, self.at - time.perf_counter())

    def part(self, fraction: float) -> float | None:
        """A time limit of ``fraction`` of the time left (None without a limit)."""
        return None if math.isinf(self.at) else fraction * self.remaining()

    def __repr__(self) -> str:
        return f"Deadline({self.seconds!r}, remaining={self.remaining():.3g}, hit={self.hit})"
