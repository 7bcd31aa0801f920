"""Element types the codec accepts and exact conversions between them (bf16 without torch)."""

from __future__ import annotations

import numpy as np

FLOAT32 = 0
FLOAT16 = 1
BFLOAT16 = 2

DTYPE_NAMES = {FLOAT32: "float32", FLOAT16: "float16", BFLOAT16: "bfloat16"}

FP16_MAX = float(np.finfo(np.float16).max)


def bf16_bits_to_f32(bits: np.ndarray) -> np.ndarray:
    """Widen raw bfloat16 words (uint16) to float32; exact."""
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


def f32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """Round float32 to bfloat16 (nearest, ties to even) and return the raw uint16 words.

    Inputs are finite here (the encoder rejects NaN/inf), so no NaN special case is needed.
    """
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounding = np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))
    return ((u + rounding) >> np.uint32(16)).astype(np.uint16)


def round_to_dtype(x: np.ndarray, dtype_code: int) -> np.ndarray:
    """Round float32 values to the output dtype and widen back to float32 (what decode returns)."""
    if dtype_code == FLOAT32:
        return x
    if dtype_code == FLOAT16:
        return x.astype(np.float16).astype(np.float32)
    return bf16_bits_to_f32(f32_to_bf16_bits(x))


def to_raw16(x: np.ndarray, dtype_code: int) -> np.ndarray:
    """16-bit words stored by the raw-16 levels: fp16 for fp32/fp16 input, bf16 words for bf16."""
    if dtype_code == BFLOAT16:
        return f32_to_bf16_bits(x)
    if dtype_code == FLOAT32 and x.size and float(np.max(np.abs(x))) > FP16_MAX:
        raise ValueError(
            f"value {float(np.max(np.abs(x))):.6g} exceeds the float16 range (max {FP16_MAX}); "
            "use a quantized level (bits <= 12) for this tensor"
        )
    return x.astype(np.float16).view(np.uint16)


def from_raw16(words: np.ndarray, dtype_code: int) -> np.ndarray:
    """Inverse of to_raw16, as float32."""
    if dtype_code == BFLOAT16:
        return bf16_bits_to_f32(words)
    return words.view(np.float16).astype(np.float32)


def raw16_finite(words: np.ndarray, dtype_code: int) -> bool:
    """True if no raw 16-bit word (fp16, or bf16 words for bf16) is NaN or infinity: the
    encoder never writes one, so the decoder takes one for corruption."""
    exponent = np.uint16(0x7F80 if dtype_code == BFLOAT16 else 0x7C00)
    return not bool(np.any((words & exponent) == exponent))


def numpy_dtype_code(dtype: np.dtype) -> int:
    """Map a numpy dtype to the stream's dtype code, or raise ValueError."""
    if dtype == np.float32:
        return FLOAT32
    if dtype == np.float16:
        return FLOAT16
    raise ValueError(
        f"unsupported dtype {dtype}; expected float32 or float16 "
        "(bfloat16 is accepted as a torch tensor)"
    )
