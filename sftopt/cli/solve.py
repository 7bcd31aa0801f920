"""`sftopt solve`: solve instances with one or more solvers, certify, simulate, verify, print.

Plans are written to ``--out DIR`` as ``DIR/<name>.<solver>.plan.json`` where ``<name>`` is the
instance file's stem; when two instance files of one run share a stem, each gets
``<stem>-<first 8 hex digits of its sha256>`` (and ``-2``, ``-3`` ... if even those agree), so no
run writes two plans to one name. A plan file that exists is replaced whole (atomic rename); a
solver that finds no plan (refused, infeasible, error) writes none."""

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
from .common import (
    EXIT_FAIL,
    EXIT_OK,
    EXIT_OUTPUT,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    Terminated,
    UsageError,
    log,
    out_folder,
    parse_options,
    positive_float,
    print_json,
    progress_off,
    seed,
)
from .common import table as text_table

HEAD, TAIL = ["instance", "solver", "status"], ["verified", "wall_s"]


def add_parser(sub: Any) -> None:
    s = sub.add_parser("solve", help="solve instances, print a table, write plans",
                       description="Solve instances with one or more solvers; certify, "
                                   "simulate and verify every plan; print a table. Exit 0: "
                                   "every instance has a verified plan (or is proved "
                                   "infeasible); 1: a solver error, a rejected plan, or an "
                                   "instance without a plan (a refusal alone is not a failure "
                                   "when another solver found one); 2: bad input; 3: a file "
                                   "not written; 130/143: interrupted (finished plans kept).")
    s.add_argument("instances", nargs="+", metavar="INSTANCE", help="instance JSON file(s)")
    s.add_argument("--solver", action="append", default=None,
                   help="solver name(s), repeatable or comma-separated (default: the "
                        "family's default solver, marked in `sftopt solvers`; split: alm)")
    s.add_argument("--seed", type=seed, default=None,
                   help="seed for randomised solvers and the fading trace (default: the "
                        "instance's channel.seed; solvers their own)")
    s.add_argument("--time-limit", type=positive_float, default=None,
                   help="seconds per solve (default: none, each solver's own stopping rule)")
    s.add_argument("--out", metavar="DIR",
                   help="write each plan as DIR/<instance>.<solver>.plan.json, replacing one "
                        "of that name; DIR is made and checked writable before any solving "
                        "(default: no files)")
    s.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="solver option, repeatable; the value is read as JSON where it can "
                        "be (default: none)")
    s.add_argument("--bound", default=None, metavar="METHOD",
                   help="certified lower bound attached to every plan for its gap, or none "
                        "(default: the family's first; split: lagrangian, prices server memory, "
                        "seconds; relaxation: weaker, instant; milp: runs the milp solver; "
                        "cooperative: relaxation, instant; exact; dual)")
    s.add_argument("--simulate", action=argparse.BooleanOptionalAction, default=True,
                   help="run the family's simulation (split: two-timescale fading; default on)")
    s.add_argument("--json", action="store_true",
                   help="print one JSON document on stdout (every run: its row, plan file and "
                        "result) instead of the tables; notes still go to stderr (default: off)")
    s.set_defaults(func=run)


def plan_names(paths: list[str], instances: list[Any]) -> list[str]:
    """The file-name stem of each instance's plans: the file's stem, made distinct when two
    files share it (their sha256, then a counter): no two instances share an output name."""
    stems = [Path(p).stem for p in paths]
    names = [s if stems.count(s) == 1 else f"{s}-{inst.sha256[:8]}"
             for s, inst in zip(stems, instances, strict=True)]
    out: list[str] = []
    for name in names:
        n, k = name, 1
        while n in out:
            k += 1
            n = f"{name}-{k}"
        out.append(n)
    return out


