"""Lossless coding: constriction ANS with categorical models, histograms as varints, mask coding."""

from __future__ import annotations

from collections.abc import Iterator

import constriction
import numpy as np

# constriction's submodules are attributes of its extension module, not importable modules.
Categorical = constriction.stream.model.Categorical
AnsCoder = constriction.stream.stack.AnsCoder

# Position coding methods (stream field).
POS_ALL = 0  # every element kept: no positions
POS_MASK_BERNOULLI = 1  # mask bytes, model p^popcount (1-p)^(8-popcount) from n and k: no table
POS_MASK_HISTOGRAM = 2  # mask bytes, model = their empirical histogram (stored)
POS_COLUMNS = 3  # column-major mask bytes, one Bernoulli model per column (column counts stored)

# Never turned into a "corrupt data" error (everything else constriction raises is).
_INTERRUPTS = (KeyboardInterrupt, SystemExit, GeneratorExit)
# Columns whose byte-probability tables are built at once (256 float64 each: 8 MiB a chunk), so
# the column coder's memory does not grow with the number of columns.
_COLUMN_CHUNK = 4096

_POPCOUNT = np.array([bin(b).count("1") for b in range(256)], dtype=np.int64)


def write_varints(values: np.ndarray) -> bytes:
    """LEB128 (7 bits per byte, high bit = more follows) of non-negative integers."""
    v = np.asarray(values, dtype=np.uint64)
    if v.size == 0:
        return b""
    ngroups = np.ones(v.size, dtype=np.int64)
    rest = v >> np.uint64(7)
    while rest.any():
        ngroups += rest > 0
        rest >>= np.uint64(7)
    starts = np.cumsum(ngroups) - ngroups
    within = np.arange(int(ngroups.sum())) - np.repeat(starts, ngroups)
    groups = (np.repeat(v, ngroups) >> (np.uint64(7) * within.astype(np.uint64))) & np.uint64(0x7F)
    more = within < np.repeat(ngroups, ngroups) - 1
    return (groups | (more.astype(np.uint64) << np.uint64(7))).astype(np.uint8).tobytes()


def read_varints(buf: bytes, count: int, what: str) -> np.ndarray:
    """Inverse of write_varints for exactly `count` values filling buf; ValueError if not."""
    b = np.frombuffer(buf, dtype=np.uint8)
    ends = np.flatnonzero(b < 0x80)
    if ends.size != count or (count and ends[-1] != b.size - 1) or (count == 0 and b.size):
        raise ValueError(f"corrupt {what}: expected {count} varints in {b.size} bytes")
    starts = np.concatenate(([0], ends[:-1] + 1)) if count else ends
    lengths = ends - starts + 1
    if count and lengths.max() > 9:
        raise ValueError(f"corrupt {what}: varint longer than 9 bytes")
    group = np.repeat(np.arange(count), lengths)
    shift = (np.arange(b.size) - np.repeat(starts, lengths)) * 7
    parts = (b & 0x7F).astype(np.uint64) << shift.astype(np.uint64)
    vals = np.zeros(count, dtype=np.uint64)
    np.add.at(vals, group, parts)
    return vals


def exact_sum(values: np.ndarray) -> int:
    """Sum of uint64 values as a Python int, without numpy's modulo-2^64 wrap: the high and low
    32-bit halves are summed separately, neither of which can wrap below 2^32 values."""
    v = np.asarray(values, dtype=np.uint64)
    hi = int(np.sum(v >> np.uint64(32), dtype=np.uint64))
    lo = int(np.sum(v & np.uint64(0xFFFFFFFF), dtype=np.uint64))
    return (hi << 32) + lo


def read_counts(
    buf: bytes, count: int, total: int, what: str, item_max: int | None = None
) -> np.ndarray:
    """`count` varint counts that must each be <= item_max (default: total) and sum to exactly
    `total` (exact integer sum, no wrap); ValueError naming `what` otherwise."""
    vals = read_varints(buf, count, what)
    limit = total if item_max is None else item_max
    if count and int(vals.max()) > limit:
        i = int(np.argmax(vals))
        raise ValueError(f"corrupt {what}: count {int(vals[i])} at index {i} exceeds {limit}")
    got = exact_sum(vals)
    if got != total:
        raise ValueError(f"corrupt {what}: counts sum to {got}, expected {total}")
    return vals


