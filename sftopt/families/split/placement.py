"""A `split` plan as a placement: each device runs stages 0..s_k on its own batch, the server
runs s_k+1..L+1 for every device on one shared copy, activations and gradients cross at the
device's codec level, adapters go to the server every `agg_every` rounds."""

from __future__ import annotations

from ...core.placement import Link, Party, Placement, Route, Segment, Upload
from ...core.result import Result
from .schema import SEQUENTIAL, SplitInstance

SERVER = "server"


def placement(inst: SplitInstance, result: Result) -> Placement:
    """The placement of ``result``'s plan (ValueError if the result holds no plan)."""
    plan = result.plan
    if plan is None:
        raise ValueError(f"result of {result.solver!r} holds no plan ({result.message})")
    stages = inst.model.stages
    last = len(stages) - 1  # L + 1, the output stage
    trained = [i for i, s in enumerate(stages) if s.lora_params > 0]
    parties = [Party(d.id, "device") for d in inst.devices] + [Party(SERVER, "server")]
    routes, uploads = [], []
    for dev, p in zip(inst.devices, plan.devices, strict=True):
        own = tuple(i for i in trained if i <= p.cut)
        segments = [Segment(dev.id, 0, p.cut, own)]
        links = []
        if p.cut < last:
            segments.append(Segment(SERVER, p.cut + 1, last,
                                    tuple(i for i in trained if i > p.cut)))
            links.append(Link(dev.id, SERVER, p.level, inst.model.cut_elems))
        routes.append(Route(dev.id, dev.batch, tuple(segments), tuple(links)))
        if own:
            uploads.append(Upload(dev.id, SERVER, own, inst.training.agg_every))
    n = len(routes)
    groups = (tuple(range(n)),) if plan.schedule == SEQUENTIAL else tuple((k,) for k in range(n))
    return Placement(family="split", model=inst.model.name, n_stages=len(stages),
                     parties=tuple(parties), routes=tuple(routes), groups=groups,
                     uploads=tuple(uploads))
