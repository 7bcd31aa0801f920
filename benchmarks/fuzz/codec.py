"""Long fuzzing run of the codec decoder: mutated valid streams (header fields set to edge or
random values, bytes flipped, sections cut, replaced, swapped or given hostile histograms, all
with a valid checksum), each decoded under caps; outcomes counted by class.

Run: python -m benchmarks.fuzz.codec [--cases 300000] [--seed 0] [--jobs 1] [--out DIR]
Writes benchmarks/fuzz/results/codec.json (and codec_failures/*.bin, one file per case that
ended in anything but a decoded tensor of the declared shape or a ValueError) unless --out is
given. Each worker runs in a child process under a 4 GiB address-space limit, so a crash
(SIGABRT, SIGSEGV), an exhausted memory or a hang (no answer for 20 s) is recorded against its
case instead of ending the run.
"""

from __future__ import annotations

import os

# One core per worker: must be set before numpy is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import collections  # noqa: E402
import datetime as dt  # noqa: E402
import importlib.metadata as md  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import selectors  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(ROOT))

from benchmarks.fuzz import codec_mutations as mut  # noqa: E402
from sftopt.codec import entropy, stream  # noqa: E402

# Caps of the run: small, so that a mutated shape is refused (or decoded) in milliseconds; the
# default caps are exercised by the committed corpus (tests/corpus/codec/).
MAX_ELEMENTS = 1 << 22
MAX_BYTES = 1 << 24
WORKER_MEMORY = 4 << 30  # address space of a worker: a runaway allocation fails, not the host
HANG_S = 20.0
MUTATIONS = (
    "set_field",
    "reshape",
    "flip",
    "flip_raw",
    "truncate",
    "truncate_raw",
    "replace_section",
    "edit_section",
    "swap_sections",
    "hostile_histogram",
    "stacked",
)


def _int_value(rng: np.random.Generator) -> int:
    r = rng.random()
    if r < 0.6:
        return int(mut.EDGE_INTS[rng.integers(len(mut.EDGE_INTS))]) + int(rng.integers(-1, 2))
    if r < 0.8:
        return int(rng.integers(0, 1 << 16))
    return int(rng.integers(0, 1 << 63, dtype=np.int64)) * 2 + int(rng.integers(2))


def _field_value(rng: np.random.Generator, name: str) -> float | int:
    if name == "keep_ratio":
        if rng.random() < 0.7:
            return float(mut.EDGE_FLOATS[rng.integers(len(mut.EDGE_FLOATS))])
        return float(rng.random())
    return max(_int_value(rng), 0)


def _hostile_counts(rng: np.random.Generator, size: int, total: int) -> list[int]:
    """Counts that look right in some way: summing to total modulo 2^64, a huge or negative-
    looking entry, all in one bin, off by one, or random."""
    kind = int(rng.integers(5))
    counts = [0] * size
    if kind == 0 and size >= 3:  # sums to total modulo 2^64
        counts[0] = (1 << 63) - 1
        counts[1] = (1 << 63) - 1
        counts[2] = 2 + total
    elif kind == 1:  # one entry holds everything
        counts[int(rng.integers(size))] = total
    elif kind == 2:  # off by one
        counts[int(rng.integers(size))] = abs(total + int(rng.choice([-1, 1])))
    elif kind == 3:  # a 2^64 - 1 entry (a "negative" count in two's complement)
        counts[int(rng.integers(size))] = (1 << 64) - 1
        counts[int(rng.integers(size))] = total + 1
    else:
        draws = min(max(total, 0), 1 << 40)  # multinomial takes a C long
        counts = [int(c) for c in rng.multinomial(draws, np.full(size, 1.0 / size))]
    return counts


