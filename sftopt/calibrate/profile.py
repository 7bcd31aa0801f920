"""Assemble a measured model profile (sftopt/models/*.json format) with a fitted device entry."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..torchrt.models import StagedModel, build_model
from .device import device_entry, fit_flops, machine
from .timing import default_clock, set_threads, summarize, time_interleaved


def measure(
    sm: StagedModel,
    *,
    batch: int,
    seq_len: int,
    repeats: int = 5,
    warmup: int = 2,
    seed: int = 0,
    text: str | Path | None = None,
    clock: str | None = None,
    cuts: Sequence[int] = (),
    progress: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Every per-stage measurement of one model at one (batch, seq_len): times, FLOPs, memory.

    clock None: thread CPU time with one torch thread, wall time otherwise (timing.clock_fn).
    With `cuts`, the device parts of those cuts are timed interleaved with the calibration
    steps (`timing.time_interleaved`); their times are in m["times"]["parts"].
    """
    from .flops import analytic_flops, compare, counted_flops
    from .memory import stage_memory

    if batch <= 0 or repeats <= 0 or warmup < 0:
        raise ValueError(f"need batch > 0, repeats > 0, warmup >= 0; got {batch}, {repeats}, "
                         f"{warmup}")
    ids, labels = sm.make_batch(batch, seq_len, seed=seed, text=text)
    counted = counted_flops(sm, ids, labels)
    analytic = analytic_flops(sm, seq_len)
    mem = stage_memory(sm, ids, labels)
    clock = clock or default_clock()
    times = time_interleaved(sm, ids, labels, cuts=cuts, repeats=repeats, warmup=warmup,
                             clock=clock, seed=seed, progress=progress)
    return {"counted": counted, "analytic": analytic, "flops_check": compare(counted, analytic),
            "memory": mem, "times": times, "batch": batch, "seq_len": seq_len, "clock": clock}


def stage_seconds(m: dict[str, Any], wall: bool = False) -> list[float]:
    """Median forward + backward seconds of each stage at the measured batch (by the
    measurement's clock, or by the wall clock)."""
    t = m["times"]
    fwd, bwd = (t["fwd_wall"], t["bwd_wall"]) if wall else (t["fwd"], t["bwd"])
    return [summarize(f)["median"] + (summarize(b)["median"] if any(b) else 0.0)
            for f, b in zip(fwd, bwd, strict=True)]


def fitted_device_flops(m: dict[str, Any], last: int | None = None, wall: bool = False
                        ) -> float:
    """Sustained FLOP/s over stages 0..last (default: 0..L, what a device can run):
    sum of the stages' FLOPs at this batch over the sum of their median times."""
    n_last = len(m["times"]["fwd"]) - 1
    last = n_last - 1 if last is None else last
    work = [m["batch"] * (f + b) for f, b in zip(m["analytic"]["fwd"], m["analytic"]["bwd"],
                                                  strict=True)]
    return fit_flops(work[: last + 1], stage_seconds(m, wall)[: last + 1], method="ratio")


FLOPS_MODES = ("effective", "analytic")


def effective_flops(m: dict[str, Any], flops: float | None = None) -> dict[str, list[float]]:
    """Per-sample "effective" FLOPs of every stage: F x median time / batch, forward and
    backward, with F the fitted device FLOP/s (`fitted_device_flops`).

    n W(s) / F then gives back the measured times, so the cost model carries what the FLOP
    count cannot see: the embedding's lookups (time, almost no FLOPs) and each stage's own
    efficiency. Because F is fitted as sum of analytic FLOPs over sum of times on stages 0..L,
    the effective FLOPs of stages 0..L sum to their analytic FLOPs exactly.
    """
    f = fitted_device_flops(m) if flops is None else flops
    t = m["times"]
    med = [[summarize(x)["median"] if any(x) else 0.0 for x in t[ph]] for ph in ("fwd", "bwd")]
    return {"fwd": [f * s / m["batch"] for s in med[0]],
            "bwd": [f * s / m["batch"] for s in med[1]]}