def _solve_one(inst, info: SolverInfo, args, opts: dict[str, Any], notes: list[str]
               ) -> tuple[dict[str, Any], Result | None]:
    """Solve and simulate one (instance, solver) pair: (table row, result or None)."""
    row: dict[str, Any] = {"instance": inst.name, "solver": info.name}
    if not info.available():
        notes.append(f"{info.name} needs {', '.join(info.missing())}, not installed")
        return {**row, "status": "unavailable"}, None
    log.info("solving %s with %s", inst.name, info.name)
    try:
        res = solve(inst, info.name, certify=False, **opts)  # certified below, with --bound
    except SolverOptionError as exc:
        raise UsageError(str(exc)) from None
    except Exception as exc:  # keep the other rows: report this solver's failure
        notes.append(f"{info.name} on {inst.name} failed: {type(exc).__name__}: {exc}")
        return {**row, "status": "error"}, None
    log.info("%s on %s: %s, objective %s, %.3g s", info.name, inst.name, res.outcome,
             res.objective, res.wall_s)
    family = get_family(inst.family)
    if args.simulate and res.plan is not None and family.simulation_model is not None:
        res = res.model_copy(update={"simulation": family.simulate(inst, res, seed=args.seed)})
    if res.plan is None:
        notes.append(f"{info.name} on {inst.name}: {res.outcome}, no plan"
                     + (f": {res.message}" if res.message else ""))
    return row, res


def _finish(inst, row: dict[str, Any], res: Result | None, notes: list[str],
            verify: bool = True) -> None:
    """Verify a certified result (unless ``verify`` is off) and fill its row."""
    if res is None:
        return
    family = get_family(inst.family)
    report = family.verify(inst, res) if res.plan is not None and verify else None
    if report is not None and not report.ok:
        notes.append(f"VERIFIER DISAGREES with {res.solver} on {inst.name}: "
                     f"{report.violations + report.claims}")
    row.update({"status": res.outcome if report is None or report.ok else "REJECTED",
                **family.summary(res), "verified": None if report is None else report.ok,
                "wall_s": res.wall_s})


