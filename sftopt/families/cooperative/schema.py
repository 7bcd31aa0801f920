"""The `cooperative` family's schema: its instance (docs/model.md section 7) and its plan."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ...core.errors import Problem, short
from ...core.schema import (
    MAX_CUT,
    MAX_FLEET,
    MAX_LEVELS,
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

DEVICES, OFFLOAD = "devices", "offload"  # plan classes: blocks on devices, or on the server


class Training(TrainingBase):
    """Training figures of `cooperative`."""

    max_blocks: Int = integer(1, MAX_CUT, "most blocks one device fine-tunes (blocks)",
                              default=1)
    upload_level: Int = integer(0, MAX_LEVELS - 1, "codec level of the gradient uploads (an "
                                "index into codec.levels)", default=0)


Block = Integer(1, MAX_CUT)


class CooperativeInstance(InstanceBase):
    """A `cooperative` instance: fine-tuning blocks at stages `blocks` (1..L+1, increasing),
    each fine-tuned by exactly one device. Immutable once loaded."""

    family: Literal["cooperative"] = Field(description="the problem family")
    model: ModelRef = Field(description=MODEL_DESCRIPTION)
    training: Training = Field(description="training figures")
    blocks: Seq[Block] = Field(min_length=1, max_length=MAX_CUT,
                               description="the stages (1..L+1, increasing) of the fine-tuning "
                                           "blocks (stage indices)")
    server: Server = Field(description="the edge server")
    channel: Channel = Field(description="the radio channel (no fading: leave out fading and "
                                         "seed)")
    codec: Codec = Field(description="the codec levels")
    devices: Seq[Device] = Field(min_length=1, max_length=MAX_FLEET, description="the devices")

    @model_validator(mode="after")
    def _cross_checks(self) -> CooperativeInstance:
        L, problems = self.model.n_blocks, []
        for j, b in enumerate(self.blocks):
            if not 1 <= b <= L + 1:
                problems.append(Problem(f"$.blocks[{j}]", f"a stage 1..L+1 = {L + 1} (the "
                                        f"layers, and the output stage where it trains, e.g. "
                                        f"a classifier)", str(b)))
            elif self.model.stages[b].lora_params <= 0:
                problems.append(Problem(f"$.blocks[{j}]", "a stage with trainable parameters "
                                        "(lora_params > 0)", f"stage {b}, which has none"))
        for j in range(1, len(self.blocks)):
            if self.blocks[j] <= self.blocks[j - 1]:
                problems.append(Problem(f"$.blocks[{j}]", "blocks that increase strictly (one "
                                        f"block per layer): above {self.blocks[j - 1]}",
                                        str(self.blocks[j])))
        c, levels = self.training.upload_level, self.codec.levels
        if c >= len(levels):
            problems.append(Problem("$.training.upload_level", "an index into codec.levels "
                                    f"(0..{len(levels) - 1})", str(c)))
        elif levels[c].distortion > self.training.max_distortion:
            problems.append(Problem("$.training.upload_level", "a level with distortion <= "
                                    f"max_distortion {self.training.max_distortion:g}",
                                    f"level {c}, distortion {levels[c].distortion:g}"))
        for key, default in (("fading", "none"), ("seed", 0)):
            if getattr(self.channel, key) != default:
                problems.append(Problem(f"$.channel.{key}", "nothing: family cooperative has "
                                        "no fading simulation (its round delay is on the "
                                        "average channel); leave it out",
                                        short(getattr(self.channel, key))))
        problems += codec_cut_problems(self.codec, L)
        raise_problems(problems + fleet_checks(self, self.channel))
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
    blocks: list[Annotated[int, Field(ge=PLAN_INDEX[0], le=PLAN_INDEX[1])]]  # indices into the
    # instance's `blocks` (empty: idle)
    bandwidth_hz: float = Field(ge=0)


class CooperativePlan(BaseModel):
    """A `cooperative` plan: the blocks each device fine-tunes and its band (or, the offloading
    baseline, every block on the server), and the figures the cost model gives them
    (`Result.objective` is the round delay, s)."""

    model_config = ConfigDict(extra="forbid")
    server_blocks: list[Annotated[int, Field(ge=PLAN_INDEX[0], le=PLAN_INDEX[1])]] = Field(
        default_factory=list)
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