def assemble(sm: StagedModel, m: dict[str, Any], *, repeats: int, warmup: int, threads: int,
             seed: int, name: str | None = None, memory: float | None = None,
             tx_power_w: float = 0.2, distance_m: float = 100.0,
             flops_mode: str = "effective") -> dict[str, Any]:
    """The profile dict: stages (FLOPs effective or analytic, memory and time measured) and
    a provenance block carrying machine, versions, spread, both FLOP counts and the fitted
    device entry.

    flops_mode "effective" (default): each stage's fwd/bwd_flops = F x its measured median
    time / batch (`effective_flops`); "analytic": the count of `sftopt.profiles`. Either way
    provenance.flops_analytic holds the analytic count and flops_check the torch count.
    """
    import torch

    if flops_mode not in FLOPS_MODES:
        raise ValueError(f"flops_mode must be one of {FLOPS_MODES}; got {flops_mode!r}")
    a = sm.arch
    n = len(sm.stages)
    names = ["embed", *[f"block{i}" for i in range(1, n - 1)], "head"]
    flops = fitted_device_flops(m)
    used = effective_flops(m, flops) if flops_mode == "effective" else m["analytic"]
    stages = []
    for i in range(n):
        mem = m["memory"][i]
        stages.append({"name": names[i], "fwd_flops": used["fwd"][i],
                       "bwd_flops": used["bwd"][i], "param_bytes": mem["param_bytes"],
                       "lora_params": mem["lora_params"], "act_bytes": mem["act_bytes"]})
    secs = stage_seconds(m)
    work = [m["batch"] * (f + b) for f, b in zip(m["analytic"]["fwd"], m["analytic"]["bwd"],
                                                  strict=True)]
    timing = []
    for i in range(n):
        f, b = summarize(m["times"]["fwd"][i]), summarize(m["times"]["bwd"][i])
        fw, bw = summarize(m["times"]["fwd_wall"][i]), summarize(m["times"]["bwd_wall"][i])
        timing.append({"stage": names[i], "fwd_s": f["median"], "bwd_s": b["median"],
                       "fwd_wall_s": fw["median"], "bwd_wall_s": bw["median"],
                       "fwd_iqr_rel": f["iqr_rel"], "bwd_iqr_rel": b["iqr_rel"],
                       "fwd_min_s": f["min"], "fwd_max_s": f["max"], "bwd_min_s": b["min"],
                       "bwd_max_s": b["max"],
                       "flops_per_s": work[i] / secs[i] if secs[i] > 0 else None})
    return {
        "name": name or f"{sm.name}-measured",
        "seq_len": m["seq_len"],
        "cut_elems": m["seq_len"] * a.hidden,
        "adapter_dtype_bytes": 4,
        "stages": stages,
        "provenance": {
            "source": "measured",
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "model": sm.name,
            "weights": sm.weights,
            "architecture": {k: getattr(a, k) for k in (
                "family", "hidden", "layers", "heads", "intermediate", "vocab", "norm",
                "activation", "pre_norm", "head", "tied_embeddings")},
            "machine": machine(),
            "torch": torch.__version__,
            "threads": threads,
            "clock": m["clock"],
            "clock_note": {"wall": "wall clock (time.perf_counter)",
                      "cpu": "CPU time of the calling thread (time.thread_time; one torch "
                             "thread, so all compute runs there): time on a dedicated core, "
                             "waits for a core on a shared machine left out"}[m["clock"]],
            "dtype": "fp32",
            "dtype_note": "weights and activations measured in fp32 on CPU: param_bytes and "
                          "act_bytes are fp32 figures (about twice an fp16 deployment)",
            "batch": m["batch"],
            "repeats": repeats,
            "warmup": warmup,
            "seed": seed,
            "lora": {"rank": sm.lora_rank, "targets": list(sm.lora_targets),
                     "implementation": "hand-rolled (sftopt.torchrt.models), frozen weights"},
            "task": {"kind": sm.task, "classes": sm.classes} if sm.task == "classify" else
                    {"kind": "lm", "head": a.head},
            "flops_mode": flops_mode,
            "flops": {
                "effective": "effective FLOPs: fitted device FLOP/s (device.flops) x the "
                             "stage's median measured time / batch, forward and backward; "
                             "n W(s) / F reproduces this machine's measured times, including "
                             "the embedding's lookups and per-stage efficiency; stages 0..L "
                             "sum to their analytic count. The analytic count is in "
                             "flops_analytic, torch's in flops_check",
                "analytic": "analytic count of this architecture (sftopt.profiles), checked "
                            "against torch.utils.flop_counter.FlopCounterMode per stage"
            }[flops_mode],
            "flops_analytic": {"fwd": list(m["analytic"]["fwd"]),
                               "bwd": list(m["analytic"]["bwd"])},
            "flops_check": {"rel_total": m["flops_check"]["rel_total"],
                            "max_abs_rel_stage": m["flops_check"]["max_abs_rel_stage"],
                            "counted_fwd": m["counted"]["fwd"],
                            "counted_bwd": m["counted"]["bwd"]},
            "act_bytes": "unique storages autograd saves per stage (saved_tensors_hooks), per "
                         "sample",
            "memory": m["memory"],
            "timing": timing,
            "spread": "fwd/bwd_iqr_rel: interquartile range over the repeats / median",
            "device": device_entry(flops, batch=m["batch"], memory=memory,
                                   tx_power_w=tx_power_w, distance_m=distance_m),
            "device_flops_wall_clock": fitted_device_flops(m, wall=True),
            "device_fit": "flops = sum over stages 0..L of batch x (fwd+bwd FLOPs) / sum of "
                          "their median times (head excluded: it stays on the server)",
        },
    }


def calibrate(
    model: str,
    *,
    batch: int,
    seq_len: int,
    repeats: int = 5,
    warmup: int = 2,
    threads: int | None = None,
    seed: int = 0,
    text: str | Path | None = None,
    hidden: int | None = None,
    layers: int | None = None,
    clock: str | None = None,
    flops_mode: str = "effective",
    classes: int = 0,
    progress: Callable[[], None] | None = None,
) -> tuple[dict[str, Any], StagedModel]:
    """Build `model` (with `classes` >= 2: as a classifier into that many classes), measure it,
    and return (profile dict, the built model)."""
    if flops_mode not in FLOPS_MODES:
        raise ValueError(f"flops_mode must be one of {FLOPS_MODES}; got {flops_mode!r}")
    used = set_threads(threads)
    sm = build_model(model, seq_len=seq_len, hidden=hidden, layers=layers, seed=seed,
                     task="classify" if classes else "lm", classes=classes)
    m = measure(sm, batch=batch, seq_len=seq_len, repeats=repeats, warmup=warmup, seed=seed,
                text=text, clock=clock, progress=progress)
    return assemble(sm, m, repeats=repeats, warmup=warmup, threads=used, seed=seed,
                    flops_mode=flops_mode), sm


def write_json(obj: dict[str, Any], path: str | Path) -> Path:
    """Write JSON as sftopt/models/*.json are written: sorted keys, indent 1, final newline."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return p
