"""sftopt: plan and check split fine-tuning of LLMs over wireless edge networks."""

from .instance import Instance, InstanceError, load_instance
from .result import Result, Status, load_plan
from .solvers import available, solve, solvers

__all__ = ["Instance", "InstanceError", "Result", "Status", "available", "load_instance",
           "load_plan", "solve", "solvers"]
__version__ = "0.1.0"
