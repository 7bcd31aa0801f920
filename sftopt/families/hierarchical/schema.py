"""The `hierarchical` family's schema: its instance (docs/model.md section 8) and its plan."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from ...core.errors import Problem, short
from ...core.schema import (
    BANDWIDTH,
    FLOPS,
    MAX_CUT,
    MAX_FLEET,
    MAX_LEVELS,
    MEMORY,
    MODEL_DESCRIPTION,
    NOISE,
    PLAN_INDEX,
    POWER,
    Codec,
    Distance,
    Gain,
    InstanceBase,
    Int,
    Integer,
    ModelRef,
    Num,
    PathLoss,
    Seq,
    Strict,
    T,
    TrainingBase,
    codec_cut_problems,
    distance_gain_problems,
    duplicate_ids,
    integer,
    num,
    raise_problems,
    text,
)
from .arrays import Arrays

THREE_TIER, TWO_TIER = "three-tier", "two-tier"  # plan classes
MAX_EDGES = 10_000


class Training(TrainingBase):
    """Training figures of `hierarchical`."""

    level: Int = integer(0, MAX_LEVELS - 1, "codec level on both links, radio and backhaul "
                         "(an index into codec.levels)", default=0)
    associate: bool = Field(False, description="the solver chooses the edge of every user "
                                               "that names none")
    min_user_cut: Int = integer(0, MAX_CUT, "s1 >= this (stage index; 0: only the embedding)",
                                default=0)
    max_edge_cut: Integer(1, MAX_CUT) | None = Field(None, description="s2 <= this (stage "
                                                     "index; default L)")


class Cloud(Strict):
    """The cloud: compute and memory, shared by the edges."""

    flops: Num = num(*FLOPS, "sustained compute (FLOP/s)")
    memory_bytes: Num = num(*MEMORY, "memory (bytes)")


class Edge(Strict):
    """An edge server with its cell: it serves its users one at a time with the whole band."""

    id: str = text("the edge's id, unique in the instance")
    flops: Num = num(*FLOPS, "sustained compute (FLOP/s)")
    memory_bytes: Num = num(*MEMORY, "memory (bytes)")
    tx_power_w: Num = num(*POWER, "downlink transmit power in its cell (W)")
    bandwidth_hz: Num = num(*BANDWIDTH, "the cell's band (Hz)")
    backhaul_bps: Num = num(1, 1e13, "edge <-> cloud rate, each way (bit/s)")


class Radio(Strict):
    """The radio of every cell: noise and path loss."""

    noise_dbm_hz: Num = num(*NOISE, "noise power spectral density (dBm/Hz)")
    pathloss: PathLoss = Field(description="the path-loss law turning distance_m into a gain")




def _one_or_list(value: Any) -> str:
    return "tagged-list" if isinstance(value, list | tuple) else "tagged-number"


# a number (to the user's own edge) or a list with one per edge; the tag picks the branch, so
# an error speaks of the branch the value is in (the "tagged-" path parts are left out)
OnePerEdge = Annotated[Annotated[T, Tag("tagged-number")] | Annotated[Seq[T], Tag("tagged-list")],
                       Discriminator(_one_or_list)]


class User(Strict):
    """A user: compute, memory, radio, batch, and its edge (``edge``: an edge id; left out when
    the solver associates). The large-scale gain to an edge is ``gain`` or ``distance_m``: one
    number (to its own edge) or a list with one entry per edge (needed when the edge is left to
    the solver)."""

    id: str = text("the user's id, unique in the instance")
    flops: Num = num(*FLOPS, "sustained compute (FLOP/s)")
    memory_bytes: Num = num(*MEMORY, "memory (bytes)")
    tx_power_w: Num = num(*POWER, "transmit power (W)")
    batch: Int = integer(1, 1_000_000, "training samples per turn (samples)")
    edge: str | None = Field(None, min_length=1, max_length=256,
                             description="its edge's id (left out: the solver associates)")
    gain: OnePerEdge[Gain] | None = Field(
        None, description="large-scale power gain (linear) to its edge, or one per edge")
    distance_m: OnePerEdge[Distance] | None = Field(
        None, description="distance (m) to its edge, or one per edge")

    @model_validator(mode="after")
    def _one_gain(self) -> User:
        if (self.gain is None) == (self.distance_m is None):
            both = "both" if self.gain is not None else "neither"
            raise ValueError(f"exactly one of 'gain' and 'distance_m'; got {both}")
        values = self.gain if self.gain is not None else self.distance_m
        if isinstance(values, tuple) and not values:
            field = "gain" if self.gain is not None else "distance_m"
            raise ValueError(f"{field}: one number, or one per edge; got an empty list")
        return self


class HierarchicalInstance(InstanceBase):
    """A `hierarchical` instance: users, edge servers (each with its cell) and one cloud; a
    plan cuts the model twice per edge and, with ``training.associate``, picks users' edges.
    Immutable once loaded (`with_device` changes a user, `with_edge` an edge, `with_server`
    the cloud, `with_channel` the radio)."""

    family: Literal["hierarchical"] = Field(description="the problem family")
    model: ModelRef = Field(description=MODEL_DESCRIPTION)
    training: Training = Field(description="training figures")
    cloud: Cloud = Field(description="the cloud")
    radio: Radio = Field(description="the radio of every cell")
    codec: Codec = Field(description="the codec levels")
    edges: Seq[Edge] = Field(min_length=1, max_length=MAX_EDGES, description="the edge servers")
    users: Seq[User] = Field(min_length=1, max_length=MAX_FLEET, description="the users")

    fleet_field: ClassVar[str] = "users"
    server_field: ClassVar[str] = "cloud"
    channel_field: ClassVar[str] = "radio"

    @model_validator(mode="after")
    def _cross_checks(self) -> HierarchicalInstance:
        L, tr, problems = self.model.n_blocks, self.training, []
        hi = L if tr.max_edge_cut is None else tr.max_edge_cut
        if hi > L:
            problems.append(Problem("$.training.max_edge_cut", f"at most L = {L} (the cloud "
                                    "keeps the output stage)", str(hi)))
        if tr.min_user_cut >= hi:
            problems.append(Problem("$.training.min_user_cut", f"below max_edge_cut {hi} "
                                    "(s1 < s2)", str(tr.min_user_cut)))
        c, levels = tr.level, self.codec.levels
        if c >= len(levels):
            problems.append(Problem("$.training.level", "an index into codec.levels "
                                    f"(0..{len(levels) - 1})", str(c)))
        elif levels[c].distortion > tr.max_distortion:
            problems.append(Problem("$.training.level", "a level with distortion <= "
                                    f"max_distortion {tr.max_distortion:g}",
                                    f"level {c}, distortion {levels[c].distortion:g}"))
        for what, items in (("edges", self.edges), ("users", self.users)):
            dup = duplicate_ids(items)
            if dup:
                problems.append(Problem(f"$.{what}", f"unique {what[:-1]} ids",
                                        f"duplicates {short(dup)}"))
        ids = {e.id: j for j, e in enumerate(self.edges)}
        far = []
        for k, u in enumerate(self.users):
            at = f"$.users[{k}]"
            values = u.gain if u.gain is not None else u.distance_m
            field = "gain" if u.gain is not None else "distance_m"
            if u.edge is not None and u.edge not in ids:
                problems.append(Problem(f"{at}.edge", "the id of one of the edges",
                                        f"{short(u.edge)}, which is not one of the edges"))
            if u.edge is None and not tr.associate:
                problems.append(Problem(f"{at}.edge", "an edge id, or training.associate "
                                        "true to let the solver choose",
                                        "nothing: the user names no edge"))
            if isinstance(values, tuple) and len(values) != len(ids):
                problems.append(Problem(f"{at}.{field}", f"one entry per edge ({len(ids)})",
                                        f"{len(values)} entries"))
            if u.edge is None and not isinstance(values, tuple):
                problems.append(Problem(f"{at}.{field}", "a list with one entry per edge (the "
                                        "user's edge is left to the solver)", short(values)))
            if u.distance_m is not None:
                items = values if isinstance(values, tuple) else (values,)
                far += [(f"{at}.distance_m" + (f"[{j}]" if isinstance(values, tuple) else ""),
                         d) for j, d in enumerate(items)]
        problems += distance_gain_problems(far, self.radio.pathloss, "radio.pathloss")
        problems += codec_cut_problems(self.codec, L)
        raise_problems(problems)
        return self

    def with_edge(self, id: str, **changes: Any) -> HierarchicalInstance:
        """A new instance where edge ``id`` has these fields changed (e.g. ``bandwidth_hz``),
        validated again."""
        return self._with_item("edges", id, changes)

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
    user_cut: int = Field(ge=0, le=PLAN_INDEX[1])  # s1: users run stages 0..s1
    edge_cut: int = Field(ge=1, le=PLAN_INDEX[1])  # s2: the edge runs s1+1..s2, the cloud the rest
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
