"""FLOPs per stage counted by torch's FlopCounterMode, checked against the analytic profiler."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..profiles import count_profile
from ..torchrt.models import StagedModel
from .timing import run_step


def counted_flops(sm: StagedModel, ids: Any, labels: Any) -> dict[str, list[float]]:
    """Per-sample forward and backward FLOPs of each stage as torch dispatches them.

    FlopCounterMode counts matrix products (mm, addmm, bmm, attention) at 2 per multiply-add,
    the ops that dominate; it does not count elementwise ops (norms, softmax, activations).
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    batch = int(ids.shape[0])
    out: dict[str, list[float]] = {"fwd": [0.0] * len(sm.stages), "bwd": [0.0] * len(sm.stages)}

    @contextmanager
    def count(i: int, phase: str) -> Iterator[None]:
        mode = FlopCounterMode(display=False)
        with mode:
            yield
        out[phase][i] = mode.get_total_flops() / batch

    with torch.enable_grad():
        run_step(sm, ids, labels, ctx=count)
    return out


def analytic_flops(sm: StagedModel, seq_len: int) -> dict[str, list[float]]:
    """The analytic profiler's per-sample FLOPs for exactly the architecture that was built;
    a classifier's head counted here (the mean over the sequence, the linear layer, the loss;
    backward: the layer's weight and input gradients and the mean's)."""
    prof = count_profile(sm.arch, seq_len, lora_rank=sm.lora_rank,
                         lora_targets=sm.lora_targets, dtype_bytes=4)
    out = {"fwd": [float(s["fwd_flops"]) for s in prof["stages"]],
           "bwd": [float(s["bwd_flops"]) for s in prof["stages"]]}
    if sm.task == "classify":
        h, c = sm.arch.hidden, sm.classes
        out["fwd"][-1] = float(seq_len * h + 2 * h * c + 4 * c)
        out["bwd"][-1] = float(4 * h * c + seq_len * h)
    return out


def compare(counted: dict[str, list[float]], analytic: dict[str, list[float]]
            ) -> dict[str, Any]:
    """Relative differences (analytic - counted) / counted per stage and phase, and in total.

    Stages where torch counts nothing (the embedding: lookups and adds only) are reported with
    a null relative difference and their absolute analytic FLOPs.
    """
    rows = []
    worst = 0.0
    for i, (cf, cb, af, ab) in enumerate(zip(counted["fwd"], counted["bwd"], analytic["fwd"],
                                             analytic["bwd"], strict=True)):
        row: dict[str, Any] = {"stage": i, "counted_fwd": cf, "counted_bwd": cb,
                               "analytic_fwd": af, "analytic_bwd": ab}
        for key, c, a in (("rel_fwd", cf, af), ("rel_bwd", cb, ab)):
            row[key] = (a - c) / c if c > 0 else None
            if row[key] is not None:
                worst = max(worst, abs(row[key]))
        rows.append(row)
    tc = sum(counted["fwd"]) + sum(counted["bwd"])
    ta = sum(analytic["fwd"]) + sum(analytic["bwd"])
    return {"stages": rows, "total_counted": tc, "total_analytic": ta,
            "rel_total": (ta - tc) / tc, "max_abs_rel_stage": worst}
