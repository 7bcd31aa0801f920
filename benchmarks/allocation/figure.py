"""Re-allocations per second against devices, from the allocation benchmark's rows.

    .venv/bin/python benchmarks/allocation/figure.py [--csv results/allocation.csv]
        [--out results/reallocation.png]

One point per size: 1 / (median time of one allocation), the median over the seeds, with the
seeds' range as a bar: `Allocator.step` warm-started once per fading round on the compiled
kernels (numba) and on the numpy path (wall and thread CPU time), and a cold exact allocation
on the average channel. Goal lines: 1 ms at 1,000 devices and 10 ms at 10,000 (issue 21).
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

from sftopt.core.plots import new_figure, plain_log_ticks, save_figure, series_style

HERE = Path(__file__).resolve().parent
SERIES = (("step_warm_ms", "Allocator.step, compiled kernels (numba): wall"),
          ("step_warm_cpu_ms", "Allocator.step, compiled kernels (numba): thread CPU"),
          ("step_numpy_ms", "Allocator.step, numpy path: wall"),
          ("step_numpy_cpu_ms", "Allocator.step, numpy path: thread CPU"),
          ("exact_ms_median", "exact allocation, cold, average channel: wall"))


def _num(v: str | None) -> float | None:
    try:
        x = float(v) if v not in (None, "") else None
    except ValueError:
        return None
    return x if x is not None and x > 0 else None


def draw(rows: list[dict[str, str]], out: Path) -> None:
    fig, (ax,) = new_figure(1, width=8.5, height=4.6)
    for i, (key, label) in enumerate(SERIES):
        sizes = sorted({int(r["devices"]) for r in rows if _num(r.get(key))})
        if not sizes:
            continue
        mid, lo, hi = [], [], []
        for n in sizes:
            rates = [1000.0 / _num(r[key]) for r in rows
                     if int(r["devices"]) == n and _num(r.get(key))]
            m = statistics.median(rates)
            mid.append(m)
            lo.append(m - min(rates))
            hi.append(max(rates) - m)
        style = series_style(2 * (i // 2) + (i % 2) if i < 4 else 8)
        if key.endswith("cpu_ms"):
            style["linestyle"] = ":"
        ax.errorbar(sizes, mid, yerr=[lo, hi], label=label, capsize=3, **style)
    for n, ms in ((1000, 1.0), (10000, 10.0)):
        ax.plot([n], [1000.0 / ms], marker="_", markersize=22, color="black", linestyle="none")
        ax.annotate(f"goal: {ms:g} ms at {n:,}", (n, 1000.0 / ms), textcoords="offset points",
                    xytext=(-40, 7), fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain_log_ticks(ax, "xy")
    ax.set_xlabel("devices")
    ax.set_ylabel("re-allocations per second (1 / median time per round)")
    ax.set_title("online re-allocation rate, one core (benchmarks/allocation; bars: range over "
                 "seeds)", fontsize=9)
    ax.legend(fontsize=7)
    save_figure(fig, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--csv", type=Path, default=HERE / "results" / "allocation.csv")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "reallocation.png")
    args = ap.parse_args()
    with args.csv.open(newline="") as f:
        draw(list(csv.DictReader(f)), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
