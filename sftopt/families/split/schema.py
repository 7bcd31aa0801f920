"""The `split` family's schema: its instance (docs/model.md sections 2 and 6) and its plan."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ...core.schema import (
    Channel,
    Codec,
    Device,
    InstanceBase,
    ModelProfile,
    PeakMemory,
    Server,
    TrainingBase,
    duplicate_ids,
)
from .arrays import Arrays

PARALLEL, SEQUENTIAL = "parallel", "sequential"
Schedule = Literal["parallel", "sequential"]


class Training(TrainingBase):
    agg_every: int = Field(default=1, gt=0)
    min_cut: int = Field(default=0, ge=0)
    max_cut: int | None = Field(default=None, ge=0)
    rounds_per_frame: int | None = Field(default=None, gt=0)


class SplitInstance(InstanceBase):
    """A `split` instance as in docs/model.md section 6. Immutable once loaded."""

    family: Literal["split"]
    model: ModelProfile
    training: Training
    server: Server
    channel: Channel
    codec: Codec
    devices: list[Device] = Field(min_length=1)

    @model_validator(mode="after")
    def _cross_checks(self) -> SplitInstance:
        L = self.model.n_blocks
        lo, hi = self.training.min_cut, self.max_cut
        if hi > L + 1:
            raise ValueError(f"training.max_cut <= L+1 = {L + 1}; got {hi}")
        if lo > hi:
            raise ValueError(f"training.min_cut <= max_cut = {hi}; got {lo}")
        dup = duplicate_ids(self.devices)
        if dup:
            raise ValueError(f"unique device ids; got duplicates {dup}")
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
    cut: int
    level: int
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
