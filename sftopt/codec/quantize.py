"""Unbiased stochastic quantization of kept values to q bits (sign included) on a per-row grid.

Grid: 2K signed levels, K = 2**(q-1). Magnitudes are m0 + j*d (j = 0..K-1) with
m0 = max(t, hi/(2K-1)) and d = (hi - m0)/(K-1), where t is the tensor's top-k threshold (every
kept magnitude is >= t) and hi the largest kept magnitude of the row (or tensor). When t is
large the grid spans only [t, hi], which is all the kept values occupy; when t is small it
becomes the uniform symmetric grid over [-hi, hi]. Values are rounded to one of their two
neighbouring levels with probabilities that make the expectation exact.
"""

from __future__ import annotations

import numpy as np

MIN_BITS = 1
MAX_BITS = 12  # 4096-symbol alphabet; larger alphabets cost more histogram than they save
RAW_BITS = 16  # not a quantizer: kept values are stored as raw 16-bit floats
# Largest magnitude a quantized level takes (2^126, a quarter of the float32 range): the grid
# arithmetic (d = 2*m0 at q = 1, m0 + j*d rounded in float32) then cannot overflow.
MAX_SCALE = float(2.0**126)


def grid(t: float, hi: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Smallest level m0 and level spacing d per row (float32). Encoder and decoder share it."""
    half = 1 << (bits - 1)
    hi = np.asarray(hi, dtype=np.float32)
    m0 = np.maximum(np.float32(t), hi / np.float32(2 * half - 1))
    d = np.float32(2) * m0 if half == 1 else (hi - m0) / np.float32(half - 1)
    # d == 0 only when every kept magnitude of the row equals m0; any positive spacing works.
    d = np.where(d > 0, d, np.float32(1)).astype(np.float32)
    return m0.astype(np.float32), d


def quantize(
    v: np.ndarray, m0: np.ndarray, d: np.ndarray, bits: int, rng: np.random.Generator
) -> np.ndarray:
    """Stochastically round values v (float32; m0, d per value) to symbols 0..2K-1 (int32)."""
    half = 1 << (bits - 1)
    u = (np.abs(v) - m0) / d
    np.clip(u, -0.5, half - 1, out=u)  # guards float rounding only; the grid covers [-hi, hi]
    # Signed grid coordinate: K + u for v >= 0, K - 1 - u for v < 0 (linear in v where uniform).
    w = np.where(v >= 0, np.float32(half) + u, np.float32(half - 1) - u)
    lo = np.floor(w)
    up = rng.random(v.size, dtype=np.float32) < (w - lo)
    sym = lo.astype(np.int32)
    sym += up
    np.clip(sym, 0, 2 * half - 1, out=sym)
    return sym


def dequantize(sym: np.ndarray, m0: np.ndarray, d: np.ndarray, bits: int) -> np.ndarray:
    """Values (float32) of symbols on the grid given per value m0, d."""
    half = 1 << (bits - 1)
    s = np.arange(2 * half)
    # Per symbol: magnitude index (K-1-s below K, s-K from K on) and sign.
    mag_idx = np.where(s < half, half - 1 - s, s - half).astype(np.float32)
    sign = np.where(s < half, -1, 1).astype(np.float32)
    out = mag_idx[sym]
    out *= d
    out += m0
    out *= sign[sym]
    return out
