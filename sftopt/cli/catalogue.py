"""`sftopt solvers`, `generate` and `schema`: what the toolkit offers, and new instances."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..core.errors import InstanceError
from ..core.family import FAMILIES, get_family, implemented
from ..core.files import write_text
from ..core.loading import json_schema, plan_json_schema
from ..core.registry import solvers
from .common import (
    EXIT_OK,
    UsageError,
    count,
    out_file,
    parse_options,
    positive_float,
    print_json,
    seed,
    table,
)


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("solvers", help="list the registered solvers, by family")
    s.add_argument("--family", choices=list(FAMILIES), default=None,
                   help="one family's solvers (default: every implemented family)")
    s.add_argument("--json", action="store_true",
                   help="print one JSON document on stdout instead of the tables (default: "
                        "off)")
    s.set_defaults(func=run_solvers)

    s = sub.add_parser("generate", help="write a random instance (seeded)")
    s.add_argument("--family", choices=list(FAMILIES), default="split",
                   help="the family of the instance (default: split)")
    # None: the family's own default
    s.add_argument("--devices", type=count, default=None,
                   help="devices (default: split 10, cooperative 16), or users "
                        "(hierarchical, default 30)")
    s.add_argument("--model", default=None,
                   help="split: a model profile name (default gpt2-small); cooperative and "
                        "hierarchical: an architecture, counted at --param seq_len (default "
                        "roberta-base, gpt2-medium)")
    s.add_argument("--heterogeneity", type=float, default=None,
                   help="0 (identical) .. 1 (default: the family generator's)")
    s.add_argument("--bandwidth", type=positive_float, default=None,
                   help="Hz (default: split 20e6, cooperative 10e6; hierarchical: each "
                        "cell, 20e6)")
    s.add_argument("--memory-pressure", type=float, default=None,
                   help="0 (all fit) .. 1 (default: the family generator's)")
    s.add_argument("--seed", type=seed, default=0, help="generator seed (default: 0)")
    s.add_argument("--name", default=None,
                   help="the instance's name (default: made from the parameters)")
    s.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="another parameter of the family's generator, repeatable (default: "
                        "none)")
    s.add_argument("--out", default=None,
                   help="file, replaced whole if it exists; its folder must exist (default: "
                        "stdout)")
    s.set_defaults(func=run_generate)

    s = sub.add_parser("schema", help="print the instance (or plan) JSON Schema")
    s.add_argument("--family", choices=list(FAMILIES), default=None,
                   help="one family's schema (default: every implemented family)")
    s.add_argument("--plan", action="store_true",
                   help="the plan file's schema (sftopt.plan/2) instead of the instance's "
                        "(default: off)")
    s.add_argument("--out", default=None,
                   help="file, replaced whole if it exists; its folder must exist (default: "
                        "stdout)")
    s.set_defaults(func=run_schema)


def _family(name: str):
    try:
        return get_family(name)
    except ValueError as exc:
        raise UsageError(f"--family: expected {exc}") from None


def run_solvers(args: argparse.Namespace) -> int:
    families = [args.family] if args.family else implemented()
    doc: dict[str, Any] = {}
    for fam in families:
        family = _family(fam)
        rows = [{"name": s.name, "default": s.name == family.default_solver, "exact": s.exact,
                 "bound": s.bound, "available": s.available(), "options": list(s.options),
                 "description": s.description} for s in solvers(fam)]
        doc[fam] = {"description": family.description, "objective": family.objective,
                    "default_solver": family.default_solver, "solvers": rows}
    if args.json:
        print_json({"command": "solvers", "families": doc})
        return EXIT_OK
    for i, (fam, d) in enumerate(doc.items()):
        if i:
            print()
        print(f"family {fam}: {d['description']} (objective: {d['objective']})")
        rows = [{**r, "options": ", ".join(r["options"]) or "-"} for r in d["solvers"]]
        print(table(rows, ["name", "default", "exact", "bound", "available", "options",
                           "description"]))
    return EXIT_OK


def run_generate(args: argparse.Namespace) -> int:
    if args.out:
        out_file(args.out)  # before any work
    family = _family(args.family)
    given = {"n_devices": args.devices, "model": args.model,
             "heterogeneity": args.heterogeneity, "bandwidth_hz": args.bandwidth,
             "memory_pressure": args.memory_pressure, "name": args.name}
    params = {**{k: v for k, v in given.items() if v is not None}, "seed": args.seed,
              **parse_options(args.param, "--param")}
    try:
        data = family.generate(**params)
    except TypeError as exc:
        raise UsageError(f"--param: {exc}") from None
    except InstanceError:
        raise
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    text = json.dumps(data, indent=1) + "\n"
    if args.out:
        write_text(args.out, text)
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def run_schema(args: argparse.Namespace) -> int:
    if args.out:
        out_file(args.out)
    if args.family:
        _family(args.family)
    schema = plan_json_schema(args.family) if args.plan else json_schema(args.family)
    text = json.dumps(schema, indent=1) + "\n"
    if args.out:
        write_text(Path(args.out), text)
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


