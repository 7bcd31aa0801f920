"""A `split` decision becomes a Result through the cost model (what every solver returns)."""

from __future__ import annotations

import numpy as np

from ...core import result
from ...core.formal import number_problems
from ...core.result import Result, Status, Termination, finite, versions
from .cost import evaluate, index_violations
from .schema import PARALLEL, DevicePlan, PeakMemory, SplitInstance, SplitPlan


def structure_problems(inst: SplitInstance, plan: SplitPlan) -> list[str]:
    """Why a plan cannot even be evaluated on ``inst``: another device count, other device
    ids, a cut or level that is not a whole number in range (-1 is not the last one), a band
    or share that is not a finite number >= 0 (empty: it can)."""
    if len(plan.devices) != inst.n_devices:
        return [f"plan has {len(plan.devices)} devices, instance {inst.n_devices}"]
    out = [f"devices[{k}]: id {p.id!r}, instance has {d.id!r} there"
           for k, (d, p) in enumerate(zip(inst.devices, plan.devices, strict=True))
           if d.id != p.id]
    whole = [f"devices[{k}].{f}: {v!r} is not a whole number"
             for k, p in enumerate(plan.devices) for f in ("cut", "level")
             if isinstance(v := getattr(p, f), bool) or not isinstance(v, int)]
    if whole:
        return out + whole
    out += number_problems([(f"devices[{k}].{f}", getattr(p, f))
                            for k, p in enumerate(plan.devices)
                            for f in ("bandwidth_hz", "server_share")])
    return out + index_violations(inst, plan.cuts, plan.levels)


def make_result(
    inst: SplitInstance,
    cuts: np.ndarray,
    levels: np.ndarray,
    bandwidth: np.ndarray,
    share: np.ndarray,
    *,
    status: Status = Status.FEASIBLE,
    termination: Termination = Termination.CONVERGED,
    message: str = "",
    lower_bound: float | None = None,
    iterations: int = 0,
    schedule: str = PARALLEL,
) -> Result:
    """Evaluate a decision with the cost model and package it as a Result.

    The figures are the cost model's, so a solver cannot report one the model does not give.
    A decision that violates a constraint is no plan: the result has none, termination
    infeasible, and its message names the violated constraints.
    """
    ev = evaluate(inst, cuts, levels, bandwidth, share, schedule=schedule)
    if ev.violations:
        why = "; ".join(ev.violations) + (f" ({message})" if message else "")
        return no_plan(inst, Termination.INFEASIBLE, why, iterations)
    total = finite(ev.total_delay)
    devices = [
        DevicePlan(id=d.id, cut=int(s), level=int(c), bandwidth_hz=float(b), server_share=float(p))
        for d, s, c, b, p in zip(inst.devices, cuts, levels, bandwidth, share, strict=True)
    ]
    plan = SplitPlan(
        schedule=schedule,
        round_delay_s=finite(ev.round_delay),
        rounds=finite(ev.rounds),
        bytes_per_round=finite(ev.bytes_per_round),
        peak_memory_bytes=PeakMemory(server=finite(ev.server_memory),
                                     devices=[finite(m) for m in ev.device_memory]),
        devices=devices,
    )
    res = Result(family="split", instance=inst.name, instance_sha256=inst.sha256,
                 status=status, termination=termination, message=message, objective=total,
                 iterations=iterations, plan=plan, versions=versions())
    return res.with_bound(finite(lower_bound))


def no_plan(inst: SplitInstance, termination: Termination, message: str,
            iterations: int = 0, bound: float | None = None) -> Result:
    """No plan: ``termination`` says why the solver stopped (infeasible: none exists, with the
    binding constraint named in ``message``)."""
    return result.no_plan("split", inst, termination, message, iterations, bound)


def infeasible(inst: SplitInstance, message: str, iterations: int = 0) -> Result:
    """No plan exists (of the solver's kind); ``message`` names the binding constraint."""
    return no_plan(inst, Termination.INFEASIBLE, message, iterations)


def uncompressed_refusal(inst: SplitInstance) -> Result | None:
    """For a baseline that sends uncompressed (level 0): no plan if level 0 breaks the accuracy
    bound, else None."""
    a = inst.arrays
    if 0 in a.allowed_levels:
        return None
    return infeasible(inst, f"accuracy: level 0 has distortion {a.delta[0]:g} > "
                            f"max_distortion {inst.training.max_distortion:g}")


def failed(inst: SplitInstance, message: str) -> Result:
    """The search found no plan although one exists (its diagnosis said so): an error."""
    return no_plan(inst, Termination.ERROR, message + " (a plan exists: the search failed)")
