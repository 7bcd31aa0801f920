"""Solver options, each declared once with its type and range, and the deadline a time limit
becomes.

A solver takes an option by naming it as a keyword argument of its function. The common options
(time_limit, seed, threads, gap_tol) are declared here; a solver's own options are declared at
its registration (``@register(..., options={"rho": real(0, 1e12, lo_open=True)})``) with the
builders below. `registry.solve` checks every value against its declaration before the solver
runs (`check_options`: an `OptionProblem` per bad value, naming the option and its valid range),
and, when a solver has no use for a common option it was given, records that in the result
(``Result.ignored_options``) instead of failing.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ITER_MAX = 10**7  # iteration and move counts: beyond this no solver finishes in a day anyway
SEED_MAX = 2**31 - 1  # HiGHS and SCIP take 32-bit seeds; numpy takes any


def _fmt(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


@dataclass(frozen=True)
class OptionSpec:
    """What a valid value of one option is: its kind, its range and whether null is allowed.

    kinds: "whole" (an integer; a float with an integral value, as JSON writes 1e3, counts),
    "real" (a finite number), "flag" (true or false), "text" (a string, maybe from
    ``choices``), "reals" / "wholes" (a list of such numbers, of ``length`` if given).
    """

    kind: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    none: bool = False  # null (None) is a valid value
    choices: tuple[str, ...] | None = None
    length: int | None = None
    help: str = ""

    def expected(self) -> str:
        """What a valid value is, for an error message ("a whole number in [1, 10000000]")."""
        if self.kind == "flag":
            what = "true or false"
        elif self.kind == "text":
            what = ("one of " + ", ".join(map(repr, self.choices))) if self.choices \
                else "a string"
        else:
            noun = {"whole": "a whole number", "real": "a number",
                    "wholes": "a list of whole numbers", "reals": "a list of numbers"}[self.kind]
            if self.kind in ("wholes", "reals") and self.length is not None:
                noun = f"a list of {self.length} " + noun.split(" of ", 1)[1]
            what = noun + self._range()
        return what + (", or null" if self.none else "")

    def _range(self) -> str:
        each = " each" if self.kind in ("wholes", "reals") else ""
        lo, hi = self.lo, self.hi
        if lo is not None and hi is not None:
            return (f"{each} in {'(' if self.lo_open else '['}{_fmt(lo)}, {_fmt(hi)}"
                    f"{')' if self.hi_open else ']'}")
        if lo is not None:
            return f"{each} {'>' if self.lo_open else '>='} {_fmt(lo)}"
        if hi is not None:
            return f"{each} {'<' if self.hi_open else '<='} {_fmt(hi)}"
        return ""

    def _in_range(self, v: float) -> bool:
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        return not (self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi))

    def _number(self, v: Any) -> tuple[bool, Any]:
        """(valid, the value as the solver takes it) for one number of this spec."""
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            return False, v
        if self.kind in ("whole", "wholes"):
            if isinstance(v, numbers.Integral):
                v = int(v)
            elif math.isfinite(v) and float(v).is_integer():
                v = int(v)  # 1e3 as JSON or the command line writes it
            else:
                return False, v
        else:
            v = float(v)
            if not math.isfinite(v):
                return False, v
        return self._in_range(v), v

    def normalise(self, value: Any) -> tuple[bool, Any]:
        """(valid, the value as the solver takes it: 1e3 -> 1000 for a whole number)."""
        if value is None:
            return self.none, None
        if self.kind == "flag":
            return isinstance(value, bool), value
        if self.kind == "text":
            ok = isinstance(value, str) and (self.choices is None or value in self.choices)
            return ok, value
        if self.kind in ("whole", "real"):
            return self._number(value)
        if not isinstance(value, list | tuple) or (self.length is not None
                                                   and len(value) != self.length):
            return False, value
        out = [self._number(v) for v in value]
        return all(ok for ok, _ in out), [v for _, v in out]


def whole(lo: int | None = None, hi: int | None = None, help: str = "", *,
          none: bool = False) -> OptionSpec:
    """A whole number in [lo, hi] (None: unbounded on that side)."""
    return OptionSpec("whole", lo, hi, none=none, help=help)


def real(lo: float | None = None, hi: float | None = None, help: str = "", *,
         lo_open: bool = False, hi_open: bool = False, none: bool = False) -> OptionSpec:
    """A finite number in [lo, hi] (``lo_open``/``hi_open``: that end excluded)."""
    return OptionSpec("real", lo, hi, lo_open, hi_open, none, help=help)


def flag(help: str = "") -> OptionSpec:
    """True or false."""
    return OptionSpec("flag", help=help)


def text(help: str = "", *, choices: tuple[str, ...] | None = None,
         none: bool = False) -> OptionSpec:
    """A string (one of ``choices`` if given)."""
    return OptionSpec("text", none=none, choices=choices, help=help)


def reals(lo: float | None = None, hi: float | None = None, help: str = "", *,
          length: int | None = None, none: bool = False) -> OptionSpec:
    """A list of finite numbers, each in [lo, hi]."""
    return OptionSpec("reals", lo, hi, none=none, length=length, help=help)


def wholes(lo: int | None = None, hi: int | None = None, help: str = "", *,
           length: int | None = None, none: bool = False) -> OptionSpec:
    """A list of whole numbers, each in [lo, hi]."""
    return OptionSpec("wholes", lo, hi, none=none, length=length, help=help)


# Declarations shared by several solvers (the same meaning and range wherever they appear)
MOVES = whole(0, ITER_MAX, "most improving moves of the local search (0: none)")
TOLERANCE = real(1e-12, 0.1, "relative tolerance of the answer (below 1e-12 is below the "
               "rounding of the delays)")
REALLOCATE = flag("re-share the resources exactly for the plan found")

COMMON_OPTIONS: dict[str, OptionSpec] = {
    # 0: best effort at once (the first plan the solver can give, termination time_limit);
    # null: none
    "time_limit": real(0, 1e9, "seconds; the solver stops with its best plan so far "
                       "(termination time_limit); 0: its first plan", none=True),
    "seed": whole(0, SEED_MAX, "seed of every random choice the solver makes"),
    "threads": whole(1, 1024, "threads the solver's backend may use"),
    "gap_tol": real(0, 1, "relative gap (objective - bound) / objective at which a solver "
                    "with a bound stops and reports optimal", hi_open=True),
}


@dataclass(frozen=True)
class OptionProblem:
    """A bad option value: which option, what a valid value is, what was given."""

    name: str
    expected: str
    got: Any

    def __str__(self) -> str:
        return f"option {self.name}: expected {self.expected}, got {self.got!r}"


def check_options(specs: Mapping[str, OptionSpec], values: Mapping[str, Any]
                  ) -> tuple[dict[str, Any], list[OptionProblem]]:
    """Every value of ``values`` held to its spec in ``specs`` (names without one are not
    looked at): the values as the solver takes them and the problems, one per bad value."""
    out: dict[str, Any] = dict(values)
    problems = []
    for name, value in values.items():
        spec = specs.get(name)
        if spec is None:
            continue
        ok, norm = spec.normalise(value)
        if ok:
            out[name] = norm
        else:
            problems.append(OptionProblem(name, spec.expected(), value))
    return out, problems


class OutOfTime(Exception):
    """The deadline passed inside work that has no partial result (building a model)."""


class Deadline:
    """A point in time a search must stop at (none: never), and whether it was reached.

    Searches ask ``expired()`` where they can stop; the first time it answers yes, ``hit`` is
    set, so the solver's result says it stopped at its time limit.
    """

    def __init__(self, seconds: float | None = None):
        self.seconds = seconds
        self.at = math.inf if seconds is None else time.perf_counter() + float(seconds)
        self.hit = False

    def expired(self, reserve: float = 0.0) -> bool:
        """Past the deadline (less ``reserve`` seconds kept for work that must follow): the
        caller stops its work here (counted: ``hit``)."""
        if time.perf_counter() >= self.at - reserve:
            self.hit = True
        return self.hit

    def check(self, i: int = 0, every: int = 1) -> None:
        """Raise OutOfTime past the deadline, looking at the clock when ``i`` is a multiple of
        ``every`` (cheap enough for a loop over devices)."""
        if i % every == 0 and self.expired():
            raise OutOfTime

    def passed(self) -> bool:
        """Past the deadline, not counted as a stop: for a loop condition tested once more after
        its work is done, where stopping cuts nothing short."""
        return self.hit or time.perf_counter() >= self.at

    def remaining(self) -> float:
        """Seconds left (inf without a limit, never below 0)."""
        return max(0.0, self.at - time.perf_counter())

    def seconds_left(self) -> float | None:
        """The time left as a time limit to hand on (None without a limit)."""
        return None if math.isinf(self.at) else self.remaining()

    def part(self, fraction: float) -> float | None:
        """A time limit of ``fraction`` of the time left (None without a limit)."""
        return None if math.isinf(self.at) else fraction * self.remaining()

    def __repr__(self) -> str:
        return f"Deadline({self.seconds!r}, remaining={self.remaining():.3g}, hit={self.hit})"


# seconds per device (user) to build a solver's result: its per-device plan records and checks
# (make_result: about 1-2 s at 100,000 devices in every family)
RESULT_S = 2e-5


def work_deadline(time_limit: float | None, n_devices: int) -> Deadline:
    """The deadline a solver's own work stops at: ``time_limit`` less RESULT_S per device,
    kept for building its result, so that the result is out within the limit."""
    if time_limit is None:
        return Deadline(None)
    return Deadline(max(0.0, float(time_limit) - RESULT_S * n_devices))
