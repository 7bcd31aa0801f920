"""`sftopt solve`: solve instances with one or more solvers, certify, simulate, verify, print."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..core.certify import certify
from ..core.family import get_family
from ..core.loading import load_instance
from ..core.registry import SolverInfo, SolverOptionError, get, solve
from ..core.result import Result
from .common import EXIT_FAIL, EXIT_OK, UsageError, parse_options, positive_float, seed
from .common import table as text_table

HEAD, TAIL = ["instance", "solver", "status"], ["verified", "wall_s"]


def add_parser(sub: Any) -> None:
    s = sub.add_parser("solve", help="solve instances, print a table, write plans")
    s.add_argument("instances", nargs="+", metavar="INSTANCE", help="instance JSON file(s)")
    s.add_argument("--solver", action="append", default=None,
                   help="solver name(s), repeatable or comma-separated (default: the family's, "
                        "greedy for split)")
    s.add_argument("--seed", type=seed, default=None,
                   help="seed for randomised solvers and the fading trace (overrides channel.seed)")
    s.add_argument("--time-limit", type=positive_float, default=None, help="seconds per solve")
    s.add_argument("--out", metavar="DIR",
                   help="write each plan as DIR/<instance>.<solver>.plan.json")
    s.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="solver option (repeatable)")
    s.add_argument("--bound", default=None, metavar="METHOD",
                   help="certified lower bound attached to every plan for its gap, or none "
                        "(default: the family's first; split: lagrangian, prices server memory, "
                        "seconds; relaxation: weaker, instant; milp: runs the milp solver; "
                        "cooperative: relaxation, instant; exact; dual)")
    s.add_argument("--simulate", action=argparse.BooleanOptionalAction, default=True,
                   help="run the family's simulation (split: two-timescale fading; default on)")
    s.set_defaults(func=run)


def _solve_one(inst, info: SolverInfo, args, notes: list[str]
               ) -> tuple[dict[str, Any], Result | None]:
    """Solve and simulate one (instance, solver) pair: (table row, result or None)."""
    row: dict[str, Any] = {"instance": inst.name, "solver": info.name}
    opts = parse_options(args.option)
    for key, value in (("seed", args.seed), ("time_limit", args.time_limit)):
        if value is not None:
            opts[key] = value
    if not info.available():
        notes.append(f"{info.name} needs {', '.join(info.missing())}, not installed")
        return {**row, "status": "unavailable"}, None
    try:
        res = solve(inst, info.name, **opts)
    except SolverOptionError as exc:
        raise UsageError(str(exc)) from None
    except Exception as exc:  # keep the other rows: report this solver's failure
        notes.append(f"{info.name} on {inst.name} failed: {type(exc).__name__}: {exc}")
        return {**row, "status": "error"}, None
    family = get_family(inst.family)
    if args.simulate and res.plan is not None and family.simulation_model is not None:
        res = res.model_copy(update={"simulation": family.simulate(inst, res, seed=args.seed)})
    if res.message and res.plan is None:
        notes.append(f"{info.name} on {inst.name}: {res.message}")
    return row, res


def _finish(inst, row: dict[str, Any], res: Result | None, notes: list[str]) -> None:
    """Verify a certified result and fill its row."""
    if res is None:
        return
    family = get_family(inst.family)
    report = family.verify(inst, res) if res.plan is not None else None
    if report is not None and not report.ok:
        notes.append(f"VERIFIER DISAGREES with {res.solver} on {inst.name}: "
                     f"{report.violations + report.claims}")
    row.update({"status": res.outcome if report is None or report.ok else "REJECTED",
                **family.summary(res), "verified": None if report is None else report.ok,
                "wall_s": res.wall_s})


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    names = [n for part in (args.solver or []) for n in part.split(",") if n]
    instances = [(p, load_instance(p)) for p in args.instances]  # all errors before any work
    pairs = []
    for path, inst in instances:
        family = get_family(inst.family)
        if args.bound not in (None, "none", *family.bound_methods):
            raise UsageError(f"--bound: family {inst.family!r} has the bounds "
                             f"{', '.join(family.bound_methods)} (or none); got {args.bound!r}")
        for name in names or [family.default_solver]:
            try:
                pairs.append((path, inst, get(inst.family, name)))
            except KeyError as exc:
                raise UsageError(str(exc.args[0])) from None
    out_dir = Path(args.out) if args.out else None
    notes: list[str] = []
    bar = tqdm(pairs, desc="solving", unit="solve", disable=len(pairs) < 2 or None,
               leave=False, file=sys.stderr)
    done = []  # [path, instance, table row, result or None]
    for path, inst, info in bar:
        bar.set_postfix_str(f"{inst.name} / {info.name}")
        row, res = _solve_one(inst, info, args, notes)
        done.append([path, inst, row, res])
    _certify(done, args.bound)
    for _, inst, row, res in done:
        _finish(inst, row, res, notes)
    untimed = [res.solver for *_, res in done
               if res is not None and "time_limit" in res.ignored_options]
    for path, inst, _, res in done:
        if res is None:
            continue
        if out_dir:
            res.save(out_dir / f"{Path(path).stem}.{res.solver}.plan.json")
        if len(pairs) == 1 and res.plan is not None:
            title, rows = get_family(inst.family).plan_rows(inst, res)
            print(title)
            print(text_table(rows, list(rows[0])))
            print()
    if untimed:
        notes.append(f"--time-limit not used by {', '.join(dict.fromkeys(untimed))} (no time "
                     "limit: they run to completion)")
    for note in dict.fromkeys(notes):  # each once, in order
        print(f"note: {note}", file=sys.stderr)
    rows = [item[2] for item in done]
    middle: list[str] = []
    for _, inst, _, _ in done:
        middle += [c for c in get_family(inst.family).columns if c not in middle]
    print(text_table(rows, HEAD + middle + TAIL))
    if args.bound != "none" and any(r.get("bound_s") is not None for r in rows):
        family = get_family(instances[0][1].family)
        method = args.bound or family.bound_methods[0]
        print(f"bound_s: best certified lower bound per instance and {family.bound_note}; "
              f"{method} bound and the solvers' dual bounds; gap = (objective - bound) / "
              "objective")
    elif any(r.get("bound_s") is not None for r in rows):
        print("bound_s: the solvers' own dual bounds; gap = (objective - bound) / objective")
    if out_dir:
        print(f"plans written to {out_dir}/")
    bad = {"unavailable", "error", "refused", "REJECTED"}
    return EXIT_FAIL if any(r["status"] in bad for r in rows) else EXIT_OK


def _certify(done: list, method: str | None) -> None:
    """Every plan gets the best certified bound known for its instance and class of plans."""
    by_instance: dict[str, list[int]] = {}
    for i, (_, inst, _, res) in enumerate(done):
        if res is not None:
            by_instance.setdefault(inst.sha256, []).append(i)
    for idx in by_instance.values():
        inst = done[idx[0]][1]
        certified = certify(inst, [done[i][3] for i in idx], method)
        for i, res in zip(idx, certified, strict=True):
            done[i][3] = res
