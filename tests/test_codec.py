"""Tests of sftopt.codec: round trips, unbiasedness, measured size and distortion, bad streams."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sftopt.codec as codec
from sftopt.codec import entropy, quantize, sparsify, stream


def _gauss(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _rel_mse(x: np.ndarray, y: np.ndarray) -> float:
    x64 = np.asarray(x, dtype=np.float64)
    y64 = np.asarray(y, dtype=np.float64)
    return float(((x64 - y64) ** 2).sum() / (x64**2).sum())


def _sparsified(x: np.ndarray, keep: float) -> np.ndarray:
    """Top-k by magnitude computed independently (stable sort: ties to the lower index)."""
    flat = x.reshape(-1).astype(np.float32)
    k = sparsify.n_kept(flat.size, keep)
    idx = np.argsort(-np.abs(flat), kind="stable")[:k]
    out = np.zeros_like(flat)
    out[idx] = flat[idx]
    return out.reshape(x.shape)


# --- import hygiene -------------------------------------------------------------------------


def test_import_and_numpy_use_without_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"  # makes any `import torch` fail
        "import numpy as np, sftopt.codec as c\n"
        "x = np.arange(12, dtype=np.float32).reshape(3, 4)\n"
        "assert np.array_equal(c.decode(c.encode(x, 1.0, 16)), x)\n"
        "c.decode(c.encode(x, 0.5, 4, seed=0))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


# --- exact pass-through ---------------------------------------------------------------------


def test_fp16_passthrough_is_bit_exact_numpy() -> None:
    x = (_gauss((37, 129)) * 100).astype(np.float16)
    y = codec.decode(codec.encode(x, 1.0, 16))
    assert y.dtype == np.float16 and y.shape == x.shape
    assert np.array_equal(y.view(np.uint16), x.view(np.uint16))


def test_fp32_passthrough_rounds_to_fp16() -> None:
    x = _gauss((8, 33))
    data, info = codec.encode(x, 1.0, 16, return_info=True)
    y = codec.decode(data)
    assert y.dtype == np.float32
    assert np.array_equal(y, x.astype(np.float16).astype(np.float32))
    assert info.distortion == pytest.approx(_rel_mse(x, y), rel=1e-9)
    assert info.distortion > 0


def test_fp32_passthrough_rejects_values_beyond_fp16() -> None:
    x = np.array([1.0, 1e6], dtype=np.float32)
    with pytest.raises(ValueError, match="float16 range"):
        codec.encode(x, 1.0, 16)
    codec.decode(codec.encode(x, 1.0, 8, seed=0))  # quantized levels have no such limit


@pytest.mark.torch
@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
def test_16bit_passthrough_is_bit_exact_torch(dtype_name: str) -> None:
    torch = pytest.importorskip("torch")
    dtype = getattr(torch, dtype_name)
    x = (torch.randn(19, 64, generator=torch.Generator().manual_seed(0)) * 50).to(dtype)
    y = codec.decode(codec.encode(x, 1.0, 16))
    assert isinstance(y, torch.Tensor) and y.dtype == dtype and y.shape == x.shape
    assert torch.equal(y.view(torch.int16), x.view(torch.int16))


# --- unbiasedness ---------------------------------------------------------------------------


class _ConstRng:
    """Stands in for a Generator: constant uniform draws make the rounding deterministic
    (0.5: round to nearest; 0.0: always up; 1.0: always down)."""

    def __init__(self, r: float) -> None:
        self.r = r

    def random(self, size: int, dtype: type = np.float32) -> np.ndarray:
        return np.full(size, self.r, dtype=dtype)


@pytest.mark.parametrize(("keep", "bits"), [(0.5, 2), (1.0, 3), (0.2, 4), (1.0, 1)])
def test_stochastic_quantizer_is_unbiased(keep: float, bits: int) -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(-1.0, 1.0, size=1000).astype(np.float32)
    target = _sparsified(x, keep)
    n_draws = 300
    mean = np.zeros(x.size, dtype=np.float64)
    for seed in range(n_draws):
        mean += codec.decode(codec.encode(x, keep, bits, scale="tensor", seed=seed))
    mean /= n_draws

    # One draw of v lands on its lower or upper grid neighbour g_lo <= v <= g_hi; unbiased
    # rounding has variance (v - g_lo)(g_hi - v). Allow 5 standard deviations of the mean.
    kept = target != 0
    v = x[kept]
    t = float(np.abs(v).min())
    m0, d = quantize.grid(t, np.float32(np.abs(x).max()), bits)
    g_lo = quantize.dequantize(quantize.quantize(v, m0, d, bits, _ConstRng(1.0)), m0, d, bits)
    g_hi = quantize.dequantize(quantize.quantize(v, m0, d, bits, _ConstRng(0.0)), m0, d, bits)
    var = np.maximum((v - g_lo) * (g_hi - v), 0.0)
    tol = 5 * np.sqrt(var / n_draws) + 1e-6
    assert np.all(np.abs(mean[kept] - v) <= tol)
    assert np.all(mean[~kept] == 0)

    # The tolerance is tight enough to catch a biased quantizer: round-to-nearest on the same
    # grid falls outside it for many elements.
    rtn = quantize.dequantize(quantize.quantize(v, m0, d, bits, _ConstRng(0.5)), m0, d, bits)
    assert np.mean(np.abs(rtn - v) > tol) > 0.1


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    x = _gauss((64, 64))
    a = codec.encode(x, 0.25, 3, seed=7)
    assert a == codec.encode(x, 0.25, 3, seed=7)
    assert a != codec.encode(x, 0.25, 3, seed=8)
    gen_bytes = codec.encode(x, 0.25, 3, seed=np.random.default_rng(7))
    assert gen_bytes == a


# --- measured distortion and size -----------------------------------------------------------

LEVELS = [(1.0, 16), (1.0, 8), (0.5, 4), (0.25, 6), (0.1, 4), (0.05, 2), (0.01, 8), (0.3, 16)]


@pytest.mark.parametrize(("keep", "bits"), LEVELS)
@pytest.mark.parametrize("scale", ["row", "tensor"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_reported_distortion_and_size_are_measured(
    keep: float, bits: int, scale: str, dtype: type
) -> None:
    x = (_gauss((96, 200), seed=3) * np.linspace(0.1, 3.0, 200)).astype(dtype)
    data, info = codec.encode(x, keep, bits, scale=scale, seed=5, return_info=True)
    y = codec.decode(data)
    assert y.dtype == x.dtype and y.shape == x.shape
    assert info.distortion == pytest.approx(_rel_mse(x, y), rel=1e-7, abs=1e-12)
    assert codec.distortion(x, y) == pytest.approx(info.distortion, rel=1e-7, abs=1e-12)
    assert info.n_bytes == len(data)
    assert info.bits_per_elem == 8 * len(data) / x.size
    assert sum(info.section_bytes.values()) == len(data)
    assert info.n_kept == sparsify.n_kept(x.size, keep)
    assert np.count_nonzero(y) <= info.n_kept
    assert (info.bits_per_elem, info.distortion) == codec.measure(
        x, keep, bits, scale=scale, seed=5
    )


def test_distortion_function() -> None:
    x = np.array([3.0, 4.0], dtype=np.float32)
    assert codec.distortion(x, np.zeros(2)) == 1.0
    assert codec.distortion(x, np.array([3.0, 0.0])) == pytest.approx(16 / 25)
    assert codec.distortion(np.zeros(3), np.zeros(3)) == 0.0
    assert codec.distortion(np.zeros(1), np.ones(1)) == float("inf")
    with pytest.raises(ValueError, match="shape"):
        codec.distortion(x, np.zeros(3))


def test_sparsification_alone_loses_the_dropped_energy() -> None:
    # With raw 16-bit values on fp16 input, the only loss is the dropped tail.
    x = _gauss((128, 256), seed=4).astype(np.float16)
    y = codec.decode(codec.encode(x, 0.1, 16))
    assert np.array_equal(y, _sparsified(x, 0.1).astype(np.float16))


@pytest.mark.parametrize(("keep", "bits"), [(0.5, 4), (0.1, 4), (0.1, 2), (0.05, 8), (0.1, 1)])
def test_size_near_entropy_bound_and_analytic_beta(keep: float, bits: int) -> None:
    x = _gauss((1024, 1024), seed=11)
    n = x.size
    _, tinfo = codec.encode(x, keep, bits, scale="tensor", seed=0, return_info=True)
    _, rinfo = codec.encode(x, keep, bits, scale="row", seed=0, return_info=True)
    beta = keep * bits + entropy.h2(keep)
    assert tinfo.analytic_beta == pytest.approx(beta)
    # Tensor scale: within 3% of the empirical entropy bound (symbols + mask).
    assert tinfo.entropy_bound <= tinfo.bits_per_elem <= 1.03 * tinfo.entropy_bound
    # Positions cost H2(kappa) per element within 1%.
    pos_bits = 8 * (tinfo.section_bytes["position_data"] + tinfo.section_bytes["position_model"])
    assert pos_bits / n == pytest.approx(entropy.h2(keep), rel=0.01)
    # Never more than the analytic budget (entropy coding only saves), with the header on top.
    assert tinfo.bits_per_elem <= beta + 0.01
    # Per-row scales add their 32 bits per row (1024 rows, all keep something) on top.
    scale_bits = 8 * rinfo.section_bytes["scales"] / n
    assert scale_bits == pytest.approx((32 + 32 * 1024) / n)
    assert rinfo.bits_per_elem - scale_bits <= 1.03 * rinfo.entropy_bound
    assert rinfo.bits_per_elem <= beta + 32 / 1024 + 0.01


def test_sign_only_level_matches_analytic_beta() -> None:
    # With q=1 the symbol is the sign: uniform, so the analytic kappa*q + H2 is what is paid.
    x = _gauss((1024, 1024), seed=12)
    for keep in (0.5, 0.1):
        _, info = codec.encode(x, keep, 1, scale="tensor", seed=0, return_info=True)
        assert info.bits_per_elem == pytest.approx(info.analytic_beta, rel=0.01)


def _position_coding(data: bytes) -> int:
    return stream.unpack(data)[0].position_coding


def test_outlier_channels_use_the_per_column_model() -> None:
    # Activations with outlier channels: the kept positions sit in a few columns, which one
    # Bernoulli per column codes far below H2(kappa). Includes all-kept and empty columns.
    x = _gauss((512, 512), seed=2)
    x[:, 64:112] *= 20.0
    x[:, 7] = 1000.0
    keep = 60 / 512
    data, info = codec.encode(x, keep, 4, scale="tensor", seed=0, return_info=True)
    assert _position_coding(data) == entropy.POS_COLUMNS
    pos_bits = 8 * (info.section_bytes["position_data"] + info.section_bytes["position_model"])
    assert pos_bits / x.size < 0.5 * entropy.h2(keep)
    y = codec.decode(data)
    assert np.array_equal(y != 0, _sparsified(x, keep) != 0)


def test_runs_of_kept_positions_use_the_byte_histogram() -> None:
    # A few loud rows: kept positions form long runs, so mask bytes are mostly 0x00 or 0xFF.
    x = _gauss((512, 512), seed=3)
    x[100:140] *= 30.0
    keep = 40 / 512
    data, info = codec.encode(x, keep, 4, scale="tensor", seed=0, return_info=True)
    assert _position_coding(data) == entropy.POS_MASK_HISTOGRAM
    assert 8 * info.section_bytes["position_data"] / x.size < 0.5 * entropy.h2(keep)
    assert np.array_equal(codec.decode(data) != 0, _sparsified(x, keep) != 0)


def test_iid_positions_use_the_plain_bernoulli_model() -> None:
    data = codec.encode(_gauss((512, 512), seed=4), 0.1, 4, seed=0)
    assert _position_coding(data) == entropy.POS_MASK_BERNOULLI


@settings(derandomize=True, max_examples=40, deadline=None)
@given(
    rows=st.integers(8, 40),
    cols=st.integers(2, 30),
    hot=st.lists(st.integers(0, 29), max_size=6),
    keep=st.sampled_from([0.05, 0.2, 0.5, 0.9]),
    seed=st.integers(0, 1000),
)
def test_position_codings_round_trip(
    rows: int, cols: int, hot: list[int], keep: float, seed: int
) -> None:
    x = _gauss((rows, cols), seed=seed)
    for c in hot:
        x[:, c % cols] *= 50.0
    pos = np.flatnonzero(_sparsified(x, keep) != 0)
    for method, model, data in [
        entropy.encode_mask(pos, x.size, cols),
        (
            entropy.POS_MASK_BERNOULLI,
            b"",
            entropy.ans_encode(
                np.packbits(np.isin(np.arange(x.size), pos)).astype(np.int32),
                entropy._bernoulli_byte_probs(x.size, pos.size),
            ),
        ),
    ]:
        assert np.array_equal(entropy.decode_mask(method, model, data, x.size, pos.size, cols), pos)


# --- top-k ----------------------------------------------------------------------------------


@pytest.mark.parametrize("keep", [0.001, 0.1, 0.6])
def test_topk_large_tensor_is_exact_with_ties(keep: float) -> None:
    rng = np.random.default_rng(9)
    a = np.abs(rng.standard_t(3, size=300_000)).astype(np.float32)
    a[::7] = np.round(a[::7], 1)  # plenty of ties
    k = sparsify.n_kept(a.size, keep)
    pos, t = sparsify.topk(a, k)
    expected = np.sort(np.argsort(-a, kind="stable")[:k])
    assert pos is not None and np.array_equal(pos, expected)
    assert t == a[expected].min()


# --- bad input and bad streams --------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0.0, 4), "keep_ratio"),
        ((1.5, 4), "keep_ratio"),
        ((0.5, 0), "bits"),
        ((0.5, 13), "bits"),
        ((0.5, 4.0), "bits"),
    ],
)
def test_bad_levels_rejected(args: tuple[float, int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        codec.encode(_gauss((4, 4)), *args)


def test_bad_inputs_rejected() -> None:
    with pytest.raises(ValueError, match="unsupported dtype float64"):
        codec.encode(np.zeros(4), 0.5, 4)
    with pytest.raises(ValueError, match="unsupported dtype int32"):
        codec.encode(np.zeros(4, dtype=np.int32), 0.5, 4)
    with pytest.raises(ValueError, match="scale"):
        codec.encode(_gauss((4,)), 0.5, 4, scale="col")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        codec.encode([1.0, 2.0], 0.5, 4)
    for bits in (4, 16):
        with pytest.raises(ValueError, match="NaN or infinity"):
            codec.encode(np.array([1.0, np.nan, 2.0], dtype=np.float32), 0.5, bits)
        with pytest.raises(ValueError, match="NaN or infinity"):
            codec.encode(np.array([[1.0, np.inf]], dtype=np.float32), 1.0, bits)


@pytest.fixture(scope="module")
def good_stream() -> bytes:
    return codec.encode(_gauss((64, 128)), 0.2, 4, seed=0)


def test_truncated_streams_rejected(good_stream: bytes) -> None:
    for cut in (0, 3, 10, 40, len(good_stream) // 2, len(good_stream) - 1):
        with pytest.raises(ValueError, match="truncated"):
            codec.decode(good_stream[:cut])


def test_truncation_message_names_sizes(good_stream: bytes) -> None:
    with pytest.raises(ValueError, match=r"header says \d+ payload bytes, \d+ present"):
        codec.decode(good_stream[:-100])


def test_bad_magic_version_trailing(good_stream: bytes) -> None:
    with pytest.raises(ValueError, match="bad magic"):
        codec.decode(b"XXXX" + good_stream[4:])
    with pytest.raises(ValueError, match="unsupported version 7"):
        codec.decode(good_stream[:4] + bytes([7]) + good_stream[5:])
    with pytest.raises(ValueError, match="after the end"):
        codec.decode(good_stream + b"\0")
    with pytest.raises(ValueError, match="expected bytes"):
        codec.decode("not bytes")  # type: ignore[arg-type]


def test_flipped_payload_byte_fails_checksum(good_stream: bytes) -> None:
    bad = bytearray(good_stream)
    bad[len(bad) // 2] ^= 0x10
    with pytest.raises(ValueError, match="checksum"):
        codec.decode(bytes(bad))


@settings(
    derandomize=True,
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.data())
def test_any_single_byte_corruption_raises_value_error(good_stream: bytes, data) -> None:
    pos = data.draw(st.integers(0, len(good_stream) - 1))
    flip = data.draw(st.integers(1, 255))
    bad = bytearray(good_stream)
    bad[pos] ^= flip
    with pytest.raises(ValueError):
        codec.decode(bytes(bad))


def _reframe(data: bytes, **changes: object) -> bytes:
    """Rewrite header fields and re-checksum: a well-framed but inconsistent stream."""
    header, sections = stream.unpack(data)
    fields = {**header.__dict__, **changes}
    return stream.pack(stream.Header(**fields), sections)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"n_kept": 5}, "kept elements"),
        ({"dtype": 2}, "bfloat16"),
        ({"dtype": 9}, "dtype code"),
        ({"bits": 5}, "value histogram"),
        ({"shape": (64, 127)}, "corrupt"),
        ({"keep_ratio": 0.0}, "keep_ratio"),
        ({"position_coding": 0}, "position coding"),
        ({"position_coding": 9}, "unknown position coding 9"),
        ({"kind": 5}, "unknown kind 5"),
        ({"scale": 4}, "unknown scale mode 4"),
        ({"bits": 13}, "bits must be"),
        ({"keep_ratio": float("nan")}, "keep_ratio"),
        ({"shape": (64, 1 << 40)}, r"shape\[1\] = 1099511627776"),
        ({"shape": ((1 << 64) - 1,)}, r"shape\[0\]"),
    ],
)
def test_consistent_checksum_but_inconsistent_fields_rejected(
    good_stream: bytes, changes: dict, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        codec.decode(_reframe(good_stream, **changes))


def test_exact_sum_does_not_wrap() -> None:
    v = np.array([(1 << 63) - 1, (1 << 63) - 1, 2, 5], dtype=np.uint64)
    assert int(v.sum()) == 5  # numpy wraps modulo 2^64
    assert entropy.exact_sum(v) == (1 << 64) + 5
    big = np.full(1000, (1 << 64) - 1, dtype=np.uint64)
    assert entropy.exact_sum(big) == 1000 * ((1 << 64) - 1)


def test_read_counts_names_the_table() -> None:
    buf = entropy.write_varints(np.array([3, 0, 2], dtype=np.uint64))
    assert entropy.read_counts(buf, 3, 5, "test table").tolist() == [3, 0, 2]
    with pytest.raises(ValueError, match="corrupt test table: counts sum to 5, expected 6"):
        entropy.read_counts(buf, 3, 6, "test table")
    with pytest.raises(ValueError, match="count 3 at index 0 exceeds 2"):
        entropy.read_counts(buf, 3, 5, "test table", item_max=2)


def test_quantized_levels_refuse_values_past_their_range() -> None:
    x = np.array([2.0**127, 1.0], dtype=np.float32)
    with pytest.raises(ValueError, match="quantized levels' range"):
        codec.encode(x, 1.0, 4)
    edge = np.array([[2.0**126, -(2.0**126), 1.0, 0.0]], dtype=np.float32)
    for bits in (1, 2, 8, 12):
        y = codec.decode(codec.encode(edge, 1.0, bits, seed=0))
        assert np.isfinite(y).all()


@pytest.mark.torch
@pytest.mark.parametrize("dtype_name", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize(("keep", "bits"), [(1.0, 16), (1.0, 4)])
def test_torch_0d_tensor_stays_0d(dtype_name: str, keep: float, bits: int) -> None:
    """Found by the fuzzing run: a 0-d torch tensor decoded 1-d (numpy's ascontiguousarray)."""
    torch = pytest.importorskip("torch")
    x = torch.tensor(1.5, dtype=getattr(torch, dtype_name))
    y = codec.decode(codec.encode(x, keep, bits, seed=0))
    assert y.shape == x.shape == () and y.dtype == x.dtype


def test_checksum_covers_header() -> None:
    data = codec.encode(_gauss((4, 4)), 1.0, 16)
    body = data[:-4]
    assert struct.unpack("<I", data[-4:])[0] == zlib.crc32(body)


# --- dtypes and shapes ----------------------------------------------------------------------


@pytest.mark.torch
@pytest.mark.parametrize("dtype_name", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize(("keep", "bits"), [(1.0, 16), (0.25, 4), (0.25, 16), (1.0, 8)])
def test_torch_dtypes_round_trip(dtype_name: str, keep: float, bits: int) -> None:
    torch = pytest.importorskip("torch")
    dtype = getattr(torch, dtype_name)
    x = torch.randn(3, 40, 50, generator=torch.Generator().manual_seed(1)).to(dtype)
    data, info = codec.encode(x, keep, bits, seed=0, return_info=True)
    y = codec.decode(data)
    assert isinstance(y, torch.Tensor) and y.dtype == dtype and y.shape == x.shape
    assert info.dtype == dtype_name and info.kind == "torch"
    x64 = x.to(torch.float64)
    rel = float(((x64 - y.to(torch.float64)) ** 2).sum() / (x64**2).sum())
    assert info.distortion == pytest.approx(rel, rel=1e-7, abs=1e-12)
    assert int((y != 0).sum()) <= info.n_kept


@pytest.mark.torch
def test_torch_tensor_needing_grad_and_numpy_equivalence() -> None:
    torch = pytest.importorskip("torch")
    x = torch.randn(16, 32, generator=torch.Generator().manual_seed(2), requires_grad=True)
    y = codec.decode(codec.encode(x, 0.5, 4, seed=3))
    y_np = codec.decode(codec.encode(x.detach().numpy(), 0.5, 4, seed=3))
    assert np.array_equal(y.numpy(), y_np)


shapes = st.lists(st.integers(0, 7), min_size=0, max_size=4).map(tuple)
levels = st.sampled_from([(1.0, 16), (0.5, 16), (1.0, 1), (0.5, 2), (0.3, 3), (0.1, 8), (0.7, 12)])


@settings(derandomize=True, max_examples=120, deadline=None)
@given(
    shape=shapes,
    level=levels,
    dtype=st.sampled_from([np.float32, np.float16]),
    scale=st.sampled_from(["row", "tensor"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_shapes_property(shape: tuple[int, ...], level, dtype, scale: str, seed: int) -> None:
    keep, bits = level
    x = np.asarray(np.random.default_rng(seed).standard_t(4, size=shape) * 3).astype(dtype)
    data, info = codec.encode(x, keep, bits, scale=scale, seed=seed, return_info=True)
    y = codec.decode(data)
    assert isinstance(y, np.ndarray) and y.shape == x.shape and y.dtype == x.dtype
    assert np.array_equal(
        codec.decode(codec.encode(x[()] if x.ndim == 0 else x, keep, bits, scale=scale, seed=seed)),
        y,
    )
    assert info.n_bytes == len(data)
    if x.size == 0:
        return
    # Support: only top-k positions can be nonzero.
    kept = _sparsified(x, keep) != 0
    assert not np.any(y[~kept] != 0)
    # Every decoded value lies within the grid's top: the row's (or tensor's) max magnitude.
    rows = np.abs(x.astype(np.float32)).reshape(-1, x.shape[-1] if x.ndim >= 2 else x.size)
    top = rows.max(axis=1, keepdims=True) if scale == "row" else rows.max()
    bound = top * (1 + 2e-3)  # fp16 output rounding
    assert np.all(np.abs(y.astype(np.float32)).reshape(rows.shape) <= bound)
    if bits == 16 and dtype == np.float16:
        assert np.array_equal(y, _sparsified(x, keep).astype(np.float16))


@given(st.lists(st.integers(0, 2**63 - 1), max_size=50))
def test_varints_round_trip(values: list[int]) -> None:
    arr = np.array(values, dtype=np.uint64)
    buf = entropy.write_varints(arr)
    assert np.array_equal(entropy.read_varints(buf, len(values), "test"), arr)
    if values:
        with pytest.raises(ValueError):
            entropy.read_varints(buf[:-1], len(values), "test")
