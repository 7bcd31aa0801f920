"""The runtime: a placement's routes trained round by round on real data.

Every route is a chain of segments on parties (for `split`: a device on stages 0..s_k, then the
server on s_k+1..L+1). Per round each route draws its owner's batch; the first party runs its
stages and sends the hidden state through the codec at the link's level (with the labels, which
the model does not charge); the next party runs its stages, computes the loss, back-propagates
and sends the gradient of its input back through the codec; the first party back-propagates it.
A party that serves several routes in a round (the server) accumulates their gradients, each
route's loss weighted by its share of the samples, and steps once; a device steps on its own
batch. Groups of routes that run one after another (a sequential schedule) step after each
route. Every `agg_every` rounds the devices upload the adapters they hold and every stage's
copies are averaged, weighted by the samples each copy trained on (`Placement.copies`).

A placement with gradient uploads (`cooperative`: each device trains its own blocks on the
whole model) instead has every device send the gradients of its blocks through the codec each
round; the receiving party (the server) steps and every device continues from its adapters. A
link without a backward direction (the offloading baseline) sends no gradient back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..core.placement import Link, Placement, Route, Segment
from ..core.placement import Party as PartySpec
from ..torchrt.models import StagedModel
from .data import Sampler, TaskData
from .parties import Party
from .wire import Level, Meter, pack, pack_adapters, unpack, unpack_adapters

EVAL_BATCH = 64


def codec_seed(seed: int, rnd: int, route: int, link: int, direction: int) -> int:
    """The stochastic-rounding seed of one message (the same in every mode of a run)."""
    return int(np.random.SeedSequence([seed, rnd, route, link, direction]).generate_state(1)[0])


@dataclass
class Setup:
    """Everything a run needs besides the model: placement, codec table, data, its split over
    the devices and the schedule. Picklable, so a process per party can rebuild it."""

    placement: Placement
    levels: list[Level]
    agg_every: int
    data: TaskData
    split: list[np.ndarray]  # the training indices of each route's owner (devices' shards)
    lr: float
    seed: int
    name: str = "plan"
    devices: Placement | None = None  # whose shards ``split`` holds (default: placement)
    adapter_bytes: int = 4  # adapters travel as fp32 (4) or fp16 (2): the profile's dtype
    _samplers: dict[str, Any] = field(default_factory=dict, repr=False)

    def batch(self, owner: str) -> tuple[Any, Any]:
        """The next batch of a route owner (a device; "central": every device's, in order)."""
        import torch

        if not self._samplers:
            pl = self.devices or self.placement
            devs = {r.owner: Sampler(s, r.batch, (self.seed, k))
                    for k, (r, s) in enumerate(zip(pl.routes, self.split, strict=True))}
            self._samplers.update({o: s.next for o, s in devs.items()})
            self._samplers["central"] = all_owners(pl, devs)
        idx = self._samplers[owner]()
        return (torch.from_numpy(self.data.x_train[idx]),
                torch.from_numpy(self.data.y_train[idx]))


def uncompressed(placement: Placement) -> Placement:
    """The same placement with every link and gradient upload at level 0 (raw fp16)."""
    routes = tuple(replace(r, links=tuple(replace(lk, level=0) for lk in r.links))
                   for r in placement.routes)
    grads = tuple(replace(g, level=0) for g in placement.gradient_uploads)
    return replace(placement, routes=routes, gradient_uploads=grads)


def centralized(placement: Placement) -> Placement:
    """One party runs the whole model on every route's batch together: unsplit LoRA
    fine-tuning on the same samples."""
    last = placement.n_stages - 1
    trained = tuple(sorted({i for r in placement.routes for s in r.segments for i in s.trains}))
    batch = sum(r.batch for r in placement.routes)
    route = Route("central", batch, (Segment("central", 0, last, trained),), ())
    return Placement(family=placement.family, model=placement.model,
                     n_stages=placement.n_stages, parties=(PartySpec("central", "server"),),
                     routes=(route,), groups=((0,),), uploads=())


def all_owners(placement: Placement, samplers: dict[str, Sampler]) -> Callable[[], np.ndarray]:
    """The batch of every route of ``placement`` drawn in route order, concatenated."""
    return lambda: np.concatenate([samplers[r.owner].next() for r in placement.routes])


def weights(placement: Placement) -> dict[tuple[int, str], float]:
    """Per (route, party of its last segment): the route's share of the samples that party
    trains on before it steps (1 where it steps after every route)."""
    sequential = any(len(g) > 1 for g in placement.groups)
    served: dict[str, int] = {}
    for r in placement.routes:
        last = r.segments[-1].party
        served[last] = served.get(last, 0) + r.batch
    return {(i, r.segments[-1].party): 1.0 if sequential else r.batch / served[r.segments[-1].party]
            for i, r in enumerate(placement.routes)}


def average(copies: dict[int, dict[str, int]], held: dict[int, dict[str, list[Any]]]
            ) -> dict[int, list[Any]]:
    """Per stage, the sample-weighted mean of its copies' tensors (``held[stage][party]``)."""
    out = {}
    for stage, parties in copies.items():
        total = sum(parties.values())
        tensors = None
        for party, n in parties.items():
            part = [t * (n / total) for t in held[stage][party]]
            tensors = part if tensors is None else [a + b for a, b in zip(tensors, part,
                                                                          strict=True)]
        out[stage] = tensors
    return out


class Runtime:
    """A placement's parties, each with its own model copy, trained in one process."""

    def __init__(self, setup: Setup, build: Callable[[], StagedModel],
                 parties: set[str] | None = None):
        self.setup = setup
        pl = setup.placement
        self.route_index = {r.owner: i for i, r in enumerate(pl.routes)}
        if any(len(r.segments) > 2 for r in pl.routes):
            raise ValueError("this executor runs routes of one or two segments (a device and "
                             "the server); longer chains are not supported yet")
        if len({g.dst for g in pl.gradient_uploads}) > 1:
            raise ValueError("gradient uploads to more than one party are not supported")
        held: dict[str, set[int]] = {}
        trains: dict[str, set[int]] = {}
        for r in pl.routes:
            for s in r.segments:
                held.setdefault(s.party, set()).update(s.stages)
                trains.setdefault(s.party, set()).update(s.trains)
        for g in pl.gradient_uploads:  # the party that steps on uploaded gradients
            held.setdefault(g.dst, set()).update(g.stages)
            trains.setdefault(g.dst, set()).update(g.stages)
        wanted = set(held) if parties is None else parties
        self.parties = {name: Party(name, build(), held[name], setup.lr, trains[name])
                        for name in held if name in wanted}
        self.weights = weights(pl)
        self.sequential = any(len(g) > 1 for g in pl.groups)
        self.copies = pl.copies()
        self.eval_model: StagedModel | None = None
        self.build = build
        self.codec_s = 0.0  # thread CPU time encoding and decoding, this round

    # ------------------------------------------------------------------ one route, by halves
    def _codec(self, fn: Callable[..., Any], *args: Any) -> Any:
        start = time.thread_time()
        try:
            return fn(*args)
        finally:
            self.codec_s += time.thread_time() - start

    def level(self, link: Link) -> Level:
        return self.setup.levels[link.level]

    def first_half(self, ri: int, route: Route, rnd: int, x: Any, y: Any) -> tuple[Any, bytes]:
        """The route's first party: its stages on the batch; the hidden state as codec bytes."""
        seg = route.segments[0]
        out = self.parties[seg.party].forward(seg, x, y)
        link = route.links[0]
        blob = self._codec(pack, out, self.level(link), codec_seed(self.setup.seed, rnd, ri, 0, 0))
        return out, blob

    def second_half(self, ri: int, route: Route, rnd: int, blob: bytes, y: Any, meter: Meter
                    ) -> tuple[float, bytes | None]:
        """The route's second party: the hidden state it received (counted here, in every
        mode), its stages and the loss; the gradient of its input back as codec bytes,
        unweighted (the party's own parameters get the weighted loss)."""

        seg, link = route.segments[1], route.links[0]
        party = self.parties[seg.party]
        h = self._codec(unpack, blob).requires_grad_(True)
        meter.count("up", len(blob), link.level, h.numel())
        meter.count("labels", y.numel() * y.element_size())
        if not link.backward:  # nothing below the link trains: no gradient goes back
            h.requires_grad_(False)
        loss = party.forward(seg, h, y)
        w = self.weights[(ri, seg.party)]
        party.backward(loss * w if w != 1.0 else loss)
        if not link.backward:
            return float(loss.detach()), None
        grad = h.grad if w == 1.0 else h.grad / w
        back = self._codec(pack, grad, self.level(link),
                           codec_seed(self.setup.seed, rnd, ri, 0, 1))
        meter.count("down", len(back), link.level, grad.numel())
        return float(loss.detach()), back

    def finish(self, route: Route, out: Any, back: bytes) -> None:
        """The route's first party back-propagates the gradient it received (a device with
        nothing to train below its cut, cut 0, receives it and has nothing to do with it)."""
        grad = self._codec(unpack, back)
        if out.requires_grad:
            self.parties[route.segments[0].party].backward(out, grad)

    def alone(self, ri: int, route: Route, x: Any, y: Any) -> float:
        """A route of one segment: its party computes the loss itself."""
        seg = route.segments[0]
        party = self.parties[seg.party]
        loss = party.forward(seg, x, y)
        w = self.weights[(ri, seg.party)]
        party.backward(loss * w if w != 1.0 else loss)
        return float(loss.detach())

    def run_route(self, ri: int, route: Route, rnd: int, meter: Meter) -> float:
        x, y = self.setup.batch(route.owner)
        if not route.links:
            return self.alone(ri, route, x, y)
        out, blob = self.first_half(ri, route, rnd, x, y)
        loss, back = self.second_half(ri, route, rnd, blob, y, meter)
        if back is not None:
            self.finish(route, out, back)
        return loss

    # ------------------------------------------------------------------ a round
    def start_round(self) -> None:
        for p in self.parties.values():
            p.zero_grad()
            p.compute_s = 0.0

    def step(self, names: set[str] | None = None) -> None:
        for name, p in self.parties.items():
            if names is None or name in names:
                p.step()
                p.zero_grad()

    def run_round(self, rnd: int) -> dict[str, Any]:
        """One round of every route; adapters averaged when the round ends an aggregation
        period. Returns the round's record (loss, bytes, compute time per party)."""
        pl = self.setup.placement
        meter = Meter()
        start = time.perf_counter()
        self.codec_s = 0.0
        self.start_round()
        losses = []
        for group in pl.groups:
            for ri in group:
                route = pl.routes[ri]
                losses.append((self.run_route(ri, route, rnd, meter), route.batch))
                if self.sequential:
                    self.step({s.party for s in route.segments})
        if pl.gradient_uploads:
            self.exchange_gradients(rnd, meter)
        elif not self.sequential:
            self.step()
        if pl.uploads and (rnd + 1) % self.setup.agg_every == 0:
            self.aggregate(meter)
        compute = {n: p.compute_s for n, p in self.parties.items()}
        total = sum(n for _, n in losses)
        return {"round": rnd + 1, "loss": sum(v * n for v, n in losses) / total,
                "bytes_sent": meter.charged,
                "bytes": meter.record(),
                "levels": {str(k): v for k, v in sorted(meter.by_level.items())},
                "compute_s": compute, "codec_s": self.codec_s,
                "wall_s": time.perf_counter() - start}

    # ------------------------------------------------------------------ gradient uploads
    def exchange_gradients(self, rnd: int, meter: Meter) -> None:
        """Every uploading party sends the gradients of its stages through the codec (charged);
        the receiving party takes them as its own and steps; every party continues from the
        new adapters of every stage (sent back, recorded, not charged)."""
        import torch

        pl = self.setup.placement
        for gi, g in enumerate(pl.gradient_uploads):
            grads = self.parties[g.src].gradients(g.stages)
            flat = torch.cat([t.reshape(-1) for t in grads]).reshape(1, -1)
            blob = self._codec(pack, flat, self.setup.levels[g.level],
                               codec_seed(self.setup.seed, rnd, gi, 0, 2))
            meter.count("gradients", len(blob), g.level, flat.numel())
            got = self._codec(unpack, blob).reshape(-1)
            sizes = [t.numel() for t in grads]
            self.parties[g.dst].set_gradients(g.stages, list(torch.split(got, sizes)))
        for dst in {g.dst for g in pl.gradient_uploads}:
            self.parties[dst].step()
            self.parties[dst].zero_grad()
            stages = sorted({s for g in pl.gradient_uploads if g.dst == dst for s in g.stages})
            fresh = {s: self.parties[dst].adapters(s) for s in stages}
            for name, party in self.parties.items():
                if name != dst:
                    party.zero_grad()
                    for s in stages:
                        party.set_adapters(s, fresh[s])
                    meter.count("broadcast", len(pack_adapters(
                        [t for s in stages for t in fresh[s]], self._dtype(True))))

    # ------------------------------------------------------------------ averaging
    def held(self) -> dict[int, dict[str, list[Any]]]:
        """The copies of every trained stage this process holds: held[stage][party]."""
        return {stage: {name: self.parties[name].adapters(stage) for name in parties
                        if name in self.parties}
                for stage, parties in self.copies.items()}

    def model(self) -> StagedModel:
        """A model of this process (a party's, else the evaluation copy): for shapes."""
        if self.parties:
            return next(iter(self.parties.values())).model
        if self.eval_model is None:
            self.eval_model = self.build()
        return self.eval_model

    def like(self, stages: tuple[int, ...]) -> list[Any]:
        """Tensors shaped as the trainable ones of ``stages`` (to unpack an upload into)."""
        return [p for s in stages for p in self.model().trainable(s)]

    def trained(self, name: str) -> tuple[int, ...]:
        """The stages party ``name`` holds a trained copy of, in order."""
        return tuple(sorted(s for s, parties in self.copies.items() if name in parties))

    def snapshot(self, name: str, upload: bool = False) -> bytes:
        """Everything party ``name`` trains as raw floats: its upload (at the adapters' dtype),
        or an exact fp32 copy for evaluation."""
        party = self.parties[name]
        return pack_adapters([t for s in self.trained(name) for t in party.adapters(s)],
                             self._dtype(upload))

    def _dtype(self, upload: bool) -> int:
        return self.setup.adapter_bytes if upload else 4

    def _split(self, name: str, blob: bytes, upload: bool = False) -> dict[int, list[Any]]:
        """A `snapshot` of party ``name`` back as tensors per stage."""
        stages = self.trained(name)
        tensors = unpack_adapters(blob, self.like(stages), self._dtype(upload))
        out, pos = {}, 0
        for s in stages:
            n = len(self.like((s,)))
            out[s], pos = tensors[pos:pos + n], pos + n
        return out

    def merge(self, held: dict[int, dict[str, list[Any]]], name: str, blob: bytes,
              upload: bool = False) -> None:
        """A party's `snapshot` into ``held``."""
        for s, tensors in self._split(name, blob, upload).items():
            held[s][name] = tensors

    def aggregate(self, meter: Meter, received: dict[str, bytes] | None = None
                  ) -> dict[str, bytes]:
        """The uploads (raw fp32, charged; ``received`` from other processes, else packed
        here), the sample-weighted mean of every stage's copies set into the copies this
        process holds, and the mean each uploading party gets back (a broadcast, not charged)."""
        pl = self.setup.placement
        held = self.held()
        for up in pl.uploads:
            blob = received[up.src] if received is not None else self.snapshot(up.src, True)
            meter.count("adapters", len(blob))
            self.merge(held, up.src, blob, True)  # what the server holds is what it received
        mean = average(self.copies, held)
        for stage, parties in self.copies.items():
            for name in parties:
                if name in self.parties:
                    self.parties[name].set_adapters(stage, mean[stage])
        back = {}
        for up in pl.uploads:
            back[up.src] = pack_adapters([t for s in self.trained(up.src) for t in mean[s]],
                                         self._dtype(True))
            meter.count("broadcast", len(back[up.src]))
        return back

    def receive_mean(self, name: str, blob: bytes) -> None:
        """Party ``name`` takes the mean of its stages the aggregator sent back."""
        for s, tensors in self._split(name, blob, True).items():
            self.parties[name].set_adapters(s, tensors)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, held: dict[int, dict[str, list[Any]]] | None = None
                 ) -> tuple[float, float]:
        """Test accuracy and loss of the model every party would hold after averaging now."""
        import torch
        import torch.nn.functional as F

        if self.eval_model is None:
            self.eval_model = self.build()
        sm = self.eval_model
        mean = average(self.copies, self.held() if held is None else held)
        for stage, tensors in mean.items():
            with torch.no_grad():
                for p, t in zip(sm.trainable(stage), tensors, strict=True):
                    p.copy_(t)
        data = self.setup.data
        correct, loss = 0, 0.0
        with torch.no_grad():
            for i in range(0, len(data.y_test), EVAL_BATCH):
                h = torch.from_numpy(data.x_test[i:i + EVAL_BATCH])
                for stage in sm.stages[:-1]:
                    h = stage(h)
                logits = sm.logits(h)
                y = torch.from_numpy(data.y_test[i:i + EVAL_BATCH])
                correct += int((logits.argmax(dim=1) == y).sum())
                loss += float(F.cross_entropy(logits, y, reduction="sum"))
        return correct / len(data.y_test), loss / len(data.y_test)

