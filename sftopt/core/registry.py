"""Solver registry keyed by (family, name): solvers register with a decorator, `solve` dispatches.

Every module of a family's `solvers/` package is one algorithm; importing it registers it. A
solver module imports its optional backend (highspy, pyscipopt, ...) inside its functions and
names it in ``needs``, so a missing backend makes that solver unavailable, never discovery fail.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import pkgutil
import time
import warnings
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .certify import certify as certify_results
from .errors import Unavailable
from .family import FAMILIES, get_family, implemented
from .options import COMMON_OPTIONS, OptionSpec, check_options
from .result import Result
from .schema import InstanceBase

SolverFunc = Callable[..., Result]
log = logging.getLogger("sftopt.solve")
# how many solves (or certifications) are running around this one: a solver that calls another
# for an incumbent, or a bound computed by a solver, wants the plan or the bound, not a
# certification of its own (the default applies to the outermost call only)
_DEPTH: ContextVar[int] = ContextVar("sftopt_solve_depth", default=0)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: a module blocked in sys.modules
        return False


@dataclass(frozen=True)
class SolverInfo:
    """What `sftopt solvers`, the benchmarks and the tests know of a solver."""

    family: str
    name: str
    func: SolverFunc
    exact: bool = False  # proves optimality (to its gap_tol) when it says "optimal"
    bound: bool = False  # returns a certified lower bound
    needs: tuple[str, ...] = ()  # optional importable modules (checked lazily)
    description: str = ""
    options: tuple[str, ...] = ()  # its keyword arguments
    online: str = "exact"  # the online allocator its plans use every round (simulation)
    # every option's declaration (type, range), common ones included; warm_start has none
    specs: Mapping[str, OptionSpec] = field(default_factory=dict, compare=False)

    @property
    def warm(self) -> bool:
        """Starts from a previous result's plan (``solve(..., warm_start=...)``)."""
        return WARM_START in self.options

    @property
    def common(self) -> tuple[str, ...]:
        """The common options (time_limit, seed, threads, gap_tol) this solver honours."""
        return tuple(o for o in COMMON_OPTIONS if o in self.options)

    def missing(self) -> list[str]:
        return [m for m in self.needs if not _importable(m)]

    def available(self) -> bool:
        return not self.missing()


_REGISTRY: dict[tuple[str, str], SolverInfo] = {}
_LOADED: set[str] = set()
WARM_START = "warm_start"  # the keyword a solver takes a previous Result by (no declaration)


def _declarations(family: str, name: str, func: SolverFunc,
                  options: Mapping[str, OptionSpec]) -> dict[str, OptionSpec]:
    """Each keyword argument's declaration: its own in ``options``, or the common one. A
    keyword without one, a declaration without a keyword, or a default its declaration
    rejects is a programming error, raised at import."""
    where = f"solver {name!r} of family {family!r}"
    params = {p: v for p, v in inspect.signature(func).parameters.items()
              if p not in ("instance", WARM_START)}
    extra = sorted(set(options) - set(params))
    if extra:
        raise ValueError(f"{where} declares options it does not take: {extra}")
    specs = {}
    for p, param in params.items():
        spec = options.get(p, COMMON_OPTIONS.get(p))
        if spec is None:
            raise ValueError(f"{where}: option {p!r} has no declaration (register(..., "
                             f"options={{{p!r}: ...}}) with sftopt.core.options' builders)")
        if param.default is not inspect.Parameter.empty and not spec.normalise(param.default)[0]:
            raise ValueError(f"{where}: the default {p}={param.default!r} is not "
                             f"{spec.expected()}")
        specs[p] = spec
    return specs


def register(family: str, name: str, *, exact: bool = False, bound: bool = False,
             needs: tuple[str, ...] = (), description: str = "", online: str = "exact",
             options: Mapping[str, OptionSpec] | None = None
             ) -> Callable[[SolverFunc], SolverFunc]:
    """Decorator: ``@register("split", "greedy")`` on ``def solve(instance, *, opt=...) -> Result``.

    ``online`` names the allocator the solver's plans use round by round in a simulation.
    ``options`` declares each keyword argument that is not a common option (type and range,
    built with `sftopt.core.options`' ``whole``, ``real``, ``flag``, ...); a keyword
    ``warm_start`` takes a previous result (`solve`'s ``warm_start``).
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r} for solver {name!r}")

    def deco(func: SolverFunc) -> SolverFunc:
        if (family, name) in _REGISTRY:
            raise ValueError(f"solver {name!r} registered twice for family {family!r}")
        params = inspect.signature(func).parameters
        opts = tuple(p for p in params if p != "instance")
        specs = _declarations(family, name, func, options or {})
        doc = description or (inspect.getdoc(func) or "").split("\n")[0]
        _REGISTRY[(family, name)] = SolverInfo(family, name, func, exact, bound, needs, doc,
                                               opts, online, specs)
        return func

    return deco


def _load(family: str) -> None:
    """Import every solver module of a family (once)."""
    if family in _LOADED:
        return
    pkg = f"{FAMILIES[family]}.solvers"
    path = importlib.import_module(pkg).__path__
    for mod in sorted(pkgutil.iter_modules(path), key=lambda m: m.name):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{pkg}.{mod.name}")
    _LOADED.add(family)


def solvers(family: str | None = None) -> list[SolverInfo]:
    """Every registered solver of ``family`` (None: of every implemented family)."""
    fams = implemented() if family is None else [family]
    for f in fams:
        get_family(f)  # a clear error for an unknown or unimplemented family
        _load(f)
    return [s for s in _REGISTRY.values() if s.family in fams]


def get(family: str, name: str) -> SolverInfo:
    """The solver ``name`` of ``family``; KeyError naming the family's solvers if unknown."""
    get_family(family)
    _load(family)
    if (family, name) not in _REGISTRY:
        known = ", ".join(sorted(n for f, n in _REGISTRY if f == family))
        raise KeyError(f"unknown solver {name!r} for family {family!r}; known solvers: {known}")
    return _REGISTRY[(family, name)]


