"""A `cooperative` plan as a placement: every busy device runs the whole model on its own batch
and trains its blocks, sending their gradients to the server each round at the upload level;
the offloading baseline runs the embedding on each device and everything else on the server."""

from __future__ import annotations

from ...core.placement import GradientUpload, Link, Party, Placement, Route, Segment
from ...core.result import Result
from .schema import CooperativeInstance

SERVER = "server"


def placement(inst: CooperativeInstance, result: Result) -> Placement:
    """The placement of ``result``'s plan (ValueError if the result holds no plan)."""
    plan = result.plan
    if plan is None:
        raise ValueError(f"result of {result.solver!r} holds no plan ({result.message})")
    last = len(inst.model.stages) - 1
    level = inst.training.upload_level
    parties = [Party(d.id, "device") for d in inst.devices] + [Party(SERVER, "server")]
    routes, grads = [], []
    if plan.server_blocks:
        layers = tuple(inst.blocks)
        for dev in inst.devices:
            routes.append(Route(dev.id, dev.batch,
                                (Segment(dev.id, 0, 0, ()), Segment(SERVER, 1, last, layers)),
                                (Link(dev.id, SERVER, level, inst.model.cut_elems,
                                      backward=False),)))
    else:
        for dev, p in zip(inst.devices, plan.devices, strict=True):
            if not p.blocks:
                continue
            layers = tuple(inst.blocks[j] for j in p.blocks)
            routes.append(Route(dev.id, dev.batch, (Segment(dev.id, 0, last, layers),), ()))
            grads.append(GradientUpload(dev.id, SERVER, layers, level))
    return Placement(family="cooperative", model=inst.model.name,
                     n_stages=len(inst.model.stages), parties=tuple(parties),
                     routes=tuple(routes), groups=tuple((k,) for k in range(len(routes))),
                     gradient_uploads=tuple(grads))
