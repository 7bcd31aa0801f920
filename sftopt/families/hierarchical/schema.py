"""The `hierarchical` family's schema: its instance (docs/model.md section 8) and its plan."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ...core.schema import (
    Codec,
    InstanceBase,
    ModelProfile,
    PathLoss,
    Positive,
    Strict,
    TrainingBase,
    duplicate_ids,
)
from .arrays import Arrays

THREE_TIER, TWO_TIER = "three-tier", "two-tier"  # plan classes


class Training(TrainingBase):
    level: int = Field(default=0, ge=0)  # codec level on both links (radio and backhaul)
    associate: bool = False  # the solver chooses the edge of every user that names none
    min_user_cut: int = Field(default=0, ge=0)  # s1 >= this (0: only the embedding)
    max_edge_cut: int | None = Field(default=None, ge=1)  # s2 <= this (default L)


class Cloud(Strict):
    flops: float = Positive
    memory_bytes: float = Positive


class Edge(Strict):
    """An edge server with its cell: it serves its users one at a time with the whole band."""

    id: str = Field(min_length=1)
    flops: float = Positive
    memory_bytes: float = Positive
    tx_power_w: float = Positive  # downlink power in its cell
    bandwidth_hz: float = Positive  # the cell's band
    backhaul_bps: float = Positive  # edge <-> cloud rate, each way


class Radio(Strict):
    noise_dbm_hz: float = Field(allow_inf_nan=False)
    pathloss: PathLoss


class User(Strict):
    """A user: compute, memory, radio, batch, and its edge (``edge``: an edge id; left out when
    the solver associates). The large-scale gain to an edge is ``gain`` or ``distance_m``: one
    number (to its own edge) or a list with one entry per edge (needed when the edge is left to
    the solver)."""

    id: str = Field(min_length=1)
    flops: float = Positive
    memory_bytes: float = Positive
    tx_power_w: float = Positive
    batch: int = Field(gt=0)
    edge: str | None = None
    gain: float | list[float] | None = None
    distance_m: float | list[float] | None = None

    @model_validator(mode="after")
    def _one_gain(self) -> User:
        if (self.gain is None) == (self.distance_m is None):
            both = "both" if self.gain is not None else "neither"
            raise ValueError(f"exactly one of 'gain' and 'distance_m'; got {both}")
        values = self.gain if self.gain is not None else self.distance_m
        values = values if isinstance(values, list) else [values]
        if not values or any(not (v > 0 and v < float("inf")) for v in values):
            field = "gain" if self.gain is not None else "distance_m"
            raise ValueError(f"{field}: finite numbers > 0 (one, or one per edge); got "
                             f"{values}")
        return self


class HierarchicalInstance(InstanceBase):
    """A `hierarchical` instance: users, edge servers (each with its cell) and one cloud; a
    plan cuts the model twice per edge and, with ``training.associate``, picks users' edges.
    Immutable once loaded."""

    family: Literal["hierarchical"]
    model: ModelProfile
    training: Training
    cloud: Cloud
    radio: Radio
    codec: Codec
    edges: list[Edge] = Field(min_length=1)
    users: list[User] = Field(min_length=1)

    @model_validator(mode="after")
    def _cross_checks(self) -> HierarchicalInstance:
        L, tr = self.model.n_blocks, self.training
        hi = L if tr.max_edge_cut is None else tr.max_edge_cut
        if hi > L:
            raise ValueError(f"training.max_edge_cut: at most L = {L} (the cloud keeps the "
                             f"output stage); got {hi}")
        if tr.min_user_cut >= hi:
            raise ValueError(f"training.min_user_cut {tr.min_user_cut} must be below "
                             f"max_edge_cut {hi} (s1 < s2)")
        c, levels = tr.level, self.codec.levels
        if c >= len(levels):
            raise ValueError(f"training.level indexes codec.levels (0..{len(levels) - 1}); got "
                             f"{c}")
        if levels[c].distortion > tr.max_distortion:
            raise ValueError(f"training.level {c} has distortion {levels[c].distortion:g} > "
                             f"max_distortion {tr.max_distortion:g}")
        for what, items in (("edge", self.edges), ("user", self.users)):
            dup = duplicate_ids(items)
            if dup:
                raise ValueError(f"unique {what} ids; got duplicates {dup}")
        ids = [e.id for e in self.edges]
        for u in self.users:
            values = u.gain if u.gain is not None else u.distance_m
            if u.edge is not None and u.edge not in ids:
                raise ValueError(f"user {u.id!r}: edge {u.edge!r} is not one of the edges "
                                 f"{ids}")
            if u.edge is None and not tr.associate:
                raise ValueError(f"user {u.id!r} names no edge: give 'edge', or set "
                                 f"training.associate to let the solver choose")
            if isinstance(values, list) and len(values) != len(ids):
                raise ValueError(f"user {u.id!r}: a list of gains or distances has one entry "
                                 f"per edge ({len(ids)}); got {len(values)}")
            if u.edge is None and not isinstance(values, list):
                raise ValueError(f"user {u.id!r}: its edge is left to the solver, so its gain "
                                 f"or distance is a list with one entry per edge")
        return self

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    @property
    def arrays(self) -> Arrays:
        """Numpy view of everything the cost model needs, built once."""
        return self.cached("arrays", lambda: Arrays(self))


# --------------------------------------------------------------------------- plan
class EdgePlan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    user_cut: int = Field(ge=0)  # s1: users run stages 0..s1
    edge_cut: int = Field(ge=1)  # s2: the edge runs s1+1..s2, the cloud the rest
    cloud_share: float = Field(ge=0)  # phi_e
    users: list[str]  # its users' ids, in the order it serves them


class HierarchicalPeakMemory(BaseModel):
    """The left-hand sides of the memory constraints, bytes."""

    model_config = ConfigDict(extra="forbid")
    cloud: float
    edges: list[float]
    users: list[float]


class HierarchicalPlan(BaseModel):
    """A `hierarchical` plan: per edge its two cuts, its share of the cloud and its users in
    serving order (`Result.objective` is the epoch delay, s); or, the two-tier comparison, the
    `split` plan of the same users served concurrently by the cloud (``two_tier``)."""

    model_config = ConfigDict(extra="forbid")
    scheme: Literal["three-tier", "two-tier"] = THREE_TIER
    epoch_delay_s: float | None = None
    rounds: float | None = None
    total_delay_s: float | None = None
    bytes_per_epoch: float | None = None
    peak_memory_bytes: HierarchicalPeakMemory | None = None
    edges: list[EdgePlan] = Field(default_factory=list)
    two_tier: dict[str, Any] | None = None  # the split plan (two-tier scheme only)

    @property
    def plan_class(self) -> str:
        return self.scheme
