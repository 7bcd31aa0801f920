"""Writes the codec regression corpus: hostile streams (valid checksum) that the decoder once
decoded wrongly, aborted on or answered with another error than ValueError (issue 20).

Run from the repository root: python tests/corpus/codec/make_corpus.py
Each stream is written to <name>.bin and described in manifest.json: what it does, what the
decoder did before the fix, and the ValueError message (a regex) it must raise now, with the
caps to decode it under when they are not the defaults. tests/test_codec_fuzz.py replays them.
Deterministic: the same code writes the same bytes.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from sftopt.codec import encode, entropy, stream  # noqa: E402
from sftopt.codec.stream import Header  # noqa: E402

F32 = 0
F16 = 1


def _sections(**given: bytes) -> dict[str, bytes]:
    out = dict.fromkeys(stream.SECTIONS, b"")
    out.update(given)
    return out


def gib_from_94_bytes() -> bytes:
    """(16384, 16384) float32 keeping one raw value: the one-bit mask of 2^25 bytes costs a
    few ANS words, so 94 bytes describe a 1 GiB tensor."""
    n = 1 << 28
    pcode, pmodel, pdata = entropy.encode_mask(np.array([0], dtype=np.int64), n, 1 << 14)
    h = Header(0, F32, 16, 1, stream.VAL_RAW16, pcode, 1.0 / n, 1, (1 << 14, 1 << 14))
    secs = _sections(value_data=np.float16(1).tobytes(), position_model=pmodel,
                     position_data=pdata)
    return stream.pack(h, secs)


def elements_2p31() -> bytes:
    """2^31 elements at keep 1.0 / 1 bit, every symbol the same: ANS decodes them from a few
    words, and constriction's 8 GiB allocation aborts the process (SIGABRT)."""
    n = 1 << 31
    counts = np.array([0, n], dtype=np.uint64)
    data = entropy.ans_encode(np.ones(1 << 16, dtype=np.int32), counts)
    h = Header(0, F32, 1, 0, stream.VAL_ANS, entropy.POS_ALL, 1.0, n, (n,))
    secs = _sections(scales=struct.pack("<ff", 1.0, 1.0), value_model=entropy.write_varints(counts),
                     value_data=data)
    return stream.pack(h, secs)


def dims_32x2p63() -> bytes:
    """32 dimensions of 2^63: the element count overflowed float conversion (OverflowError)."""
    h = Header(0, F32, 16, 1, stream.VAL_RAW16, entropy.POS_ALL, 1.0, 1, (1 << 63,) * 32)
    return stream.pack(h, _sections(value_data=np.float16(1).tobytes()))


def empty_with_huge_dims() -> bytes:
    """An empty tensor (a zero dimension) whose other dimensions are 2^62 each."""
    h = Header(0, F32, 4, 1, stream.VAL_NONE, entropy.POS_ALL, 0.5, 0, (0, 1 << 62, 1 << 62))
    return stream.pack(h, _sections())


def _with_values(good: bytes, counts: np.ndarray, sym: np.ndarray) -> bytes:
    """A valid stream with its value histogram replaced and its symbols coded by that model."""
    h, secs = stream.unpack(good)
    secs = dict(secs)
    secs["value_model"] = entropy.write_varints(counts)
    secs["value_data"] = entropy.ans_encode(sym, counts)
    return stream.pack(h, secs)


def _small() -> tuple[bytes, np.ndarray, np.ndarray]:
    x = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    good = encode(x, 1.0, 12, scale="tensor", seed=0)
    h, secs = stream.unpack(good)
    counts = entropy.read_varints(secs["value_model"], 1 << h.bits, "value histogram")
    sym = entropy.ans_decode(secs["value_data"], counts, h.n_kept, "value data")
    return good, counts, sym


def value_histogram_wraps() -> bytes:
    """A value histogram summing to k only modulo 2^64 ((2^63-1) + (2^63-1) + 2 on three unused
    symbols), the symbols coded with it: accepted, decoded to values of another model."""
    good, counts, sym = _small()
    counts = counts.copy()
    unused = np.flatnonzero(counts == 0)[:3]
    counts[unused] = [(1 << 63) - 1, (1 << 63) - 1, 2]
    return _with_values(good, counts, sym)


def symbols_off_histogram() -> bytes:
    """A histogram that sums to k, but the data codes other symbols (ANS gives every symbol
    a non-zero probability): accepted, decoded to values the histogram does not hold."""
    good, counts, sym = _small()
    sym = sym.copy()
    sym[0] = int(np.flatnonzero(counts == 0)[0])
    return _with_values(good, counts, sym)


