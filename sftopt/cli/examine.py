"""`sftopt check`, `simulate` and `plot`: what a plan does on an instance (of any family)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..core.plots import figure_format
from .common import (
    EXIT_FAIL,
    EXIT_OK,
    UsageError,
    count,
    instance_and_plan,
    out_folder,
    print_json,
    progress_off,
    seed,
    table,
)


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("check", help="verify a plan against the formal model",
                       description="Hold a plan against the family's formal (Pyomo) model. "
                                   "Exit 0: feasible and every figure the plan states agrees; "
                                   "1: infeasible or a figure disagrees; 2: bad input.")
    s.add_argument("instance", help="instance JSON file")
    s.add_argument("plan", help="plan JSON file (as `sftopt solve --out` writes)")
    s.add_argument("--top", type=count, default=5,
                   help="how many tightest constraints to list (default: 5)")
    s.add_argument("--json", action="store_true",
                   help="print one JSON document on stdout (verdict, violations, disagreeing "
                        "figures, slacks) instead of the text (default: off)")
    s.set_defaults(func=run_check)

    s = sub.add_parser("simulate", help="the family's simulation of a plan (split: two-timescale "
                                        "fading)")
    s.add_argument("instance", help="instance JSON file")
    s.add_argument("plan", help="plan JSON file")
    s.add_argument("--seed", type=seed, default=None,
                   help="fading seed (default: the instance's channel.seed)")
    s.add_argument("--allocator", default=None,
                   help="online allocator each round (split: exact, sqp, conic, equal, fixed; "
                        "default: the plan's solver's own)")
    s.add_argument("--plot", metavar="FILE", default=None,
                   help="also draw the round delays over the trace (png, pdf or svg; "
                        "default: no figure)")
    s.add_argument("--json", action="store_true",
                   help="print the simulation as one JSON document on stdout instead of the "
                        "table (default: off)")
    s.set_defaults(func=run_simulate)

    s = sub.add_parser("plot", help="draw a plan: where each party's round goes, its memory")
    s.add_argument("instance", help="instance JSON file")
    s.add_argument("plan", help="plan JSON file")
    s.add_argument("--out", metavar="FILE", required=True,
                   help="figure file (png, pdf or svg; required), replaced whole if it exists")
    s.set_defaults(func=run_plot)


def run_check(args: argparse.Namespace) -> int:
    inst, plan, family = instance_and_plan(args.instance, args.plan, fit=False)
    rep = family.verify(inst, plan)
    if args.json:
        print_json({"command": "check", "instance": inst.name, "plan": args.plan,
                    "solver": plan.solver, "verdict": family.describe(rep),
                    "feasible": rep.feasible, "ok": rep.ok, "objective": rep.objective,
                    "violations": rep.violations, "claims": rep.claims,
                    "figures": rep.figures,
                    "binding": [{"constraint": n, "relative_slack": v}
                                for n, v in rep.binding(args.top)]})
        return EXIT_OK if rep.ok else EXIT_FAIL
    print(family.describe(rep) + (":" if not rep.feasible else ""))
    if rep.feasible:
        print(table([{"constraint": n, "relative_slack": s} for n, s in rep.binding(args.top)],
                    ["constraint", "relative_slack"]))
    else:
        for v in rep.violations:
            print(f"  {v}")
    for c in rep.claims:
        print(f"plan figure disagrees with the model: {c}")
    return EXIT_OK if rep.ok else EXIT_FAIL


def _figure_file(path: str | None, flag: str) -> None:
    """A figure file name with a format we write, in a writable folder (checked before any
    work; the folder is made if missing, as the figure writer does)."""
    if path is not None:
        try:
            figure_format(path)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if Path(path).is_dir():
            raise UsageError(f"{flag} {path}: is a folder, expected a file name")
        out_folder(str(Path(path).parent), flag)


def run_simulate(args: argparse.Namespace) -> int:
    _figure_file(args.plot, "--plot")
    inst, plan, family = instance_and_plan(args.instance, args.plan)
    if family.simulation_model is None:
        raise UsageError(f"family {inst.family!r} has no simulation")
    if args.allocator is not None and args.allocator not in family.allocators:
        raise UsageError(f"--allocator must be one of {', '.join(family.allocators)}, got "
                         f"{args.allocator!r}")
    sim = family.simulate(inst, plan, seed=args.seed, allocator=args.allocator,
                          progress=not progress_off(args), plot=args.plot)
    if args.json:
        print_json({"command": "simulate", "instance": inst.name, "plan": args.plan,
                    "average_channel_s": plan.objective, "simulation": sim.model_dump(),
                    "figure": args.plot})
        return EXIT_OK
    print(table([{"average_channel_s": plan.objective, **sim.model_dump()}],
                ["average_channel_s", *sim.model_dump()]))
    if args.plot:
        print(f"figure written to {args.plot}")
    return EXIT_OK


def run_plot(args: argparse.Namespace) -> int:
    _figure_file(args.out, "--out")
    inst, plan, family = instance_and_plan(args.instance, args.plan)
    family.plot_plan(inst, plan, args.out)
    print(f"figure written to {args.out}")
    return EXIT_OK
