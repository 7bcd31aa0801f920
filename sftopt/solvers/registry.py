"""Solver registry: solvers register by name with a decorator; `solve` dispatches by name."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..instance import Instance
from ..result import Result

SolverFunc = Callable[..., Result]


@dataclass(frozen=True)
class SolverInfo:
    """What the CLI's `sftopt solvers` table, the benchmarks and the tests know of a solver."""

    name: str
    func: SolverFunc
    family: str = "split"
    exact: bool = False  # proves optimality (to its tolerance) when it says "optimal"
    bound: bool = False  # returns a certified lower bound
    needs: tuple[str, ...] = ()  # optional importable modules
    description: str = ""
    options: tuple[str, ...] = field(default=())

    def available(self) -> bool:
        return all(importlib.util.find_spec(m) is not None for m in self.needs)


_REGISTRY: dict[str, SolverInfo] = {}

# every other module in this package is one algorithm; importing it registers it
_SHARED = {"registry", "base"}


def register(
    name: str,
    *,
    family: str = "split",
    exact: bool = False,
    bound: bool = False,
    needs: tuple[str, ...] = (),
    description: str = "",
) -> Callable[[SolverFunc], SolverFunc]:
    """Decorator: ``@register("greedy")`` on ``def solve(instance, *, opt=..., ...) -> Result``."""

    def deco(func: SolverFunc) -> SolverFunc:
        if name in _REGISTRY:
            raise ValueError(f"solver {name!r} registered twice")
        params = inspect.signature(func).parameters
        opts = tuple(p for p in params if p != "instance")
        doc = description or (inspect.getdoc(func) or "").split("\n")[0]
        _REGISTRY[name] = SolverInfo(name, func, family, exact, bound, needs, doc, opts)
        return func

    return deco


def _load_all() -> None:
    for mod in sorted(pkgutil.iter_modules(_package_path()), key=lambda m: m.name):
        if mod.name not in _SHARED and not mod.name.startswith("_"):
            importlib.import_module(f"{__package__}.{mod.name}")


def _package_path() -> list[str]:
    return list(importlib.import_module(__package__).__path__)


def solvers(family: str | None = None) -> list[SolverInfo]:
    """Every registered solver (optionally of one family), in registration order."""
    _load_all()
    return [s for s in _REGISTRY.values() if family is None or s.family == family]


def get(name: str) -> SolverInfo:
    _load_all()
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"unknown solver {name!r}; known solvers: {known}")
    return _REGISTRY[name]


def available(name: str) -> bool:
    """True if the solver is registered and its optional dependencies import."""
    try:
        return get(name).available()
    except KeyError:
        return False


class SolverOptionError(TypeError):
    """An option that the solver does not have."""


def solve(instance: Instance, method: str = "greedy", **options: Any) -> Result:
    """Solve ``instance`` with the solver registered as ``method``.

    Options are the solver's keyword arguments; an unknown one is an error (a solver that
    "supports" an option uses it). The result carries wall time, options and versions.
    """
    info = get(method)
    if info.family != instance.family:
        raise ValueError(f"solver {method!r} is for family {info.family!r}, "
                         f"instance {instance.name!r} is {instance.family!r}")
    if not info.available():
        missing = [m for m in info.needs if importlib.util.find_spec(m) is None]
        raise RuntimeError(f"solver {method!r} needs {', '.join(missing)}, not installed")
    unknown = sorted(set(options) - set(info.options))
    if unknown:
        raise SolverOptionError(
            f"solver {method!r} has no option {', '.join(map(repr, unknown))}; "
            f"its options: {', '.join(info.options) or '(none)'}"
        )
    start = time.perf_counter()
    result = info.func(instance, **options)
    wall = time.perf_counter() - start
    return result.model_copy(update={"wall_s": wall, "solver": method,
                                     "options": {**result.options, **options}})
