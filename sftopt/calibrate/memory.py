"""Per-stage memory: frozen weights, adapters with optimizer state, activations autograd saves."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..torchrt.models import StagedModel
from .timing import run_step

STATE_FACTOR = 4  # copies per trainable parameter: weight, gradient, Adam's two moments
ADAPTER_DTYPE_BYTES = 4  # adapters train in fp32


def _storage(t: Any) -> tuple[int, int]:
    s = t.untyped_storage()
    return s.data_ptr(), s.nbytes()


def _constant_storages(sm: StagedModel) -> set[int]:
    """Storages that are not activations: weights, buffers, precomputed rotary tables, masks."""
    import torch

    keys = {_storage(p)[0] for p in sm.model.parameters()}
    keys |= {_storage(b)[0] for b in sm.model.buffers()}

    def walk(obj: Any) -> None:
        if isinstance(obj, torch.Tensor):
            keys.add(_storage(obj)[0])
        elif isinstance(obj, tuple | list):
            for o in obj:
                walk(o)

    for v in sm.extra.values():
        walk(v)
    return keys


def saved_bytes(sm: StagedModel, ids: Any, labels: Any) -> list[int]:
    """Bytes of the tensors autograd saves for the backward pass in each stage's forward.

    A saved_tensors_hooks pack hook sees every tensor autograd keeps; views of one buffer (q, k
    and v split from one fused projection, a transposed copy) count once, by their storage;
    weights, buffers and constants are not activations and are left out. Stages count
    separately: a tensor two stages keep counts in both (as each side of a cut holds it).
    """
    import torch

    const = _constant_storages(sm)
    per_stage: list[dict[int, int]] = [{} for _ in sm.stages]
    current = [0]

    def pack(t: Any) -> Any:
        key, nbytes = _storage(t)
        if key not in const and nbytes:
            per_stage[current[0]][key] = nbytes
        return t

    @contextmanager
    def hooks(i: int, phase: str) -> Iterator[None]:
        if phase != "fwd":
            yield
            return
        current[0] = i
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            yield

    with torch.enable_grad():
        run_step(sm, ids, labels, ctx=hooks)
    return [sum(d.values()) for d in per_stage]


def stage_memory(sm: StagedModel, ids: Any, labels: Any,
                 state_factor: float = STATE_FACTOR) -> list[dict[str, float]]:
    """Per stage: param_bytes (frozen, as held), lora_params, adapter_state_bytes (weights,
    gradients and optimizer state), act_bytes (per sample) and peak_bytes at this batch."""
    batch = int(ids.shape[0])
    saved = saved_bytes(sm, ids, labels)
    rows = []
    for i in range(len(sm.stages)):
        params = sm.parameters(i)
        frozen = sum(p.numel() * p.element_size() for p in params if not p.requires_grad)
        lora = sum(p.numel() for p in params if p.requires_grad)
        state = state_factor * ADAPTER_DTYPE_BYTES * lora
        rows.append({"param_bytes": float(frozen), "lora_params": float(lora),
                     "adapter_state_bytes": float(state), "act_bytes": saved[i] / batch,
                     "saved_bytes_batch": float(saved[i]),
                     "peak_bytes": float(frozen + state + saved[i])})
    return rows
