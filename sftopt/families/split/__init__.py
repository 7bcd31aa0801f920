"""Family `split` (docs/model.md section 2): every device runs the first blocks of the model and
shares one server part; decided per device are a cut, a codec level, a band and a server share.

``FAMILY`` is what the core reaches this family through (core/family.py's `Family` protocol).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...core.placement import Placement
from ...core.result import PLAN_SCHEMA, Result
from . import bounds, cost, generate, placement, plans, simulation
from .schema import SEQUENTIAL, Simulation, SplitInstance, SplitPlan

# what a sftopt.plan/1 status meant, as (status, termination)
_V1_STATUS = {"optimal": ("optimal", "converged"), "feasible": ("feasible", "converged"),
              "time_limit": ("feasible", "time_limit"), "infeasible": ("none", "infeasible"),
              "error": ("none", "error")}
_V1_PLAN_FIELDS = ("schedule", "round_delay_s", "rounds", "bytes_per_round",
                   "peak_memory_bytes", "devices")


class SplitFamily:
    name = "split"
    description = "split fine-tuning: device part + one shared server part, devices in parallel"
    objective = "total fine-tuning delay R x T on the average channel, s"
    default_solver = "alm"  # the best objective of the heuristics on every bundled instance
    instance_model = SplitInstance
    plan_model = SplitPlan
    simulation_model = Simulation
    bound_methods = ("lagrangian", "relaxation", "milp")
    bound_note = "schedule (sequential plans: the sequential optimum)"
    allocators = simulation.ALLOCATORS
    columns = ("total_s", "round_s", "rounds", "bound_s", "gap", "sim_total_s", "MB/round")

    def arrays(self, instance: SplitInstance) -> Any:
        return instance.arrays

    def formal_model(self, instance: SplitInstance, **options: Any) -> Any:
        """The Pyomo MINLP (options: schedule, rate_floor_hz)."""
        from .formal import build_split_model  # Pyomo is slow to import: only when asked

        return build_split_model(instance, **options)

    def evaluate(self, instance: SplitInstance, plan: SplitPlan) -> cost.Evaluation:
        return cost.evaluate(instance, plan.cuts, plan.levels, plan.bandwidth, plan.share,
                             schedule=plan.schedule)

    def verify(self, instance: SplitInstance, result: Result) -> Any:
        from .verifier import verify  # Pyomo is slow to import: only when checking

        return verify(instance, result)

    def check_structure(self, instance: SplitInstance, result: Result) -> list[str]:
        """Why the result's plan cannot be evaluated on ``instance`` (empty: it can)."""
        return plans.structure_problems(instance, result.plan)

    def plan_class(self, result: Result) -> str:
        """Bounds hold per schedule: a sequential plan keeps one device's activations on the
        server at a time, so the parallel bounds do not bound it."""
        return result.plan.schedule

    def lower_bound(self, instance: SplitInstance, method: str, plan_class: str = "parallel",
                    *, time_limit: float = 10.0) -> float:
        """Certified lower bound on R x T of every plan of the schedule ``plan_class``.

        Sequential plans: every method gives the exact sequential optimum. ``milp``: the milp
        solver's dual bound after ``time_limit`` s, never below the relaxation."""
        if method not in self.bound_methods:
            raise ValueError(f"bound method must be one of {list(self.bound_methods)}, "
                             f"got {method!r}")
        if plan_class == SEQUENTIAL or method != "milp":
            return bounds.lower_bound(instance, method="relaxation" if method == "milp"
                                      else method, schedule=plan_class)
        from ...core.registry import solve

        relax = bounds.lower_bound(instance, method="relaxation")
        if math.isinf(relax):
            return relax
        res = solve(instance, "milp", time_limit=time_limit, certify=False)
        return relax if res.bound is None else max(relax, res.bound)

    def generate(self, **params: Any) -> dict[str, Any]:
        return generate.random_instance(params.pop("n_devices", 10), **params)

    def simulate(self, instance: SplitInstance, result: Result, *, plot: Any = None,
                 **options: Any) -> Simulation:
        """The two-timescale simulation (``options``: seed, allocator, progress); with ``plot``
        (a file path) also the figure of its rounds."""
        sim, per_round = simulation.run(instance, result, **options)
        if plot is not None and result.plan is not None:
            from .plots import plot_rounds  # matplotlib loads only when a figure is drawn

            plot_rounds(per_round, result.plan.round_delay_s, plot,
                        title=f"{instance.name}: {result.solver} plan, {sim.allocator} "
                              f"allocator, seed {sim.seed}")
        return sim

    def placement(self, instance: SplitInstance, result: Result) -> Placement:
        return placement.placement(instance, result)

    def predict(self, instance: SplitInstance, result: Result, level: int | None = None
                ) -> dict[str, Any]:
        """What the cost model predicts a run of the plan measures each round: bytes over the
        air, and each party's compute seconds (a device its stages; the server every device's
        server part, at the whole server). ``level``: every device at that codec level."""
        plan = result.plan
        levels = plan.levels if level is None else np.full(len(plan.devices), level)
        t = cost.terms(instance, plan.cuts, levels)
        compute = {d.id: float(c) for d, c in zip(instance.devices, t.compute, strict=True)}
        compute[placement.SERVER] = float(t.server_work.sum())
        return {"bytes_per_round": cost.bytes_per_round(instance, plan.cuts, levels),
                "compute_s": compute}

    def summary(self, result: Result) -> dict[str, Any]:
        """A result's figures for the command line's table (its ``columns``)."""
        plan, sim = result.plan, result.simulation
        bpr = None if plan is None or plan.bytes_per_round is None else plan.bytes_per_round
        return {"total_s": result.objective,
                "round_s": None if plan is None else plan.round_delay_s,
                "rounds": None if plan is None else plan.rounds, "bound_s": result.bound,
                "gap": result.gap, "sim_total_s": None if sim is None else sim.total_delay_s,
                "MB/round": None if bpr is None else bpr / 1e6}

    def describe(self, report: Any) -> str:
        """The verifier's verdict in one line."""
        if not report.feasible:
            return "INFEASIBLE"
        f = report.figures
        return (f"feasible: total delay {report.objective:.6g} s = {f['rounds']:.6g} rounds x "
                f"{f['round_delay']:.6g} s")

    def plot_plan(self, instance: SplitInstance, result: Result, path: Any) -> Any:
        from .plots import plot_plan  # matplotlib loads only when a figure is drawn

        return plot_plan(instance, result, path)

    def plan_rows(self, instance: SplitInstance, result: Result
                  ) -> tuple[str, list[dict[str, Any]]]:
        plan = result.plan
        ev = self.evaluate(instance, plan)
        rows = [{"device": d.id, "cut": d.cut, "level": d.level,
                 "band_MHz": d.bandwidth_hz / 1e6, "share": d.server_share,
                 "compute_s": ev.compute_s[k], "comm_s": ev.comm_s[k],
                 "server_s": ev.server_s[k], "T_k_s": ev.device_delay[k],
                 "mem_GB": ev.device_memory[k] / 1e9}
                for k, d in enumerate(plan.devices)]
        title = (f"{instance.name}: {result.solver} plan ({instance.n_devices} devices, "
                 f"{instance.model.name}, L = {instance.model.n_blocks})")
        return title, rows

    def upgrade_plan(self, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """A sftopt.plan/1 file (the plan's fields at the top) as a /2 envelope, and the /2
        fields renamed from /1 ones (so that errors name the field the file has).

        A /1 result without a total delay had no plan (its devices were placeholders): it
        becomes status none, whatever its status said."""
        old = data.get("status", "feasible")
        status, termination = _V1_STATUS.get(old, (old, "converged")) \
            if isinstance(old, str) else (old, "converged")
        if old == "time_limit" and "total_delay_s" in data and data["total_delay_s"] is None:
            status = "none"
        out = {k: v for k, v in data.items()
               if k not in (*_V1_PLAN_FIELDS, "total_delay_s", "lower_bound_s")}
        out.update(schema=PLAN_SCHEMA, family=data.get("family", "split"), status=status,
                   termination=termination, objective=data.get("total_delay_s"),
                   bound=data.get("lower_bound_s"))
        out["plan"] = None if status == "none" else \
            {k: data[k] for k in _V1_PLAN_FIELDS if k in data}
        return out, {"objective": "total_delay_s", "bound": "lower_bound_s",
                     "status": "status", "termination": "status"}


FAMILY = SplitFamily()
