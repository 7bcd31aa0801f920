"""Solvers for the `split` family, one algorithm per file, found through the registry."""

from .registry import SolverInfo, available, get, register, solve, solvers

__all__ = ["SolverInfo", "available", "get", "register", "solve", "solvers"]