def position_histogram_wraps() -> bytes:
    """A byte histogram of the position mask summing to the mask size only modulo 2^64, the
    mask bytes coded with it: accepted, decoded to the right positions by a wrong model."""
    x = np.random.default_rng(1).standard_normal((128, 64)).astype(np.float32)
    x[:12] *= 40.0  # loud rows: kept positions in runs, so the byte histogram is chosen
    good = encode(x, 0.1, 4, seed=7)
    h, secs = stream.unpack(good)
    assert h.position_coding == entropy.POS_MASK_HISTOGRAM
    n = int(np.prod(h.shape))
    positions = entropy.decode_mask(h.position_coding, secs["position_model"],
                                    secs["position_data"], n, h.n_kept, h.shape[-1])
    mask = np.zeros(n, dtype=bool)
    mask[positions] = True
    packed = np.packbits(mask)
    counts = np.bincount(packed, minlength=256).astype(np.uint64)
    unused = np.flatnonzero(counts == 0)[:3]
    counts[unused] = [(1 << 63) - 1, (1 << 63) - 1, 2]
    secs = dict(secs)
    secs["position_model"] = entropy.write_varints(counts)
    secs["position_data"] = entropy.ans_encode(packed.astype(np.int32), counts)
    return stream.pack(h, secs)


def column_counts_wrap() -> bytes:
    """Per-column position counts summing to k only modulo 2^64 ((2^63-1) + (2^63-1) + 2 on
    three empty columns)."""
    x = np.random.default_rng(2).standard_normal((32, 24)).astype(np.float32)
    x[:, ::7] *= 30.0
    good = encode(x, 0.2, 3, seed=8)
    h, secs = stream.unpack(good)
    assert h.position_coding == entropy.POS_COLUMNS
    counts = entropy.read_varints(secs["position_model"], 24, "column counts")
    zero = np.flatnonzero(counts == 0)
    counts[zero[:3]] = [(1 << 63) - 1, (1 << 63) - 1, 2]
    secs = dict(secs)
    secs["position_model"] = entropy.write_varints(counts)
    return stream.pack(h, secs)


def raw16_nan() -> bytes:
    """A raw float16 stream holding a NaN word (the encoder refuses NaN): decoded silently."""
    good = encode(np.arange(8, dtype=np.float16), 1.0, 16)
    h, secs = stream.unpack(good)
    words = bytearray(secs["value_data"])
    words[2:4] = struct.pack("<H", 0x7E00)
    return stream.pack(h, {**secs, "value_data": bytes(words)})


def fp16_scale_overflow() -> bytes:
    """A float16 stream whose row maximum is 1e30: the values overflow the float16 cast (inf,
    with a numpy RuntimeWarning)."""
    good = encode(np.linspace(-1, 1, 16, dtype=np.float16).reshape(2, 8), 1.0, 4, seed=0)
    h, secs = stream.unpack(good)
    scales = np.frombuffer(secs["scales"], dtype="<f4").copy()
    scales[1:] = 1e30
    return stream.pack(h, {**secs, "scales": scales.astype("<f4").tobytes()})


def f32_scale_overflow() -> bytes:
    """A float32 stream whose row maximum is the largest float32: the 1-bit grid's spacing
    2*m0 overflows (inf values, a RuntimeWarning)."""
    good = encode(np.linspace(-1, 1, 16, dtype=np.float32).reshape(2, 8), 1.0, 1, seed=0)
    h, secs = stream.unpack(good)
    scales = np.frombuffer(secs["scales"], dtype="<f4").copy()
    scales[1:] = np.finfo(np.float32).max
    return stream.pack(h, {**secs, "scales": scales.astype("<f4").tobytes()})


# name -> (builder, regex of the ValueError it must raise, caps passed to decode, before)
CASES = {
    "gib_from_94_bytes": (gib_from_94_bytes, r"max_bytes=67108864", {"max_bytes": 1 << 26},
                          "decoded to a 1 GiB array in 2.4 s (it still does at the default "
                          "caps, which admit 1 GiB: a caller that expects less passes less)"),
    "elements_2p31": (elements_2p31, r"max_elements", {},
                      "process aborted (SIGABRT): constriction failed to allocate 8 GiB"),
    "dims_32x2p63": (dims_32x2p63, r"shape\[0\]", {}, "OverflowError"),
    "empty_with_huge_dims": (empty_with_huge_dims, r"shape\[1\].*non-zero dimensions", {},
                             "numpy's ValueError 'array is too big', naming no field"),
    "value_histogram_wraps": (value_histogram_wraps, r"value histogram", {}, "decoded"),
    "symbols_off_histogram": (symbols_off_histogram, r"value data", {}, "decoded"),
    "position_histogram_wraps": (position_histogram_wraps, r"position histogram", {},
                                 "decoded"),
    "column_counts_wrap": (column_counts_wrap, r"position column counts", {},
                           "ValueError 'do not add up to k' (a count exceeds the rows)"),
    "raw16_nan": (raw16_nan, r"NaN or infinity", {}, "decoded, with a NaN"),
    "fp16_scale_overflow": (fp16_scale_overflow, r"scales", {},
                            "decoded to infinities, numpy RuntimeWarning"),
    "f32_scale_overflow": (f32_scale_overflow, r"scales", {},
                           "decoded to NaN, numpy RuntimeWarnings"),
}


def main() -> None:
    manifest = {}
    for name, (build, match, caps, before) in CASES.items():
        data = build()
        (HERE / f"{name}.bin").write_bytes(data)
        manifest[name] = {
            "bytes": len(data),
            "what": " ".join(build.__doc__.split()),
            "before": before,
            "raises": match,
            "caps": caps,
        }
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {len(manifest)} streams to {HERE}")


if __name__ == "__main__":
    main()
