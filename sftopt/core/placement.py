"""A placement: which party runs which stages for whose data, and what crosses which link.

It is what a family's plan means to a runtime: the executor runs any family's plan through its
placement, so one runtime serves every family. Stages are indexed as in the model profile
(0 = input, 1..L = blocks, L+1 = output).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal

Role = Literal["device", "server", "edge", "cloud"]


@dataclass(frozen=True)
class Party:
    """A machine: a device, the edge server, an edge of a hierarchy or the cloud."""

    name: str
    role: Role


@dataclass(frozen=True)
class Segment:
    """``party`` runs stages first..last (inclusive) on one batch and trains the adapters of
    the stages in ``trains``."""

    party: str
    first: int
    last: int
    trains: tuple[int, ...]

    @property
    def stages(self) -> range:
        return range(self.first, self.last + 1)


@dataclass(frozen=True)
class Link:
    """What crosses between two consecutive segments of a route each round: the hidden state
    forward and (``backward``) its gradient back, ``elems`` elements per sample, both at codec
    ``level``."""

    src: str
    dst: str
    level: int
    elems: float
    backward: bool = True


@dataclass(frozen=True)
class Route:
    """The path of one data owner's batch: segments in order, ``links[i]`` joining segments
    i and i+1."""

    owner: str
    batch: int
    segments: tuple[Segment, ...]
    links: tuple[Link, ...]

    def __post_init__(self) -> None:
        if len(self.links) != max(len(self.segments) - 1, 0):
            raise ValueError(f"route of {self.owner}: {len(self.segments)} segments need "
                             f"{len(self.segments) - 1} links, got {len(self.links)}")


@dataclass(frozen=True)
class Upload:
    """Every ``every`` rounds ``src`` sends the adapters of ``stages`` to ``dst`` for averaging.

    ``owner``: whose copy travels (None: ``src``'s own); another party's means ``src`` relays
    the copy it received from ``owner`` in the same round (an edge forwarding its user's
    adapters to the cloud). ``after``: the index of the route after whose turn (and step) it
    is sent (None: at the end of the round). Averaging happens at the end of the round, on
    the last copy of each owner that reached the party no upload leaves (the aggregator)."""

    src: str
    dst: str
    stages: tuple[int, ...]
    every: int
    owner: str | None = None
    after: int | None = None

    @property
    def of(self) -> str:
        """The party whose adapters this upload carries."""
        return self.src if self.owner is None else self.owner


@dataclass(frozen=True)
class GradientUpload:
    """Every round ``src`` sends the gradient of the adapters of ``stages`` to ``dst`` at codec
    ``level``; ``dst`` takes the optimizer step and every party continues from the new
    adapters (their return is not charged)."""

    src: str
    dst: str
    stages: tuple[int, ...]
    level: int


@dataclass(frozen=True)
class Placement:
    """A plan as a runtime sees it.

    ``groups``: routes (by index) that run one after another form a group; groups run at the
    same time (every route its own group: all devices in parallel; one group: sequential).
    """

    family: str
    model: str
    n_stages: int
    parties: tuple[Party, ...]
    routes: tuple[Route, ...]
    groups: tuple[tuple[int, ...], ...]
    uploads: tuple[Upload, ...] = field(default=())
    gradient_uploads: tuple[GradientUpload, ...] = field(default=())

    @property
    def average_every(self) -> int:
        """Rounds between adapter averagings (1 when nothing is uploaded for averaging)."""
        return min((u.every for u in self.uploads), default=1)

    def party(self, name: str) -> Party:
        for p in self.parties:
            if p.name == name:
                return p
        raise KeyError(f"no party {name!r} in the placement")

    def copies(self) -> dict[int, dict[str, int]]:
        """Per stage, the parties holding a trained copy of its adapters and the samples each
        copy sees per round: the weights of the sample-weighted average of those copies."""
        out: dict[int, dict[str, int]] = defaultdict(dict)
        for route in self.routes:
            for seg in route.segments:
                for i in seg.trains:
                    out[i][seg.party] = out[i].get(seg.party, 0) + route.batch
        return dict(out)
