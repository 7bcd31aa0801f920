"""Schema sections every family shares (model profile, channel, codec, device basics, server,
training basics) and the instance envelope (`schema`, `family`, `name`) each family extends.

Validation is strict: no value changes type on the way in (``"8"`` is not 8, ``true`` is not 1;
an integer is a number, and a number with no fractional part is an integer, as in JSON Schema),
every number is finite and inside the physical range declared next to its field (the ranges
and their reasons: docs/model.md, "Valid ranges"), and sequences are tuples, so a loaded instance
cannot change under the arrays cached from it. Changed instances come from the `with_*` methods,
which validate again.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Sequence
from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from ..channel import pathloss_gain
from .errors import InstanceError, Problem, Problems, problems_from, short

SCHEMA_ID = "sftopt.instance/1"

# ------------------------------------------------------------------ ranges (docs/model.md)
# (low, high) of every kind of number; the reasons are in docs/model.md's "Valid ranges" table
FLOPS = (1e3, 1e18)  # FLOP/s: a microcontroller .. an exascale machine
MEMORY = (1e3, 1e15)  # bytes: 1 kB .. 1 PB
POWER = (1e-6, 1e3)  # W: backscatter tag .. broadcast transmitter
GAIN = (1e-20, 1.0)  # linear power gain: a passive channel does not amplify; 200 dB loss
DISTANCE = (1e-3, 1e6)  # m: 1 mm .. 1,000 km
BANDWIDTH = (1.0, 1e12)  # Hz: 1 Hz .. 1 THz (a scaled fleet of 100,000 devices pools 200 GHz)
NOISE = (-250.0, 0.0)  # dBm/Hz: thermal noise is -174 at 290 K
STAGE_FLOPS = (0.0, 1e18)  # FLOPs per sample and stage
STAGE_BYTES = (0.0, 1e15)  # bytes per stage (weights) or per sample and stage (activations)
MAX_BLOCKS = 10_000  # L: transformer blocks of a model
MAX_STAGES = MAX_BLOCKS + 2
MAX_CUT = MAX_BLOCKS + 1  # a cut or a stage index is 0..L+1
MAX_LEVELS = 256  # codec levels
MAX_FLEET = 1_000_000  # devices or users
# an index in a plan (cut, level, block): one outside the instance's range is named by the
# family's plan check; the schema only keeps it within 32 bits so that arrays can hold it
PLAN_INDEX = (-(2**31), 2**31 - 1)
MAX_ID = 256  # characters of an id or a name
MAX_SEED = 2**63 - 1  # a 64-bit integer
MAX_DEPTH = 32  # nesting of a free-form provenance object


def _integral(value: Any) -> Any:
    """JSON has one number type: 8.0 is the integer 8 (as JSON Schema's "integer" says), but
    8.5, "8" and true are not integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _tuple(value: Any) -> Any:
    """A JSON array becomes a tuple: an instance's sequences cannot change once loaded."""
    return tuple(value) if isinstance(value, list) else value


Int = Annotated[int, BeforeValidator(_integral)]
Num = float  # strict: an int is taken, a bool or a string is not; 10^400 is "not a number"
T = TypeVar("T")
Seq = Annotated[tuple[T, ...], BeforeValidator(_tuple)]


def Number(lo: float, hi: float, *, gt: bool = False) -> Any:  # noqa: N802 (a type)
    """The type of a finite float within [lo, hi] ((lo, hi] with ``gt``): for optional fields
    and items, where the bounds must sit on the type (a Field's would not reach JSON Schema)."""
    bound = {"gt": lo} if gt else {"ge": lo}
    return Annotated[float, Field(**bound, le=hi, allow_inf_nan=False)]


def Integer(lo: int, hi: int) -> Any:  # noqa: N802 (a type)
    """The type of an integer within [lo, hi] (see `Number`)."""
    return Annotated[int, Field(ge=lo, le=hi), BeforeValidator(_integral)]


def num(lo: float, hi: float, description: str, *, default: Any = ..., gt: bool = False) -> Any:
    """A finite float field within [lo, hi] ((lo, hi] with ``gt``), with its description."""
    bound = {"gt": lo} if gt else {"ge": lo}
    return Field(default, **bound, le=hi, allow_inf_nan=False, description=description)


def integer(lo: int, hi: int, description: str, *, default: Any = ...) -> Any:
    """An integer field within [lo, hi], with its description."""
    return Field(default, ge=lo, le=hi, description=description)


def text(description: str, *, default: Any = ...) -> Any:
    """An id or a name: 1..256 characters."""
    return Field(default, min_length=1, max_length=MAX_ID, description=description)


class Strict(BaseModel):
    """Unknown fields are errors (a typo must not pass silently); values are frozen; no value
    is coerced to another type."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _bounded_json(value: Any) -> Any:
    """A free-form object: JSON values only, nested at most MAX_DEPTH deep (checked without
    recursion, so hostile nesting cannot blow the stack later, e.g. when hashing)."""
    stack = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"an object nested at most {MAX_DEPTH} deep; got a deeper one")
        if isinstance(v, dict):
            bad = [k for k in v if not isinstance(k, str)]
            if bad:
                raise ValueError(f"an object with string keys; got key {short(bad[0])}")
            stack += [(x, depth + 1) for x in v.values()]
        elif isinstance(v, list):
            stack += [(x, depth + 1) for x in v]
        elif isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"finite numbers; got {v}")
        elif isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 1024:
            raise ValueError(f"finite numbers (|x| < 1.8e308); got {short(v)}")
        elif not (v is None or isinstance(v, str | int | float | bool)):
            raise ValueError(f"JSON values; got a {type(v).__name__}")
    return value


Gain = Number(*GAIN)
Distance = Number(*DISTANCE)
Provenance = Annotated[dict[str, Any] | None, BeforeValidator(_bounded_json)]


class Stage(Strict):
    """One pipeline stage (embeddings, a transformer block, or head + loss), per training sample."""

    name: str = Field(max_length=MAX_ID, description="the stage's name")
    fwd_flops: Num = num(*STAGE_FLOPS, "forward FLOPs per training sample (FLOP)")
    bwd_flops: Num = num(*STAGE_FLOPS, "backward FLOPs per sample for LoRA fine-tuning (FLOP)")
    param_bytes: Num = num(*STAGE_BYTES, "frozen weight bytes of the stage (bytes)")
    lora_params: Num = num(*STAGE_BYTES, "trainable adapter parameters of the stage (count)")
    act_bytes: Num = num(*STAGE_BYTES, "activation bytes the backward pass keeps, per sample "
                         "(bytes)")


def _profile_by_name(value: Any) -> Any:
    """A model named by a string is the profile of that name in models/ (or SFTOPT_MODELS)."""
    if not isinstance(value, str):
        return value
    from .. import profiles  # profiles are shared data, below every family

    try:
        return profiles.load_profile(value)
    except (OSError, ValueError) as exc:
        raise ValueError(f"the name of a profile in models/; got {exc}") from None


class ModelProfile(Strict):
    """A transformer cut into stages 0 (input) .. L (blocks) .. L+1 (output)."""

    name: str = text("the profile's name")
    seq_len: Int = integer(1, 10_000_000, "tokens per training sample (tokens)")
    cut_elems: Num = num(0, 1e13, "elements of the hidden state crossing a block boundary, per "
                         "sample (seq_len x hidden size; elements)", gt=True)
    adapter_dtype_bytes: Int = integer(1, 8, "bytes per adapter parameter (fp8 1 .. fp64 8; "
                                       "bytes)", default=4)
    stages: Seq[Stage] = Field(min_length=3, max_length=MAX_STAGES,
                               description="stages 0..L+1: input, L blocks, output")
    provenance: Provenance = Field(None, description="free-form: where the profile came from")

    @property
    def n_blocks(self) -> int:
        return len(self.stages) - 2


ModelRef = Annotated[ModelProfile, BeforeValidator(_profile_by_name,
                                                   json_schema_input_type=ModelProfile | str)]
MODEL_DESCRIPTION = ("the model profile: inline, or the name of a profile in models/ (or a "
                     "folder on SFTOPT_MODELS)")


class TrainingBase(Strict):
    """Training figures every family has; a family's `training` section extends it."""

    rounds: Num = num(1, 1e9, "rounds (epochs in `hierarchical`) without compression (rounds)")
    eta: Num = num(0, 1e6, "rounds grow by a factor 1 + eta x mean distortion (dimensionless)",
                   default=0.0)
    max_distortion: Num = num(0, 100, "largest codec distortion allowed (relative MSE)")
    state_factor: Num = num(0, 100, "copies kept per trainable parameter: weight, gradient, "
                            "optimiser state (Adam 4; count)", default=4.0)


class Server(Strict):
    """The edge server: compute, memory and downlink power."""

    flops: Num = num(*FLOPS, "sustained compute (FLOP/s)")
    memory_bytes: Num = num(*MEMORY, "memory (bytes)")
    tx_power_w: Num = num(*POWER, "transmit power, per device band on the downlink (W)")


class PathLoss(Strict):
    """PL = a_db + 10 g log10(d / 1 km) dB."""

    a_db: Num = num(0, 300, "path loss at 1 km (dB)")
    g: Num = num(0, 10, "path-loss exponent / 10 (3.76: urban macro; dimensionless)")


class Channel(Strict):
    """The shared radio channel of the devices and the server."""

    bandwidth_hz: Num = num(*BANDWIDTH, "total band shared by the devices (Hz)")
    noise_dbm_hz: Num = num(*NOISE, "noise power spectral density (dBm/Hz)")
    pathloss: PathLoss = Field(description="the path-loss law turning distance_m into a gain")
    fading: Literal["none", "rayleigh"] = Field("none", description="small-scale fading")
    seed: Int = integer(0, MAX_SEED, "seed of the fading trace", default=0)


# one figure per cut 0..L (its length against L: `codec_cut_problems`)
CutFigures = Annotated[tuple[Number(0, 64, gt=True), ...],
                       Field(min_length=1, max_length=MAX_BLOCKS + 1), BeforeValidator(_tuple)]


class CodecLevel(Strict):
    """A compression level: keep the largest keep_ratio of values, quantised to bits."""

    keep_ratio: Num = num(0, 1, "fraction of elements kept (dimensionless)", gt=True)
    bits: Int = integer(1, 16, "bits per kept value, sign included (bits)")
    bits_per_elem: Num = num(0, 64, "coded bits per original element, everything included "
                             "(bits)", gt=True)
    distortion: Num = num(0, 100, "relative MSE of the decoded tensor (dimensionless)")
    bits_per_elem_by_cut: CutFigures | None = Field(
        None, description="optional: coded bits per original element of the hidden state and its "
                    "gradient crossing at cut s (the output of stage s), entry s for s = "
                    "0..L (L+1 entries; cut L+1 sends nothing); absent: bits_per_elem at "
                    "every cut (bits)")

    def beta(self, cut: int) -> float:
        """Coded bits per element at ``cut`` (0..L): the per-cut figure where the level has
        one, else its own."""
        by_cut = self.bits_per_elem_by_cut
        return self.bits_per_elem if by_cut is None else by_cut[cut]


class Codec(Strict):
    """The codec's levels (level 0 first)."""

    levels: Seq[CodecLevel] = Field(min_length=1, max_length=MAX_LEVELS,
                                    description="the codec levels, indexed from 0")
    provenance: Provenance = Field(None, description="free-form: where the table came from")

    def beta_table(self, n_blocks: int) -> np.ndarray:
        """Coded bits per element per (level, cut), cuts 0..L+1 (L = ``n_blocks``): the
        per-cut figures where a level has them, else its own figure at every cut; column L+1
        (nothing crosses) holds the level's own figure."""
        table = np.empty((len(self.levels), n_blocks + 2))
        for c, lv in enumerate(self.levels):
            table[c] = lv.bits_per_elem
            if lv.bits_per_elem_by_cut is not None:
                table[c, : n_blocks + 1] = lv.bits_per_elem_by_cut
        return table


def codec_cut_problems(codec: Codec, n_blocks: int) -> list[Problem]:
    """Each level's `bits_per_elem_by_cut` must have one entry per cut 0..L (L+1 entries,
    L = ``n_blocks``, the model's blocks)."""
    return [Problem(f"$.codec.levels[{c}].bits_per_elem_by_cut",
                    f"one figure per cut 0..L = 0..{n_blocks} ({n_blocks + 1} entries: the "
                    f"model has L = {n_blocks} blocks)", f"{len(lv.bits_per_elem_by_cut)} entries")
            for c, lv in enumerate(codec.levels)
            if lv.bits_per_elem_by_cut is not None
            and len(lv.bits_per_elem_by_cut) != n_blocks + 1]


class Device(Strict):
    """A device (or user): compute, memory, radio and batch; the large-scale gain is given
    directly (`gain`) or by `distance_m` through the channel's path-loss law."""

    id: str = text("the device's id, unique in the instance")
    flops: Num = num(*FLOPS, "sustained compute (FLOP/s)")
    memory_bytes: Num = num(*MEMORY, "memory (bytes)")
    tx_power_w: Num = num(*POWER, "transmit power (W)")
    gain: Gain | None = Field(None, description="large-scale power gain to the server (linear; "
                                                "or distance_m)")
    distance_m: Distance | None = Field(None, description="distance to the server (m; or gain)")
    batch: Int = integer(1, 1_000_000, "training samples per round (samples)")

    @model_validator(mode="after")
    def _one_gain(self) -> Device:
        if (self.gain is None) == (self.distance_m is None):
            both = "both" if self.gain is not None else "neither"
            raise ValueError(f"exactly one of 'gain' and 'distance_m'; got {both}")
        return self


def distance_gain_problems(items: Sequence[tuple[str, float]], pathloss: PathLoss,
                           pathloss_path: str) -> list[Problem]:
    """The distances (path, metres) whose gain through the path-loss law falls outside the gain
    range, as Problems; one vectorised pass (`sftopt.channel.pathloss_gain`, the law itself)."""
    if not items:
        return []
    with np.errstate(over="ignore", divide="ignore"):
        h = pathloss_gain(np.array([d for _, d in items]), pathloss.a_db, pathloss.g)
    bad = np.flatnonzero(~((h >= GAIN[0]) & (h <= GAIN[1])))
    return [Problem(items[i][0], f"a distance whose gain through {pathloss_path} lies in "
                                 f"{GAIN[0]:g}..{GAIN[1]:g}",
                    f"{items[i][1]:g} m, gain {h[i]:.3g}") for i in bad]


def duplicate_ids(items: Sequence[Any]) -> list[str]:
    """The ids that occur more than once (sorted); linear in the items."""
    seen: set[str] = set()
    dup: set[str] = set()
    for x in items:
        (dup if x.id in seen else seen).add(x.id)
    return sorted(dup)


def raise_problems(problems: list[Problem]) -> None:
    """Raise the problems a model validator found (addressed; see errors.Problems)."""
    if problems:
        raise Problems(problems)


class InstanceBase(Strict):
    """The envelope of every instance: `schema`, `family`, `name`. A family's instance class adds
    its sections and narrows `family` to its own name. Immutable once loaded: sequences are
    tuples, and `with_devices`, `without_devices`, `with_device`, `with_channel`, `with_server`
    (and `replace`) return a new instance, validated again."""

    schema_: Literal["sftopt.instance/1"] = Field(alias="schema",
                                                  description="the instance format")
    family: str = Field(description="the problem family")
    name: str = text("the instance's name")

    # the fields a family keeps its fleet, its server and its channel in (the `with_*` methods)
    fleet_field: ClassVar[str] = "devices"
    server_field: ClassVar[str] = "server"
    channel_field: ClassVar[str] = "channel"

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)
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

    # ------------------------------------------------------------------ changed copies
    def replace(self, **sections: Any) -> Self:
        """A new instance with whole sections replaced (each a section object or its JSON
        form), validated again: InstanceError (JSON paths) if the result is not valid. The
        sections not named are shared with this instance (they are immutable)."""
        data = {name: getattr(self, name) for name in type(self).model_fields}
        data["schema"] = data.pop("schema_")
        unknown = [k for k in sections if k not in data or k == "schema"]
        if unknown:
            raise InstanceError([Problem(f"$.{k}", "a section of the instance", "no such "
                                         "section") for k in unknown], self.name)
        data.update(sections)
        try:
            return type(self).model_validate(data)
        except ValidationError as err:
            raise InstanceError(problems_from(err), self.name) from None

    def with_devices(self, added: Iterable[Any]) -> Self:
        """A new instance with devices added at the end (Device objects or their JSON form;
        in `hierarchical`, users)."""
        return self.replace(**{self.fleet_field: (*getattr(self, self.fleet_field), *added)})

    def without_devices(self, ids: Iterable[str]) -> Self:
        """A new instance without the devices of these ids (in `hierarchical`, users);
        InstanceError if an id is not in the instance."""
        field, drop = self.fleet_field, set(ids)
        items = getattr(self, field)
        missing = drop - {x.id for x in items}
        if missing:
            raise InstanceError([Problem(f"$.{field}", f"ids of {field} in the instance",
                                         f"unknown ids {sorted(missing)}")], self.name)
        return self.replace(**{field: tuple(x for x in items if x.id not in drop)})

    def with_device(self, id: str, **changes: Any) -> Self:
        """A new instance where device ``id`` (in `hierarchical`, user) has these fields
        changed; giving `gain` drops `distance_m` and the other way round (a device has one)."""
        return self._with_item(self.fleet_field, id, changes)

    def with_channel(self, **changes: Any) -> Self:
        """A new instance with these channel fields changed (e.g. ``bandwidth_hz``; in
        `hierarchical` the `radio`)."""
        return self._with_section(self.channel_field, changes)

    def with_server(self, **changes: Any) -> Self:
        """A new instance with these server fields changed (in `hierarchical` the `cloud`)."""
        return self._with_section(self.server_field, changes)

    def _with_section(self, field: str, changes: dict[str, Any]) -> Self:
        section = getattr(self, field)
        return self.replace(**{field: {**section.model_dump(exclude_none=True), **changes}})

    def _with_item(self, field: str, id: str, changes: dict[str, Any]) -> Self:
        items = getattr(self, field)
        index = next((i for i, x in enumerate(items) if x.id == id), None)
        if index is None:
            raise InstanceError([Problem(f"$.{field}", f"the id of one of the {field}",
                                         short(id))], self.name)
        old = items[index].model_dump(exclude_none=True)
        for one, other in (("gain", "distance_m"), ("distance_m", "gain")):
            if one in changes and other not in changes:
                old.pop(other, None)
        new = (*items[:index], {**old, **changes}, *items[index + 1:])
        return self.replace(**{field: new})


def fleet_checks(inst: Any, channel: Channel) -> list[Problem]:
    """The checks of `split` and `cooperative` on their devices: unique ids, and every
    distance's gain through the path-loss law in the gain range."""
    problems = []
    dup = duplicate_ids(inst.devices)
    if dup:
        problems.append(Problem("$.devices", "unique device ids", f"duplicates {short(dup)}"))
    far = [(f"$.devices[{k}].distance_m", d.distance_m) for k, d in enumerate(inst.devices)
           if d.distance_m is not None]
    return problems + distance_gain_problems(far, channel.pathloss, "channel.pathloss")


class PeakMemory(BaseModel):
    """A plan's memory figures: the left-hand sides of its memory constraints, bytes (the
    server's, None where the plan puts nothing on it; each device's, in instance order)."""

    model_config = ConfigDict(extra="forbid")
    server: float | None
    devices: list[float | None]

