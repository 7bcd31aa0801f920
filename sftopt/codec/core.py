"""encode / decode / measure: the codec pipeline from tensor to bytes and back."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from . import dtypes, entropy, quantize, sparsify, stream, torch_adapter
from .stream import Header

Scale = Literal["row", "tensor"]
Seed = int | np.random.Generator | None

_SCALE_CODES = {"tensor": stream.SCALE_TENSOR, "row": stream.SCALE_ROW}
_KIND_NAMES = {stream.KIND_NUMPY: "numpy", stream.KIND_TORCH: "torch"}
_POSITION_CODES = (
    entropy.POS_ALL,
    entropy.POS_MASK_BERNOULLI,
    entropy.POS_MASK_HISTOGRAM,
    entropy.POS_COLUMNS,
)


@dataclass(frozen=True)
class EncodeInfo:
    """What an encoding cost and how much it distorted; all numbers are measured on this input.

    bits_per_elem is 8 * len(stream) / n_elements (everything: header, scales, tables,
    checksum); NaN for an empty tensor. entropy_bound is the empirical entropy of the quantized
    symbols plus n*H2(k/n) for the position mask, per element (raw 16-bit values count 16 bits
    each). analytic_beta is the spec's kappa*q + H2(kappa).
    """

    shape: tuple[int, ...]
    dtype: str
    kind: str
    keep_ratio: float
    bits: int
    scale: str
    n_elements: int
    n_kept: int
    n_bytes: int
    bits_per_elem: float
    entropy_bound: float
    analytic_beta: float
    distortion: float
    section_bytes: dict[str, int] = field(default_factory=dict)


def analytic_beta(keep_ratio: float, bits: int) -> float:
    """The spec's analytic bits per element kappa*q + H2(kappa) (scales and headers left out)."""
    if keep_ratio == 1.0 and bits == quantize.RAW_BITS:
        return 16.0
    return keep_ratio * bits + entropy.h2(keep_ratio)


def distortion(x: Any, x_hat: Any) -> float:
    """Relative MSE ||x - x_hat||^2 / ||x||^2 in float64 (0 if both are zero, inf if only x is)."""
    a = _as_float64(x)
    b = _as_float64(x_hat)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    num = float(np.sum((a - b) ** 2))
    den = float(np.sum(a**2))
    if den == 0.0:
        return 0.0 if num == 0.0 else math.inf
    return num / den


def _as_float64(x: Any) -> np.ndarray:
    if torch_adapter.is_torch_tensor(x):
        x = torch_adapter.to_numpy(x)[0] if x.is_floating_point() else x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _check_level(keep_ratio: float, bits: int, scale: str) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer):
        raise ValueError(f"bits must be an int, got {bits!r}")
    if not (quantize.MIN_BITS <= bits <= quantize.MAX_BITS or bits == quantize.RAW_BITS):
        raise ValueError(
            f"bits must be in {quantize.MIN_BITS}..{quantize.MAX_BITS} or {quantize.RAW_BITS}, "
            f"got {bits}"
        )
    if not (isinstance(keep_ratio, float | int | np.floating) and 0.0 < keep_ratio <= 1.0):
        raise ValueError(f"keep_ratio must be in (0, 1], got {keep_ratio!r}")
    if scale not in _SCALE_CODES:
        raise ValueError(f"scale must be 'row' or 'tensor', got {scale!r}")


