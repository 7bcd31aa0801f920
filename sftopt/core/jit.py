"""Compiled loops: numba (extra `fast`) behind one switch for every kernel of the package.

A module with kernels keeps them as plain Python functions (its numpy path stays the reference
and the fallback) and builds them with `build` on first use. SFTOPT_NO_NUMBA=1 in the
environment, read at each build, turns every kernel off, so one process can time both paths.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from types import SimpleNamespace


def off() -> bool:
    """True when SFTOPT_NO_NUMBA asks for the numpy paths."""
    return os.environ.get("SFTOPT_NO_NUMBA", "").lower() in ("1", "true", "yes")


def build(module: dict, helpers: dict[str, Callable], kernels: dict[str, Callable],
          warm: Callable[[SimpleNamespace], object], what: str) -> SimpleNamespace | None:
    """The ``kernels`` compiled (a namespace of them), or None: numba not installed, or one
    that does not compile (a RuntimeWarning names ``what`` then runs on numpy).

    ``helpers`` (global name in ``module`` -> function) are what the kernels call: they are
    compiled first and bound to those names in ``module`` (the kernels' globals), and put back
    if the build fails. ``warm(namespace)`` calls every kernel once on tiny inputs, so they
    compile (about 1-3 s) or load from numba's cache beside their source (~0.1-0.4 s) here and
    not inside a timed loop."""
    try:
        import numba
    except ImportError:
        return None

    def jit(f: Callable) -> Callable:
        return numba.njit(cache=True, error_model="numpy", nogil=True)(f)

    for name, f in helpers.items():
        module[name] = jit(f)
    k = SimpleNamespace(**{name: jit(f) for name, f in kernels.items()})
    try:
        warm(k)
    except Exception as exc:  # noqa: BLE001 - any compiler failure: numpy still works
        warnings.warn(f"numba kernels unavailable ({type(exc).__name__}: {exc}); "
                      f"{what} runs on numpy", RuntimeWarning, stacklevel=3)
        module.update(helpers)
        return None
    return k
