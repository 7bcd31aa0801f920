"""sftopt: plan and check split fine-tuning of LLMs over wireless edge networks.

Public API: ``load_instance``, ``solve``, ``certify``, ``verify``, ``simulate``, ``placement``,
``list_solvers``, ``available``, ``Result``, ``Status``, ``Termination``, ``load_plan``,
``get_family``. Each dispatches on the instance's family.
"""

from __future__ import annotations

from typing import Any

from .core.certify import certify
from .core.errors import InstanceError
from .core.family import Report, get_family
from .core.loading import load_instance, load_plan
from .core.options import Deadline
from .core.placement import Placement
from .core.registry import SolverInfo, SolverOptionError
from .core.registry import solve as _solve
from .core.registry import solvers as _solvers
from .core.result import Result, Status, Termination
from .core.schema import InstanceBase as Instance

__all__ = ["Deadline", "Instance", "InstanceError", "Placement", "Report", "Result",
           "SolverInfo", "SolverOptionError", "Status", "Termination", "available", "certify",
           "get_family", "list_solvers", "load_instance", "load_plan", "placement", "simulate",
           "solve", "verify"]
__version__ = "0.1.0"


def solve(instance: Instance, method: str | None = None, *, warm_start: Result | None = None,
          certify: bool | str | None = None, **options: Any) -> Result:
    """Solve ``instance`` with the solver ``method`` of its family (default: the family's).

    Options: the solver's own (``sftopt solvers`` lists them) and the common ones, time_limit
    (s; 0: the first plan at once), seed, threads, gap_tol; each is checked against its
    declared type and range first (SolverOptionError, a TypeError, naming the option and its
    valid range). ``warm_start``: a previous Result, e.g. of the fleet before a device joined
    or left; solvers that start from a plan (split: greedy-delay, alm, sqp) map it onto this
    instance by device id, the others list it in ``ignored_options``. ``certify``: by default
    the result carries the best certified bound and its gap as `sftopt solve` does (`certify`,
    the family's default bound method; a method's name picks another); ``certify=False`` skips
    it (a bound costs about 0.05-0.4 s on the bundled instances, about 1 s at 1,000 devices:
    see benchmarks/scale/RESULTS.md). A solve run by a solver inside another solve is not
    certified unless asked. Returns a Result (``objective``, ``bound``, ``gap``, ``status``,
    ``termination``, ``plan``, ...).
    """
    return _solve(instance, method, warm_start=warm_start, certify=certify, **options)


def list_solvers(family: str | None = None) -> list[SolverInfo]:
    """The registered solvers (of one family, or of every implemented one)."""
    return _solvers(family)


def available(family: str, method: str) -> bool:
    """True if ``method`` is a solver of ``family`` whose optional backends are installed."""
    from .core.registry import available as _available

    return _available(family, method)


def verify(instance: Instance, result: Result | dict[str, Any] | str) -> Report:
    """Hold a plan against the family's formal (Pyomo) model: feasibility, slacks, objective."""
    if not isinstance(result, Result):
        result = load_plan(result)
    return get_family(instance.family).verify(instance, result)


def simulate(instance: Instance, result: Result, **options: Any) -> Any:
    """The family's simulation of a plan (`split`: the two-timescale fading simulation)."""
    return get_family(instance.family).simulate(instance, result, **options)


def placement(instance: Instance, result: Result) -> Placement:
    """Who runs which stages and what crosses which link: what the executor runs."""
    return get_family(instance.family).placement(instance, result)
