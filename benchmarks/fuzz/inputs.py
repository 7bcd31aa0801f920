"""A long fuzzing run of the loader, the plan checker and the solver options (issue 20, item 6):
the test suite's seeded properties, many more cases.

Each case mutates a valid input: one field of a bundled instance (or of a plan solved for it, or
a solver option) set to a random JSON value, a number at an edge of the floats, or deleted. The
outcome is counted: loaded (every number of the loaded instance finite and the JSON Schema
accepting it), a named error (InstanceError / SolverOptionError / a report naming the problem),
or anything else (another exception, a number out of range after loading, a hang past the
time the case is given) — which is a failure.

Usage: python -m benchmarks.fuzz.inputs [--cases 20000] [--seed 0] [--out DIR]
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import math
import platform
import random
import time
from pathlib import Path
from typing import Any

import jsonschema

import sftopt
from sftopt.core.files import write_text
from sftopt.core.loading import json_schema, load_plan
from sftopt.core.registry import SolverOptionError, get
from sftopt.core.result import versions

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
INSTANCES = sorted((ROOT / "data" / "instances").glob("*.json"))
EDGE_NUMBERS = [0, -0.0, 1, -1, 0.5, 1e-300, 5e-324, 1e308, -1e308, 2**63, 2**64 + 1, 10**30,
                math.inf, -math.inf, math.nan]


def json_value(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value: numbers at the edges of the floats most often."""
    kind = rng.random()
    if kind < 0.45:
        return rng.choice(EDGE_NUMBERS)
    if kind < 0.6:
        return rng.choice([True, False, None])
    if kind < 0.75:
        return rng.choice(["", "8", "1e6", "nan", "x" * rng.randint(1, 300), "gpt2-small"])
    if kind < 0.85:
        return rng.uniform(-1e6, 1e6)
    if depth > 2:
        return rng.randint(-5, 5)
    if kind < 0.93:
        return [json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(["a", "id", "flops", "level"]): json_value(rng, depth + 1)
            for _ in range(rng.randint(0, 2))}


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside ``node`` (dict keys and list indices)."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node[:4]):  # a few items of long lists
            out += paths(v, (*prefix, i))
    return out


def mutate(data: Any, rng: random.Random) -> Any:
    data = copy.deepcopy(data)
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        where = rng.choice(paths(data))
        parent = data
        for key in where[:-1]:
            parent = parent[key]
        if rng.random() < 0.12 and isinstance(parent, dict):
            del parent[where[-1]]
        else:
            parent[where[-1]] = json_value(rng)
    return data


def finite(node: Any) -> bool:
    if isinstance(node, float):
        return math.isfinite(node)
    if isinstance(node, dict):
        return all(finite(v) for v in node.values())
    if isinstance(node, list):
        return all(finite(v) for v in node)
    return True


def loader_case(base: dict[str, Any], schema: dict[str, Any], rng: random.Random) -> str:
    data = mutate(base, rng)
    try:
        inst = sftopt.load_instance(data)
    except sftopt.InstanceError:
        return "named error (InstanceError)"
    loaded = inst.to_dict()
    if not finite(loaded):
        return "FAILURE: loaded with a non-finite number"
    try:
        jsonschema.validate(loaded, schema)
    except jsonschema.ValidationError as exc:
        return f"FAILURE: loaded but the schema rejects it ({exc.message[:60]})"
    return "loaded, finite, schema agrees"


def plan_case(inst: Any, plan: dict[str, Any], rng: random.Random) -> str:
    data = mutate(plan, rng)
    try:
        res = load_plan(data)
    except sftopt.InstanceError:
        return "named error (InstanceError)"
    try:
        rep = sftopt.verify(inst, res)
    except sftopt.InstanceError:
        return "named error (InstanceError)"
    if rep.ok:
        return "verified (a valid plan)"
    if rep.violations or rep.claims:
        return "rejected, problems named"
    return "FAILURE: not ok without a named problem"


def option_case(inst: Any, name: str, options: tuple[str, ...], rng: random.Random) -> str:
    key = rng.choice([*options, "time_limit", "seed", "threads", "gap_tol", "no_such_option"])
    value = json_value(rng)
    try:
        res = sftopt.solve(inst, name, certify=False, **{key: value})
    except SolverOptionError:
        return "named error (SolverOptionError)"
    if res.plan is not None and not sftopt.verify(inst, res).ok:
        return "FAILURE: a plan the verifier rejects"
    return f"solved ({res.termination})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=20_000, help="loader cases (default 20000); "
                    "plans get a quarter of it, options a twentieth")
    ap.add_argument("--seed", type=int, default=0, help="seed of every mutation (default 0)")
    ap.add_argument("--out", type=Path, default=HERE / "results",
                    help="folder of inputs.json (default benchmarks/fuzz/results)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    schema = json_schema()
    bases = [json.loads(p.read_text()) for p in INSTANCES]
    tiny = sftopt.load_instance(ROOT / "data" / "instances" / "tiny-example.json")
    plans = {name: (tiny, sftopt.solve(tiny, name, certify=False).to_dict())
             for name in ("greedy", "alm")}
    counts: dict[str, collections.Counter] = {k: collections.Counter()
                                              for k in ("loader", "plan", "options")}
    slowest: dict[str, float] = dict.fromkeys(counts, 0.0)
    failures: list[dict[str, Any]] = []
    started = time.perf_counter()
    jobs = [("loader", args.cases), ("plan", args.cases // 4), ("options", args.cases // 20)]
    for kind, n in jobs:
        for i in range(n):
            t = time.perf_counter()
            try:
                if kind == "loader":
                    outcome = loader_case(rng.choice(bases), schema, rng)
                elif kind == "plan":
                    inst, plan = plans[rng.choice(sorted(plans))]
                    outcome = plan_case(inst, plan, rng)
                else:
                    name = rng.choice(["greedy", "greedy-delay", "alm", "sqp", "milp"])
                    outcome = option_case(tiny, name, get("split", name).options, rng)
            except Exception as exc:  # noqa: BLE001 - what the run exists to count
                outcome = f"FAILURE: {type(exc).__name__}"
            slowest[kind] = max(slowest[kind], time.perf_counter() - t)
            counts[kind][outcome] += 1
            if outcome.startswith("FAILURE") and len(failures) < 50:
                failures.append({"kind": kind, "case": i, "outcome": outcome})
    doc = {"command": "python -m benchmarks.fuzz.inputs " + " ".join(
               f"--{k} {v}" for k, v in (("cases", args.cases), ("seed", args.seed))),
           "seconds": time.perf_counter() - started,
           "counts": {k: dict(v.most_common()) for k, v in counts.items()},
           "slowest_case_s": slowest, "failures": failures, "versions": versions(),
           "machine": {"platform": platform.platform(), "processor": platform.processor()}}
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "inputs.json", json.dumps(doc, indent=1) + "\n")
    for kind, c in counts.items():
        print(f"{kind}: {sum(c.values())} cases")
        for outcome, k in c.most_common():
            print(f"  {k:7d}  {outcome}")
    print(f"{doc['seconds']:.0f} s; slowest case per kind: "
          + ", ".join(f"{k} {v:.2f} s" for k, v in slowest.items()))


if __name__ == "__main__":
    main()