def mutate(base: bytes, rng: np.random.Generator, bases: list[bytes], kind: str) -> bytes:
    """One mutation of `kind` of a valid stream, its parameters drawn from rng."""
    n = max(len(base), 1)  # a stacked case may have cut the stream to nothing
    if kind == "set_field":
        names = mut.field_names(base)
        name = names[int(rng.integers(len(names)))]
        return mut.set_field(base, name, _field_value(rng, name))
    if kind == "reshape":
        dims = [_int_value(rng) if rng.random() < 0.5 else int(rng.integers(0, 1 << 12))
                for _ in range(int(rng.integers(1, 4)))]
        return mut.reshape(base, dims)
    if kind == "flip":
        return mut.flip(base, int(rng.integers(n)), int(rng.integers(1, 256)))
    if kind == "flip_raw":
        return mut.flip_raw(base, int(rng.integers(n)), int(rng.integers(1, 256)))
    if kind == "truncate":
        return mut.truncate(base, int(rng.integers(n)))
    if kind == "truncate_raw":
        return mut.truncate_raw(base, int(rng.integers(n)))
    section = int(rng.integers(len(stream.SECTIONS)))
    if kind == "replace_section":
        size = int(rng.choice([0, 1, 3, 4, 8, 12, 64, 256, 1024]))
        return mut.replace_section(base, section, rng.bytes(size))
    if kind == "edit_section":
        insert = rng.bytes(int(rng.integers(0, 9)))
        return mut.edit_section(base, section, int(rng.integers(1 << 16)),
                                int(rng.integers(0, 9)), insert)
    if kind == "swap_sections":
        return mut.swap_sections(base, bases[int(rng.integers(len(bases)))], section)
    if kind == "hostile_histogram":
        try:
            h = stream.unpack(base)[0]
        except ValueError:  # an earlier mutation of a stacked case broke the framing
            return base
        which = int(rng.choice([1, 3]))
        if which == 1:
            size, total = 1 << min(h.bits, 12), h.n_kept
        else:
            size = 256 if h.position_coding != entropy.POS_COLUMNS else h.shape[-1]
            total = (int(np.prod(h.shape, dtype=object)) + 7) // 8 if size == 256 else h.n_kept
        if size > 1 << 16:  # a reshaped stacked case: no table that long is worth writing
            return base
        return mut.replace_histogram(base, which, _hostile_counts(rng, size, total))
    # stacked: two or three mutations of the other kinds in a row
    out = base
    for _ in range(int(rng.integers(2, 4))):
        out = mutate(out, rng, bases, MUTATIONS[int(rng.integers(len(MUTATIONS) - 1))])
    return out


def case(seed: int, i: int, bases: list[bytes]) -> tuple[str, bytes]:
    """Case i of a run: its mutation kind and bytes, a function of (seed, i) alone."""
    rng = np.random.default_rng([seed, i])
    base = bases[int(rng.integers(len(bases)))]
    kind = MUTATIONS[int(rng.integers(len(MUTATIONS)))]
    return kind, mutate(base, rng, bases, kind)


