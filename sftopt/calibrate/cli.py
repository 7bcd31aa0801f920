"""`sftopt calibrate`: measure a model profile (and codec table) on this machine, write JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_USAGE = 0, 2


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the `calibrate` command on a parent parser's subparsers."""
    from ..torchrt.models import MODEL_NAMES

    p = subparsers.add_parser(
        "calibrate", help="measure a model profile and codec table on this machine",
        description="Time, count and measure every stage of a model for LoRA fine-tuning on "
                    "this machine (torch, CPU, fp32); write a profile JSON (models/*.json "
                    "format) with a fitted device entry, and optionally a codec table.")
    p.add_argument("--model", required=True, help=f"one of: {', '.join(MODEL_NAMES)}")
    p.add_argument("--batch", type=int, required=True, help="sequences per step (> 0; required)")
    p.add_argument("--seq-len", type=int, required=True,
                   help="tokens per sequence (> 0; required)")
    p.add_argument("--out", type=Path, required=True,
                   help="profile JSON to write (required; an existing file only with "
                        "--overwrite)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out and --codec-out if they exist, e.g. a committed profile "
                        "(default: off, an existing file is an error before any measuring)")
    p.add_argument("--repeats", type=int, default=10, help="timed steps (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--clock", choices=["wall", "cpu"], default=None,
                   help="wall time, or the thread's CPU time (valid with --threads 1); "
                        "default: cpu with one thread, else wall")
    p.add_argument("--flops", choices=["effective", "analytic"], default="effective",
                   help="stage FLOPs in the profile: effective (fitted FLOP/s x measured "
                        "time / batch, so the cost model reproduces measured stage times; "
                        "default) or the analytic count (both are recorded in provenance)")
    p.add_argument("--codec", action=argparse.BooleanOptionalAction, default=True,
                   help="also calibrate the codec table on the model's cut tensors (default: "
                        "on)")
    p.add_argument("--codec-out", type=Path, default=None,
                   help="codec table JSON (default: codec-<model>.json beside --out)")
    p.add_argument("--text", type=Path, default=None,
                   help="text for the pretrained model (default: data/text/fortunes.txt)")
    p.add_argument("--hidden", type=int, default=None,
                   help="reduced width (random weights; default: the model's)")
    p.add_argument("--layers", type=int, default=None,
                   help="reduced depth (random weights; default: the model's)")
    p.add_argument("--seed", type=int, default=0, help="weights and data seed (default: 0)")
    p.add_argument("--classes", type=int, default=0,
                   help="profile the model as a classifier into this many classes (mean pool "
                        "and a trainable linear head, as `sftopt execute` runs it; default 0: "
                        "the model's own LM head)")
    p.set_defaults(func=run)
    return p


def _check(args: argparse.Namespace) -> str | None:
    from ..torchrt.models import MODEL_NAMES

    if args.model not in MODEL_NAMES:
        return f"unknown model '{args.model}'; known: {', '.join(MODEL_NAMES)}"
    for flag, value, low in (("--batch", args.batch, 1), ("--seq-len", args.seq_len, 1),
                             ("--repeats", args.repeats, 1), ("--warmup", args.warmup, 0),
                             ("--threads", args.threads, 1), ("--hidden", args.hidden, 1),
                             ("--layers", args.layers, 1), ("--seed", args.seed, 0),
                             ("--classes", args.classes, 0)):
        if value is not None and value < low:
            return f"{flag} must be >= {low}; got {value}"
    if args.classes == 1:
        return "--classes must be 0 (the LM head) or at least 2"
    if args.clock == "cpu" and args.threads != 1:
        return "--clock cpu needs --threads 1 (other threads' work would be missed)"
    if args.text is not None and not args.text.is_file():
        return f"--text: no file {str(args.text)!r}"
    outs = [("--out", args.out)]
    if args.codec:
        outs.append(("--codec-out", codec_out(args)))
    for flag, path in outs:
        if path.is_dir():
            return f"{flag} {path}: is a folder, expected a file name"
        if path.exists() and not args.overwrite:
            return f"{flag} {path}: exists; --overwrite to replace it, or another name"
        if not path.parent.is_dir():
            return f"{flag} {path}: the folder {str(path.parent)!r} does not exist"
    return None


def codec_out(args: argparse.Namespace) -> Path:
    """Where the codec table goes: --codec-out, or codec-<model>.json beside --out."""
    return args.codec_out or args.out.parent / f"codec-{args.model}.json"


def run(args: argparse.Namespace) -> int:
    """Run `sftopt calibrate`; bad input prints one line to stderr and returns 2."""
    problem = _check(args)
    if problem is not None:
        print(f"sftopt calibrate: error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        import torch  # noqa: F401
    except ImportError:
        print("sftopt calibrate: error: needs torch (pip install -e '.[torch]')", file=sys.stderr)
        return EXIT_USAGE
    from tqdm import tqdm

    from .codec import calibrate_codec
    from .profile import calibrate, write_json

    steps = args.warmup + args.repeats
    quiet = True if getattr(args, "verbosity", 0) < 0 else None  # None: bars on a terminal only
    try:
        with tqdm(total=steps, desc=f"calibrate {args.model}", unit="step", file=sys.stderr,
                  disable=quiet) as bar:
            profile, sm = calibrate(args.model, batch=args.batch, seq_len=args.seq_len,
                                    repeats=args.repeats, warmup=args.warmup,
                                    threads=args.threads, seed=args.seed, text=args.text,
                                    hidden=args.hidden, layers=args.layers,
                                    clock=args.clock, flops_mode=args.flops,
                                    classes=args.classes, progress=bar.update)
    except (ValueError, FileNotFoundError) as exc:  # e.g. seq_len beyond the position table
        print(f"sftopt calibrate: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    path = write_json(profile, args.out)
    dev = profile["provenance"]["device"]
    print(f"wrote {path}: {len(profile['stages'])} stages, device {dev['flops']:.3e} FLOP/s, "
          f"FLOPs analytic vs counted {profile['provenance']['flops_check']['rel_total']:+.2%}")
    if args.codec:
        out = codec_out(args)
        with tqdm(desc="codec levels", unit="tensor", file=sys.stderr,
                  disable=quiet) as bar:
            table = calibrate_codec(sm, batch=args.batch, seq_len=args.seq_len, seed=args.seed,
                                    text=args.text, progress=bar.update)
        write_json(table, out)
        print(f"wrote {out}: {len(table['levels'])} levels over "
              f"{table['provenance']['n_tensors']} tensors")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (`python -m sftopt.calibrate.cli ...`)."""
    parser = argparse.ArgumentParser(prog="sftopt")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
