"""Schema sections every family shares (model profile, channel, codec, device basics, server,
training basics) and the instance envelope (`schema`, `family`, `name`) each family extends."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

SCHEMA_ID = "sftopt.instance/1"


class Strict(BaseModel):
    """Unknown fields are errors (a typo must not pass silently); values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Positive = Field(gt=0, allow_inf_nan=False)
NonNeg = Field(ge=0, allow_inf_nan=False)


class Stage(Strict):
    """One pipeline stage (embeddings, a transformer block, or head + loss), per training sample."""

    name: str
    fwd_flops: float = NonNeg
    bwd_flops: float = NonNeg
    param_bytes: float = NonNeg
    lora_params: float = NonNeg
    act_bytes: float = NonNeg


class ModelProfile(Strict):
    """A transformer cut into stages 0 (input) .. L (blocks) .. L+1 (output)."""

    name: str
    seq_len: int = Field(gt=0)
    cut_elems: float = Positive
    adapter_dtype_bytes: int = Field(default=4, gt=0)
    stages: list[Stage] = Field(min_length=3)
    provenance: dict[str, Any] | None = None

    @property
    def n_blocks(self) -> int:
        return len(self.stages) - 2


class TrainingBase(Strict):
    """Training figures every family has; a family's `training` section extends it."""

    rounds: float = Positive
    eta: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    max_distortion: float = NonNeg
    state_factor: float = Field(default=4.0, ge=0, allow_inf_nan=False)


class Server(Strict):
    flops: float = Positive
    memory_bytes: float = Positive
    tx_power_w: float = Positive


class PathLoss(Strict):
    a_db: float = Field(allow_inf_nan=False)
    g: float = Field(allow_inf_nan=False)


class Channel(Strict):
    bandwidth_hz: float = Positive
    noise_dbm_hz: float = Field(allow_inf_nan=False)
    pathloss: PathLoss
    fading: Literal["none", "rayleigh"] = "none"
    seed: int = Field(default=0, ge=0)


class CodecLevel(Strict):
    keep_ratio: float = Field(gt=0, le=1)
    bits: int = Field(ge=1, le=16)
    bits_per_elem: float = Positive
    distortion: float = NonNeg


class Codec(Strict):
    levels: list[CodecLevel] = Field(min_length=1)
    provenance: dict[str, Any] | None = None


class Device(Strict):
    """A device (or user): compute, memory, radio and batch; the large-scale gain is given
    directly (`gain`) or by `distance_m` through the channel's path-loss law."""

    id: str = Field(min_length=1)
    flops: float = Positive
    memory_bytes: float = Positive
    tx_power_w: float = Positive
    gain: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    distance_m: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    batch: int = Field(gt=0)

    @model_validator(mode="after")
    def _one_gain(self) -> Device:
        if (self.gain is None) == (self.distance_m is None):
            both = "both" if self.gain is not None else "neither"
            raise ValueError(f"exactly one of 'gain' and 'distance_m'; got {both}")
        return self


def duplicate_ids(items: Sequence[Any]) -> list[str]:
    """The ids that occur more than once (sorted)."""
    seen: set[str] = set()
    dup: set[str] = set()
    for x in items:
        (dup if x.id in seen else seen).add(x.id)
    return sorted(dup)


class InstanceBase(Strict):
    """The envelope of every instance: `schema`, `family`, `name`. A family's instance class adds
    its sections and narrows `family` to its own name. Immutable once loaded."""

    schema_: Literal["sftopt.instance/1"] = Field(alias="schema")
    family: str
    name: str

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    _cache: dict[str, Any] = PrivateAttr(default_factory=dict)

    def cached(self, key: str, build: Callable[[], Any]) -> Any:
        """A derived value (numeric arrays, tables) built once per instance."""
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def to_dict(self) -> dict[str, Any]:
        """The instance as a JSON-ready dict, model inlined, defaults filled in."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @cached_property
    def sha256(self) -> str:
        """Hash of the canonical JSON of the resolved instance (model profile inlined)."""
        canon = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()


class PeakMemory(BaseModel):
    """A plan's memory figures: the left-hand sides of its memory constraints, bytes (the
    server's, None where the plan puts nothing on it; each device's, in instance order)."""

    model_config = ConfigDict(extra="forbid")
    server: float | None
    devices: list[float | None]
