"""The executor: a plan's placement run for real on a pretrained transformer and labelled text,
every party with its own model copy and adapters, the codec on the wire in both directions, in
one process or one process per party (torch.distributed, gloo). Needs the `torch` extra."""

from .run import Options, execute

__all__ = ["Options", "execute"]
