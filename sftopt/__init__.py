"""sftopt: plan and check split fine-tuning of LLMs over wireless edge networks.

Public API: ``load_instance``, ``solve``, ``list_solvers``, ``available``, ``verify``, ``simulate``,
``Result``, ``load_plan``. ``verify`` and ``simulate`` load on first use (Pyomo is slow to import).
"""

from typing import Any

from .instance import Instance, InstanceError, load_instance
from .result import Result, Status, load_plan
from .solvers import available, solve
from .solvers import solvers as list_solvers

__all__ = ["Instance", "InstanceError", "Result", "Status", "available", "load_instance",
           "list_solvers", "load_plan", "simulate", "solve", "verify"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "verify":
        from .verifier import verify

        return verify
    if name == "simulate":
        from .simulation import simulate

        return simulate
    raise AttributeError(f"module 'sftopt' has no attribute {name!r}")
