"""Valid codec streams and the mutations of them that the decoder must survive: shared by the
property tests (tests/test_codec_fuzz.py, hypothesis draws the parameters) and the long fuzzing
run (benchmarks/fuzz/codec.py, a seeded numpy generator draws them).

Every mutation but `flip_raw` and `truncate_raw` re-computes the checksum, as a hostile sender
would: a stream that only fails its CRC tests nothing past the checksum.
"""

from __future__ import annotations

import math
import struct
import zlib
from fractions import Fraction
from typing import Any

import numpy as np

from sftopt import codec
from sftopt.codec import stream

# Header fields at fixed offsets: name -> (offset, struct format).
FIXED_FIELDS: dict[str, tuple[int, str]] = {
    "kind": (5, "<B"),
    "dtype": (6, "<B"),
    "bits": (7, "<B"),
    "scale": (8, "<B"),
    "value_coding": (9, "<B"),
    "position_coding": (10, "<B"),
    "ndim": (11, "<B"),
    "keep_ratio": (12, "<d"),
    "n_kept": (20, "<Q"),
}
_SHAPE_AT = 28

# Values worth trying in integer fields: edges of every range the header uses.
EDGE_INTS = (
    0, 1, 2, 3, 4, 7, 8, 9, 12, 13, 15, 16, 17, 31, 32, 33, 127, 128, 255, 256,
    (1 << 16) - 1, 1 << 16, (1 << 28) - 1, 1 << 28, (1 << 28) + 1, (1 << 31) - 1, 1 << 31,
    1 << 32, (1 << 63) - 1, 1 << 63, (1 << 64) - 1,
)
EDGE_FLOATS = (
    0.0, -0.0, 1.0, 0.5, 1e-300, 5e-324, -1.0, 1.0 + 2**-52, 2.0, float("inf"),
    float("-inf"), float("nan"), 1e308, 2**-28, 2**-31,
)


def with_crc(body: bytes) -> bytes:
    """A stream body with its CRC-32 appended."""
    return body + struct.pack("<I", zlib.crc32(body))


def _ndim(data: bytes) -> int:
    return data[11] if len(data) > 11 else 0


def field_names(data: bytes) -> list[str]:
    """Every header field of a stream that can be rewritten: the fixed ones, each shape
    dimension and each section length."""
    ndim = _ndim(data)
    return (
        list(FIXED_FIELDS)
        + [f"shape[{i}]" for i in range(ndim)]
        + [f"length[{s}]" for s in stream.SECTIONS]
    )


def _field_slot(data: bytes, name: str) -> tuple[int, str]:
    if name in FIXED_FIELDS:
        return FIXED_FIELDS[name]
    if name.startswith("shape["):
        return _SHAPE_AT + 8 * int(name[6:-1]), "<Q"
    section = stream.SECTIONS.index(name[len("length[") : -1])
    return _SHAPE_AT + 8 * _ndim(data) + 8 * section, "<Q"


def set_field(data: bytes, name: str, value: float | int) -> bytes:
    """The stream with one header field rewritten (value wrapped or clamped to the field's
    width), checksum recomputed."""
    offset, fmt = _field_slot(data, name)
    size = struct.calcsize(fmt)
    if fmt == "<d":
        packed = struct.pack(fmt, float(value))
    else:
        packed = (int(value) % (1 << (8 * size))).to_bytes(size, "little")
    body = bytearray(data[:-4])
    if offset + size > len(body):
        return data
    body[offset : offset + size] = packed
    return with_crc(bytes(body))


def kept_for(n: int, keep_ratio: float) -> int:
    """The kept count a consistent header states for n elements (sparsify.n_kept, exact for any
    n: a hostile shape can have more elements than a float counts exactly)."""
    if n == 0:
        return 0
    if not 0.0 < keep_ratio <= 1.0:
        return 1
    return min(n, max(1, math.floor(Fraction(keep_ratio) * n + Fraction(1, 2))))


