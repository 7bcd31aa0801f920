"""Conversions between torch tensors and numpy arrays; the one codec module importing torch."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from .dtypes import BFLOAT16, FLOAT16, FLOAT32, bf16_bits_to_f32


def is_torch_tensor(x: Any) -> bool:
    """True if x is a torch.Tensor; never imports torch (an unimported torch has no tensors)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def to_numpy(x: Any) -> tuple[np.ndarray, int]:
    """CPU numpy view/copy of a tensor (bfloat16 widened exactly to float32) and its dtype code."""
    import torch

    t = x.detach().cpu().contiguous()
    if t.dtype == torch.float32:
        return t.numpy(), FLOAT32
    if t.dtype == torch.float16:
        return t.numpy(), FLOAT16
    if t.dtype == torch.bfloat16:
        bits = t.view(torch.int16).numpy().view(np.uint16)
        return bf16_bits_to_f32(bits), BFLOAT16
    raise ValueError(f"unsupported dtype {t.dtype}; expected torch.float32, float16 or bfloat16")


def from_numpy(arr: np.ndarray, dtype_code: int) -> Any:
    """CPU tensor from a decoded array: float32/float16 values, or raw uint16 bfloat16 words."""
    try:
        import torch
    except ImportError as exc:
        raise ImportError("this stream holds a torch tensor, but torch is not installed") from exc
    if dtype_code == BFLOAT16:
        return torch.from_numpy(arr.view(np.int16)).view(torch.bfloat16)
    expected = {FLOAT32: np.float32, FLOAT16: np.float16}[dtype_code]
    # ascontiguousarray makes a 0-d array 1-d: reshape back so 0-d tensors stay 0-d.
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=expected).reshape(arr.shape))
