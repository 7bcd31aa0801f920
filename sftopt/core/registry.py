"""Solver registry keyed by (family, name): solvers register with a decorator, `solve` dispatches.

Every module of a family's `solvers/` package is one algorithm; importing it registers it. A
solver module imports its optional backend (highspy, pyscipopt, ...) inside its functions and
names it in ``needs``, so a missing backend makes that solver unavailable, never discovery fail.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import Unavailable
from .family import FAMILIES, get_family, implemented
from .options import COMMON_OPTIONS
from .result import Result
from .schema import InstanceBase

SolverFunc = Callable[..., Result]


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


def register(family: str, name: str, *, exact: bool = False, bound: bool = False,
             needs: tuple[str, ...] = (), description: str = "", online: str = "exact"
             ) -> Callable[[SolverFunc], SolverFunc]:
    """Decorator: ``@register("split", "greedy")`` on ``def solve(instance, *, opt=...) -> Result``.

    ``online`` names the allocator the solver's plans use round by round in a simulation.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r} for solver {name!r}")

    def deco(func: SolverFunc) -> SolverFunc:
        if (family, name) in _REGISTRY:
            raise ValueError(f"solver {name!r} registered twice for family {family!r}")
        params = inspect.signature(func).parameters
        opts = tuple(p for p in params if p != "instance")
        doc = description or (inspect.getdoc(func) or "").split("\n")[0]
        _REGISTRY[(family, name)] = SolverInfo(family, name, func, exact, bound, needs, doc,
                                               opts, online)
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
    """An option the solver does not have, or a common option with a bad value."""


class SolverUnavailable(Unavailable):
    """The solver's optional backend is not installed."""


def solve(instance: InstanceBase, method: str | None = None, **options: Any) -> Result:
    """Solve ``instance`` with the solver ``method`` of its family (default: the family's).

    Options are the solver's keyword arguments and the common options (time_limit, seed,
    threads, gap_tol); a common option the solver has no use for is listed in the result's
    ``ignored_options``, any other unknown option is an error. The result carries wall time,
    options and versions.
    """
    family = get_family(instance.family)
    info = get(instance.family, method or family.default_solver)
    if not info.available():
        raise SolverUnavailable(f"solver {info.name!r} needs {', '.join(info.missing())}, "
                                "not installed")
    unknown = sorted(set(options) - set(info.options) - set(COMMON_OPTIONS))
    if unknown:
        raise SolverOptionError(
            f"solver {info.name!r} has no option {', '.join(map(repr, unknown))}; "
            f"its options: {', '.join(info.options) or '(none)'}")
    for key, value in options.items():
        opt = COMMON_OPTIONS.get(key)
        if opt is not None and not opt.valid(value):
            raise SolverOptionError(f"option {key}: expected {opt.check}, got {value!r}")
    ignored = [k for k in options if k in COMMON_OPTIONS and k not in info.options]
    start = time.perf_counter()
    result = info.func(instance, **{k: v for k, v in options.items() if k in info.options})
    wall = time.perf_counter() - start
    return result.model_copy(update={"wall_s": wall, "solver": info.name,
                                     "options": {**result.options, **options},
                                     "ignored_options": ignored})
