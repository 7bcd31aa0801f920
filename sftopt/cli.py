"""The `sftopt` command line: argument parsing and printing only."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .instance import InstanceError, json_schema, load_instance
from .result import load_plan

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input from the command line: printed without a traceback, exit 2."""


def table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain aligned text table: numbers right-aligned, text left-aligned."""
    cells = [[str(c) for c in columns]] + [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    numeric = [all(isinstance(r.get(c), int | float) or r.get(c) is None for r in rows)
               for c in columns]

    def line(row: list[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(row, widths, numeric, strict=True)).rstrip()

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths)]
                     + [line(r) for r in cells[1:]])


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.4e}"
    return str(v)


def _parse_options(items: list[str]) -> dict[str, Any]:
    """key=value pairs; values parsed as JSON where they can be (numbers, true, null)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--option expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


# --------------------------------------------------------------------------- commands
COLUMNS = ["instance", "solver", "status", "total_s", "round_s", "rounds", "bound_s", "gap",
           "sim_total_s", "MB/round", "verified", "wall_s"]


def _solve_one(inst, info, args, notes: list[str], untimed: list[str]):
    """Solve, simulate and verify one (instance, solver) pair: (table row, result or None).
    Solvers that have no time limit while one was asked for are added to ``untimed``."""
    from .simulation import simulate
    from .solvers import solve
    from .solvers.registry import SolverOptionError
    from .verifier import verify

    row = {"instance": inst.name, "solver": info.name}
    opts = _parse_options(args.option)
    # --seed also seeds the fading simulation, so only a missing time limit is worth a note
    for key, value in (("seed", args.seed), ("time_limit", args.time_limit)):
        if value is not None and key in info.options:
            opts[key] = value
        elif value is not None and key == "time_limit":
            untimed.append(info.name)
    if not info.available():
        notes.append(f"{info.name} needs {', '.join(info.needs)}, not installed")
        return {**row, "status": "unavailable"}, None
    try:
        res = solve(inst, info.name, **opts)
    except SolverOptionError as exc:
        raise UsageError(str(exc)) from None
    except Exception as exc:  # keep the other rows: report this solver's failure
        notes.append(f"{info.name} on {inst.name} failed: {type(exc).__name__}: {exc}")
        return {**row, "status": "error"}, None
    if args.simulate and res.total_delay_s is not None:
        res = res.model_copy(update={"simulation": simulate(inst, res, seed=args.seed)})
    report = verify(inst, res) if res.total_delay_s is not None else None
    if report is not None and not report.ok:
        notes.append(f"VERIFIER DISAGREES with {info.name} on {inst.name}: "
                     f"{report.violations + report.claims}")
    if res.message and res.status.value in ("infeasible", "error"):
        notes.append(f"{info.name} on {inst.name}: {res.message}")
    sim = res.simulation
    row.update({
        "status": res.status.value if report is None or report.ok else "REJECTED",
        "total_s": res.total_delay_s, "round_s": res.round_delay_s, "rounds": res.rounds,
        "bound_s": res.lower_bound_s, "gap": res.gap,
        "sim_total_s": sim.total_delay_s if sim else None,
        "MB/round": None if res.bytes_per_round is None else res.bytes_per_round / 1e6,
        "verified": None if report is None else report.ok, "wall_s": res.wall_s})
    return row, res


def _attach_bounds(done: list, method: str) -> None:
    """Give every plan of an instance the best certified bound known for its schedule.

    Parallel plans: the larger of ``method``'s bound (if not "none") and every dual bound a
    solver returned for the same instance in this run (a bound is valid for every plan of the
    instance, so each row's gap is certified). Sequential plans (vanilla split learning): the
    exact sequential optimum (`bounds.sequential_bound`), unless ``method`` is "none".
    """
    from .bounds import lower_bound, with_bound

    by_instance: dict[str, list] = {}
    for item in done:
        by_instance.setdefault(item[1].sha256, []).append(item)
    for items in by_instance.values():
        inst = items[0][1]
        for schedule in ("parallel", "sequential"):
            mine = [it for it in items if it[4] is not None and it[4].schedule == schedule
                    and it[4].total_delay_s is not None]
            if not mine:
                continue
            known = [it[4].lower_bound_s for it in mine if it[4].lower_bound_s is not None]
            if method != "none":
                known.append(lower_bound(inst, method=method, schedule=schedule))
            if not known:
                continue
            best = max(known)
            for it in mine:
                it[4] = with_bound(it[4], inst, best)
                it[3].update(bound_s=it[4].lower_bound_s, gap=it[4].gap)


