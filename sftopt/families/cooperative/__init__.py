"""Family `cooperative` (docs/model.md section 7): devices fine-tune different blocks of one
model; decided are which device fine-tunes which block and each device's band.

``FAMILY`` is what the core reaches this family through (core/family.py's `Family` protocol).
"""

from __future__ import annotations

from typing import Any

from ...core.placement import Placement
from ...core.result import Result
from . import bounds, cost, generate, placement
from .schema import OFFLOAD, CooperativeInstance, CooperativePlan


class CooperativeFamily:
    name = "cooperative"
    description = "cooperative fine-tuning: each device fine-tunes its own block(s) of one model"
    objective = "round delay on the average channel, s"
    default_solver = "exact"
    instance_model = CooperativeInstance
    plan_model = CooperativePlan
    simulation_model = None
    bound_methods = ("relaxation", "exact", "dual")
    bound_note = "plan class (offloading plans: the offloading optimum)"
    allocators = ()
    columns = ("round_s", "total_s", "bound_s", "gap", "busy", "MB/round")

    def arrays(self, instance: CooperativeInstance) -> Any:
        return instance.arrays

    def formal_model(self, instance: CooperativeInstance, **options: Any) -> Any:
        """The Pyomo MINLP (options: plan_class, rate_floor_hz)."""
        from .formal import build_cooperative_model  # Pyomo is slow to import: only when asked

        return build_cooperative_model(instance, **options)

    def evaluate(self, instance: CooperativeInstance, plan: CooperativePlan) -> cost.Evaluation:
        return cost.evaluate(instance, plan.assignment, plan.bandwidth, plan.server_blocks)

    def verify(self, instance: CooperativeInstance, result: Result) -> Any:
        from .verifier import verify  # Pyomo is slow to import: only when checking

        return verify(instance, result)

    def check_structure(self, instance: CooperativeInstance, result: Result) -> list[str]:
        from .plans import structure_problems

        return structure_problems(instance, result.plan)

    def plan_class(self, result: Result) -> str:
        """Bounds hold per class: blocks on devices, or every block on the server."""
        return result.plan.plan_class

    def lower_bound(self, instance: CooperativeInstance, method: str,
                    plan_class: str = "devices", *, time_limit: float = 10.0) -> float:
        """Certified lower bound on the round delay of every plan of the class ``plan_class``.

        Offloading plans: every method gives that class's optimum (its exact band split).
        ``exact`` and ``dual``: the bound the `exact` / `dual-ascent` solver proves within
        ``time_limit`` s, never below the relaxation."""
        if method not in self.bound_methods:
            raise ValueError(f"bound method must be one of {list(self.bound_methods)}, "
                             f"got {method!r}")
        from .allocation import offload

        a = instance.arrays
        if plan_class == OFFLOAD:
            return offload(a).lower_bound
        relax = bounds.relaxation(a)
        if method == "relaxation":
            return relax
        from ...core.registry import solve

        res = solve(instance, "exact" if method == "exact" else "dual-ascent",
                    time_limit=time_limit, certify=False)
        return relax if res.bound is None else max(relax, res.bound)

    def generate(self, **params: Any) -> dict[str, Any]:
        return generate.random_instance(params.pop("n_devices", 16), **params)

    def simulate(self, instance: CooperativeInstance, result: Result, **options: Any) -> Any:
        raise ValueError("family 'cooperative' has no simulation: its round delay is the same "
                         "every round (no fading re-allocation is modelled)")

    def placement(self, instance: CooperativeInstance, result: Result) -> Placement:
        return placement.placement(instance, result)

    def predict(self, instance: CooperativeInstance, result: Result, level: int | None = None
                ) -> dict[str, Any]:
        """What the cost model predicts a run of the plan measures each round: bytes over the
        air and each busy party's compute seconds. ``level``: uploads at that codec level."""
        if level is not None:
            data = instance.to_dict()
            data["training"]["upload_level"] = level
            data["training"]["max_distortion"] = max(
                instance.training.max_distortion, instance.codec.levels[level].distortion)
            instance = CooperativeInstance.model_validate(data)
        plan = result.plan
        ev = self.evaluate(instance, plan)
        compute = {d.id: float(c) for d, c, held in zip(instance.devices, ev.compute_s,
                                                          plan.assignment, strict=True)
                   if held or plan.server_blocks}
        if plan.server_blocks:
            compute[placement.SERVER] = float(ev.server_s)
        return {"bytes_per_round": ev.bytes_per_round, "compute_s": compute}

    def summary(self, result: Result) -> dict[str, Any]:
        plan = result.plan
        return {"round_s": result.objective,
                "total_s": None if plan is None else plan.total_delay_s,
                "bound_s": result.bound, "gap": result.gap,
                "busy": None if plan is None else
                ("server" if plan.server_blocks else sum(bool(d.blocks) for d in plan.devices)),
                "MB/round": None if plan is None or plan.bytes_per_round is None
                else plan.bytes_per_round / 1e6}

    def describe(self, report: Any) -> str:
        if not report.feasible:
            return "INFEASIBLE"
        return f"feasible: round delay {report.objective:.6g} s"

    def plot_plan(self, instance: CooperativeInstance, result: Result, path: Any) -> Any:
        from .plots import plot_plan  # matplotlib loads only when a figure is drawn

        return plot_plan(instance, result, path)

    def plan_rows(self, instance: CooperativeInstance, result: Result
                  ) -> tuple[str, list[dict[str, Any]]]:
        plan = result.plan
        ev = self.evaluate(instance, plan)
        layers = instance.blocks
        rows = [{"device": d.id,
                 "layers": ",".join(str(layers[j]) for j in d.blocks) or "-",
                 "band_MHz": d.bandwidth_hz / 1e6, "compute_s": ev.compute_s[k],
                 "comm_s": ev.comm_s[k], "T_k_s": ev.device_delay[k],
                 "mem_GB": ev.device_memory[k] / 1e9}
                for k, d in enumerate(plan.devices)]
        if plan.server_blocks:
            rows.append({"device": placement.SERVER, "layers": "all", "band_MHz": None,
                         "compute_s": ev.server_s, "comm_s": None, "T_k_s": None,
                         "mem_GB": ev.server_memory / 1e9})
        title = (f"{instance.name}: {result.solver} plan ({instance.n_devices} devices, "
                 f"{instance.n_blocks} blocks, {instance.model.name})")
        return title, rows

    def upgrade_plan(self, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """No older plan format exists for this family."""
        from ...core.errors import InstanceError, Problem

        raise InstanceError([Problem("$.schema", "'sftopt.plan/2' (family cooperative has no "
                                     "older plan files)", repr(data.get("schema")))])


FAMILY = CooperativeFamily()
