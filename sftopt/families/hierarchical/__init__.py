"""Family `hierarchical` (docs/model.md section 8): three-tier split fine-tuning, users / edge
servers / cloud; decided are two cuts per edge, users' edges (when open) and the cloud's
shares.

``FAMILY`` is what the core reaches this family through (core/family.py's `Family` protocol).
"""

from __future__ import annotations

from typing import Any

from ...core.placement import Placement
from ...core.result import Result
from . import bounds, cost, generate
from .schema import TWO_TIER, HierarchicalInstance, HierarchicalPlan


class HierarchicalFamily:
    name = "hierarchical"
    description = "three-tier split fine-tuning: users, edge servers (one user at a time), cloud"
    objective = "epoch delay (every user trains once) on the average channel, s"
    default_solver = "exact"
    instance_model = HierarchicalInstance
    plan_model = HierarchicalPlan
    simulation_model = None
    bound_methods = ("relaxation", "exact")
    bound_note = "plan class (two-tier plans: the split family's bound of the two-tier instance)"
    allocators = ()
    columns = ("epoch_s", "total_s", "bound_s", "gap", "cloud_GB", "MB/epoch")

    def arrays(self, instance: HierarchicalInstance) -> Any:
        return instance.arrays

    def formal_model(self, instance: HierarchicalInstance, **options: Any) -> Any:
        """The Pyomo MINLP (option: pairs, candidate cut pairs per edge)."""
        from .formal import build_hierarchical_model  # Pyomo is slow to import: only when asked

        return build_hierarchical_model(instance, **options)

    def evaluate(self, instance: HierarchicalInstance, plan: HierarchicalPlan) -> Any:
        """The cost model's figures (a two-tier plan: the split family's, of the two-tier
        instance)."""
        if plan.scheme == TWO_TIER:
            from ..split import FAMILY as SPLIT
            from ..split.schema import SplitPlan
            from .twotier import two_tier_instance

            return SPLIT.evaluate(two_tier_instance(instance),
                                  SplitPlan.model_validate(plan.two_tier))
        from .plans import layout_of

        lay, share = layout_of(instance, plan)
        return cost.evaluate(instance.arrays, lay, share)

    def verify(self, instance: HierarchicalInstance, result: Result) -> Any:
        from .verifier import verify  # Pyomo is slow to import: only when checking

        return verify(instance, result)

    def check_structure(self, instance: HierarchicalInstance, result: Result) -> list[str]:
        from .plans import structure_problems

        return structure_problems(instance, result.plan)

    def plan_class(self, result: Result) -> str:
        """Bounds hold per scheme: three-tier plans, or the two-tier comparison."""
        return result.plan.plan_class

    def lower_bound(self, instance: HierarchicalInstance, method: str,
                    plan_class: str = "three-tier", *, time_limit: float = 10.0) -> float:
        """Certified lower bound on the epoch delay of every plan of the class ``plan_class``.

        Two-tier plans: the split family's lagrangian bound on R x T of the two-tier instance,
        over R. ``exact``: the bound the `exact` solver proves within ``time_limit`` s, never
        below the relaxation."""
        if method not in self.bound_methods:
            raise ValueError(f"bound method must be one of {list(self.bound_methods)}, "
                             f"got {method!r}")
        if plan_class == TWO_TIER:
            from ..split import FAMILY as SPLIT
            from .twotier import two_tier_instance

            split = two_tier_instance(instance)
            tr = split.training  # one codec level: R is the same for every two-tier plan
            rounds = tr.rounds * (1.0 + tr.eta * split.codec.levels[0].distortion)
            return SPLIT.lower_bound(split, "lagrangian") / rounds
        relax = bounds.relaxation(instance.arrays)
        if method == "relaxation":
            return relax
        from ...core.registry import solve

        res = solve(instance, "exact", time_limit=time_limit, certify=False)
        return relax if res.bound is None else max(relax, res.bound)

    def generate(self, **params: Any) -> dict[str, Any]:
        """The generator's parameters; the command line's common ones mean users
        (``n_devices``) and each cell's band (``bandwidth_hz``) here."""
        for common, own in (("n_devices", "n_users"), ("bandwidth_hz", "cell_bandwidth_hz")):
            if common in params:
                if own in params:
                    raise ValueError(f"give {own} or {common}, not both")
                params[own] = params.pop(common)
        return generate.random_instance(params.pop("n_users", 30), **params)

    def simulate(self, instance: HierarchicalInstance, result: Result, **options: Any) -> Any:
        raise ValueError("family 'hierarchical' has no simulation: its epoch delay is the same "
                         "every epoch (no fading re-allocation is modelled)")

    def placement(self, instance: HierarchicalInstance, result: Result) -> Placement:
        from .placement import placement

        return placement(instance, result)

    def predict(self, instance: HierarchicalInstance, result: Result, level: int | None = None
                ) -> dict[str, Any]:
        """What the cost model predicts a run measures per epoch: bytes over the cells and the
        backhaul, and each party's compute seconds (users their stages; each edge its part for
        all its users; the cloud its part for every user, at the whole cloud). ``level``: both
        links at that codec level."""
        from .placement import predict

        return predict(instance, result, level)

    def summary(self, result: Result) -> dict[str, Any]:
        plan = result.plan
        mem = None if plan is None or plan.peak_memory_bytes is None else \
            plan.peak_memory_bytes.cloud / 1e9
        return {"epoch_s": result.objective,
                "total_s": None if plan is None else plan.total_delay_s,
                "bound_s": result.bound, "gap": result.gap, "cloud_GB": mem,
                "MB/epoch": None if plan is None or plan.bytes_per_epoch is None
                else plan.bytes_per_epoch / 1e6}

    def describe(self, report: Any) -> str:
        if not report.feasible:
            return "INFEASIBLE"
        return f"feasible: epoch delay {report.objective:.6g} s"

    def plot_plan(self, instance: HierarchicalInstance, result: Result, path: Any) -> Any:
        from .plots import plot_plan  # matplotlib loads only when a figure is drawn

        return plot_plan(instance, result, path)

    def plan_rows(self, instance: HierarchicalInstance, result: Result
                  ) -> tuple[str, list[dict[str, Any]]]:
        plan = result.plan
        title = (f"{instance.name}: {result.solver} plan ({instance.n_users} users, "
                 f"{instance.n_edges} edges, {instance.model.name})")
        if plan.scheme == TWO_TIER:
            rows = [{"user": d["id"], "cut": d["cut"], "band_MHz": d["bandwidth_hz"] / 1e6,
                     "cloud_share": d["server_share"]} for d in plan.two_tier["devices"]]
            return title + ", two-tier", rows
        ev = self.evaluate(instance, plan)
        rows = [{"edge": ep.id, "users": len(ep.users), "user_cut": ep.user_cut,
                 "edge_cut": ep.edge_cut, "cloud_share": ep.cloud_share,
                 "delay_s": float(ev.edge_delay[e]), "mem_GB": float(ev.edge_memory[e]) / 1e9}
                for e, ep in enumerate(plan.edges)]
        rows.append({"edge": "cloud", "users": instance.n_users, "user_cut": None,
                     "edge_cut": None, "cloud_share": sum(ep.cloud_share for ep in plan.edges),
                     "delay_s": ev.epoch_delay, "mem_GB": ev.cloud_memory / 1e9})
        return title, rows

    def upgrade_plan(self, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """No older plan format exists for this family."""
        from ...core.errors import InstanceError, Problem

        raise InstanceError([Problem("$.schema", "'sftopt.plan/2' (family hierarchical has "
                                     "no older plan files)", repr(data.get("schema")))])


FAMILY = HierarchicalFamily()
