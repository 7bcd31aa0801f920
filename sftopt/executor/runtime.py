"""The runtime: a placement's routes trained round by round on real data.

Every route is a chain of segments on parties (`split`: a device on stages 0..s_k, then the
server on s_k+1..L+1; `hierarchical`: a user, its edge, the cloud). Per round each route draws
its owner's batch; the first party runs its stages and sends the hidden state through the codec
at the link's level (with the labels, which the model does not charge); every next party
decodes it, runs its stages and sends its own output on, the last computes the loss. Then the
gradients go back down the chain: the last party back-propagates the loss, every party sends the
gradient of its input back through the codec, unweighted, and the party below back-propagates
it into its own adapters. A party that serves several routes before it steps (the server)
accumulates their gradients, each route weighted by its share of the samples it serves, and
steps once; a device steps on its own batch. Groups of routes that run one after another (a
sequential schedule, an edge serving its users) step after each route; a party serving routes
of several groups (the cloud) takes them round-robin over the groups, the order every mode
uses. Uploads carry adapters towards the aggregator (the party no upload leaves), some after a
route's turn and others at the end of the round, relayed where a party forwards another's copy;
every `agg_every` rounds every stage's copies are averaged, weighted by the samples each copy
trained on (`Placement.copies`), and each uploading party gets the mean of its stages back
along its upload path (recorded, not charged).

A placement with gradient uploads (`cooperative`: each device trains its own blocks on the
whole model) instead has every device send the gradients of its blocks through the codec each
round; the receiving party (the server) steps and every device continues from its adapters. A
link without a backward direction (the offloading baseline) sends no gradient back.

One code path serves one process and one process per party: what crosses between parties in
different processes goes through a `Net` (dist.py's, over torch.distributed); in one process
every party is local and nothing is sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Any, Protocol

import numpy as np

from ..core.placement import Link, Placement, Route, Segment, Upload
from ..core.placement import Party as PartySpec
from ..torchrt.models import StagedModel
from . import faults
from .data import Sampler, TaskData
from .faults import CorruptMessage
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
    _samplers: dict[str, Sampler] = field(default_factory=dict, repr=False)

    def samplers(self) -> dict[str, Sampler]:
        """Every device's sampler (made on first use), by route owner."""
        if not self._samplers:
            pl = self.devices or self.placement
            self._samplers.update({r.owner: Sampler(s, r.batch, (self.seed, k))
                                   for k, (r, s) in enumerate(zip(pl.routes, self.split,
                                                                  strict=True))})
        return self._samplers

    def batch(self, owner: str) -> tuple[Any, Any]:
        """The next batch of a route owner (a device; "central": every device's, in order)."""
        import torch

        devs = self.samplers()
        if owner == "central":
            idx = all_owners(self.devices or self.placement, devs)()
        else:
            idx = devs[owner].next()
        return (torch.from_numpy(self.data.x_train[idx]),
                torch.from_numpy(self.data.y_train[idx]))


class Net(Protocol):
    """Where the parties are: which ones this process hosts, and the bytes to and from the
    process hosting another."""

    def local(self, party: str) -> bool: ...

    def send(self, party: str, data: bytes) -> None: ...

    def recv(self, party: str) -> bytes: ...


class Local:
    """Every party in this process: nothing crosses a process boundary."""

    def local(self, party: str) -> bool:
        return True

    def send(self, party: str, data: bytes) -> None:
        raise AssertionError(f"nothing is sent in one process (to {party})")

    def recv(self, party: str) -> bytes:
        raise AssertionError(f"nothing is received in one process (from {party})")


LOCAL = Local()


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


def service_order(placement: Placement) -> list[int]:
    """The order routes run in, in every mode: round-robin over the groups (the first route of
    every group, then the second, ...), since groups run at the same time and a party serving
    several (the cloud) takes their routes as they come."""
    groups = [g for g in placement.groups if g]
    order = [g[k] for k in range(max((len(g) for g in groups), default=0)) for g in groups
             if k < len(g)]
    if sorted(order) != list(range(len(placement.routes))):
        raise ValueError(f"the placement's groups {placement.groups} must hold every route "
                         f"0..{len(placement.routes) - 1} exactly once")
    return order


