"""`sftopt check`, `simulate` and `plot`: what a plan does on an instance (of any family)."""

from __future__ import annotations

import argparse
from typing import Any

from ..core.plots import figure_format
from .common import EXIT_FAIL, EXIT_OK, UsageError, instance_and_plan, seed, table


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("check", help="verify a plan against the formal model")
    s.add_argument("instance")
    s.add_argument("plan")
    s.add_argument("--top", type=int, default=5, help="how many tightest constraints to list")
    s.set_defaults(func=run_check)

    s = sub.add_parser("simulate", help="the family's simulation of a plan (split: two-timescale "
                                        "fading)")
    s.add_argument("instance")
    s.add_argument("plan")
    s.add_argument("--seed", type=seed, default=None, help="fading seed (default channel.seed)")
    s.add_argument("--allocator", default=None,
                   help="online allocator each round (split: exact, sqp, conic, equal, fixed; "
                        "default: the plan's solver's own)")
    s.add_argument("--plot", metavar="FILE", default=None,
                   help="also draw the round delays over the trace (png, pdf or svg)")
    s.set_defaults(func=run_simulate)

    s = sub.add_parser("plot", help="draw a plan: where each party's round goes, its memory")
    s.add_argument("instance")
    s.add_argument("plan")
    s.add_argument("--out", metavar="FILE", required=True, help="figure file (png, pdf or svg)")
    s.set_defaults(func=run_plot)


def run_check(args: argparse.Namespace) -> int:
    inst, plan, family = instance_and_plan(args.instance, args.plan, fit=False)
    rep = family.verify(inst, plan)
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


def _figure_file(path: str | None) -> None:
    """A figure file name with a format we write (checked before any work)."""
    if path is not None:
        try:
            figure_format(path)
        except ValueError as exc:
            raise UsageError(str(exc)) from None


def run_simulate(args: argparse.Namespace) -> int:
    _figure_file(args.plot)
    inst, plan, family = instance_and_plan(args.instance, args.plan)
    if family.simulation_model is None:
        raise UsageError(f"family {inst.family!r} has no simulation")
    if args.allocator is not None and args.allocator not in family.allocators:
        raise UsageError(f"--allocator must be one of {', '.join(family.allocators)}, got "
                         f"{args.allocator!r}")
    sim = family.simulate(inst, plan, seed=args.seed, allocator=args.allocator, progress=True,
                          plot=args.plot)
    print(table([{"average_channel_s": plan.objective, **sim.model_dump()}],
                ["average_channel_s", *sim.model_dump()]))
    if args.plot:
        print(f"figure written to {args.plot}")
    return EXIT_OK


def run_plot(args: argparse.Namespace) -> int:
    _figure_file(args.out)
    inst, plan, family = instance_and_plan(args.instance, args.plan)
    family.plot_plan(inst, plan, args.out)
    print(f"figure written to {args.out}")
    return EXIT_OK
