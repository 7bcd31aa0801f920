"""Instance schema (pydantic): loading with addressed errors, hashing, numpy view."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from .channel import noise_w_per_hz, pathloss_gain

SCHEMA_ID = "sftopt.instance/1"
FAMILIES = ("split", "cooperative", "hierarchical")
IMPLEMENTED_FAMILIES = ("split",)


# --------------------------------------------------------------------------- errors
@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where (JSON path), what was expected, what was found."""

    path: str
    expected: str
    got: str

    def __str__(self) -> str:
        return f"{self.path}: expected {self.expected}, got {self.got}"


class InstanceError(ValueError):
    """Bad input. Carries every problem found, each with its JSON path."""

    def __init__(self, problems: list[Problem], source: str | None = None):
        self.problems = problems
        self.source = source
        head = f"{source}: " if source else ""
        n = len(problems)
        lines = [f"{head}{n} problem{'s' if n != 1 else ''}:"] + [f"  {p}" for p in problems]
        super().__init__("\n".join(lines))


def _json_path(loc: tuple[Any, ...]) -> str:
    out = "$"
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before") or str(part).startswith("tagged"):
            continue
        else:
            out += f".{part}"
    return out


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _expected(msg: str) -> str:
    """Pydantic's "Input should be greater than 0" -> "a number greater than 0"."""
    text = msg.removeprefix("Input should be ").removeprefix("Value error, ")
    if text.startswith(("greater", "less")):
        text = "a number " + text
    return text


def _problems_from(err: ValidationError, prefix: tuple[Any, ...] = ()) -> list[Problem]:
    problems = []
    for e in err.errors(include_url=False):
        loc = prefix + tuple(e["loc"])
        kind = e["type"]
        if kind == "missing":
            problems.append(Problem(_json_path(loc), "a value (required field)", "nothing"))
        elif kind == "extra_forbidden":
            problems.append(
                Problem(_json_path(loc), "no such field (unknown field)", _short(e["input"])))
        elif kind == "value_error":
            # our own validators: the message already says what is wrong
            msg = str(e.get("ctx", {}).get("error", e["msg"]))
            expected, _, got = msg.partition("; got ")
            problems.append(Problem(_json_path(loc), expected, got or _short(e.get("input"))))
        else:
            problems.append(Problem(_json_path(loc), _expected(e["msg"]), _short(e.get("input"))))
    return problems


# --------------------------------------------------------------------------- schema
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Positive = Field(gt=0, allow_inf_nan=False)
NonNeg = Field(ge=0, allow_inf_nan=False)


class Stage(_Strict):
    """One pipeline stage (embeddings, a transformer block, or head + loss), per training sample."""

    name: str
    fwd_flops: float = NonNeg
    bwd_flops: float = NonNeg
    param_bytes: float = NonNeg
    lora_params: float = NonNeg
    act_bytes: float = NonNeg


class ModelProfile(_Strict):
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


class Training(_Strict):
    rounds: float = Positive
    eta: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    max_distortion: float = NonNeg
    agg_every: int = Field(default=1, gt=0)
    state_factor: float = Field(default=4.0, ge=0, allow_inf_nan=False)
    min_cut: int = Field(default=0, ge=0)
    max_cut: int | None = Field(default=None, ge=0)
    rounds_per_frame: int | None = Field(default=None, gt=0)


class Server(_Strict):
    flops: float = Positive
    memory_bytes: float = Positive
    tx_power_w: float = Positive


class PathLoss(_Strict):
    a_db: float = Field(allow_inf_nan=False)
    g: float = Field(allow_inf_nan=False)


class Channel(_Strict):
    bandwidth_hz: float = Positive
    noise_dbm_hz: float = Field(allow_inf_nan=False)
    pathloss: PathLoss
    fading: Literal["none", "rayleigh"] = "none"
    seed: int = Field(default=0, ge=0)


class CodecLevel(_Strict):
    keep_ratio: float = Field(gt=0, le=1)
    bits: int = Field(ge=1, le=16)
    bits_per_elem: float = Positive
    distortion: float = NonNeg


class Codec(_Strict):
    levels: list[CodecLevel] = Field(min_length=1)
    provenance: dict[str, Any] | None = None


class Device(_Strict):
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


