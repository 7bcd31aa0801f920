"""One result type for every family and solver: an envelope whose `plan` is the family's plan.

As in Pyomo's solver interface, why the solver stopped (`termination`) is kept apart from what
it found (`status`). A solve that finds nothing carries no plan (``plan`` is None).
"""

from __future__ import annotations

import contextlib
import json
import math
import platform
from enum import StrEnum
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

PLAN_SCHEMA = "sftopt.plan/2"
OLD_PLAN_SCHEMAS = ("sftopt.plan/1",)  # still load (upgraded by the family)


class Status(StrEnum):
    """What the solve found."""

    OPTIMAL = "optimal"  # a plan, optimal to the solver's stated tolerance (its bound proves it)
    FEASIBLE = "feasible"  # a plan that meets every constraint
    NONE = "none"  # no plan


class Termination(StrEnum):
    """Why the solver stopped."""

    CONVERGED = "converged"  # its own stopping rule: search exhausted, gap closed, done
    TIME_LIMIT = "time_limit"  # the time limit (its best plan so far, if any)
    ITERATION_LIMIT = "iteration_limit"  # an iteration limit it was given
    INFEASIBLE = "infeasible"  # proved that no plan (of its kind) exists; the message says why
    REFUSED = "refused"  # declined to run (e.g. too large for the method); the message says why
    ERROR = "error"  # failed; the message says how


def versions() -> dict[str, str]:
    """Versions that produced a result (for reproducibility)."""
    out = {"python": platform.python_version()}
    for pkg in ("sftopt", "numpy", "scipy", "pyomo", "highspy", "pyscipopt", "cvxpy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


def finite(x: float | None) -> float | None:
    """x as a float, or None if it is missing or not finite."""
    return None if x is None or not math.isfinite(x) else float(x)


class Result(BaseModel):
    """A solver's answer, like scipy's OptimizeResult: the same fields for every family and method.

    Serialises to (and loads from) a plan file (`sftopt.plan/2`). ``objective`` is what the
    family minimises (its `objective` says what, with the unit), ``bound`` a certified lower
    bound on it and ``gap`` = (objective - bound) / objective. ``plan`` is the family's plan
    (None when the solve found none); ``simulation`` the family's simulation of it, if run.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: Literal["sftopt.plan/2"] = Field(default=PLAN_SCHEMA, alias="schema")
    family: str
    instance: str
    instance_sha256: str | None = None
    solver: str = "external"
    options: dict[str, Any] = Field(default_factory=dict)
    ignored_options: list[str] = Field(default_factory=list)  # common options of no use here
    status: Status = Status.FEASIBLE
    termination: Termination = Termination.CONVERGED
    message: str = ""
    objective: float | None = None
    bound: float | None = None
    gap: float | None = None
    iterations: int = 0
    wall_s: float = 0.0
    versions: dict[str, str] = Field(default_factory=dict)
    plan: Any = None
    simulation: Any = None
    # the family bound methods whose bound ``bound`` is known to be at least, computed in this
    # process (a solver that computes one, or certify); not written to plan files: a loaded
    # result is certified afresh
    _bound_methods: frozenset[str] = PrivateAttr(default_factory=frozenset)

    @property
    def outcome(self) -> str:
        """The status for a table: with the termination where it says more ("feasible,
        time_limit"), the termination alone when there is no plan ("infeasible")."""
        if self.plan is None:
            return self.termination.value
        if self.termination == Termination.CONVERGED:
            return self.status.value
        return f"{self.status.value}, {self.termination.value}"

    @property
    def success(self) -> bool:
        """A plan was found (optimal or feasible)."""
        return self.plan is not None

    def with_bound(self, bound: float | None) -> Result:
        """This result with the larger of ``bound`` and its own bound, and the gap attached."""
        if bound is None or not math.isfinite(bound):
            bound = self.bound
        elif self.bound is not None:
            bound = max(bound, self.bound)
        gap = None
        if bound is not None and self.objective is not None:
            gap = max(0.0, (self.objective - bound) / self.objective)
        return self.model_copy(update={"bound": bound, "gap": gap})

    @property
    def bound_methods(self) -> frozenset[str]:
        """The family bound methods whose bound ``bound`` is at least, computed in this process
        (certify does not compute them again for this result's class)."""
        return self._bound_methods

    def with_methods(self, *methods: str) -> Result:
        """This result, its ``bound`` known to be at least each of ``methods``' bounds."""
        out = self.model_copy()
        out._bound_methods = self._bound_methods | frozenset(methods)
        return out

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def to_json(self, indent: int = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent) + "\n"

    def save(self, path: str | Path) -> Path:
        """Write the plan file; the old file stays whole until the new one is complete."""
        from .files import write_text

        return write_text(path, self.to_json())


def no_plan(family: str, instance: Any, termination: Termination, message: str,
            iterations: int = 0, bound: float | None = None) -> Result:
    """A result without a plan for ``instance`` (a family's instance): ``termination`` says why
    the solver stopped (infeasible: none exists, the binding constraint named in ``message``)."""
    return Result(family=family, instance=instance.name, instance_sha256=instance.sha256,
                  status=Status.NONE, termination=termination, message=message,
                  iterations=iterations, bound=finite(bound), versions=versions())
