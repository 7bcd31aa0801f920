"""The `cooperative` family's solvers: one algorithm per module, registered on import."""
