"""The model an instance's profile describes, built for the executor's task (torch, lazily)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.errors import InstanceError, Problem
from ..profiles import ARCHITECTURES, ArchConfig
from ..torchrt.models import PRETRAINED, StagedModel, build_model, reduced_arch


def architecture(instance: Any) -> Any:
    """The ArchConfig of the instance's model profile: the architecture its provenance names
    (`model`, or `architecture.name`), narrowed to the width, depth and vocabulary it states."""
    prov = instance.model.provenance or {}
    arch = prov.get("architecture") or {}
    name = prov.get("model") or arch.get("name")
    base = next((k for k in sorted(ARCHITECTURES, key=len, reverse=True)
                 if isinstance(name, str) and name.startswith(k)), None)
    if base is None:
        raise InstanceError([Problem("$.model.provenance", "the architecture the profile was "
                                     f"made of (one of {', '.join(sorted(ARCHITECTURES))}), so "
                                     "the executor can build the model", repr(name))])
    return reduced_arch(base, hidden=arch.get("hidden"), layers=arch.get("layers"),
                        vocab=arch.get("vocab"))


@dataclass(frozen=True)
class ModelSpec:
    """How to build a party's copy of the model: called with no arguments, it builds it. Every
    party builds its own with the same seed, so all copies start equal; picklable, so a party
    in another process builds the same."""

    arch: ArchConfig
    seq_len: int
    classes: int
    seed: int = 0
    lora_rank: int = 8
    lora_targets: tuple[str, ...] = ("q", "v")

    def __call__(self) -> StagedModel:
        return build_model(self.arch, seq_len=self.seq_len, lora_rank=self.lora_rank,
                           lora_targets=self.lora_targets, seed=self.seed,
                           pretrained=self.arch == ARCHITECTURES.get(PRETRAINED),
                           task="classify", classes=self.classes)


def has_tokenizer(build: Callable[[], StagedModel]) -> bool:
    """Whether the model ``build`` makes has a tokenizer (only the pretrained MiniLM here),
    known without building it when ``build`` is a ModelSpec."""
    if isinstance(build, ModelSpec):
        return build.arch == ARCHITECTURES.get(PRETRAINED)
    return build().tokenizer is not None


def builder(instance: Any, classes: int, *, seed: int) -> Callable[[], StagedModel]:
    """The instance's model as a classifier into ``classes`` classes: real all-MiniLM-L6-v2
    weights for that architecture at full size, seeded random ones otherwise."""
    prov = instance.model.provenance or {}
    lora = prov.get("lora") or {}
    return ModelSpec(architecture(instance), instance.model.seq_len, classes, seed,
                     int(lora.get("rank", 8)), tuple(lora.get("targets", ("q", "v"))))


def check(model: StagedModel, instance: Any) -> None:
    """The model the executor runs is the one the instance's profile counts: as many stages,
    and the same trainable parameters per stage (adapters; the classifier in the head)."""
    stages = instance.model.stages
    problems = []
    if len(stages) != len(model.stages):
        problems.append(Problem("$.model.stages", f"{len(model.stages)} stages (the model the "
                                "executor builds)", str(len(stages))))
    else:
        for i, st in enumerate(stages):
            n = sum(p.numel() for p in model.trainable(i))
            if int(st.lora_params) != n:
                problems.append(Problem(f"$.model.stages[{i}].lora_params",
                                        f"{n} (the trainable parameters of stage {i} of the "
                                        f"model built: its adapters or classifier)",
                                        f"{st.lora_params:g}"))
    if problems:
        raise InstanceError(problems)
