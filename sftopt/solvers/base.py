"""Machinery every solver shares: turning a decision into a Result via the cost model."""

from __future__ import annotations

import numpy as np

from ..cost import PARALLEL, evaluate
from ..instance import Instance
from ..result import DevicePlan, PeakMemory, Result, Status, _finite, versions


def make_result(
    inst: Instance,
    cuts: np.ndarray,
    levels: np.ndarray,
    bandwidth: np.ndarray,
    share: np.ndarray,
    *,
    status: Status = Status.FEASIBLE,
    message: str = "",
    lower_bound: float | None = None,
    iterations: int = 0,
    schedule: str = PARALLEL,
) -> Result:
    """Evaluate a decision with the cost model and package it as a Result.

    A decision that violates a constraint comes back ``infeasible`` with null delays and the
    violated constraints named in the message, whatever status the solver claimed.
    """
    ev = evaluate(inst, cuts, levels, bandwidth, share, schedule=schedule)
    devices = [
        DevicePlan(id=d.id, cut=int(s), level=int(c), bandwidth_hz=float(b), server_share=float(p))
        for d, s, c, b, p in zip(inst.devices, cuts, levels, bandwidth, share, strict=True)
    ]
    total = None if ev.violations else _finite(ev.total_delay)
    if ev.violations:
        status = Status.INFEASIBLE
        message = "; ".join(ev.violations) + (f" ({message})" if message else "")
    gap = None
    if lower_bound is not None and total is not None:
        gap = max(0.0, (total - lower_bound) / total)
    return Result(
        instance=inst.name,
        instance_sha256=inst.sha256,
        status=status,
        message=message,
        schedule=schedule,
        total_delay_s=total,
        round_delay_s=None if total is None else _finite(ev.round_delay),
        rounds=None if total is None else _finite(ev.rounds),
        lower_bound_s=_finite(lower_bound) if lower_bound is not None else None,
        gap=gap,
        iterations=iterations,
        bytes_per_round=_finite(ev.bytes_per_round),
        peak_memory_bytes=PeakMemory(
            server=_finite(ev.server_memory), devices=[_finite(m) for m in ev.device_memory]
        ),
        devices=devices,
        versions=versions(),
    )


def infeasible_result(inst: Instance, message: str, iterations: int = 0) -> Result:
    """No plan exists (or none was found): null delays, the reason in words."""
    k = inst.n_devices
    zeros = np.zeros(k)
    res = make_result(inst, np.full(k, inst.training.min_cut), np.zeros(k, dtype=int), zeros, zeros,
                      iterations=iterations)
    return res.model_copy(update={
        "status": Status.INFEASIBLE, "message": message, "total_delay_s": None,
        "round_delay_s": None, "rounds": None, "gap": None, "bytes_per_round": None,
        "peak_memory_bytes": None})
