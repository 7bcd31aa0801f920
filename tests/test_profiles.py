"""Analytic profiler: parameter counts, committed profiles, FLOP and byte accounting, loading."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
from pathlib import Path

import pytest

from sftopt import profiles as P

REPO_MODELS = Path(__file__).resolve().parent.parent / "sftopt" / "models"
ARCHS = sorted(P.ARCHITECTURES)


@pytest.mark.parametrize("name", ARCHS)
def test_counted_params_within_1pct_of_published(name: str) -> None:
    arch = P.ARCHITECTURES[name]
    assert abs(P.count_params(arch) / arch.published_params - 1) < 0.01
    assert P.count_params(name) == P.count_profile(name, 128)["provenance"]["counted_params"]


def test_published_numbers_as_stated() -> None:
    published = {
        "gpt2-small": 124_439_808, "gpt2-medium": 354_823_168, "gpt2-large": 774_030_080,
        "gpt2-xl": 1_557_611_200, "roberta-base": 124_645_632, "roberta-large": 355_359_744,
        "llama-2-7b": 6_738_415_616, "opt-1.3b": 1_315_758_080, "minilm-l6": 22_713_216,
    }
    assert {k: a.published_params for k, a in P.ARCHITECTURES.items()} == published
    assert all(a.published_source for a in P.ARCHITECTURES.values())


@pytest.mark.parametrize("name", ARCHS)
def test_committed_profile_equals_count(name: str) -> None:
    path = REPO_MODELS / f"{name}.json"
    committed = json.loads(path.read_text(encoding="utf-8"))
    arch = P.ARCHITECTURES[name]
    assert committed["seq_len"] == arch.default_seq_len
    fresh = P.count_profile(name, arch.default_seq_len)
    # byte for byte: regenerating must not change the file
    assert path.read_text(encoding="utf-8") == P.dumps_profile(fresh)


def test_committed_readme_is_current(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text(
        (REPO_MODELS / "README.md").read_text(encoding="utf-8"), encoding="utf-8")
    P.write_profiles(tmp_path)
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == (
        REPO_MODELS / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ARCHS)
def test_profile_shape_and_units(name: str) -> None:
    arch = P.ARCHITECTURES[name]
    n = 256
    prof = P.count_profile(name, n)
    stages = prof["stages"]
    assert set(prof) == {"name", "seq_len", "cut_elems", "adapter_dtype_bytes", "provenance",
                         "stages"}
    assert [s["name"] for s in stages] == (
        ["embed"] + [f"block{k}" for k in range(1, arch.layers + 1)] + ["head"])
    assert prof["cut_elems"] == n * arch.hidden
    assert prof["provenance"]["source"] == "analytic"
    for s in stages:
        assert set(s) == {"name", "fwd_flops", "bwd_flops", "param_bytes", "lora_params",
                          "act_bytes"}
        assert all(isinstance(s[k], int) and s[k] >= 0 for k in s if k != "name")
    embed, blocks, head = stages[0], stages[1:-1], stages[-1]
    assert embed["bwd_flops"] == 0 and embed["act_bytes"] == 0 and embed["lora_params"] == 0
    assert head["lora_params"] == 0 and head["bwd_flops"] > 2 * n * arch.hidden * arch.vocab
    for b in blocks[1:]:  # every block but the first back-propagates to its input
        assert b == {**blocks[1], "name": b["name"]}
        assert b["fwd_flops"] < b["bwd_flops"] < 2 * b["fwd_flops"]
    assert blocks[0]["bwd_flops"] < blocks[1]["bwd_flops"]  # nothing to reach below block 1
    # tied token embedding held by both end stages; the parameter count holds it once
    total = sum(s["param_bytes"] for s in stages) // 2
    tied = arch.vocab * arch.hidden if arch.tied_embeddings else 0
    assert total - tied == P.count_params(arch)


@pytest.mark.parametrize("name", ARCHS)
def test_block_fwd_flops_near_2_params_seq(name: str) -> None:
    arch = P.ARCHITECTURES[name]
    for n in (128, 512):
        block = P.count_profile(name, n)["stages"][2]
        params = block["param_bytes"] // 2
        rule = 2 * params * n + 4 * n * n * arch.hidden
        assert abs(block["fwd_flops"] / rule - 1) < 0.03


@pytest.mark.parametrize("name", ARCHS)
def test_lora_params(name: str) -> None:
    h = P.ARCHITECTURES[name].hidden
    for r in (1, 8, 16):
        stages = P.count_profile(name, 64, lora_rank=r)["stages"]
        assert [s["lora_params"] for s in stages[1:-1]] == [r * (h + h) * 2] * (len(stages) - 2)
    none = P.count_profile(name, 64, lora_rank=0)["stages"]
    assert all(s["lora_params"] == 0 and s["bwd_flops"] == 0 and s["act_bytes"] == 0
               for s in none)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown architecture 'gpt5'"):
        P.count_profile("gpt5", 128)
    with pytest.raises(ValueError, match="seq_len"):
        P.count_profile("gpt2-small", 2048)
    with pytest.raises(ValueError, match="gate"):
        P.count_profile("gpt2-small", 128, lora_targets=("q", "gate"))


def test_models_dir_and_load_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(P.MODELS_ENV, raising=False)
    assert P.models_dir() == REPO_MODELS and P.models_dirs() == [REPO_MODELS]
    assert set(ARCHS) <= set(P.list_profiles())
    assert P.load_profile("gpt2-small")["name"] == "gpt2-small"

    monkeypatch.setenv(P.MODELS_ENV, str(tmp_path))
    packaged = P.list_profiles()
    assert P.models_dirs() == [tmp_path, REPO_MODELS]
    P.write_profiles(tmp_path, 64, readme=False)
    assert P.list_profiles() == packaged  # the same names: the user's shadow the packaged ones
    assert P.load_profile("opt-1.3b.json") == P.count_profile("opt-1.3b", 64)
    with pytest.raises(FileNotFoundError) as err:
        P.load_profile("gpt2-xxl")
    msg = str(err.value)
    assert "gpt2-xxl" in msg and str(tmp_path) in msg and str(REPO_MODELS) in msg
    assert "gpt2-small" in msg and P.MODELS_ENV in msg
    with pytest.raises(ValueError, match="plain file name"):
        P.load_profile("../gpt2-small")
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match="broken"):
        P.load_profile("broken")
    (tmp_path / "list.json").write_text("[]", encoding="utf-8")
    with pytest.raises(ValueError, match="'stages'"):
        P.load_profile("list")


def test_sftopt_models_search_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several folders in order before the packaged one; a name found nowhere else resolves."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    mine = {**P.count_profile("gpt2-small", 32), "name": "my-model"}
    (second / "my-model.json").write_text(P.dumps_profile(mine), encoding="utf-8")
    (first / "my-model.json").write_text(
        P.dumps_profile({**mine, "seq_len": 16}), encoding="utf-8")
    table = P.load_codec("minilm-l6")
    (second / "codec-mine.json").write_text(json.dumps(table), encoding="utf-8")
    monkeypatch.setenv(P.MODELS_ENV, os.pathsep.join([str(first), "", str(second)]))
    assert P.models_dirs() == [first, second, REPO_MODELS]
    assert "my-model" in P.list_profiles() and "gpt2-small" in P.list_profiles()
    assert P.load_profile("my-model")["seq_len"] == 16  # the first folder wins
    assert P.load_profile("gpt2-small")["seq_len"] == 512  # packaged, not shadowed
    assert {"mine", "minilm-l6", "minilm-l6-topics"} <= set(P.list_codecs())
    assert P.load_codec("codec-mine") == table
    with pytest.raises(FileNotFoundError, match="no codec table 'nope'.*available: .*mine"):
        P.load_codec("nope")
    # an instance naming the user's profile loads through the same search
    from sftopt import load_instance

    inst = json.loads((REPO_MODELS.parents[1] / "data" / "instances" / "default.json").read_text())
    inst["model"] = "my-model"
    assert load_instance(inst).model.seq_len == 16
    monkeypatch.setenv(P.MODELS_ENV, str(tmp_path / "missing"))  # a missing folder is skipped
    assert P.load_profile("gpt2-small")["name"] == "gpt2-small"


def test_write_profiles_deterministic_and_keeps_readme_text(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    b.mkdir()
    (b / "README.md").write_text("# Mine\n\nhand-written\n", encoding="utf-8")
    P.main(["--out", str(a)])
    P.main(["--out", str(b)])
    for name in ARCHS:
        text = (a / f"{name}.json").read_text(encoding="utf-8")
        assert text == (b / f"{name}.json").read_text(encoding="utf-8") and text.endswith("}\n")
    readme = (b / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("# Mine\n\nhand-written\n") and P.README_BEGIN in readme
    P.write_profiles(b)  # rewriting replaces the generated list, nothing else
    assert (b / "README.md").read_text(encoding="utf-8") == readme


# --------------------------------------------------------------------------- against torch
# The torch extra is optional: these checks skip without it, and import it only when they run.
HAVE_TORCH = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))
needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="torch extra not installed")


def _hf_config(name: str):  # built in code: no hub access
    import transformers as T

    a = P.ARCHITECTURES[name]
    if a.family == "gpt2":
        return T.GPT2Config(n_embd=a.hidden, n_layer=a.layers, n_head=a.heads, vocab_size=a.vocab,
                            n_positions=a.max_positions)
    if a.family in ("roberta", "bert"):
        cls = T.RobertaConfig if a.family == "roberta" else T.BertConfig
        return cls(hidden_size=a.hidden, num_hidden_layers=a.layers, num_attention_heads=a.heads,
                   intermediate_size=a.intermediate, vocab_size=a.vocab,
                   max_position_embeddings=a.pos_rows, type_vocab_size=a.type_vocab)
    if a.family == "llama":
        return T.LlamaConfig(hidden_size=a.hidden, num_hidden_layers=a.layers,
                             num_attention_heads=a.heads, num_key_value_heads=a.heads,
                             intermediate_size=a.intermediate, vocab_size=a.vocab,
                             max_position_embeddings=a.max_positions)
    return T.OPTConfig(hidden_size=a.hidden, num_hidden_layers=a.layers,
                       num_attention_heads=a.heads, ffn_dim=a.intermediate, vocab_size=a.vocab,
                       max_position_embeddings=a.max_positions, word_embed_proj_dim=a.hidden)


def _numel(model) -> int:
    return sum(p.numel() for p in model.parameters())  # shared (tied) parameters once


@pytest.mark.torch
@needs_torch
@pytest.mark.parametrize("name", ARCHS)
def test_params_equal_transformers_on_meta(name: str) -> None:
    import torch
    import transformers

    a, cfg = P.ARCHITECTURES[name], _hf_config(name)
    auto = transformers.AutoModelForMaskedLM if a.head == "mlm" else (
        transformers.AutoModelForCausalLM)
    with torch.device("meta"):  # shapes only, no memory
        profiled = _numel(auto.from_config(cfg))
        base = _numel(transformers.AutoModel.from_config(cfg))
    assert P.count_params(a) == profiled
    # the published number is the checkpoint's: with head (decoders) or with pooler (encoders)
    assert a.published_params == (base if a.head == "mlm" else profiled)


def _lora(base, r: int):
    """base(x) + B(A(x)): a LoRA adapter around a frozen linear layer (B random, not zero)."""
    import torch

    class LoRA(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.base = base
            self.A = torch.nn.Linear(base.in_features, r, bias=False)
            self.B = torch.nn.Linear(r, base.out_features, bias=False)

        def forward(self, x):
            return self.base(x) + self.B(self.A(x))

    return LoRA()


def _measure(layer, x, call) -> tuple[int, int, int]:
    """FlopCounterMode forward and backward FLOPs, and bytes autograd saved (weights excluded)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    weights = {p.untyped_storage().data_ptr() for p in layer.parameters()}
    saved: dict[int, int] = {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in weights:
            saved[ptr] = max(saved.get(ptr, 0), t.untyped_storage().nbytes())
        return t

    fwd_counter, bwd_counter = FlopCounterMode(display=False), FlopCounterMode(display=False)
    with fwd_counter, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = call(layer, x)
    with bwd_counter:
        out.float().sum().backward()
    return fwd_counter.get_total_flops(), bwd_counter.get_total_flops(), sum(saved.values())


def _check_block(arch: P.ArchConfig, build, call, adapt, n: int = 64) -> None:
    import torch

    prof = P.count_profile(arch, n)
    for first, stage in ((True, prof["stages"][1]), (False, prof["stages"][2])):
        torch.manual_seed(0)
        layer = build().eval()  # eval: dropout off, as counted
        layer.requires_grad_(False)
        adapt(layer)
        layer.to(torch.bfloat16)
        x = torch.randn(1, n, arch.hidden, dtype=torch.bfloat16, requires_grad=not first)
        fwd, bwd, act = _measure(layer, x, call)
        # FlopCounterMode counts matmuls only; the counted elementwise terms are a few %
        assert abs(stage["fwd_flops"] / fwd - 1) < 0.05, (first, stage["fwd_flops"], fwd)
        assert abs(stage["bwd_flops"] / bwd - 1) < 0.05, (first, stage["bwd_flops"], bwd)
        if arch.family == "bert":  # fused GELU and LayerNorm: bytes match autograd closely
            assert abs(stage["act_bytes"] / act - 1) < 0.05, (first, stage["act_bytes"], act)


def _out(o):
    return o[0] if isinstance(o, tuple) else o


@pytest.mark.torch
@needs_torch
def test_bert_block_against_autograd() -> None:
    import transformers

    arch = dataclasses.replace(P.ARCHITECTURES["minilm-l6"], hidden=128, heads=4,
                               intermediate=512)
    cfg = transformers.BertConfig(hidden_size=128, num_attention_heads=4, intermediate_size=512,
                                  attn_implementation="eager")

    def adapt(layer):
        att = layer.attention.self
        att.query, att.value = _lora(att.query, 8), _lora(att.value, 8)

    from transformers.models.bert.modeling_bert import BertLayer

    _check_block(arch, lambda: BertLayer(cfg), lambda m, x: _out(m(x)), adapt)


@pytest.mark.torch
@needs_torch
def test_llama_block_flops_against_flop_counter() -> None:
    import torch
    import transformers

    arch = dataclasses.replace(P.ARCHITECTURES["llama-2-7b"], hidden=128, heads=4,
                               intermediate=344)
    cfg = transformers.LlamaConfig(hidden_size=128, num_attention_heads=4, num_key_value_heads=4,
                                   intermediate_size=344, vocab_size=100,
                                   attn_implementation="eager")
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding

    rope = LlamaRotaryEmbedding(cfg)

    def call(layer, x):
        n = x.shape[1]
        pos = torch.arange(n)[None]
        mask = torch.full((n, n), float("-inf"), dtype=x.dtype).triu(1)[None, None]
        return _out(layer(x, attention_mask=mask, position_embeddings=rope(x, pos),
                          position_ids=pos))

    def adapt(layer):
        att = layer.self_attn
        att.q_proj, att.v_proj = _lora(att.q_proj, 8), _lora(att.v_proj, 8)

    _check_block(arch, lambda: LlamaDecoderLayer(cfg, 0), call, adapt)


@pytest.mark.torch
@needs_torch
def test_gpt2_block_forward_against_flop_counter() -> None:
    import torch
    import transformers
    from torch.utils.flop_counter import FlopCounterMode
    from transformers.models.gpt2.modeling_gpt2 import GPT2Block

    n = 64
    arch = dataclasses.replace(P.ARCHITECTURES["gpt2-small"], hidden=128, heads=4,
                               intermediate=512)
    cfg = transformers.GPT2Config(n_embd=128, n_head=4, attn_implementation="eager")
    block = GPT2Block(cfg).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        block(torch.randn(1, n, 128))
    counted = P.count_profile(arch, n, lora_rank=0)["stages"][2]["fwd_flops"]
    assert abs(counted / counter.get_total_flops() - 1) < 0.05
