"""The family map and the `Family` protocol: what each problem family plugs into the core.

A family is a folder under `sftopt/families/` whose package exposes ``FAMILY``, an object with
the members below; the core (loading, solving, certifying, checking, simulating, generating,
the CLI) reaches a family only through it. Adding a family is a new folder and one entry in
`FAMILIES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .placement import Placement
    from .result import Result
    from .schema import InstanceBase

# family name -> package (None: specified in docs/model.md, not implemented in this version)
FAMILIES: dict[str, str | None] = {
    "split": "sftopt.families.split",
    "cooperative": "sftopt.families.cooperative",
    "hierarchical": "sftopt.families.hierarchical",
}


@dataclass
class Report:
    """What a family's verifier found when it held a plan against the formal model.

    ``slacks``: relative slack by constraint name (< 0 violated); ``figures``: the recomputed
    figures of the plan (the family names them); ``claims``: figures the plan states that
    disagree with the model."""

    feasible: bool
    objective: float | None
    violations: list[str] = field(default_factory=list)
    slacks: dict[str, float] = field(default_factory=dict)
    claims: list[str] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)
    epigraph: tuple[str, ...] = ()  # constraint-name prefixes that only define auxiliaries
    # remarks that do not make the plan wrong (a plan naming its instance otherwise than the
    # file; what the modelling layer logged while checking, captured instead of printed)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Feasible and every figure the plan states agrees with the model."""
        return self.feasible and not self.claims

    def binding(self, n: int = 5) -> list[tuple[str, float]]:
        """The n tightest resource constraints (smallest relative slack); epigraph rows, tight
        by construction, left out."""
        rows = [(k, v) for k, v in self.slacks.items() if not k.startswith(self.epigraph)]
        return sorted(rows, key=lambda kv: kv[1])[:n]


class Family(Protocol):
    """What a problem family implements (see docs/architecture.md)."""

    name: str
    description: str
    objective: str  # what Result.objective measures, with its unit
    default_solver: str
    instance_model: type[InstanceBase]  # the pydantic schema of its instances
    plan_model: type[Any]  # the pydantic schema of Result.plan
    simulation_model: type[Any] | None  # Result.simulation's schema (None: no simulation)
    bound_methods: Sequence[str]  # lower-bound methods, the default first
    bound_note: str  # what bounds hold per, for a table's footnote ("schedule; ...")
    allocators: Sequence[str]  # online allocators a simulation may use (empty: none)
    columns: Sequence[str]  # the command line's table columns for a result (`summary`)

    def arrays(self, instance: Any) -> Any:
        """The numbers of an instance as numpy arrays (built once per instance)."""

    def evaluate(self, instance: Any, plan: Any) -> Any:
        """The cost model's figures of a plan (an object with ``feasible``, ``violations``)."""

    def formal_model(self, instance: Any, **options: Any) -> Any:
        """The formal (Pyomo) model of an instance, written independently of the cost model."""

    def verify(self, instance: Any, result: Result) -> Report:
        """Hold the plan against the formal (Pyomo) model: the independent second expression."""

    def check_structure(self, instance: Any, result: Result) -> list[str]:
        """Why a result's plan cannot even be evaluated on ``instance`` (another device count,
        an index out of range, ...); empty when it can."""

    def plan_class(self, result: Result) -> str:
        """The class of plans a result belongs to for bounding (bounds are per class)."""

    def lower_bound(self, instance: Any, method: str, plan_class: str) -> float:
        """A certified lower bound on the objective of every plan of that class (inf: none)."""

    def generate(self, **params: Any) -> dict[str, Any]:
        """A seeded random instance as a JSON-ready dict."""

    def simulate(self, instance: Any, result: Result, **options: Any) -> Any:
        """The family's simulation of a plan (its simulation_model)."""

    def placement(self, instance: Any, result: Result) -> Placement:
        """Who runs which stages and which links carry what at which codec level."""

    def predict(self, instance: Any, result: Result, level: int | None = None
                ) -> dict[str, Any]:
        """What the cost model predicts a run of the plan measures per round: bytes_per_round
        and compute_s per party (the executor's predictions); ``level``: every codec level the
        plan uses replaced by that one (the uncompressed baseline: 0)."""

    def plan_rows(self, instance: Any, result: Result) -> tuple[str, list[dict[str, Any]]]:
        """A title and one row per party of a plan, for the command line's table."""

    def summary(self, result: Result) -> dict[str, Any]:
        """A result's figures under ``columns``, for the command line's table."""

    def describe(self, report: Report) -> str:
        """The verifier's verdict in one line."""

    def plot_plan(self, instance: Any, result: Result, path: Any) -> Any:
        """Draw a plan (where each party's round goes) into a figure file."""

    def upgrade_plan(self, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """An older plan file as the current envelope (sftopt.plan/1 -> /2), and which current
        fields were renamed from which old ones."""


class FamilyError(ValueError):
    """A family that does not exist or is not implemented in this version."""


def implemented() -> list[str]:
    """The families this version implements."""
    return [name for name, pkg in FAMILIES.items() if pkg is not None]


def get_family(name: Any) -> Family:
    """The family object for ``name`` (its package is imported on first use)."""
    if not isinstance(name, str) or FAMILIES.get(name) is None:
        later = [f for f, pkg in FAMILIES.items() if pkg is None]
        if name in later:
            why = f" (family '{name}' is specified in docs/model.md but not implemented yet)"
        elif later:
            why = f" ({' and '.join(later)} are specified in docs/model.md, not implemented yet)"
        else:
            why = ""
        raise FamilyError(f"one of {implemented()}{why}; got {name!r}")
    return importlib.import_module(FAMILIES[name]).FAMILY
