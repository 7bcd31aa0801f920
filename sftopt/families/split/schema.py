"""The `split` family's schema: its instance (docs/model.md sections 2 and 6) and its plan."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ...core.errors import Problem
from ...core.schema import (
    MAX_CUT,
    MAX_FLEET,
    MODEL_DESCRIPTION,
    PLAN_INDEX,
    Channel,
    Codec,
    Device,
    InstanceBase,
    Int,
    Integer,
    ModelRef,
    PeakMemory,
    Seq,
    Server,
    TrainingBase,
    codec_cut_problems,
    fleet_checks,
    integer,
    raise_problems,
)
from .arrays import Arrays

PARALLEL, SEQUENTIAL = "parallel", "sequential"
Schedule = Literal["parallel", "sequential"]


class Training(TrainingBase):
    """Training figures of `split`."""

    agg_every: Int = integer(1, 1_000_000_000, "rounds between adapter averagings (rounds)",
                             default=1)
    min_cut: Int = integer(0, MAX_CUT, "shallowest cut allowed (stage index)", default=0)
    max_cut: Integer(0, MAX_CUT) | None = Field(None, description="deepest cut allowed (stage "
                                                "index, at most L+1; default L)")
    rounds_per_frame: Integer(1, 1_000_000_000) | None = Field(
        None, description="rounds a large-timescale frame lasts (rounds; default ceil(rounds))")


class SplitInstance(InstanceBase):
    """A `split` instance as in docs/model.md section 6. Immutable once loaded."""

    family: Literal["split"] = Field(description="the problem family")
    model: ModelRef = Field(description=MODEL_DESCRIPTION)
    training: Training = Field(description="training figures")
    server: Server = Field(description="the server")
    channel: Channel = Field(description="the radio channel")
    codec: Codec = Field(description="the codec levels")
    devices: Seq[Device] = Field(min_length=1, max_length=MAX_FLEET, description="the devices")

    @model_validator(mode="after")
    def _cross_checks(self) -> SplitInstance:
        L, problems = self.model.n_blocks, []
        lo, hi = self.training.min_cut, self.max_cut
        if hi > L + 1:
            problems.append(Problem("$.training.max_cut", f"at most L+1 = {L + 1} (the model "
                                    f"has L = {L} blocks)", str(hi)))
        if lo > hi:
            problems.append(Problem("$.training.min_cut", f"at most max_cut = {hi}", str(lo)))
        problems += codec_cut_problems(self.codec, L)
        raise_problems(problems + fleet_checks(self, self.channel))
        return self

    # ------------------------------------------------------------------ derived
    @property
    def max_cut(self) -> int:
        t = self.training.max_cut
        return self.model.n_blocks if t is None else t

    @property
    def rounds_per_frame(self) -> int:
        t = self.training.rounds_per_frame
        return int(np.ceil(self.training.rounds)) if t is None else t

    @property
    def n_devices(self) -> int:
        return len(self.devices)

    @property
    def arrays(self) -> Arrays:
        """Numpy view of everything the cost model needs, built once."""
        return self.cached("arrays", lambda: Arrays(self))


# --------------------------------------------------------------------------- plan
class DevicePlan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    cut: int = Field(ge=PLAN_INDEX[0], le=PLAN_INDEX[1])
    level: int = Field(ge=PLAN_INDEX[0], le=PLAN_INDEX[1])
    bandwidth_hz: float = Field(ge=0)
    server_share: float = Field(ge=0)


class SplitPlan(BaseModel):
    """A `split` plan: per device a cut, a codec level, a band and a server share, and the
    figures the cost model gives them (`Result.objective` is the total delay R x T, s)."""

    model_config = ConfigDict(extra="forbid")
    schedule: Schedule = PARALLEL
    round_delay_s: float | None = None
    rounds: float | None = None
    bytes_per_round: float | None = None
    peak_memory_bytes: PeakMemory | None = None
    devices: list[DevicePlan]

    @property
    def cuts(self) -> np.ndarray:
        return np.array([d.cut for d in self.devices], dtype=int)

    @property
    def levels(self) -> np.ndarray:
        return np.array([d.level for d in self.devices], dtype=int)

    @property
    def bandwidth(self) -> np.ndarray:
        return np.array([d.bandwidth_hz for d in self.devices], dtype=float)

    @property
    def share(self) -> np.ndarray:
        return np.array([d.server_share for d in self.devices], dtype=float)


class Simulation(BaseModel):
    """The two-timescale fading simulation of a plan (docs/model.md section 3)."""

    model_config = ConfigDict(extra="forbid")
    total_delay_s: float | None
    mean_round_delay_s: float | None
    rounds: int
    seed: int
    allocator: str = "exact"
