"""Timing of the small-timescale allocators (exact, sqp, equal) against the number of devices.

Seeded random instances: the tiny-example model (data/instances/tiny-example.json) with K random
devices, random cuts and levels. Online use: `Allocator.step` once per Rayleigh fading round,
timed round by round (median, 90th percentile, max and mean wall time, and the median CPU time
of the thread, which other jobs on a shared machine disturb less), every round's certificate
(round delay against its Lagrangian bound) checked; on the compiled kernels (`step_warm_*`,
when numba is installed) and on the numpy path (`step_numpy_*`). Writes results/allocation.csv
and results/allocation.json (with package versions, the machine and its load average).
`figure.py` draws results/reallocation.png from them. Usage:
    .venv/bin/python benchmarks/allocation/run.py [--sizes 10 100 1000 10000] [--sqp-max 100]
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from sftopt import load_instance
from sftopt.channel import fading_trace
from sftopt.core.result import versions
from sftopt.families.split.allocation import Allocator, _kernels, allocate
from sftopt.families.split.cost import terms

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "results"


def random_instance(n: int, seed: int):
    """Tiny-example model, n devices with random compute, power, distance and batch."""
    rng = np.random.default_rng(seed)
    d = json.loads((ROOT / "data/instances/tiny-example.json").read_text())
    d = copy.deepcopy(d)
    d["name"] = f"bench-alloc-{n}-s{seed}"
    d["training"]["max_cut"] = 3  # cut 3 = L+1: some devices have no server part
    d["channel"]["bandwidth_hz"] = 20e6 * max(1.0, n / 10)  # keep bands per device sensible
    d["devices"] = [{"id": f"d{k}", "flops": float(10 ** rng.uniform(11, 12.7)),
                     "memory_bytes": 8e9, "tx_power_w": float(rng.choice([0.1, 0.2])),
                     "distance_m": float(rng.uniform(50, 400)), "batch": int(rng.choice([4, 8]))}
                    for k in range(n)]
    inst = load_instance(d)
    cuts = rng.integers(0, 4, n)
    levels = rng.integers(0, 3, n)
    return inst, cuts, levels


def timed(fn, repeats: int) -> tuple[float, float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), out


def online(inst, cuts, levels, trace: np.ndarray, name: str, no_numba: bool) -> dict:
    """`Allocator.step` round by round over ``trace`` (numpy path if ``no_numba``): wall time
    (median, p90, max, mean), thread CPU time (median, p90, max: a shared machine's other jobs
    preempt a round, which wall time counts and CPU time does not), the largest certified gap
    and the rounds that fell back to the nested method."""
    before = os.environ.get("SFTOPT_NO_NUMBA")
    if no_numba:
        os.environ["SFTOPT_NO_NUMBA"] = "1"  # read when the allocator builds its system
    try:
        al = Allocator(inst, cuts, levels)
        al.step()  # the average channel first, as the simulation does
    finally:
        if before is None:
            os.environ.pop("SFTOPT_NO_NUMBA", None)
        else:
            os.environ["SFTOPT_NO_NUMBA"] = before
    wall, cpu, gaps, fallbacks = [], [], [], 0
    for e in trace:
        t0, c0 = time.perf_counter(), time.thread_time()
        a = al.step(e)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
        gaps.append((a.round_delay - a.lower_bound) / a.round_delay)
        fallbacks += a.message == "nested method"
    pre = name
    return {f"{pre}_ms": statistics.median(wall) * 1e3,
            f"{pre}_ms_p90": float(np.percentile(wall, 90)) * 1e3,
            f"{pre}_ms_max": max(wall) * 1e3, f"{pre}_ms_mean": statistics.mean(wall) * 1e3,
            f"{pre}_cpu_ms": statistics.median(cpu) * 1e3,
            f"{pre}_cpu_ms_p90": float(np.percentile(cpu, 90)) * 1e3,
            f"{pre}_cpu_ms_max": max(cpu) * 1e3,
            f"{pre}_max_certified_gap": max(gaps), f"{pre}_nested_fallbacks": fallbacks}


def _numba_versions() -> dict[str, str]:
    """numba and llvmlite, when installed (the compiled kernels of the online path)."""
    import contextlib
    from importlib import metadata

    out = {}
    for pkg in ("numba", "llvmlite"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


def _shown(path: Path) -> str:
    """A folder as results record it: relative to the repository when inside it (results are
    committed; an absolute path names one machine)."""
    root = Path(__file__).resolve().parents[2]
    p = Path(path).resolve()
    return str(p.relative_to(root)) if p.is_relative_to(root) else p.name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--sqp-max", type=int, default=100, help="largest K given to SLSQP")
    ap.add_argument("--rounds", type=int, default=100, help="fading rounds for Allocator.step")
    ap.add_argument("--out", type=Path, default=OUT, help="results directory")
    args = ap.parse_args()
    load_before = os.getloadavg()
    rows = []
    for n in args.sizes:
        for seed in range(args.seeds):
            inst, cuts, levels = random_instance(n, seed)
            t = terms(inst, cuts, levels)
            B = inst.arrays.bandwidth
            reps = 20 if n <= 1000 else 5
            exact_med, exact_min, ex = timed(lambda t=t, B=B: allocate(t, B, "exact"), reps)
            eq_med, eq_min, eq = timed(lambda t=t, B=B: allocate(t, B, "equal"), reps)
            row = {"devices": n, "seed": seed, "exact_ms_median": exact_med * 1e3,
                   "exact_ms_min": exact_min * 1e3, "exact_newton_steps": ex.iterations,
                   "exact_round_delay_s": ex.round_delay,
                   "exact_certified_gap": (ex.round_delay - ex.lower_bound) / ex.round_delay,
                   "equal_ms_median": eq_med * 1e3, "equal_round_delay_s": eq.round_delay}
            if n <= args.sqp_max:
                sq_med, _, sq = timed(lambda t=t, B=B: allocate(t, B, "sqp"), 1)
                row.update(sqp_ms=sq_med * 1e3, sqp_iterations=sq.iterations,
                           sqp_round_delay_s=sq.round_delay,
                           sqp_excess=(sq.round_delay - ex.round_delay) / ex.round_delay)
            # online use: one re-allocation per fading round, warm-started vs cold; the
            # warm step on the compiled kernels (numba, when installed) and on numpy
            trace = fading_trace(n, args.rounds, seed)
            row["kernels"] = "numba" if _kernels() is not None else "none"
            paths = [("step_warm", False), ("step_numpy", True)]
            if row["kernels"] == "none":
                paths = [("step_warm", True)]
            for name, no_numba in paths:
                row.update(online(inst, cuts, levels, trace, name, no_numba))
            t0 = time.perf_counter()
            for e in trace:
                allocate(t.with_gains(e), B, "exact")
            cold = (time.perf_counter() - t0) / args.rounds
            row.update(step_cold_ms=cold * 1e3)
            rows.append(row)
            print({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.items()},
                  flush=True)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    fields = list(dict.fromkeys(k for r in rows for k in r))  # first-seen order
    with open(out / "allocation.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    vers = {**versions(), **_numba_versions()}
    meta = {"versions": vers, "machine": {"platform": platform.platform(),
                                                "processor": platform.processor(),
                                                "cpus": os.cpu_count(),
                                                "load_average_1_5_15_min": {
                                                    "before": load_before,
                                                    "after": os.getloadavg()}},
            "args": {**vars(args), "out": _shown(args.out)}, "rows": rows}
    (out / "allocation.json").write_text(json.dumps(meta, indent=1) + "\n")


if __name__ == "__main__":
    main()