def weights(placement: Placement) -> dict[tuple[int, str], float]:
    """Per (route, party of one of its segments): the route's share of the samples that party
    trains on before it steps (1 where it steps after every route)."""
    sequential = any(len(g) > 1 for g in placement.groups)
    served: dict[str, int] = {}
    for r in placement.routes:
        for name in {s.party for s in r.segments}:
            served[name] = served.get(name, 0) + r.batch
    return {(i, s.party): 1.0 if sequential else r.batch / served[s.party]
            for i, r in enumerate(placement.routes) for s in r.segments}


def aggregator(placement: Placement) -> str | None:
    """The party the uploads end at (no upload leaves it): where copies are averaged."""
    sinks = sorted({u.dst for u in placement.uploads} - {u.src for u in placement.uploads})
    if len(sinks) > 1 or (placement.uploads and not sinks):
        raise ValueError(f"the uploads must end at one party that sends none on; they end at "
                         f"{sinks or 'none (a cycle)'}")
    return sinks[0] if sinks else None


def return_paths(placement: Placement) -> dict[str, tuple[tuple[str, ...], tuple[int, ...]]]:
    """Per party whose adapters reach the aggregator: the path the mean of its stages takes
    back (the aggregator, the relays, the party: its upload path reversed) and those stages."""
    sink = aggregator(placement)
    out: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {}
    for up in placement.uploads:
        if up.dst != sink or up.of in out:
            continue
        path, cur = [sink], up.src
        while True:
            path.append(cur)
            if cur == up.of:
                break
            hop = [u for u in placement.uploads if u.dst == cur and u.of == up.of]
            if not hop or cur in path[:-1]:
                raise ValueError(f"{cur} relays the adapters of {up.of} but receives none "
                                 "from it")
            cur = hop[-1].src
        out[up.of] = (tuple(path), up.stages)
    return out


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
    """A placement's parties, each with its own model copy: all of them in this process, or
    (``parties``) the ones this process hosts."""

    def __init__(self, setup: Setup, build: Callable[[], StagedModel],
                 parties: set[str] | None = None):
        self.setup = setup
        pl = setup.placement
        self.route_index = {r.owner: i for i, r in enumerate(pl.routes)}
        for r in pl.routes:
            # a gradient stops where a link has no backward direction: none can pass below it
            if any(a.backward and not b.backward for a, b in pairwise(r.links)):
                raise ValueError(f"route of {r.owner}: a link carries gradients back below a "
                                 "link that carries none")
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
        order = [p.name for p in pl.parties if p.name in held] + \
            sorted(set(held) - {p.name for p in pl.parties})
        self.parties = {name: Party(name, build(), held[name], setup.lr, trains[name])
                        for name in order if name in wanted}
        self.weights = weights(pl)
        self.sequential = any(len(g) > 1 for g in pl.groups)
        self.order = service_order(pl)
        self.copies = pl.copies()
        self.sink = aggregator(pl)
        self.returns = return_paths(pl)
        self.inbox: dict[tuple[str, str], bytes] = {}  # (receiving party, owner): its upload
        self.eval_model: StagedModel | None = None
        self.build = build
        self.codec_s = 0.0  # thread CPU time encoding and decoding, this round
        self.rnd = 0  # the round being played (0-based): named by a fault

    # ------------------------------------------------------------------ one route
    def _codec(self, fn: Callable[..., Any], *args: Any) -> Any:
        start = time.thread_time()
        try:
            return fn(*args)
        finally:
            self.codec_s += time.thread_time() - start

    def level(self, link: Link) -> Level:
        return self.setup.levels[link.level]

    def receive(self, blob: bytes, elements: int, what: str) -> Any:
        """A codec message decoded (timed as codec work); `CorruptMessage` naming the round and
        ``what`` it is when it cannot be decoded into ``elements`` elements."""
        try:
            return self._codec(unpack, blob, elements)
        except ValueError as exc:
            raise CorruptMessage(f"round {self.rnd + 1}: {what} arrived corrupt ({exc})"
                                 ) from None

    def adapters_in(self, blob: bytes, stages: tuple[int, ...], what: str,
                    upload: bool = True) -> dict[int, list[Any]]:
        """`unpack_stages`, a blob of the wrong length named as a `CorruptMessage`."""
        try:
            return self.unpack_stages(blob, stages, upload)
        except ValueError as exc:
            raise CorruptMessage(f"round {self.rnd + 1}: {what} arrived corrupt ({exc})"
                                 ) from None

    def alone(self, ri: int, route: Route, x: Any, y: Any) -> float:
        """A route of one segment: its party computes the loss itself."""
        seg = route.segments[0]
        party = self.parties[seg.party]
        loss = party.forward(seg, x, y)
        w = self.weights[(ri, seg.party)]
        party.backward(loss * w if w != 1.0 else loss)
        return float(loss.detach())

    def run_route(self, ri: int, route: Route, rnd: int, meter: Meter, net: Net = LOCAL
                  ) -> float | None:
        """The segments of route ``ri`` this process hosts: hidden states up the chain, the
        loss at its end, gradients back down. Every message is counted by its sender. Returns
        the loss where this process holds the last segment (else None)."""
        import torch

        segs, links = route.segments, route.links
        here = [net.local(s.party) for s in segs]
        if not any(here):
            return None
        if len(segs) == 1:
            x, y = self.setup.batch(route.owner)
            return self.alone(ri, route, x, y)
        n, seed = len(segs), self.setup.seed
        states: dict[int, tuple[Any, Any]] = {}  # segment: (its input from below, its output)
        carry, y, loss = b"", None, None
        for j in range(n):  # forward, up the chain
            if not here[j]:
                continue
            party = self.parties[segs[j].party]
            h = None
            if j == 0:
                x, y = self.setup.batch(route.owner)
            else:
                if not here[j - 1]:
                    src = segs[j - 1].party
                    y = torch.from_numpy(np.frombuffer(net.recv(src), dtype=np.int64).copy())
                    carry = net.recv(src)
                x = h = self.receive(carry, round(route.batch * links[j - 1].elems),
                                     f"the hidden state {segs[j - 1].party} sent "
                                     f"{segs[j].party} (route of {route.owner})")
                if links[j - 1].backward:
                    h.requires_grad_(True)
            out = party.forward(segs[j], x, y)
            if j == n - 1:
                w = self.weights[(ri, segs[j].party)]
                party.backward(out * w if w != 1.0 else out)
                loss = float(out.detach())
            else:
                link = links[j]
                carry = faults.message(segs[j].party, rnd, self._codec(
                    pack, out, self.level(link), codec_seed(seed, rnd, ri, j, 0)))
                meter.count("up", len(carry), link.level, out.numel(), segs[j].last)
                meter.count("labels", y.numel() * y.element_size())
                if not here[j + 1]:
                    net.send(segs[j + 1].party, y.numpy().tobytes())
                    net.send(segs[j + 1].party, carry)
            states[j] = (h, out)
        back = b""
        for j in reversed(range(n)):  # backward, down the chain
            if not here[j]:
                continue
            name = segs[j].party
            h, out = states[j]
            w = self.weights[(ri, name)]
            if j < n - 1:
                if not links[j].backward:  # nothing comes back, so nothing goes further down
                    continue
                if not here[j + 1]:
                    back = net.recv(segs[j + 1].party)
                grad = self.receive(back, out.numel(),
                                    f"the gradient {segs[j + 1].party} sent {name} (route of "
                                    f"{route.owner})").reshape(out.shape)
                if out.requires_grad:  # a cut-0 device has nothing to train: it stops here
                    self.parties[name].backward(out, grad * w if w != 1.0 else grad)
            if j > 0 and links[j - 1].backward:
                g = torch.zeros_like(h) if h.grad is None else h.grad
                g = g if w == 1.0 else g / w  # the gradient of the input, unweighted
                back = faults.message(name, rnd, self._codec(
                    pack, g, self.level(links[j - 1]), codec_seed(seed, rnd, ri, j - 1, 1)))
                meter.count("down", len(back), links[j - 1].level, g.numel(),
                            segs[j - 1].last)
                if not here[j - 1]:
                    net.send(segs[j - 1].party, back)
        return loss

    # ------------------------------------------------------------------ a round
    def start_round(self) -> None:
        self.codec_s = 0.0
        self.inbox.clear()
        for p in self.parties.values():
            p.zero_grad()
            p.compute_s = 0.0

    def step(self, names: set[str] | None = None) -> None:
        for name, p in self.parties.items():
            if names is None or name in names:
                p.step()
                p.zero_grad()

    def play(self, rnd: int, net: Net = LOCAL) -> tuple[Meter, dict[int, tuple[float, int]]]:
        """This process's part of one round: every route, the steps, the uploads and, when the
        round ends an aggregation period, the averaging. Returns what this process sent and
        the losses (with their batch sizes) of the routes it closes."""
        pl = self.setup.placement
        meter = Meter()
        self.rnd = rnd
        for name in self.parties:
            faults.round_starts(name, rnd)
        self.start_round()
        averaging = bool(pl.uploads) and (rnd + 1) % self.setup.agg_every == 0
        losses: dict[int, tuple[float, int]] = {}
        for ri in self.order:
            route = pl.routes[ri]
            loss = self.run_route(ri, route, rnd, meter, net)
            if loss is not None:
                losses[ri] = (loss, route.batch)
            if self.sequential:
                self.step({s.party for s in route.segments})
            if averaging:
                self.send_uploads(ri, meter, net)
        if pl.gradient_uploads:
            self.exchange_gradients(rnd, meter)
        elif not self.sequential:
            self.step()
        if averaging:
            self.aggregate(meter, net)
        return meter, losses

    def record(self, rnd: int, meter: Meter, losses: dict[int, tuple[float, int]],
               compute: dict[str, float], codec_s: float, wall_s: float) -> dict[str, Any]:
        """A round's record: the sample-weighted loss (summed in service order, so every mode
        adds the same numbers in the same order), bytes, compute and codec time."""
        missing = [ri for ri in self.order if ri not in losses]
        if missing:
            raise RuntimeError(f"round {rnd + 1}: no loss arrived for routes {missing}")
        done = [losses[ri] for ri in self.order]
        total = sum(n for _, n in done)
        names = [p.name for p in self.setup.placement.parties]
        ordered = {k: compute[k] for k in names if k in compute}
        ordered.update({k: v for k, v in compute.items() if k not in ordered})
        return {"round": rnd + 1, "loss": sum(v * n for v, n in done) / total,
                "bytes_sent": meter.charged,
                "bytes": meter.record(),
                "levels": {str(k): v for k, v in sorted(meter.by_level.items())},
                "level_cuts": meter.cut_record(),
                "compute_s": ordered, "codec_s": codec_s, "wall_s": wall_s}

    def run_round(self, rnd: int) -> dict[str, Any]:
        """One round of every route in this process; adapters averaged when the round ends an
        aggregation period. Returns the round's record (loss, bytes, compute time per party)."""
        start = time.perf_counter()
        meter, losses = self.play(rnd)
        return self.record(rnd, meter, losses,
                           {n: p.compute_s for n, p in self.parties.items()}, self.codec_s,
                           time.perf_counter() - start)

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
            blob = faults.message(g.src, rnd, self._codec(
                pack, flat, self.setup.levels[g.level], codec_seed(self.setup.seed, rnd, gi, 0, 2)))
            meter.count("gradients", len(blob), g.level, flat.numel())
            got = self.receive(blob, flat.numel(),
                               f"the gradients {g.src} uploaded to {g.dst}").reshape(-1)
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

    def pack_stages(self, name: str, stages: tuple[int, ...], upload: bool = False) -> bytes:
        """The adapters of ``stages`` party ``name`` holds as raw floats: an upload (at the
        adapters' dtype), or an exact fp32 copy for evaluation."""
        party = self.parties[name]
        return pack_adapters([t for s in stages for t in party.adapters(s)], self._dtype(upload))

    def snapshot(self, name: str, upload: bool = False) -> bytes:
        """Everything party ``name`` trains as raw floats (see `pack_stages`)."""
        return self.pack_stages(name, self.trained(name), upload)

    def _dtype(self, upload: bool) -> int:
        return self.setup.adapter_bytes if upload else 4

    def unpack_stages(self, blob: bytes, stages: tuple[int, ...], upload: bool = False
                      ) -> dict[int, list[Any]]:
        """`pack_stages` back as tensors per stage."""
        tensors = unpack_adapters(blob, self.like(stages), self._dtype(upload))
        out, pos = {}, 0
        for s in stages:
            n = len(self.like((s,)))
            out[s], pos = tensors[pos:pos + n], pos + n
        return out

    def merge(self, held: dict[int, dict[str, list[Any]]], name: str, blob: bytes,
              stages: tuple[int, ...] | None = None, upload: bool = False,
              what: str | None = None) -> None:
        """A party's copy of ``stages`` (default: all it trains) into ``held`` (``what`` the
        blob is, to name it if it arrived corrupt)."""
        stages = self.trained(name) if stages is None else stages
        what = what or f"the copy of {name}'s adapters"
        for s, tensors in self.adapters_in(blob, stages, what, upload).items():
            held[s][name] = tensors

    def send_uploads(self, after: int | None, meter: Meter, net: Net = LOCAL) -> None:
        """The uploads sent after route ``after`` (None: at the end of the round), in the
        placement's order: raw floats at the adapters' dtype, charged and counted by their
        sender; a relay forwards the copy it received from the owner this round."""
        for up in self.setup.placement.uploads:
            if up.after != after:
                continue
            if net.local(up.src):
                blob = faults.message(up.src, self.rnd, self._outgoing(up), "truncate")
                meter.count("adapters", len(blob))
                if net.local(up.dst):
                    self.inbox[(up.dst, up.of)] = blob
                else:
                    net.send(up.dst, blob)
            elif net.local(up.dst):
                self.inbox[(up.dst, up.of)] = net.recv(up.src)

    def _outgoing(self, up: Upload) -> bytes:
        if up.owner is None or up.owner == up.src:
            return self.pack_stages(up.src, up.stages, upload=True)
        blob = self.inbox.get((up.src, up.owner))
        if blob is None:
            raise ValueError(f"{up.src} relays the adapters of {up.owner}, which it has not "
                             "received this round (an upload from it must come first)")
        return blob

    def aggregate(self, meter: Meter, net: Net = LOCAL) -> None:
        """The end-of-round uploads, then, at the aggregator, the sample-weighted mean of every
        stage's copies (each uploading party's copy as it arrived; every other copy this
        process holds as it is) set into the copies this process holds; then each uploading
        party gets the mean of its stages back along its upload path, reversed (a broadcast:
        recorded per hop, not charged)."""
        self.send_uploads(None, meter, net)
        mean: dict[int, list[Any]] = {}
        if self.sink is not None and net.local(self.sink):
            held = self.held()
            for owner, (_, stages) in self.returns.items():
                blob = self.inbox.get((self.sink, owner))
                if blob is None:
                    raise ValueError(f"no upload of {owner}'s adapters reached {self.sink} "
                                     "this round")
                self.merge(held, owner, blob, stages, upload=True,
                           what=f"the upload of {owner}'s adapters to {self.sink}")
            mean = average(self.copies, held)
            for stage, parties in self.copies.items():
                for name in parties:
                    if name in self.parties:
                        self.parties[name].set_adapters(stage, mean[stage])
        for owner, (path, stages) in self.returns.items():
            blob = b""
            if net.local(path[0]):
                blob = pack_adapters([t for s in stages for t in mean[s]], self._dtype(True))
            for a, b in pairwise(path):
                if net.local(a):
                    meter.count("broadcast", len(blob))
                    if not net.local(b):
                        net.send(b, blob)
                elif net.local(b):
                    blob = net.recv(a)
            if net.local(owner) and owner in self.parties:  # what it received, in every mode
                what = f"the mean of {owner}'s stages sent back to it"
                for s, tensors in self.adapters_in(blob, stages, what).items():
                    self.parties[owner].set_adapters(s, tensors)

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
