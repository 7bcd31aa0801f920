"""Reference encodings the codec is compared with: fp16, int8 per-row absmax, zstd, top-k+int8."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import zstandard


@dataclass(frozen=True)
class Baseline:
    """A named encode/decode pair on 2-D float32 arrays."""

    name: str
    encode: Callable[[np.ndarray], bytes]
    decode: Callable[[bytes, tuple[int, int]], np.ndarray]


def _fp16_enc(x: np.ndarray) -> bytes:
    return x.astype(np.float16).tobytes()


def _fp16_dec(b: bytes, shape: tuple[int, int]) -> np.ndarray:
    return np.frombuffer(b, dtype=np.float16).astype(np.float32).reshape(shape)


def _int8_row_enc(x: np.ndarray) -> bytes:
    # Per-row absmax scale (fp32), round to nearest: the usual int8 activation quantizer.
    scale = np.abs(x).max(axis=1, keepdims=True) / 127.0
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    q = np.clip(np.rint(x / scale), -127, 127).astype(np.int8)
    return scale.tobytes() + q.tobytes()


def _int8_row_dec(b: bytes, shape: tuple[int, int]) -> np.ndarray:
    rows = shape[0]
    scale = np.frombuffer(b[: 4 * rows], dtype=np.float32).reshape(rows, 1)
    q = np.frombuffer(b[4 * rows :], dtype=np.int8).reshape(shape)
    return q.astype(np.float32) * scale


def _zstd_enc(x: np.ndarray) -> bytes:
    return zstandard.ZstdCompressor(level=3).compress(x.tobytes())


def _zstd_dec(b: bytes, shape: tuple[int, int]) -> np.ndarray:
    raw = zstandard.ZstdDecompressor().decompress(b)
    return np.frombuffer(raw, dtype=np.float32).reshape(shape)


def _topk_int8(keep: float) -> Baseline:
    """Top-k values as int8 (per-tensor absmax, round to nearest) + int32 flat indices."""

    def enc(x: np.ndarray) -> bytes:
        flat = x.reshape(-1)
        k = max(1, int(round(keep * flat.size)))
        idx = np.argpartition(np.abs(flat), flat.size - k)[flat.size - k :].astype(np.int32)
        vals = flat[idx]
        scale = np.float32(np.abs(vals).max() / 127.0 or 1.0)
        q = np.clip(np.rint(vals / scale), -127, 127).astype(np.int8)
        return np.float32(scale).tobytes() + idx.tobytes() + q.tobytes()

    def dec(b: bytes, shape: tuple[int, int]) -> np.ndarray:
        k = (len(b) - 4) // 5
        scale = np.frombuffer(b[:4], dtype=np.float32)[0]
        idx = np.frombuffer(b[4 : 4 + 4 * k], dtype=np.int32)
        q = np.frombuffer(b[4 + 4 * k :], dtype=np.int8)
        out = np.zeros(shape[0] * shape[1], dtype=np.float32)
        out[idx] = q.astype(np.float32) * scale
        return out.reshape(shape)

    return Baseline(f"top{keep:g}+int8+int32idx", enc, dec)


BASELINES = [
    Baseline("fp16", _fp16_enc, _fp16_dec),
    Baseline("int8 row absmax", _int8_row_enc, _int8_row_dec),
    Baseline("zstd-3 fp32", _zstd_enc, _zstd_dec),
    _topk_int8(0.1),
    _topk_int8(0.01),
]