def _model(counts: np.ndarray) -> Categorical:
    """Categorical model from counts; deterministic, so the decoder rebuilds the same one."""
    p = counts.astype(np.float64)
    return Categorical(p / p.sum(), perfect=False)


def ans_encode(symbols: np.ndarray, counts: np.ndarray) -> bytes:
    """ANS-code int32 symbols with the categorical model of `counts`; little-endian uint32 words."""
    coder = AnsCoder()
    coder.encode_reverse(np.ascontiguousarray(symbols, dtype=np.int32), _model(counts))
    return coder.get_compressed().astype("<u4").tobytes()


def ans_decode(data: bytes, counts: np.ndarray, count: int, what: str) -> np.ndarray:
    """Decode `count` symbols coded by ans_encode; ValueError on malformed data."""
    if len(data) % 4:
        raise ValueError(f"corrupt {what}: {len(data)} bytes is not a whole number of ANS words")
    words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
    try:
        coder = AnsCoder(words)
        sym = coder.decode(_model(counts), count)
    except _INTERRUPTS:
        raise
    except BaseException as exc:  # constriction's ValueError, or a Rust panic (BaseException)
        raise ValueError(f"corrupt {what}: ANS decoding failed ({exc})") from exc
    if not coder.is_empty():
        raise ValueError(f"corrupt {what}: ANS data left over after {count} symbols")
    return sym


def entropy_bits(counts: np.ndarray) -> float:
    """Total empirical entropy in bits of symbols with histogram `counts` (sum of -log2 p)."""
    c = counts[counts > 0].astype(np.float64)
    total = c.sum()
    return float(-(c * np.log2(c / total)).sum()) if total else 0.0


