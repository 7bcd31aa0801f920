"""The `cooperative` family's schema: its instance (docs/model.md section 7) and its plan."""

from __future__ import annotations

from typing import Literal

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

DEVICES, OFFLOAD = "devices", "offload"  # plan classes: blocks on devices, or on the server


class Training(TrainingBase):
    max_blocks: int = Field(default=1, gt=0)
    upload_level: int = Field(default=0, ge=0)


class CooperativeInstance(InstanceBase):
    """A `cooperative` instance: fine-tuning blocks at stages `blocks` (1..L+1, increasing),
    each fine-tuned by exactly one device. Immutable once loaded."""

    family: Literal["cooperative"]
    model: ModelProfile
    training: Training
    blocks: list[int] = Field(min_length=1)
    server: Server
    channel: Channel
    codec: Codec
    devices: list[Device] = Field(min_length=1)

    @model_validator(mode="after")
    def _cross_checks(self) -> CooperativeInstance:
        L = self.model.n_blocks
        bad = [f"blocks[{j}] = {b}" for j, b in enumerate(self.blocks) if not 1 <= b <= L + 1]
        if bad:
            raise ValueError(f"blocks are stages 1..L+1 = {L + 1} (the layers, and the output "
                             f"stage where it trains, e.g. a classifier); got {', '.join(bad)}")
        idle = [b for b in self.blocks if self.model.stages[b].lora_params <= 0]
        if idle:
            raise ValueError(f"blocks must be stages with trainable parameters (lora_params > "
                             f"0); stages {idle} have none")
        if any(b >= c for b, c in zip(self.blocks, self.blocks[1:], strict=False)):
            raise ValueError(f"blocks must increase strictly (one block per layer); got "
                             f"{self.blocks}")
        c, levels = self.training.upload_level, self.codec.levels
        if c >= len(levels):
            raise ValueError(f"training.upload_level indexes codec.levels (0..{len(levels) - 1});"
                             f" got {c}")
        if levels[c].distortion > self.training.max_distortion:
            raise ValueError(f"training.upload_level {c} has distortion {levels[c].distortion:g}"
                             f" > max_distortion {self.training.max_distortion:g}")
        if self.channel.fading != "none" or self.channel.seed != 0:
            raise ValueError("channel.fading and channel.seed: family cooperative has no fading "
                             "simulation (its round delay is on the average channel); leave "
                             "them out")
        dup = duplicate_ids(self.devices)
        if dup:
            raise ValueError(f"unique device ids; got duplicates {dup}")
        return self

    @property
    def n_devices(self) -> int:
        return len(self.devices)

    @property
    def n_blocks(self) -> int:
        return len(self.blocks)

    @property
    def arrays(self) -> Arrays:
        """Numpy view of everything the cost model needs, built once."""
        return self.cached("arrays", lambda: Arrays(self))


# --------------------------------------------------------------------------- plan
class DevicePlan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    blocks: list[int]  # indices into the instance's `blocks` (empty: idle)
    bandwidth_hz: float = Field(ge=0)


class CooperativePlan(BaseModel):
    """A `cooperative` plan: the blocks each device fine-tunes and its band (or, the offloading
    baseline, every block on the server), and the figures the cost model gives them
    (`Result.objective` is the round delay, s)."""

    model_config = ConfigDict(extra="forbid")
    server_blocks: list[int] = Field(default_factory=list)
    round_delay_s: float | None = None
    rounds: float | None = None
    total_delay_s: float | None = None
    bytes_per_round: float | None = None
    peak_memory_bytes: PeakMemory | None = None
    devices: list[DevicePlan]

    @property
    def plan_class(self) -> str:
        return OFFLOAD if self.server_blocks else DEVICES

    @property
    def assignment(self) -> list[list[int]]:
        return [list(d.blocks) for d in self.devices]

    @property
    def bandwidth(self) -> list[float]:
        return [d.bandwidth_hz for d in self.devices]
