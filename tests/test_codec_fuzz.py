"""The codec decoder on hostile input (issue 20): the committed corpus of streams that once
broke it, the decode caps, and seeded property tests over mutated valid streams (header fields,
bytes, sections, histograms, all with a valid checksum). A mutated stream must either decode to
a tensor of the shape its header declares, within the caps, or raise ValueError; nothing else
(no other exception, no numpy warning, no abort)."""

from __future__ import annotations

import json
import math
import re
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.fuzz import codec_mutations as mut
from sftopt import codec
from sftopt.codec import core, entropy, stream

CORPUS = Path(__file__).parent / "corpus" / "codec"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())
# Caps of the property tests: small, so a mutated shape is refused or decoded in milliseconds.
MAX_ELEMENTS = 1 << 20
MAX_BYTES = 1 << 22
PROPS = settings(
    derandomize=True,
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
BASES = mut.base_streams()


def _check(data: bytes) -> str:
    """Decode under the test caps; fail on anything but a right-shaped tensor or ValueError."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a numpy overflow warning is a finding too
        cls, detail = mut.outcome(data, MAX_ELEMENTS, MAX_BYTES)
    assert cls in ("decoded", "ValueError"), f"{cls}: {detail}"
    return cls


# --- the corpus ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_corpus_stream_raises_named_value_error_before_allocating(name: str) -> None:
    entry = MANIFEST[name]
    data = (CORPUS / f"{name}.bin").read_bytes()
    assert len(data) == entry["bytes"]
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=entry["raises"]):
            codec.decode(data, **entry["caps"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"{name}: {peak} bytes allocated before the error"


def test_corpus_is_what_make_corpus_writes() -> None:
    """The .bin files are reproducible from their documented recipes (no stale corpus)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_corpus", CORPUS / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert set(module.CASES) == set(MANIFEST)
    for name, (build, match, caps, _) in module.CASES.items():
        if name == "gib_from_94_bytes":
            continue  # its recipe builds a 2^28-element mask (a few seconds): checked by size
        assert build() == (CORPUS / f"{name}.bin").read_bytes(), name
        assert MANIFEST[name]["raises"] == match and MANIFEST[name]["caps"] == caps


# --- the caps -----------------------------------------------------------------------------


def test_caps_are_inclusive_and_set_by_the_caller() -> None:
    x = np.random.default_rng(0).standard_normal((64, 128)).astype(np.float32)
    n = x.size
    for dtype, itemsize in ((np.float32, 4), (np.float16, 2)):
        data = codec.encode(x.astype(dtype), 0.2, 4, seed=0)
        y = codec.decode(data, max_elements=n, max_bytes=itemsize * n)
        assert y.shape == x.shape and y.dtype == dtype
        with pytest.raises(ValueError, match=f"max_elements={n - 1}"):
            codec.decode(data, max_elements=n - 1)
        with pytest.raises(ValueError, match=f"{itemsize * n} bytes, more than max_bytes"):
            codec.decode(data, max_bytes=itemsize * n - 1)


def test_default_caps() -> None:
    assert core.DEFAULT_MAX_ELEMENTS == 1 << 28 and core.DEFAULT_MAX_BYTES == 1 << 30
    # 2^28 + 1 fp16 elements (512 MiB, under the byte cap) are still over the element cap.
    h = stream.Header(0, 1, 16, 1, stream.VAL_RAW16, 1, 2.0**-29, 1, ((1 << 28) + 1,))
    data = stream.pack(h, dict.fromkeys(stream.SECTIONS, b""))
    with pytest.raises(ValueError, match="max_elements=268435456"):
        codec.decode(data)


@pytest.mark.parametrize("bad", [-1, True, 1.5, "8", None])
def test_caps_must_be_non_negative_ints(bad: object) -> None:
    data = codec.encode(np.ones(4, dtype=np.float32), 1.0, 4, seed=0)
    for name in ("max_elements", "max_bytes"):
        with pytest.raises(ValueError, match=name):
            codec.decode(data, **{name: bad})


def test_empty_tensor_decodes_under_zero_caps() -> None:
    data = codec.encode(np.zeros((2, 0, 3), dtype=np.float32), 0.5, 4)
    assert codec.decode(data, max_elements=6, max_bytes=0).shape == (2, 0, 3)


# --- property tests over mutated streams ---------------------------------------------------

base_index = st.integers(0, len(BASES) - 1)
edge_int = st.sampled_from(mut.EDGE_INTS)
any_u64 = st.integers(0, (1 << 64) - 1)


@PROPS
@given(st.data())
def test_header_field_edits(data: st.DataObject) -> None:
    base = BASES[data.draw(base_index)]
    name = data.draw(st.sampled_from(mut.field_names(base)))
    if name == "keep_ratio":
        value = data.draw(st.sampled_from(mut.EDGE_FLOATS) | st.floats(allow_nan=True))
    else:
        value = data.draw(edge_int | st.integers(0, 300) | any_u64)
    _check(mut.set_field(base, name, value))


@PROPS
@given(st.data())
def test_consistent_headers_declaring_other_sizes(data: st.DataObject) -> None:
    """Shape rewritten and the kept count made to agree: tiny streams declaring up to 2^64
    elements per dimension are refused by the caps or decoded within them."""
    base = BASES[data.draw(base_index)]
    dims = data.draw(st.lists(edge_int | st.integers(0, 1 << 12) | any_u64, min_size=1,
                              max_size=3))
    _check(mut.reshape(base, dims))


@PROPS
@given(st.data())
def test_byte_flips_with_valid_checksum(data: st.DataObject) -> None:
    base = BASES[data.draw(base_index)]
    out = base
    for _ in range(data.draw(st.integers(1, 3))):
        out = mut.flip(out, data.draw(st.integers(0, len(base))), data.draw(st.integers(1, 255)))
    _check(out)


@PROPS
@given(st.data())
def test_truncations(data: st.DataObject) -> None:
    base = BASES[data.draw(base_index)]
    cut = data.draw(st.integers(0, len(base) - 1))
    assert _check(mut.truncate_raw(base, cut)) == "ValueError"
    _check(mut.truncate(base, cut))
    # Without the checksum fixed, any flipped byte is refused.
    assert _check(mut.flip_raw(base, cut, data.draw(st.integers(1, 255)))) == "ValueError"


@PROPS
@given(st.data())
def test_section_edits(data: st.DataObject) -> None:
    base = BASES[data.draw(base_index)]
    section = data.draw(st.integers(0, len(stream.SECTIONS) - 1))
    how = data.draw(st.sampled_from(["replace", "edit", "swap"]))
    if how == "replace":
        out = mut.replace_section(base, section, data.draw(st.binary(max_size=300)))
    elif how == "edit":
        out = mut.edit_section(base, section, data.draw(st.integers(0, 1 << 12)),
                               data.draw(st.integers(0, 8)), data.draw(st.binary(max_size=8)))
    else:
        out = mut.swap_sections(base, BASES[data.draw(base_index)], section)
    _check(out)


@PROPS
@given(st.data())
def test_hostile_histograms(data: st.DataObject) -> None:
    """Value and position tables of any counts (up to 2^64 - 1, sums wrapping modulo 2^64):
    a few entries of the stored table (or of an all-zero one) set to hostile values."""
    base = BASES[data.draw(base_index)]
    h, sections = stream.unpack(base)
    section = data.draw(st.sampled_from([1, 3]))  # value model, position model
    size = (1 << min(h.bits, 12)) if section == 1 else data.draw(st.sampled_from(
        [256, h.shape[-1] if h.shape else 1]))
    try:
        counts = [int(c) for c in entropy.read_varints(sections[stream.SECTIONS[section]], size,
                                                          "table")]
    except ValueError:  # no table of that size in this stream: start from zeros
        counts = [0] * size
    for _ in range(data.draw(st.integers(1, 4))):
        counts[data.draw(st.integers(0, size - 1))] = data.draw(
            st.integers(0, 8) | edge_int | any_u64)
    _check(mut.replace_histogram(base, section, counts))


@PROPS
@given(st.data())
def test_wrapping_histogram_is_refused(data: st.DataObject) -> None:
    """Counts summing to k only modulo 2^64 (three symbols, as one varint holds 63 bits) are
    always refused."""
    base = BASES[data.draw(base_index)]
    h = stream.unpack(base)[0]
    if h.value_coding != stream.VAL_ANS or h.bits < 2:
        return
    size = 1 << h.bits
    i, j, m = data.draw(st.lists(st.integers(0, size - 1), min_size=3, max_size=3, unique=True))
    counts = [0] * size
    counts[i] = data.draw(st.integers(h.n_kept + 2, (1 << 63) - 1))
    counts[j] = (1 << 63) - 1
    counts[m] = (1 << 64) + h.n_kept - counts[i] - counts[j]
    assert sum(counts) % (1 << 64) == h.n_kept and max(counts) < 1 << 63
    assert _check(mut.replace_histogram(base, 1, counts)) == "ValueError"


shapes = st.lists(st.integers(0, 9), min_size=0, max_size=3).map(tuple)
levels = st.sampled_from([(1.0, 16), (0.3, 16), (1.0, 8), (0.5, 4), (0.1, 2), (0.2, 1),
                          (0.05, 12)])


@PROPS
@given(shapes, levels, st.sampled_from(["row", "tensor"]), st.sampled_from(["f4", "f2"]),
       st.integers(0, 2**32 - 1))
def test_valid_arrays_round_trip_within_exact_caps(
    shape: tuple[int, ...], level: tuple[float, int], scale: str, dtype: str, seed: int
) -> None:
    """Caps equal to the tensor's size never refuse a valid stream, and decoding under them
    gives what the uncapped decoder gives."""
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    data = codec.encode(x, *level, scale=scale, seed=seed)
    nonzero = math.prod(d for d in shape if d)  # == x.size unless the tensor is empty
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = codec.decode(data, max_elements=nonzero, max_bytes=x.size * x.itemsize)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert np.array_equal(y, codec.decode(data))
    if level == (1.0, 16) and dtype == "f2":
        assert np.array_equal(y, x)


def test_position_codings_all_covered_by_the_bases() -> None:
    """The mutated streams start from every position coding and value coding."""
    headers = [stream.unpack(b)[0] for b in BASES]
    assert {h.position_coding for h in headers} == {0, 1, 2, 3}
    assert {h.value_coding for h in headers} == {0, 1, 2}
    assert re.search("float16", " ".join(str(codec.decode(b).dtype) for b in BASES))