def reshape(data: bytes, dims: list[int]) -> bytes:
    """The shape's dimensions rewritten (ndim kept, values mod 2^64) and the kept count made
    to agree with them: a consistent header declaring another size, checksum recomputed."""
    ndim = _ndim(data)
    if ndim == 0 or len(data) < stream.header_size(ndim) + 4:
        return data
    dims = [d % (1 << 64) for d in (dims * ndim)[:ndim]]
    out = data
    for i, d in enumerate(dims):
        out = set_field(out, f"shape[{i}]", d)
    keep = struct.unpack_from("<d", data, 12)[0]
    return set_field(out, "n_kept", kept_for(math.prod(dims), keep))


def flip(data: bytes, pos: int, xor: int) -> bytes:
    """One byte XOR-ed (xor in 1..255), checksum recomputed."""
    body = bytearray(data[:-4])
    if not body:
        return data
    body[pos % len(body)] ^= xor
    return with_crc(bytes(body))


def flip_raw(data: bytes, pos: int, xor: int) -> bytes:
    """One byte XOR-ed, checksum left as it was (must fail the checksum or the framing)."""
    out = bytearray(data)
    if not out:
        return data
    out[pos % len(out)] ^= xor
    return bytes(out)


def truncate(data: bytes, cut: int) -> bytes:
    """The first `cut` bytes of the body, checksum recomputed over them."""
    return with_crc(data[: min(cut, len(data) - 4)])


def truncate_raw(data: bytes, cut: int) -> bytes:
    """The first `cut` bytes, as they were."""
    return data[:cut]


def _split(data: bytes) -> tuple[bytes, list[bytes]] | None:
    """Header part (fixed fields and shape) and the five sections (cut short where the stream
    is), or None if the stream is too short to hold the section lengths."""
    ndim = _ndim(data)
    hsize = stream.header_size(ndim)
    if len(data) < hsize:
        return None
    lengths = struct.unpack_from(f"<{len(stream.SECTIONS)}Q", data, _SHAPE_AT + 8 * ndim)
    pos, sections = hsize, []
    for length in lengths:
        sections.append(data[pos : pos + length])
        pos += length
    return data[: _SHAPE_AT + 8 * ndim], sections


def _join(head: bytes, sections: list[bytes]) -> bytes:
    lengths = struct.pack(f"<{len(sections)}Q", *(len(s) for s in sections))
    return with_crc(head + lengths + b"".join(sections))


def replace_section(data: bytes, section: int, payload: bytes) -> bytes:
    """One section's bytes replaced (its length field follows), checksum recomputed; a stream
    too short to have sections is returned as it is (so are the other section edits)."""
    if (parts := _split(data)) is None:
        return data
    head, sections = parts
    sections[section % len(sections)] = payload
    return _join(head, sections)


def edit_section(data: bytes, section: int, pos: int, delete: int, insert: bytes) -> bytes:
    """Inside one section: `delete` bytes removed at `pos` and `insert` put there; the length
    field follows, checksum recomputed."""
    if (parts := _split(data)) is None:
        return data
    head, sections = parts
    i = section % len(sections)
    s = sections[i]
    p = pos % (len(s) + 1)
    sections[i] = s[:p] + insert + s[p + delete :]
    return _join(head, sections)


def swap_sections(data: bytes, other: bytes, section: int) -> bytes:
    """One section taken from another valid stream (consistent framing, foreign content)."""
    parts = _split(other)
    if parts is None:
        return data
    return replace_section(data, section, parts[1][section % len(stream.SECTIONS)])


def varints(values: list[int]) -> bytes:
    """LEB128 bytes of non-negative ints of any size (a hostile table may hold huge counts)."""
    out = bytearray()
    for v in values:
        if v < 0:
            raise ValueError(f"varints are non-negative, got {v}")
        while True:
            b = v & 0x7F
            v >>= 7
            out.append(b | (0x80 if v else 0))
            if not v:
                break
    return bytes(out)