def classify(data: bytes) -> str:
    """Outcome class of one decode, warnings included (a numpy warning is a finding too)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cls, detail = mut.outcome(data, MAX_ELEMENTS, MAX_BYTES)
    if caught:
        return f"warning:{caught[0].category.__name__}"
    if cls == "ValueError":
        return "ValueError:" + _message_class(detail)
    return cls


def _message_class(msg: str) -> str:
    """The kind of a ValueError, from the start of its message (for the results table)."""
    for key in ("checksum", "truncated", "bad magic", "unsupported version", "decode cap",
                "corrupt header", "corrupt scales", "corrupt value histogram",
                "corrupt value data", "corrupt position", "corrupt"):
        if key in msg:
            return key
    return "other"


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def worker(seed: int, start: int, stop: int) -> None:
    """Decode cases start..stop-1, printing "S i" before and "D i class" after each."""
    import resource

    bases = mut.base_streams(torch_too=_torch_available())
    mut.outcome(bases[0], MAX_ELEMENTS, MAX_BYTES)  # warm every import before the limit
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY, WORKER_MEMORY))
    for i in range(start, stop):
        kind, data = case(seed, i, bases)
        print(f"S {i} {kind}", flush=True)
        try:
            cls = classify(data)
        except MemoryError:
            cls = "MemoryError"
        print(f"D {i} {kind} {cls}", flush=True)


def _spawn(seed: int, start: int, stop: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "benchmarks.fuzz.codec", "--worker", str(start), str(stop),
           "--seed", str(seed)]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE)  # stderr: ours


def _lines(proc: subprocess.Popen, timeout: float) -> Iterator[str | None]:
    """The worker's output lines as they come (raw reads: a buffered reader would hide lines
    from select); None when nothing came for `timeout` seconds; ends at end of file."""
    fd = proc.stdout.fileno()
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    pending = b""
    try:
        while True:
            if not sel.select(timeout=timeout):
                yield None
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return
            pending += chunk
            *done, pending = pending.split(b"\n")
            for line in done:
                yield line.decode()
    finally:
        sel.close()


def run_range(seed: int, start: int, stop: int, record: Callable[[int, str, str], None]) -> None:
    """Run cases start..stop-1 in workers, restarting after a crash or a hang."""
    i = start
    while i < stop:
        proc = _spawn(seed, i, stop)
        current: tuple[int, str] | None = None
        hung = False
        # The first line waits for the worker's imports too.
        for line in _lines(proc, HANG_S):
            if line is None:
                if current is None:  # still starting up
                    continue
                hung = True
                proc.kill()
                break
            tag, idx, kind, cls = (line.split(" ", 3) + [""])[:4]
            if tag == "S":
                current = (int(idx), kind)
            else:
                record(int(idx), kind, cls)
                current = None
                i = int(idx) + 1
        rc = proc.wait()
        if current is not None:
            name = "hang" if hung else (
                f"crash:{signal.Signals(-rc).name}" if rc < 0 else f"crash:exit {rc}")
            record(current[0], current[1], name)
            i = current[0] + 1
        elif rc != 0:
            raise RuntimeError(f"fuzz worker failed outside a case (exit {rc})")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("numpy", "constriction", "torch"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=300_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.seed, *args.worker)
        return 0
    if args.cases < 1 or args.jobs < 1:
        ap.error("--cases and --jobs must be at least 1")

    by_class: collections.Counter[str] = collections.Counter()
    by_kind: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    failures: list[dict] = []
    bases = mut.base_streams(torch_too=_torch_available())
    fail_dir = args.out / "codec_failures"

    def record(i: int, kind: str, cls: str) -> None:
        by_class[cls] += 1
        by_kind[kind][cls] += 1
        if not (cls == "decoded" or cls.startswith("ValueError")):
            _, data = case(args.seed, i, bases)
            fail_dir.mkdir(parents=True, exist_ok=True)
            (fail_dir / f"case{i}.bin").write_bytes(data)
            failures.append({"case": i, "mutation": kind, "class": cls})
        done = sum(by_class.values())
        if done % 10_000 == 0:
            print(f"  {done} cases: {dict(by_class.most_common(6))}", flush=True)

    for stale in fail_dir.glob("case*.bin"):  # findings of an earlier run
        stale.unlink()
    from benchmarks.codec.run import cpu_model  # here: the workers need none of its imports

    t0 = time.perf_counter()
    # Jobs split the case range; each runs its workers in turn on a thread of its own.
    import threading

    bounds = np.linspace(0, args.cases, args.jobs + 1).astype(int)
    lock = threading.Lock()

    def locked(*a: object) -> None:
        with lock:
            record(*a)

    errors: list[BaseException] = []

    def job(a: int, b: int) -> None:
        try:
            run_range(args.seed, a, b, locked)
        except BaseException as exc:  # reported below: a broken harness writes no results
            errors.append(exc)

    threads = [threading.Thread(target=job, args=(int(a), int(b)))
               for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        print(f"fuzzing harness failed: {errors[0]!r}; no results written", file=sys.stderr)
        return 2

    result = {
        "what": "codec decoder fuzzing: mutated valid streams with a valid checksum",
        "date": dt.date.today().isoformat(),
        "cpu": cpu_model(),
        "versions": versions(),
        "seed": args.seed,
        "cases": int(sum(by_class.values())),
        "base_streams": len(bases),
        "caps": {"max_elements": MAX_ELEMENTS, "max_bytes": MAX_BYTES},
        "worker_memory_bytes": WORKER_MEMORY,
        "hang_after_s": HANG_S,
        "elapsed_s": round(elapsed, 1),
        "outcomes": dict(by_class.most_common()),
        "by_mutation": {k: dict(v.most_common()) for k, v in sorted(by_kind.items())},
        "failures": sorted(failures, key=lambda f: f["case"]),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "codec.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{result['cases']} cases in {elapsed:.0f} s: {result['outcomes']}")
    print(f"wrote {path}")
    return 0 if not failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