def _rows(shape: tuple[int, ...], n: int) -> tuple[int, int]:
    """(number of rows, row length): rows run along the last axis; rank <= 1 is one row."""
    row_len = shape[-1] if len(shape) >= 2 else n
    return (n // row_len if row_len else 0), row_len


def _row_counts(positions: np.ndarray | None, n_rows: int, row_len: int) -> np.ndarray:
    if positions is None:
        return np.full(n_rows, row_len, dtype=np.int64)
    bounds = np.searchsorted(positions, np.arange(n_rows + 1, dtype=np.int64) * row_len)
    return np.diff(bounds)


def _per_value_grid(
    t: float, hi: np.ndarray, counts: np.ndarray | None, bits: int
) -> tuple[np.ndarray, np.ndarray]:
    """Grid (m0, d) for each kept value: per row repeated by the row's kept count, or scalar."""
    m0, d = quantize.grid(t, hi, bits)
    if counts is None:
        return m0, d
    return np.repeat(m0, counts), np.repeat(d, counts)


def encode(
    x: Any,
    keep_ratio: float,
    bits: int,
    *,
    scale: Scale = "row",
    seed: Seed = None,
    return_info: bool = False,
) -> bytes | tuple[bytes, EncodeInfo]:
    """Compress a float tensor (numpy float32/float16, torch float32/float16/bfloat16).

    Keeps the round(keep_ratio*n) largest magnitudes (ties: lower flat index first), rounds
    them stochastically and unbiasedly to `bits` bits (sign included) on a grid scaled per
    row (last axis) or per tensor, and entropy-codes symbols and positions. bits=16 stores the
    kept values as raw 16-bit floats instead (fp16; bf16 input keeps its bf16 words), so
    (1.0, 16) is the uncompressed fp16 pass-through. `seed` drives the stochastic rounding;
    None draws fresh OS entropy (non-reproducible). With return_info=True also returns an
    EncodeInfo with measured size and distortion.
    """
    _check_level(keep_ratio, bits, scale)
    keep_ratio = float(keep_ratio)
    bits = int(bits)
    if torch_adapter.is_torch_tensor(x):
        arr, dcode = torch_adapter.to_numpy(x)
        kind = stream.KIND_TORCH
    elif isinstance(x, np.ndarray | np.generic):  # numpy scalars decode as 0-d arrays
        arr = np.asarray(x)
        dcode = dtypes.numpy_dtype_code(arr.dtype)
        kind = stream.KIND_NUMPY
    else:
        raise TypeError(f"expected a numpy array or torch tensor, got {type(x).__name__}")
    shape = tuple(int(s) for s in arr.shape)
    if len(shape) > stream.MAX_NDIM:
        raise ValueError(f"tensor rank {len(shape)} exceeds {stream.MAX_NDIM}")
    flat = np.ascontiguousarray(arr).reshape(-1)
    xf = flat.astype(np.float32, copy=False)
    n = xf.size
    k = sparsify.n_kept(n, keep_ratio)
    sections = dict.fromkeys(stream.SECTIONS, b"")
    pcode = entropy.POS_ALL

    if n == 0:
        positions = None
        vcode = stream.VAL_NONE
        kept = kept_hat = xf
        symbol_bits = 0.0
    elif bits == quantize.RAW_BITS:
        if not np.isfinite(xf).all():
            raise ValueError("input contains NaN or infinity")
        positions = None
        if k < n:
            positions, _ = sparsify.topk(np.abs(xf), k)
        kept = xf if positions is None else xf[positions]
        words = (
            flat.view(np.uint16)
            if dcode == dtypes.FLOAT16 and positions is None
            else (dtypes.to_raw16(kept, dcode))
        )
        sections["value_data"] = np.ascontiguousarray(words, dtype="<u2").tobytes()
        vcode = stream.VAL_RAW16
        kept_hat = dtypes.from_raw16(words, dcode)
        symbol_bits = 16.0 * k
    else:
        a = np.abs(xf)
        n_rows, row_len = _rows(shape, n)
        if scale == "row":
            hi_rows = a.reshape(n_rows, row_len).max(axis=1)
            finite = bool(np.isfinite(hi_rows).all())
        else:
            hi_rows = np.float32(a.max())
            finite = bool(np.isfinite(hi_rows))
        if not finite:
            raise ValueError("input contains NaN or infinity")
        if float(np.max(hi_rows)) > quantize.MAX_SCALE:
            raise ValueError(
                f"value {float(np.max(hi_rows)):.6g} exceeds the quantized levels' range "
                f"(max 2^126 = {quantize.MAX_SCALE:.6g})"
            )
        positions, t = sparsify.topk(a, k)
        t = float(np.float32(t))
        if scale == "row":
            counts = _row_counts(positions, n_rows, row_len)
            nonempty = counts > 0
            # A row's max magnitude is kept whenever the row keeps anything, so it is the
            # row's largest kept magnitude: the top of that row's grid.
            hi = hi_rows[nonempty].astype(np.float32)
            m0, d = _per_value_grid(t, hi, counts[nonempty], bits)
        else:
            hi = np.atleast_1d(np.float32(hi_rows))
            m0, d = _per_value_grid(t, hi[0], None, bits)
        sections["scales"] = struct.pack("<f", t) + hi.astype("<f4").tobytes()
        kept = xf if positions is None else xf[positions]
        rng = np.random.default_rng(seed)
        sym = quantize.quantize(kept, m0, d, bits, rng)
        sym_counts = np.bincount(sym, minlength=1 << bits)
        sections["value_model"] = entropy.write_varints(sym_counts)
        sections["value_data"] = entropy.ans_encode(sym, sym_counts)
        vcode = stream.VAL_ANS
        symbol_bits = entropy.entropy_bits(sym_counts)

    if positions is not None:
        pcode, sections["position_model"], sections["position_data"] = entropy.encode_mask(
            positions, n, _rows(shape, n)[1]
        )
    header = Header(kind, dcode, bits, _SCALE_CODES[scale], vcode, pcode, keep_ratio, k, shape)
    data = stream.pack(header, sections)
    if not return_info:
        return data

    if n and bits != quantize.RAW_BITS:  # the decoder's reconstruction, computed the same way
        kept_hat = dtypes.round_to_dtype(quantize.dequantize(sym, m0, d, bits), dcode)
    total = float(np.sum(np.square(xf, dtype=np.float64)))
    kept64 = kept.astype(np.float64)
    err = float(np.sum((kept64 - kept_hat) ** 2))
    if positions is not None:
        err += max(total - float(np.sum(kept64**2)), 0.0)
    delta = err / total if total > 0 else (0.0 if err == 0 else math.inf)
    section_bytes = {"header": stream.header_size(len(shape))}
    section_bytes.update({s: len(sections[s]) for s in stream.SECTIONS})
    section_bytes["checksum"] = 4
    info = EncodeInfo(
        shape=shape,
        dtype=dtypes.DTYPE_NAMES[dcode],
        kind=_KIND_NAMES[kind],
        keep_ratio=keep_ratio,
        bits=bits,
        scale=scale,
        n_elements=n,
        n_kept=k,
        n_bytes=len(data),
        bits_per_elem=8 * len(data) / n if n else math.nan,
        entropy_bound=(symbol_bits + n * entropy.h2(k / n)) / n if n else math.nan,
        analytic_beta=analytic_beta(keep_ratio, bits),
        distortion=delta,
        section_bytes=section_bytes,
    )
    return data, info


def measure(
    x: Any, keep_ratio: float, bits: int, *, scale: Scale = "row", seed: Seed = None
) -> tuple[float, float]:
    """(bits per element, distortion) of encoding x at this level, both measured."""
    _, info = encode(x, keep_ratio, bits, scale=scale, seed=seed, return_info=True)
    return info.bits_per_elem, info.distortion


# Default decode caps. 2^28 elements is a llama-2-7b hidden-state tensor at batch 16 x
# sequence 4096 (hidden 4096); 1 GiB is those elements as fp32. A stream of a few hundred
# bytes can legally describe a tensor of any size (ANS codes a near-certain symbol in almost
# no bits), so only a cap on the declared size bounds what decoding allocates.
DEFAULT_MAX_ELEMENTS = 1 << 28
DEFAULT_MAX_BYTES = 1 << 30

_ITEMSIZE = {dtypes.FLOAT32: 4, dtypes.FLOAT16: 2, dtypes.BFLOAT16: 2}


def _check_cap(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)


def _check_shape(shape: tuple[int, ...], itemsize: int, max_elements: int, max_bytes: int) -> int:
    """Element count of a declared shape, checked against the caps before anything is
    allocated. The product of the non-zero dimensions is capped too, so an empty tensor
    cannot declare dimensions numpy cannot index; the product is a Python int (no wrap) and
    stops growing once it passes the cap."""
    size = 1
    for i, dim in enumerate(shape):
        if dim:
            size *= dim
        if size > max_elements:
            what = "product of the non-zero dimensions" if 0 in shape else "element count"
            raise ValueError(
                f"stream over the decode cap: shape[{i}] = {dim} brings the {what} to {size}, "
                f"more than max_elements={max_elements} (pass a larger max_elements to "
                "decode it)"
            )
    n = 0 if 0 in shape else size
    if n * itemsize > max_bytes:
        raise ValueError(
            f"stream over the decode cap: shape {shape} of {n} elements is {n * itemsize} "
            f"bytes, more than max_bytes={max_bytes} (pass a larger max_bytes to decode it)"
        )
    return n


def _check_header(h: Header, max_elements: int, max_bytes: int) -> int:
    """Validate every header field, alone and against the others and the caps; returns the
    element count. Runs before any allocation that depends on the header."""
    if h.kind not in _KIND_NAMES:
        raise ValueError(f"corrupt header: unknown kind {h.kind}")
    if h.dtype not in dtypes.DTYPE_NAMES:
        raise ValueError(f"corrupt header: unknown dtype code {h.dtype}")
    if h.kind == stream.KIND_NUMPY and h.dtype == dtypes.BFLOAT16:
        raise ValueError("corrupt header: numpy streams cannot hold bfloat16")
    if h.scale not in _SCALE_CODES.values():
        raise ValueError(f"corrupt header: unknown scale mode {h.scale}")
    try:
        _check_level(h.keep_ratio, h.bits, "row")
    except ValueError as exc:
        raise ValueError(f"corrupt header: {exc}") from None
    n = _check_shape(h.shape, _ITEMSIZE[h.dtype], max_elements, max_bytes)
    if h.n_kept != sparsify.n_kept(n, h.keep_ratio):
        raise ValueError(
            f"corrupt header: {h.n_kept} kept elements, but keep ratio {h.keep_ratio} of {n} "
            f"elements keeps {sparsify.n_kept(n, h.keep_ratio)}"
        )
    want_v = (
        stream.VAL_NONE
        if h.n_kept == 0
        else (stream.VAL_RAW16 if h.bits == quantize.RAW_BITS else stream.VAL_ANS)
    )
    if h.value_coding != want_v:
        raise ValueError(f"corrupt header: value coding {h.value_coding}, expected {want_v}")
    if h.position_coding not in _POSITION_CODES:
        raise ValueError(f"corrupt header: unknown position coding {h.position_coding}")
    all_kept = h.n_kept == n
    if all_kept != (h.position_coding == entropy.POS_ALL):
        raise ValueError(f"corrupt header: position coding {h.position_coding} with k={h.n_kept}")
    return n


def decode(
    data: bytes,
    *,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Any:
    """Rebuild the tensor from encode's bytes: same kind (numpy/torch), dtype and shape.

    Torch tensors come back on the CPU. Raises ValueError naming the problem for streams that
    are truncated, corrupt (checksum), of another format version or internally inconsistent,
    and for streams declaring more than `max_elements` elements or an output of more than
    `max_bytes` bytes (element count times 4 for float32, 2 for float16/bfloat16). The caps
    are checked before anything is allocated; within them a decode's working memory was
    measured at up to 17 bytes per element (docs/codec.md).
    """
    max_elements = _check_cap("max_elements", max_elements)
    max_bytes = _check_cap("max_bytes", max_bytes)
    h, sec = stream.unpack(data)
    n = _check_header(h, max_elements, max_bytes)
    k = h.n_kept
    positions = None
    if h.position_coding != entropy.POS_ALL:
        positions = entropy.decode_mask(
            h.position_coding,
            sec["position_model"],
            sec["position_data"],
            n,
            k,
            _rows(h.shape, n)[1],
        )
    elif sec["position_model"] or sec["position_data"]:
        raise ValueError("corrupt: position sections present although every element is kept")

    raw_words = None
    if h.bits == quantize.RAW_BITS:
        if len(sec["value_data"]) != 2 * k or sec["value_model"] or sec["scales"]:
            raise ValueError(
                f"corrupt value data: {len(sec['value_data'])} bytes for {k} raw 16-bit values"
            )
        raw_words = np.frombuffer(sec["value_data"], dtype="<u2").astype(np.uint16)
        if not dtypes.raw16_finite(raw_words, h.dtype):
            raise ValueError("corrupt value data: a raw 16-bit value is NaN or infinity")
        values = dtypes.from_raw16(raw_words, h.dtype)
    else:
        values = _decode_quantized(h, sec, positions, n)

    if raw_words is not None and positions is None and h.dtype != dtypes.FLOAT32:
        out = raw_words.view(np.float16) if h.dtype == dtypes.FLOAT16 else raw_words
    else:
        full = values if positions is None else np.zeros(n, dtype=np.float32)
        if positions is not None:
            full[positions] = values
        if h.dtype == dtypes.FLOAT16:
            out = full.astype(np.float16)
        elif h.dtype == dtypes.BFLOAT16:
            out = dtypes.f32_to_bf16_bits(full)
        else:
            out = full
    out = out.reshape(h.shape)
    if h.kind == stream.KIND_TORCH:
        return torch_adapter.from_numpy(out, h.dtype)
    return out


def _decode_quantized(
    h: Header, sec: dict[str, bytes], positions: np.ndarray | None, n: int
) -> np.ndarray:
    k = h.n_kept
    if k == 0:
        if any(sec.values()):
            raise ValueError("corrupt: sections present in a stream of an empty tensor")
        return np.zeros(0, dtype=np.float32)
    n_rows, row_len = _rows(h.shape, n)
    counts = None
    if h.scale == stream.SCALE_ROW:
        counts = _row_counts(positions, n_rows, row_len)
        counts = counts[counts > 0]
    n_scales = 1 if counts is None else counts.size
    if len(sec["scales"]) != 4 + 4 * n_scales:
        raise ValueError(f"corrupt scales: {len(sec['scales'])} bytes, expected {4 + 4 * n_scales}")
    scales = np.frombuffer(sec["scales"], dtype="<f4").astype(np.float32)
    t, hi = float(scales[0]), scales[1:]
    if not (np.isfinite(scales).all() and t >= 0 and (hi >= t).all()):
        raise ValueError("corrupt scales: threshold and row maxima must be finite with max >= t")
    top = float(hi.max()) if hi.size else t
    limit = dtypes.FP16_MAX if h.dtype == dtypes.FLOAT16 else quantize.MAX_SCALE
    if top > limit:
        raise ValueError(f"corrupt scales: row maximum {top:.6g} exceeds {limit:.6g}")
    m0, d = _per_value_grid(t, hi if counts is not None else hi[0], counts, h.bits)
    n_sym = 1 << h.bits
    sym_counts = entropy.read_counts(sec["value_model"], n_sym, k, "value histogram")
    sym = entropy.ans_decode(sec["value_data"], sym_counts, k, "value data")
    # ANS gives every symbol a non-zero probability, so the data can decode to symbols the
    # histogram does not hold: the decoded histogram must be the stored one.
    if not np.array_equal(np.bincount(sym, minlength=n_sym), sym_counts.astype(np.int64)):
        raise ValueError("corrupt value data: decoded symbols do not match the value histogram")
    # The scales are bounded above, so the grid cannot overflow (quantize.MAX_SCALE).
    return quantize.dequantize(sym, m0, d, h.bits)
