"""Versioned byte format: fixed header, five length-prefixed sections, trailing CRC-32.

All integers little-endian. Layout of format version 1:

    offset  size     field
    0       4        magic b"SFTC"
    4       1        format version (1)
    5       1        kind of the input: 0 numpy, 1 torch
    6       1        dtype: 0 float32, 1 float16, 2 bfloat16
    7       1        bits q (1..12 quantized, 16 raw 16-bit floats)
    8       1        scale mode: 0 per tensor, 1 per row (last axis)
    9       1        value coding: 0 none, 1 ANS categorical, 2 raw 16-bit words
    10      1        position coding: 0 all kept, 1 ANS mask bytes / Bernoulli, 2 ... / byte
                     histogram, 3 ANS column-major mask bytes / Bernoulli per column
    11      1        ndim (0..32)
    12      8        keep ratio (float64)
    20      8        number of kept elements k (uint64)
    28      8*ndim   shape (uint64 each)
    ..      8*5      section lengths (uint64): scales, value model, value data,
                     position model, position data
    ..      sum      the five sections, in that order
    end-4   4        CRC-32 (zlib) of every preceding byte
"""

from __future__ import annotations

import itertools
import struct
import zlib
from dataclasses import dataclass

MAGIC = b"SFTC"
VERSION = 1
MAX_NDIM = 32
SECTIONS = ("scales", "value_model", "value_data", "position_model", "position_data")

_FIXED = struct.Struct("<4sBBBBBBBBdQ")  # up to and including k
_CRC = 4

KIND_NUMPY = 0
KIND_TORCH = 1
SCALE_TENSOR = 0
SCALE_ROW = 1
VAL_NONE = 0
VAL_ANS = 1
VAL_RAW16 = 2


@dataclass(frozen=True)
class Header:
    """Decoded header fields of a stream."""

    kind: int
    dtype: int
    bits: int
    scale: int
    value_coding: int
    position_coding: int
    keep_ratio: float
    n_kept: int
    shape: tuple[int, ...]


def header_size(ndim: int) -> int:
    """Bytes of the header (fixed part, shape, section lengths) for a tensor of rank ndim."""
    return _FIXED.size + 8 * ndim + 8 * len(SECTIONS)


def pack(header: Header, sections: dict[str, bytes]) -> bytes:
    """Serialize a header and its sections, appending the checksum."""
    fixed = _FIXED.pack(
        MAGIC,
        VERSION,
        header.kind,
        header.dtype,
        header.bits,
        header.scale,
        header.value_coding,
        header.position_coding,
        len(header.shape),
        header.keep_ratio,
        header.n_kept,
    )
    parts = [fixed, struct.pack(f"<{len(header.shape)}Q", *header.shape)]
    parts.append(struct.pack(f"<{len(SECTIONS)}Q", *(len(sections[s]) for s in SECTIONS)))
    parts.extend(sections[s] for s in SECTIONS)
    body = b"".join(parts)
    return body + struct.pack("<I", zlib.crc32(body))


def unpack(data: bytes) -> tuple[Header, dict[str, bytes]]:
    """Parse and check a stream's framing; ValueError naming what is wrong."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < 5:
        raise ValueError(f"truncated: {len(data)} bytes, the header needs at least {_FIXED.size}")
    if data[:4] != MAGIC:
        raise ValueError(f"bad magic {data[:4]!r}, expected {MAGIC!r}: not an sftopt codec stream")
    if data[4] != VERSION:
        raise ValueError(f"unsupported version {data[4]} (this decoder reads version {VERSION})")
    if len(data) < _FIXED.size:
        raise ValueError(f"truncated: {len(data)} bytes, the header needs at least {_FIXED.size}")
    (_, _, kind, dtype, bits, scale, vcode, pcode, ndim, keep, k) = _FIXED.unpack_from(data)
    if ndim > MAX_NDIM:
        raise ValueError(f"corrupt header: ndim {ndim} > {MAX_NDIM}")
    hsize = header_size(ndim)
    if len(data) < hsize:
        raise ValueError(f"truncated: {len(data)} bytes, the header needs {hsize}")
    shape = struct.unpack_from(f"<{ndim}Q", data, _FIXED.size)
    lengths = struct.unpack_from(f"<{len(SECTIONS)}Q", data, _FIXED.size + 8 * ndim)
    payload = sum(lengths)
    present = len(data) - hsize - _CRC
    if present < payload:
        # Name the first section that runs past the end (lengths are Python ints: no wrap).
        ends = itertools.accumulate(lengths)
        name = next(s for s, end in zip(SECTIONS, ends, strict=True) if end > present)
        raise ValueError(
            f"truncated: header says {payload} payload bytes, {max(present, 0)} present"
            f" (stream is {len(data)} bytes, expected {hsize + payload + _CRC}); section "
            f"{name} runs past the end"
        )
    if present > payload:
        raise ValueError(f"corrupt: {present - payload} bytes after the end of the stream")
    (crc,) = struct.unpack_from("<I", data, len(data) - _CRC)
    if zlib.crc32(data[: len(data) - _CRC]) != crc:
        raise ValueError("checksum mismatch: the stream is corrupt")
    sections = {}
    pos = hsize
    for name, length in zip(SECTIONS, lengths, strict=True):
        sections[name] = data[pos : pos + length]
        pos += length
    header = Header(kind, dtype, bits, scale, vcode, pcode, keep, k, tuple(shape))
    return header, sections
