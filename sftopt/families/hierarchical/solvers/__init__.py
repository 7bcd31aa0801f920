"""The `hierarchical` family's solvers, one per file; each registers itself."""
