"""Solvers of the `split` family, one algorithm per module; importing a module registers it."""