def exit_code(done: list) -> int:
    """0 when every instance has a verified plan or a proof that none exists; 1 for a solver
    error, a rejected plan, or an instance no solver found a plan for. A refusal or a missing
    backend is not a failure when another solver of the run covered the instance. ``done``:
    [instance number, instance, row, result or None] per run."""
    if any(row["status"] in ("error", "REJECTED") for _, _, row, _ in done):
        return EXIT_FAIL
    covered: dict[int, bool] = {}
    for i, _, _, res in done:
        found = res is not None and (res.plan is not None or res.termination == "infeasible")
        covered[i] = covered.get(i, False) or found
    return EXIT_OK if all(covered.values()) else EXIT_FAIL


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    # everything that can be wrong with the input or the output is named before any work
    names = [n for part in (args.solver or []) for n in part.split(",") if n]
    paths = list(dict.fromkeys(args.instances))  # a file given twice is solved once
    instances = [load_instance(p) for p in paths]
    opts = parse_options(args.option)
    for key, value in (("seed", args.seed), ("time_limit", args.time_limit)):
        if value is not None:
            opts[key] = value
    pairs = []
    for i, inst in enumerate(instances):
        family = get_family(inst.family)
        if args.bound not in (None, "none", *family.bound_methods):
            raise UsageError(f"--bound: family {inst.family!r} has the bounds "
                             f"{', '.join(family.bound_methods)} (or none); got {args.bound!r}")
        for name in names or [family.default_solver]:
            try:
                pairs.append((i, inst, get(inst.family, name)))
            except KeyError as exc:
                raise UsageError(str(exc.args[0])) from None
    out_dir = out_folder(args.out) if args.out else None
    stems = plan_names(paths, instances)
    notes: list[str] = []
    done = []  # [instance number, instance, table row, result or None]
    stopped: BaseException | None = None
    bar = tqdm(pairs, desc="solving", unit="solve", leave=False, file=sys.stderr,
               disable=len(pairs) < 2 or progress_off(args))
    try:
        for i, inst, info in bar:
            bar.set_postfix_str(f"{inst.name} / {info.name}")
            row, res = _solve_one(inst, info, args, opts, notes)
            done.append([i, inst, row, res])
    except (KeyboardInterrupt, Terminated) as exc:  # keep what finished, write it, report
        stopped = exc
    finally:
        bar.close()
    # interrupted: no new bound, no verification (the user wants out); the solvers' own bounds.
    # An interrupt while certifying or verifying stops that work, not the writing of the plans
    finished = 0
    try:
        _certify(done, "none" if stopped else args.bound)
        for _, inst, row, res in done:
            _finish(inst, row, res, notes, verify=stopped is None)
            finished += 1
    except (KeyboardInterrupt, Terminated) as exc:
        stopped = stopped or exc
        for _, inst, row, res in done[finished:]:
            _finish(inst, row, res, notes, verify=False)
    code = exit_code(done)
    if stopped is not None:
        code = EXIT_SIGTERM if isinstance(stopped, Terminated) else EXIT_SIGINT
    plan_files: list[str | None] = []
    for i, _, _, res in done:
        file = None
        if out_dir and res is not None and res.plan is not None:
            target = out_dir / f"{stems[i]}.{res.solver}.plan.json"
            try:
                file = str(res.save(target))
            except OSError as exc:  # the old file, if any, is whole: writes are atomic
                notes.append(f"could not write {target}: {exc.strerror or exc}")
                code = EXIT_OUTPUT if stopped is None else code
        plan_files.append(file)
    untimed = [res.solver for *_, res in done
               if res is not None and "time_limit" in res.ignored_options]
    if untimed:
        notes.append(f"--time-limit not used by {', '.join(dict.fromkeys(untimed))} (no time "
                     "limit: they run to completion)")
    if stopped is not None:
        notes.append(f"{'terminated' if isinstance(stopped, Terminated) else 'interrupted'} "
                     f"after {len(done)} of {len(pairs)} solves; the finished ones are "
                     "reported" + (f" and their plans written to {out_dir}/" if out_dir else "")
                     + " (their own bounds only: not certified further, not verified)")
    if args.verbosity >= 0 or stopped is not None:
        for note in dict.fromkeys(notes):  # each once, in order
            print(f"note: {note}", file=sys.stderr)
    rows = [item[2] for item in done]
    if args.json:
        print_json({"command": "solve", "exit_code": code, "interrupted": stopped is not None,
                    "runs": [{"instance_file": paths[i], "instance": row["instance"],
                              "solver": row["solver"], "status": row["status"],
                              "plan_file": file, "row": row,
                              "result": None if res is None else res.to_dict()}
                             for (i, _, row, res), file in zip(done, plan_files, strict=True)],
                    "notes": list(dict.fromkeys(notes))})
        return code
    _print_tables(args, done, rows, len(pairs))
    if out_dir and any(plan_files):
        print(f"plans written to {out_dir}/")
    return code


def _print_tables(args: argparse.Namespace, done: list, rows: list[dict[str, Any]],
                  n_pairs: int) -> None:
    if n_pairs == 1:
        for _, inst, _, res in done:
            if res is not None and res.plan is not None:
                title, plan_rows = get_family(inst.family).plan_rows(inst, res)
                print(title)
                print(text_table(plan_rows, list(plan_rows[0])))
                print()
    middle: list[str] = []
    for _, inst, _, _ in done:
        middle += [c for c in get_family(inst.family).columns if c not in middle]
    print(text_table(rows, HEAD + middle + TAIL))
    if args.bound != "none" and any(r.get("bound_s") is not None for r in rows):
        family = get_family(done[0][1].family)
        method = args.bound or family.bound_methods[0]
        print(f"bound_s: best certified lower bound per instance and {family.bound_note}; "
              f"{method} bound and the solvers' dual bounds; gap = (objective - bound) / "
              "objective")
    elif any(r.get("bound_s") is not None for r in rows):
        print("bound_s: the solvers' own dual bounds; gap = (objective - bound) / objective")


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