def replace_histogram(data: bytes, section: int, counts: list[int]) -> bytes:
    """A model section (value model 1 or position model 3) replaced by varint counts."""
    return replace_section(data, section, varints(counts))


# --- valid streams to mutate ----------------------------------------------------------------


def base_streams(torch_too: bool = False) -> list[bytes]:
    """Small valid streams covering every kind, dtype, level family, scale mode and position
    coding (Bernoulli, byte histogram, per column), empty and 0-d tensors. Deterministic."""
    rng = np.random.default_rng(20)
    gauss = rng.standard_normal((16, 48)).astype(np.float32)
    runs = rng.standard_normal((128, 64)).astype(np.float32)
    runs[:12] *= 40.0  # loud rows: kept positions come in runs (byte histogram)
    cols = rng.standard_normal((32, 24)).astype(np.float32)
    cols[:, ::7] *= 30.0  # loud channels (per-column positions)
    out = [
        codec.encode(gauss, 0.1, 4, seed=1),
        codec.encode(gauss, 0.1, 4, scale="tensor", seed=1),
        codec.encode(gauss, 1.0, 8, seed=2),
        codec.encode(gauss, 0.5, 2, seed=3),
        codec.encode(gauss, 0.05, 1, seed=4),
        codec.encode(gauss[:2], 0.3, 12, scale="tensor", seed=5),
        codec.encode(gauss, 1.0, 16),
        codec.encode(gauss, 0.25, 16),
        codec.encode(gauss.astype(np.float16), 0.2, 6, seed=6),
        codec.encode(gauss.astype(np.float16), 1.0, 16),
        codec.encode(runs, 0.1, 4, seed=7),
        codec.encode(cols, 0.2, 3, seed=8),
        codec.encode(cols, 0.2, 16),
        codec.encode(rng.standard_normal((3, 4, 5)).astype(np.float32), 0.5, 3, seed=9),
        codec.encode(rng.standard_normal(7).astype(np.float32), 0.4, 4, seed=10),
        codec.encode(np.float32(1.5), 1.0, 4, seed=11),
        codec.encode(np.zeros((2, 0, 3), dtype=np.float32), 0.5, 4),
        codec.encode(np.zeros((4, 8), dtype=np.float32), 0.5, 4, seed=12),
    ]
    if torch_too:
        import torch

        t = torch.from_numpy(gauss).to(torch.bfloat16)
        out += [codec.encode(t, 0.1, 4, seed=13), codec.encode(t, 1.0, 16)]
    return out


# --- outcomes -------------------------------------------------------------------------------


def declared_shape(data: bytes) -> tuple[int, ...] | None:
    """The shape a stream's header declares, or None if the header is not even readable."""
    try:
        return stream.unpack(data)[0].shape
    except ValueError:
        return None


def outcome(data: bytes, max_elements: int, max_bytes: int) -> tuple[str, Any]:
    """Decode under the caps and classify: ("decoded", array), ("ValueError", message) or
    ("<other exception type>", message). A decoded array of another shape than the header's,
    or over the caps, is classified "wrong-shape" or "over-cap"."""
    try:
        out = codec.decode(data, max_elements=max_elements, max_bytes=max_bytes)
    except ValueError as exc:
        return "ValueError", str(exc)
    except Exception as exc:  # the property under test: nothing else escapes
        return type(exc).__name__, str(exc)
    shape = tuple(out.shape)
    n = int(np.prod(shape, dtype=object)) if shape else 1
    if shape != declared_shape(data):
        return "wrong-shape", f"{shape} vs {declared_shape(data)}"
    nbytes = n * (out.element_size() if hasattr(out, "element_size") else out.itemsize)
    if n > max_elements or nbytes > max_bytes:
        return "over-cap", f"{n} elements, {nbytes} bytes"
    return "decoded", out
