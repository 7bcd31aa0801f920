"""The family-agnostic core: errors, the instance envelope and shared schema sections, the
family map and protocol, the Result envelope, the solver registry, common options and the
deadline, placements and certification. Nothing here knows a family's model."""
