"""The device's sustained FLOP/s fitted from measured stage times; affine scaling fits."""

from __future__ import annotations

import math
import platform
from collections.abc import Sequence
from typing import Any


def fit_flops(flops: Sequence[float], seconds: Sequence[float], method: str = "ratio"
              ) -> float:
    """Sustained FLOP/s F such that time = FLOPs / F.

    "ratio": F = sum FLOPs / sum time (exact on the total: what the cost model sums);
    "lstsq": least squares through the origin on (FLOPs, time) pairs, F = sum w^2 / sum w t.
    """
    w = [float(x) for x in flops]
    t = [float(x) for x in seconds]
    if len(w) != len(t) or not w:
        raise ValueError("need equally many FLOP counts and times, at least one")
    if method == "ratio":
        num, den = sum(w), sum(t)
    elif method == "lstsq":
        num, den = sum(x * x for x in w), sum(x * y for x, y in zip(w, t, strict=True))
    else:
        raise ValueError(f"method must be 'ratio' or 'lstsq'; got {method!r}")
    if num <= 0 or den <= 0:
        raise ValueError("FLOPs and times must have a positive sum")
    return num / den


def fit_affine(x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
    """Least squares y = a x + b: slope a, intercept b, R^2 and the worst relative residual."""
    n = len(x)
    if n != len(y) or n < 2:
        raise ValueError("need at least two (x, y) pairs of equal length")
    mx, my = sum(x) / n, sum(y) / n
    sxx = sum((xi - mx) ** 2 for xi in x)
    if sxx == 0:
        raise ValueError("x values must not all be equal")
    a = sum((xi - mx) * (yi - my) for xi, yi in zip(x, y, strict=True)) / sxx
    b = my - a * mx
    pred = [a * xi + b for xi in x]
    ss_res = sum((yi - pi) ** 2 for yi, pi in zip(y, pred, strict=True))
    ss_tot = sum((yi - my) ** 2 for yi in y)
    worst = max(abs(pi - yi) / abs(yi) for yi, pi in zip(y, pred, strict=True) if yi)
    return {"a": a, "b": b, "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0,
            "max_rel_residual": worst, "n": float(n)}


def machine() -> dict[str, Any]:
    """What ran the measurement: CPU model, cores, memory, OS, Python and torch versions."""
    import os

    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "cpu_count": os.cpu_count()}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        if names:
            info["cpu"] = names[0]
    except OSError:
        pass
    mem = memory_bytes()
    if mem:
        info["memory_bytes"] = mem
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


def memory_bytes() -> float | None:
    """Physical memory of this machine (None if it cannot be read)."""
    import os

    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def device_entry(flops: float, *, batch: int, device_id: str = "calibrated-cpu",
                 memory: float | None = None, tx_power_w: float = 0.2,
                 distance_m: float = 100.0) -> dict[str, Any]:
    """A `devices[]` entry of an instance for this machine: fitted FLOP/s, memory (this
    machine's unless given), and the radio figures the caller chooses."""
    mem = memory if memory is not None else memory_bytes()
    if not (math.isfinite(flops) and flops > 0):
        raise ValueError(f"flops must be positive and finite; got {flops}")
    if mem is None or mem <= 0:
        raise ValueError("memory_bytes unknown: pass memory=")
    return {"id": device_id, "flops": float(flops), "memory_bytes": float(mem),
            "tx_power_w": float(tx_power_w), "distance_m": float(distance_m),
            "batch": int(batch)}
