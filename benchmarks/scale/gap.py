"""Where the certified gap lies at scale (issue 21, item 2): plan or bound.

For a generated GPT-2 small fleet (`random_instance(n, seed=1, scaled=True)`, as run.py) this
computes the `lagrangian` bound and then *recovers plans from its dual*: at round delays T near
the bound's, for the tests whose duals are best, each device takes the option that minimises
its Lagrangian term (w_k delta_o + nu g_ko) and the exact allocator (allocation.exact_allocation)
gives the bands and shares. The best such plan the cost model calls feasible is checked by
`sftopt.verify`. A recovered plan close to the bound shows that the dual, hence the bound, is
nearly tight, and that the rest of a heuristic's gap is the heuristic's.

Writes results/gap-<n>.json. Usage:
    .venv/bin/python benchmarks/scale/gap.py [--sizes 1000 10000] [--points 6]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

import sftopt
from sftopt.core.result import versions
from sftopt.families.split import bounds, lagrangian
from sftopt.families.split.allocation import exact_allocation
from sftopt.families.split.cost import evaluate, terms
from sftopt.families.split.generate import random_instance
from sftopt.families.split.options import option_table
from sftopt.families.split.plans import make_result

OUT = Path(__file__).resolve().parent / "results"


def combo_needs(lb: lagrangian.LagrangianBound, p: dict, col: int) -> np.ndarray:
    """Per-entry needs of one test column of LagrangianBound._needs (case 0)."""
    val, m, A = p["val"], lb.mem[0], lb.alphas
    nt = val.shape[0]
    grid = nt * (1 + len(A))
    if col < nt:
        g = val[col]
    elif col < grid:
        al = A[(col - nt) // nt]
        g = al * val[(col - nt) % nt] + (1 - al) * m
    elif col == grid:
        g = m
    else:
        al = p["alpha"][0][col - grid - 1]
        g = al * val[col - grid - 1] + (1 - al) * m
    return np.where(lb.valid[0], g, np.inf)


def recover(inst: sftopt.Instance, T_lo: float, T_hi: float, points: int) -> dict:
    a, table = inst.arrays, option_table(inst)
    lo = int(table.cut[table.valid].min())
    hi = int(np.where(table.valid, table.cut, -1).max(axis=1).min())
    eff = bounds.lagrange_effort(int(table.valid.sum()))
    lb = lagrangian.LagrangianBound(inst, table, [bounds.memory_case(inst, table, lo, hi)],
                                    thetas=eff["thetas"],
                                    alphas=eff.get("alphas", lagrangian.ALPHAS))
    e = lb.e
    w = a.sample_weight[e.k] * a.delta[table.level[e.k, e.o]]
    best, tried = None, 0
    for T in np.geomspace(T_lo, T_hi, points):
        p = lb.point(float(T))
        lb.duals(p, np.arange(1))
        L, nu = p["L"][0], p["nu"][0]
        if not np.isfinite(L).all():
            continue
        for col in np.argsort(-L)[:6]:
            score = w + nu[col] * combo_needs(lb, p, int(col))
            order = np.lexsort((score, e.k))
            pick = order[np.r_[True, e.k[order][1:] != e.k[order][:-1]]]
            cuts, levels = table.cut[e.k[pick], e.o[pick]], table.level[e.k[pick], e.o[pick]]
            alloc = exact_allocation(terms(inst, cuts, levels), a.bandwidth)
            ev = evaluate(inst, cuts, levels, alloc.bandwidth, alloc.share)
            tried += 1
            if ev.feasible and (best is None or ev.total_delay < best[0]):
                best = (ev.total_delay, cuts, levels, alloc.bandwidth, alloc.share)
    out = {"plans_tried": tried, "recovered": None, "verified": None}
    if best is not None:
        res = make_result(inst, *best[1:], message="recovered from the lagrangian dual")
        out.update(recovered=res.objective, verified=sftopt.verify(inst, res).ok)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--points", type=int, default=6, help="round delays tried (default 6)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for n in args.sizes:
        inst = sftopt.load_instance(random_instance(n, seed=1, scaled=True))
        t0 = time.perf_counter()
        bound = bounds.lower_bound(inst, method="lagrangian")
        t1 = time.perf_counter()
        plans = {s: sftopt.solve(inst, s, certify=False).objective
                 for s in ("alm", "greedy-delay")}
        # the bound is R x T with R >= rounds: T of a plan near it lies below bound / rounds
        # x (1 + eta max distortion); scan around the alm plan's round delay
        res = sftopt.solve(inst, "alm", certify=False)
        T = res.plan.round_delay_s
        rec = recover(inst, T * 0.95, T * 1.03, args.points)
        t2 = time.perf_counter()
        row = {"devices": n, "bound": bound, "bound_s": t1 - t0, "plans": plans, **rec,
               "recover_s": t2 - t1, "versions": versions()}
        best_heur = min(v for v in plans.values() if v is not None)
        row["gap_best_heuristic"] = (best_heur - bound) / best_heur
        if rec["recovered"] is not None:
            row["gap_recovered"] = (rec["recovered"] - bound) / rec["recovered"]
        print({k: v for k, v in row.items() if k != "versions"}, flush=True)
        (args.out / f"gap-{n}.json").write_text(json.dumps(row, indent=1, default=float) + "\n")
        if not math.isfinite(bound):
            raise SystemExit(f"no bound for {n} devices")


if __name__ == "__main__":
    main()