def cmd_solve(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .solvers import get

    names = [n for part in args.solver for n in part.split(",") if n]
    infos = []
    for n in names:
        try:
            infos.append(get(n))
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
    instances = [(p, load_instance(p)) for p in args.instances]  # all errors before any work
    out_dir = Path(args.out) if args.out else None
    notes: list[str] = []
    untimed: list[str] = []
    pairs = [(path, inst, info) for path, inst in instances for info in infos]
    bar = tqdm(pairs, desc="solving", unit="solve", disable=len(pairs) < 2 or None,
               leave=False, file=sys.stderr)
    done = []  # [path, instance, solver info, table row, result or None]
    for path, inst, info in bar:
        bar.set_postfix_str(f"{inst.name} / {info.name}")
        row, res = _solve_one(inst, info, args, notes, untimed)
        done.append([path, inst, info, row, res])
    _attach_bounds(done, args.bound)
    for path, inst, info, _, res in done:
        if res is None:
            continue
        if out_dir:
            res.save(out_dir / f"{Path(path).stem}.{info.name}.plan.json")
        if len(pairs) == 1:
            _print_devices(inst, res)
    if untimed:
        names = ", ".join(dict.fromkeys(untimed))
        notes.append(f"--time-limit not used by {names} (no time limit: they run to completion)")
    for note in dict.fromkeys(notes):  # each once, in order
        print(f"note: {note}", file=sys.stderr)
    rows = [item[3] for item in done]
    print(table(rows, COLUMNS))
    if args.bound != "none" or any(r.get("bound_s") is not None for r in rows):
        print(f"bound_s: best certified lower bound per instance and schedule ({args.bound} "
              "bound and the solvers' dual bounds; sequential plans: the sequential optimum); "
              "gap = (total - bound) / total")
    if out_dir:
        print(f"plans written to {out_dir}/")
    bad = {"unavailable", "error", "REJECTED"}
    return EXIT_FAIL if any(r["status"] in bad for r in rows) else EXIT_OK


def _print_devices(inst, res) -> None:
    from .cost import evaluate

    if res.total_delay_s is None:
        return
    ev = evaluate(inst, res.cuts, res.levels, res.bandwidth, res.share, schedule=res.schedule)
    rows = [{"device": d.id, "cut": d.cut, "level": d.level, "band_MHz": d.bandwidth_hz / 1e6,
             "share": d.server_share, "compute_s": ev.compute_s[k], "comm_s": ev.comm_s[k],
             "server_s": ev.server_s[k], "T_k_s": ev.device_delay[k],
             "mem_GB": ev.device_memory[k] / 1e9}
            for k, d in enumerate(res.devices)]
    print(f"{inst.name}: {res.solver} plan ({inst.n_devices} devices, "
          f"{inst.model.name}, L = {inst.model.n_blocks})")
    print(table(rows, list(rows[0])))
    print()


def cmd_solvers(args: argparse.Namespace) -> int:
    from .solvers import solvers

    rows = [{"name": s.name, "family": s.family, "exact": s.exact, "bound": s.bound,
             "available": s.available(), "options": ", ".join(s.options) or "-",
             "description": s.description} for s in solvers()]
    print(table(rows, ["name", "family", "exact", "bound", "available", "options", "description"]))
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from .verifier import verify

    inst = load_instance(args.instance)
    plan = load_plan(args.plan)
    rep = verify(inst, plan)
    if rep.feasible:
        print(f"feasible: total delay {rep.objective:.6g} s = {rep.rounds:.6g} rounds x "
              f"{rep.round_delay:.6g} s")
        print(table([{"constraint": n, "relative_slack": s} for n, s in rep.binding(args.top)],
                    ["constraint", "relative_slack"]))
    else:
        print("INFEASIBLE:")
        for v in rep.violations:
            print(f"  {v}")
    for c in rep.claims:
        print(f"plan figure disagrees with the model: {c}")
    return EXIT_OK if rep.ok else EXIT_FAIL


def cmd_simulate(args: argparse.Namespace) -> int:
    from .simulation import simulate

    inst = load_instance(args.instance)
    plan = load_plan(args.plan)
    sim = simulate(inst, plan, seed=args.seed, allocator=args.allocator, progress=True)
    print(table([{"average_channel_s": plan.total_delay_s, **sim.model_dump()}],
                ["average_channel_s", "total_delay_s", "mean_round_delay_s", "rounds", "seed",
                 "allocator"]))
    return EXIT_OK


def cmd_generate(args: argparse.Namespace) -> int:
    from .generate import random_instance

    try:
        data = random_instance(args.devices, model=args.model, heterogeneity=args.heterogeneity,
                               bandwidth_hz=args.bandwidth, memory_pressure=args.memory_pressure,
                               seed=args.seed, name=args.name)
    except ValueError as exc:
        if isinstance(exc, InstanceError):
            raise
        raise UsageError(str(exc)) from None
    text = json.dumps(data, indent=1) + "\n"
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    text = json.dumps(json_schema(), indent=1) + "\n"
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


# --------------------------------------------------------------------------- parser
def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return v


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {v}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sftopt", description=__doc__.split(":")[0] + ": plan and "
                                "check split fine-tuning over wireless edge networks")
    p.add_argument("--version", action="version", version=f"sftopt {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("solve", help="solve instances, print a table, write plans")
    s.add_argument("instances", nargs="+", metavar="INSTANCE", help="instance JSON file(s)")
    s.add_argument("--solver", action="append", default=None,
                   help="solver name(s), repeatable or comma-separated (default: greedy)")
    s.add_argument("--seed", type=_seed, default=None,
                   help="seed for randomised solvers and the fading trace (overrides channel.seed)")
    s.add_argument("--time-limit", type=_positive_float, default=None, help="seconds per solve")
    s.add_argument("--out", metavar="DIR",
                   help="write each plan as DIR/<instance>.<solver>.plan.json")
    s.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="solver option (repeatable)")
    s.add_argument("--bound", choices=["relaxation", "lagrangian", "milp", "none"],
                   default="lagrangian",
                   help="certified lower bound attached to every plan for its gap (default: "
                        "lagrangian, prices server memory, seconds; relaxation: weaker, "
                        "instant; milp: runs the milp solver)")
    s.add_argument("--simulate", action=argparse.BooleanOptionalAction, default=True,
                   help="run the two-timescale fading simulation (default: on)")
    s.set_defaults(func=cmd_solve)

    s = sub.add_parser("solvers", help="list the registered solvers")
    s.set_defaults(func=cmd_solvers)

    s = sub.add_parser("check", help="verify a plan against the formal model")
    s.add_argument("instance")
    s.add_argument("plan")
    s.add_argument("--top", type=int, default=5, help="how many tightest constraints to list")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("simulate", help="two-timescale fading simulation of a plan")
    s.add_argument("instance")
    s.add_argument("plan")
    s.add_argument("--seed", type=_seed, default=None)
    s.add_argument("--allocator", choices=["exact", "equal", "fixed"], default=None)
    s.set_defaults(func=cmd_simulate)

    s = sub.add_parser("generate", help="write a random instance (seeded)")
    s.add_argument("--devices", type=int, default=10)
    s.add_argument("--model", default="gpt2-small", help="profile name in models/")
    s.add_argument("--heterogeneity", type=float, default=0.5, help="0 (identical) .. 1")
    s.add_argument("--bandwidth", type=_positive_float, default=20e6, help="Hz")
    s.add_argument("--memory-pressure", type=float, default=0.3, help="0 (all fit) .. 1")
    s.add_argument("--seed", type=_seed, default=0)
    s.add_argument("--name", default=None)
    s.add_argument("--out", default=None, help="file (default: stdout)")
    s.set_defaults(func=cmd_generate)

    s = sub.add_parser("schema", help="print the instance JSON Schema")
    s.add_argument("--out", default=None)
    s.set_defaults(func=cmd_schema)

    from .calibrate.cli import add_parser as add_calibrate_parser  # torch loads only when run

    add_calibrate_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "solver", "x") is None:
        args.solver = ["greedy"]
    try:
        return args.func(args)
    except InstanceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