def available(family: str, name: str) -> bool:
    """True if the solver is registered and its optional backends import."""
    try:
        return get(family, name).available()
    except (KeyError, ValueError):
        return False


class SolverOptionError(TypeError):
    """An option the solver does not have, or an option with a bad value (``problems``: one
    `OptionProblem` per bad value, each naming the option and its valid range)."""

    def __init__(self, message: str, problems: list[Any] | None = None):
        super().__init__(message)
        self.problems = problems or []


class SolverUnavailable(Unavailable):
    """The solver's optional backend is not installed."""


def check(info: SolverInfo, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` for the solver ``info`` checked against their declarations: the values as
    it takes them (1e3 -> 1000 for a whole number); SolverOptionError naming every unknown
    option and every bad value (with its valid range)."""
    unknown = sorted(set(options) - set(info.options) - set(COMMON_OPTIONS))
    if unknown:
        raise SolverOptionError(
            f"solver {info.name!r} has no option {', '.join(map(repr, unknown))}; "
            f"its options: {', '.join(info.options) or '(none)'}")
    values, problems = check_options({**COMMON_OPTIONS, **info.specs}, options)
    if problems:
        raise SolverOptionError(f"solver {info.name!r}: " + "; ".join(map(str, problems)),
                                problems)
    return values


def _warm_start(instance: InstanceBase, warm: Any) -> Result:
    if not isinstance(warm, Result):
        raise SolverOptionError(f"warm_start: expected a Result (a previous solve's), got "
                                f"{type(warm).__name__}")
    if warm.family != instance.family:
        raise SolverOptionError(f"warm_start: a result of family {warm.family!r}, the "
                                f"instance is of family {instance.family!r}")
    return warm


def solve(instance: InstanceBase, method: str | None = None, *, warm_start: Result | None = None,
          certify: bool | str | None = None, **options: Any) -> Result:
    """Solve ``instance`` with the solver ``method`` of its family (default: the family's).

    Options are the solver's keyword arguments and the common options (time_limit, seed,
    threads, gap_tol), each checked against its declaration first (SolverOptionError naming
    the option and its valid range); a common option the solver has no use for is listed in
    the result's ``ignored_options``, any other unknown option is an error.

    ``warm_start``: a previous result (e.g. of the fleet before a device joined or left); a
    solver that can start from a plan maps it onto ``instance`` (devices matched by id, new
    ones at its default choice), the others list "warm_start" in ``ignored_options``.
    ``certify``: attach the best certified bound and gap (`core.certify.certify`) with the
    family's default bound method (True) or the one named; False: none. The default (None) is
    True, except for a solve run inside another solve or certification (a solver's incumbent,
    a bound computed by a solver), which gets no certification of its own unless asked. The
    result carries wall time (of the solve alone), options and versions.
    """
    family = get_family(instance.family)
    info = get(instance.family, method or family.default_solver)
    if not info.available():
        raise SolverUnavailable(f"solver {info.name!r} needs {', '.join(info.missing())}, "
                                "not installed")
    depth = _DEPTH.get()
    if certify is None:
        certify = depth == 0
    if certify is not False and certify is not True and certify not in family.bound_methods:
        raise SolverOptionError(f"certify: expected true, false or one of "
                                f"{list(family.bound_methods)}, got {certify!r}")
    values = check(info, options)
    ignored = [k for k in options if k in COMMON_OPTIONS and k not in info.options]
    given = {k: v for k, v in values.items() if k in info.options}
    if warm_start is not None:
        warm = _warm_start(instance, warm_start)
        if info.warm:
            given[WARM_START] = warm
            options = {**options, WARM_START: f"{warm.solver} plan of {warm.instance}"}
        else:
            ignored.append(WARM_START)
    start = time.perf_counter()
    # a solver meets inf and nan on purpose at the edges (an empty band is an infinite delay)
    # and handles them; numpy's and the backends' warnings go to the log, not to the user
    token = _DEPTH.set(depth + 1)
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = info.func(instance, **given)
        wall = time.perf_counter() - start
    finally:
        _DEPTH.reset(token)
    for w in caught:
        log.debug("%s on %s: %s: %s", info.name, instance.name, w.category.__name__, w.message)
    result = result.model_copy(update={"wall_s": wall, "solver": info.name,
                                       "options": {**result.options, **options},
                                       "ignored_options": ignored})
    if certify is not False:
        token = _DEPTH.set(depth + 1)
        try:
            result = certify_results(instance, [result],
                                     None if certify is True else certify)[0]
        finally:
            _DEPTH.reset(token)
    return result