class Instance(_Strict):
    """A `split` instance as in docs/model.md section 5. Immutable once loaded."""

    schema_: Literal["sftopt.instance/1"] = Field(alias="schema")
    family: Literal["split", "cooperative", "hierarchical"]
    name: str
    model: ModelProfile
    training: Training
    server: Server
    channel: Channel
    codec: Codec
    devices: list[Device] = Field(min_length=1)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    _arrays: Arrays | None = PrivateAttr(default=None)

    @field_validator("family")
    @classmethod
    def _implemented(cls, v: str) -> str:
        if v not in IMPLEMENTED_FAMILIES:
            raise ValueError(
                f"one of {list(IMPLEMENTED_FAMILIES)} (family '{v}' is specified in "
                f"docs/model.md but not implemented in this version); got '{v}'"
            )
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> Instance:
        L = self.model.n_blocks
        lo, hi = self.training.min_cut, self.max_cut
        if hi > L + 1:
            raise ValueError(f"training.max_cut <= L+1 = {L + 1}; got {hi}")
        if lo > hi:
            raise ValueError(f"training.min_cut <= max_cut = {hi}; got {lo}")
        ids = [d.id for d in self.devices]
        dup = sorted({i for i in ids if ids.count(i) > 1})
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
        if self._arrays is None:
            self._arrays = Arrays(self)
        return self._arrays

    def to_dict(self) -> dict[str, Any]:
        """The instance as JSON-ready dict, model inlined, defaults filled in."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @cached_property
    def sha256(self) -> str:
        """Hash of the canonical JSON of the resolved instance (model profile inlined)."""
        canon = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()


class Arrays:
    """Per-stage prefix sums and per-device vectors: what every delay and memory figure uses.

    Cut s means the device runs stages 0..s. Index arrays by s in 0..L+1.
    """

    def __init__(self, inst: Instance):
        m, tr = inst.model, inst.training
        st = m.stages
        work = np.array([s.fwd_flops + s.bwd_flops for s in st])
        param = np.array([s.param_bytes for s in st])
        lora = np.array([s.lora_params for s in st])
        act = np.array([s.act_bytes for s in st])
        lb = tr.state_factor * m.adapter_dtype_bytes * lora

        self.L = m.n_blocks
        self.cuts = np.arange(tr.min_cut, inst.max_cut + 1)
        self.cut_elems = m.cut_elems
        self.w_dev = np.cumsum(work)  # FLOPs on the device for cut s
        self.w_srv = work.sum() - self.w_dev  # FLOPs on the server for cut s
        self.adapter_bits = 8.0 * m.adapter_dtype_bytes * np.cumsum(lora)  # A(s)
        self.dev_static = np.cumsum(param + lb)  # weights + adapter state on the device
        self.dev_act = np.cumsum(act)  # activations per sample on the device
        self.srv_static = np.concatenate([np.cumsum((param + lb)[::-1])[::-1][1:], [0.0]])
        self.srv_act = act.sum() - self.dev_act  # server-side activations per sample
        self.has_server = np.arange(self.L + 2) <= self.L  # cut L+1: nothing on the server

        d = inst.devices
        ch = inst.channel
        self.flops = np.array([x.flops for x in d])
        self.memory = np.array([x.memory_bytes for x in d])
        self.batch = np.array([x.batch for x in d], dtype=float)
        self.power = np.array([x.tx_power_w for x in d])
        self.gain = np.array(
            [
                x.gain
                if x.gain is not None
                else float(pathloss_gain(x.distance_m, ch.pathloss.a_db, ch.pathloss.g))
                for x in d
            ]
        )
        n0 = noise_w_per_hz(ch.noise_dbm_hz)
        self.snr_ul = self.power * self.gain / n0  # x_k in b log2(1 + x_k / b), Hz
        self.snr_dl = inst.server.tx_power_w * self.gain / n0
        self.sample_weight = self.batch / self.batch.sum()

        self.beta = np.array([c.bits_per_elem for c in inst.codec.levels])
        self.delta = np.array([c.distortion for c in inst.codec.levels])
        self.allowed_levels = np.flatnonzero(self.delta <= tr.max_distortion)

        self.bandwidth = ch.bandwidth_hz
        self.server_flops = inst.server.flops
        self.server_memory = inst.server.memory_bytes
        self.rounds = tr.rounds
        self.eta = tr.eta
        self.agg_every = tr.agg_every
        self.device_ids = [x.id for x in d]


# --------------------------------------------------------------------------- loading
def _read_json(path: Path) -> Any:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InstanceError([Problem("$", "an existing file", f"no file {str(path)!r}")]) from None
    except OSError as exc:
        raise InstanceError([Problem("$", "a readable file", str(exc))], str(path)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InstanceError(
            [Problem(f"$ (line {exc.lineno}, column {exc.colno})", "valid JSON", exc.msg)],
            str(path),
        ) from None


def _resolve_model(data: dict[str, Any], source: str | None) -> dict[str, Any]:
    """Replace a model named by string with the profile from models/."""
    model = data.get("model")
    if not isinstance(model, str):
        return data
    from . import profiles  # profiles sit below instance in the dependency order

    try:
        profile = profiles.load_profile(model)
    except (FileNotFoundError, ValueError) as exc:
        raise InstanceError([Problem("$.model", "the name of a profile in models/", str(exc))],
                            source) from None
    return {**data, "model": profile}


def instance_from_dict(data: Any, source: str | None = None) -> Instance:
    """Validate a parsed JSON object as an instance; raise InstanceError listing every problem."""
    if not isinstance(data, dict):
        raise InstanceError([Problem("$", "a JSON object", type(data).__name__)], source)
    schema = data.get("schema")
    if schema != SCHEMA_ID:
        raise InstanceError([Problem("$.schema", f"'{SCHEMA_ID}'", _short(schema))], source)
    data = _resolve_model(data, source)
    try:
        return Instance.model_validate(data)
    except ValidationError as err:
        raise InstanceError(_problems_from(err), source) from None


def load_instance(source: str | Path | dict[str, Any]) -> Instance:
    """Load an instance from a JSON file path or an already parsed dict."""
    if isinstance(source, dict):
        return instance_from_dict(source)
    path = Path(source)
    return instance_from_dict(_read_json(path), str(path))


def json_schema() -> dict[str, Any]:
    """JSON Schema of the instance format (what `sftopt schema` prints)."""
    schema = Instance.model_json_schema(by_alias=True)
    schema["$id"] = SCHEMA_ID
    schema["title"] = "sftopt instance"
    return schema
