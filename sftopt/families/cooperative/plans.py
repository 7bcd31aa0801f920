"""A `cooperative` decision becomes a Result through the cost model (what every solver returns)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...core import result
from ...core.formal import number_problems
from ...core.result import Result, Status, Termination, finite, versions
from .cost import Assignment, evaluate, index_violations
from .schema import CooperativeInstance, CooperativePlan, DevicePlan, PeakMemory


def structure_problems(inst: CooperativeInstance, plan: CooperativePlan) -> list[str]:
    """Why a plan cannot even be evaluated on ``inst``: another device count, other device ids,
    block indices out of range or not one owner per block, a band that is not a finite number
    >= 0 (empty: it can)."""
    if len(plan.devices) != inst.n_devices:
        return [f"plan has {len(plan.devices)} devices, instance {inst.n_devices}"]
    out = [f"devices[{k}]: id {p.id!r}, instance has {d.id!r} there"
           for k, (d, p) in enumerate(zip(inst.devices, plan.devices, strict=True))
           if d.id != p.id]
    out += number_problems([(f"devices[{k}].bandwidth_hz", p.bandwidth_hz)
                            for k, p in enumerate(plan.devices)])
    return out + index_violations(inst, plan.assignment, plan.server_blocks)


def make_result(inst: CooperativeInstance, assignment: Assignment, bandwidth: Sequence[float],
                *, server_blocks: Sequence[int] = (), status: Status = Status.FEASIBLE,
                termination: Termination = Termination.CONVERGED, message: str = "",
                lower_bound: float | None = None, iterations: int = 0) -> Result:
    """Evaluate a decision with the cost model and package it as a Result.

    The figures are the cost model's, so a solver cannot report one the model does not give. A
    decision that violates a constraint is no plan: termination infeasible, the message names
    the violated constraints."""
    assignment = [sorted(int(j) for j in held) for held in assignment]
    ev = evaluate(inst, assignment, bandwidth, server_blocks)
    if ev.violations:
        why = "; ".join(ev.violations) + (f" ({message})" if message else "")
        return no_plan(inst, Termination.INFEASIBLE, why, iterations)
    plan = CooperativePlan(
        server_blocks=sorted(int(j) for j in server_blocks),
        round_delay_s=finite(ev.round_delay), rounds=finite(ev.rounds),
        total_delay_s=finite(ev.total_delay), bytes_per_round=finite(ev.bytes_per_round),
        peak_memory_bytes=PeakMemory(server=finite(ev.server_memory),
                                     devices=[finite(m) for m in ev.device_memory]),
        devices=[DevicePlan(id=d.id, blocks=held, bandwidth_hz=float(b))
                 for d, held, b in zip(inst.devices, assignment,
                                       np.asarray(bandwidth, dtype=float), strict=True)])
    res = Result(family="cooperative", instance=inst.name, instance_sha256=inst.sha256,
                 status=status, termination=termination, message=message,
                 objective=finite(ev.round_delay), iterations=iterations, plan=plan,
                 versions=versions())
    return res.with_bound(finite(lower_bound))


def no_plan(inst: CooperativeInstance, termination: Termination, message: str,
            iterations: int = 0, bound: float | None = None) -> Result:
    """No plan: ``termination`` says why the solver stopped (infeasible: none exists, with the
    binding constraint named in ``message``)."""
    return result.no_plan("cooperative", inst, termination, message, iterations, bound)


def infeasible(inst: CooperativeInstance, message: str, iterations: int = 0) -> Result:
    """No plan exists (of the solver's kind); ``message`` names the binding constraint."""
    return no_plan(inst, Termination.INFEASIBLE, message, iterations)


def refused(inst: CooperativeInstance, message: str) -> Result:
    """The solver declines this instance (``message``: why, and what to use instead)."""
    return no_plan(inst, Termination.REFUSED, message)


def preflight(inst: CooperativeInstance, solver: str, one_block: bool = False) -> Result | None:
    """The result a solver returns without searching: a refusal if it assigns one block per
    device (``one_block``) and the instance allows more, or infeasible when no assignment fits
    in memory (the blocks that cannot all be placed named); None to go on."""
    from .matching import why_unassignable

    a = inst.arrays
    if one_block and a.max_blocks != 1:
        return refused(inst, f"{solver} assigns one block per device (max_blocks = 1); use "
                             "exact, greedy or random")
    why = why_unassignable(a, a.fits)
    return infeasible(inst, why) if why else None