def h2(p: float) -> float:
    """Binary entropy in bits."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return float(-(p * np.log2(p) + (1 - p) * np.log2(1 - p)))


def _bernoulli_byte_probs(n: int, k: int) -> np.ndarray:
    p = k / n
    return p**_POPCOUNT * (1 - p) ** (8 - _POPCOUNT)


def _h2_vec(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-300, 1.0)
    r = np.clip(1.0 - p, 1e-300, 1.0)
    return np.where((p > 0) & (p < 1), -(p * np.log2(q) + (1 - p) * np.log2(r)), 0.0)


def encode_mask(positions: np.ndarray, n: int, row_len: int) -> tuple[int, bytes, bytes]:
    """Code kept positions as ANS-coded bytes of the packed bit mask.

    Returns (method, model bytes, data bytes). Three models compete on their exact
    cross-entropy plus table size: i.i.d. Bernoulli over row-major mask bytes (no table), the
    empirical byte histogram (256 varints; wins when kept positions come in runs), and one
    Bernoulli per column over column-major bytes (row_len varints; wins when a few channels
    hold most of the large values, as in transformer activations). For i.i.d. positions the
    tables never pay for themselves, so Bernoulli is chosen.
    """
    k = positions.size
    mask = np.zeros(n, dtype=bool)
    mask[positions] = True
    packed = np.packbits(mask)
    counts = np.bincount(packed, minlength=256)
    bern = _bernoulli_byte_probs(n, k)
    bern_bits = float(-(counts * np.log2(np.maximum(bern / bern.sum(), 1e-300))).sum())
    hist_table = write_varints(counts)
    hist_bits = entropy_bits(counts) + 8 * len(hist_table)
    col_bits = np.inf
    n_rows = n // row_len if row_len else 0
    if 1 < row_len < n and n_rows >= 8:
        col_counts = np.bincount(positions % row_len, minlength=row_len)
        col_table = write_varints(col_counts)
        col_bits = float(n_rows * _h2_vec(col_counts / n_rows).sum()) + 8 * len(col_table)
    if col_bits < min(bern_bits, hist_bits):
        return POS_COLUMNS, col_table, _encode_columns(positions, n_rows, row_len, col_counts)
    symbols = packed.astype(np.int32)
    if bern_bits <= hist_bits:
        return POS_MASK_BERNOULLI, b"", ans_encode(symbols, bern)
    return POS_MASK_HISTOGRAM, hist_table, ans_encode(symbols, counts)


def _active_columns(col_counts: np.ndarray, n_rows: int) -> Iterator[tuple[int, np.ndarray]]:
    """Columns whose mask bits are uncertain (neither all kept nor all dropped), which are the
    only ones coded, in order, each with its byte-probability table (built a chunk at a time)."""
    active = np.flatnonzero((col_counts > 0) & (col_counts < n_rows))
    for start in range(0, active.size, _COLUMN_CHUNK):
        cols = active[start : start + _COLUMN_CHUNK]
        p = (col_counts[cols] / n_rows)[:, None]
        probs = p**_POPCOUNT * (1 - p) ** (8 - _POPCOUNT)
        yield from zip(cols.tolist(), probs, strict=True)


def _encode_columns(
    positions: np.ndarray, n_rows: int, row_len: int, col_counts: np.ndarray
) -> bytes:
    colmask = np.zeros((row_len, n_rows), dtype=bool)  # column-major mask, built directly
    colmask[positions % row_len, positions // row_len] = True
    cols = np.packbits(colmask, axis=1)
    coder = AnsCoder()
    # ANS is a stack: the last column goes in first.
    for c, probs in reversed(list(_active_columns(col_counts, n_rows))):
        coder.encode_reverse(cols[c].astype(np.int32), Categorical(probs, perfect=False))
    return coder.get_compressed().astype("<u4").tobytes()


def _decode_columns(data: bytes, n_rows: int, row_len: int, col_counts: np.ndarray) -> np.ndarray:
    if len(data) % 4:
        raise ValueError(f"corrupt position data: {len(data)} bytes is not whole ANS words")
    nb = (n_rows + 7) // 8
    cols = np.zeros((row_len, nb), dtype=np.uint8)
    cols[col_counts == n_rows] = np.packbits(np.ones(n_rows, dtype=bool))
    try:
        coder = AnsCoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))
        for c, probs in _active_columns(col_counts, n_rows):
            cols[c] = coder.decode(Categorical(probs, perfect=False), nb)
    except _INTERRUPTS:
        raise
    except BaseException as exc:  # constriction's ValueError, or a Rust panic (BaseException)
        raise ValueError(f"corrupt position data: ANS decoding failed ({exc})") from exc
    if not coder.is_empty():
        raise ValueError("corrupt position data: ANS data left over")
    bits = np.unpackbits(cols, axis=1, count=n_rows)
    # The decoded bits of each column must match its stored count (the data could decode to
    # other bits than the table promises); the total is then k.
    got = bits.sum(axis=1, dtype=np.int64)
    if not np.array_equal(got, col_counts):
        c = int(np.flatnonzero(got != col_counts)[0])
        raise ValueError(
            f"corrupt position data: column {c} holds {int(got[c])} positions, "
            f"its count says {int(col_counts[c])}"
        )
    flat = np.flatnonzero(bits.view(bool))
    col, row = np.divmod(flat, n_rows)  # ordered by column, then row
    # Reorder to row-major with a stable sort on the row (radix sort for 16-bit keys).
    key = row.astype(np.uint16) if n_rows <= 1 << 16 else row
    order = np.argsort(key, kind="stable")
    return row[order] * row_len + col[order]


def decode_mask(method: int, model: bytes, data: bytes, n: int, k: int, row_len: int) -> np.ndarray:
    """Kept positions (sorted int64) from encode_mask's output; ValueError if inconsistent."""
    nbytes = (n + 7) // 8
    if method == POS_COLUMNS:
        n_rows = n // row_len if row_len else 0
        if not (1 < row_len < n and n_rows >= 8):
            raise ValueError("corrupt position model: column coding needs a 2-D tensor")
        col_counts = read_counts(model, row_len, k, "position column counts", item_max=n_rows)
        positions = _decode_columns(data, n_rows, row_len, col_counts.astype(np.int64))
    else:
        if method == POS_MASK_BERNOULLI:
            if model:
                raise ValueError("corrupt position model: Bernoulli coding stores no table")
            counts = _bernoulli_byte_probs(n, k)
        elif method == POS_MASK_HISTOGRAM:
            counts = read_counts(model, 256, nbytes, "position histogram")
        else:
            raise ValueError(f"unknown position coding {method}")
        packed = ans_decode(data, counts, nbytes, "position data").astype(np.uint8)
        positions = np.flatnonzero(np.unpackbits(packed, count=n).view(bool))
    if positions.size != k:
        raise ValueError(f"corrupt position data: mask holds {positions.size} positions, not {k}")
    return positions
