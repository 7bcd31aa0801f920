"""One result type for every solver; it is the plan JSON of docs/model.md section 5."""

from __future__ import annotations

import contextlib
import json
import math
import platform
from enum import StrEnum
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .instance import InstanceError, Problem, _problems_from, _read_json

PLAN_SCHEMA = "sftopt.plan/1"


class Status(StrEnum):
    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    TIME_LIMIT = "time_limit"
    ERROR = "error"


class DevicePlan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    cut: int
    level: int
    bandwidth_hz: float = Field(ge=0)
    server_share: float = Field(ge=0)


class Simulation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    total_delay_s: float | None
    mean_round_delay_s: float | None
    rounds: int
    seed: int
    allocator: str = "exact"


class PeakMemory(BaseModel):
    model_config = ConfigDict(extra="forbid")
    server: float | None
    devices: list[float | None]


def versions() -> dict[str, str]:
    """Versions that produced a result (for reproducibility)."""
    out = {"python": platform.python_version()}
    for pkg in ("sftopt", "numpy", "scipy", "pyomo", "highspy", "pyscipopt", "cvxpy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


class Result(BaseModel):
    """A solver's answer, like scipy's OptimizeResult: same fields for every method.

    Serialises to (and loads from) the plan JSON. ``objective`` and ``bound`` are the spec's
    ``total_delay_s`` and ``lower_bound_s``.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: Literal["sftopt.plan/1"] = Field(default=PLAN_SCHEMA, alias="schema")
    family: Literal["split"] = "split"
    instance: str
    instance_sha256: str | None = None
    solver: str = "external"
    options: dict[str, Any] = Field(default_factory=dict)
    status: Status = Status.FEASIBLE
    message: str = ""
    schedule: Literal["parallel", "sequential"] = "parallel"
    total_delay_s: float | None = None
    round_delay_s: float | None = None
    rounds: float | None = None
    lower_bound_s: float | None = None
    gap: float | None = None
    wall_s: float = 0.0
    iterations: int = 0
    bytes_per_round: float | None = None
    peak_memory_bytes: PeakMemory | None = None
    devices: list[DevicePlan]
    simulation: Simulation | None = None
    versions: dict[str, str] = Field(default_factory=dict)

    # scipy-style aliases
    @property
    def objective(self) -> float | None:
        return self.total_delay_s

    @property
    def bound(self) -> float | None:
        return self.lower_bound_s

    @property
    def success(self) -> bool:
        return self.status in (Status.OPTIMAL, Status.FEASIBLE, Status.TIME_LIMIT) and (
            self.total_delay_s is not None
        )

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

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def to_json(self, indent: int = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent) + "\n"

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json())
        return path


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def load_plan(source: str | Path | dict[str, Any]) -> Result:
    """Load a plan (from sftopt or another tool); InstanceError with JSON paths if malformed."""
    name = None if isinstance(source, dict) else str(source)
    data = source if isinstance(source, dict) else _read_json(Path(source))
    if not isinstance(data, dict):
        raise InstanceError([Problem("$", "a JSON object", type(data).__name__)], name)
    if data.get("schema") != PLAN_SCHEMA:
        raise InstanceError([Problem("$.schema", f"'{PLAN_SCHEMA}'", repr(data.get("schema")))],
                            name)
    try:
        return Result.model_validate(data)
    except ValidationError as err:
        raise InstanceError(_problems_from(err), name) from None

