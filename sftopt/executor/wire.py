"""What crosses a link: tensors through `sftopt.codec` at a codec level, adapters as raw fp32,
and the byte counts of both, by direction and party. The transport moves bytes only, so the
same code runs in one process or over torch.distributed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..codec import decode, encode


@dataclass(frozen=True)
class Level:
    """A codec level (keep ratio, bits) as the instance's codec table gives it."""

    keep_ratio: float
    bits: int


def pack(x: Any, level: Level, seed: int) -> bytes:
    """A tensor as codec bytes (per-row scales; level (1.0, 16) is raw fp16)."""
    return encode(x.detach().contiguous(), level.keep_ratio, level.bits, scale="row", seed=seed)


def unpack(data: bytes, elements: int) -> Any:
    """The fp32 tensor of ``elements`` elements back from codec bytes; ValueError when the
    stream is malformed or holds another count (checked before anything is allocated)."""
    x = decode(data, max_elements=max(elements, 1), max_bytes=4 * max(elements, 1))
    if x.numel() != elements:
        raise ValueError(f"the stream holds {x.numel()} elements, not the {elements} expected")
    return x.float()


_ADAPTER_DTYPES = {4: np.float32, 2: np.float16}


def pack_adapters(tensors: list[Any], dtype_bytes: int = 4) -> bytes:
    """Adapter tensors as raw floats of ``dtype_bytes`` (the profile's adapter_dtype_bytes: 4
    fp32, 2 fp16), one after another: what an upload sends and the cost model charges."""
    dtype = _ADAPTER_DTYPES[dtype_bytes]
    return b"".join(t.detach().float().contiguous().numpy().astype(dtype, copy=False).tobytes()
                    for t in tensors)


def unpack_adapters(data: bytes, like: list[Any], dtype_bytes: int = 4) -> list[Any]:
    """The tensors of `pack_adapters` back (as fp32), shaped like ``like``."""
    import torch

    want = sum(t.numel() for t in like)
    if len(data) != want * dtype_bytes:  # checked before reading: a wrong length is named
        raise ValueError(f"{len(data)} bytes, not the {want * dtype_bytes} of {want} values of "
                         f"{dtype_bytes} bytes expected")
    flat = np.frombuffer(data, dtype=_ADAPTER_DTYPES[dtype_bytes]).astype(np.float32)
    out, pos = [], 0
    for t in like:
        n = t.numel()
        out.append(torch.from_numpy(flat[pos:pos + n].copy()).reshape(t.shape))
        pos += n
    return out


@dataclass
class Meter:
    """Bytes sent in a round: hidden states up, gradients down, adapter uploads and gradient
    uploads (what the cost model charges); the adapters sent back to each device and the labels
    that travel with the hidden states (recorded, not charged: the model leaves them out)."""

    up: int = 0
    down: int = 0
    adapters: int = 0
    gradients: int = 0  # adapter gradients uploaded for the server to step (`cooperative`)
    broadcast: int = 0
    labels: int = 0
    # per codec level: [bytes, elements] of the tensors sent at it (both directions)
    by_level: dict[int, list[int]] = field(default_factory=dict)
    # per (codec level, cut): the same for the hidden states and gradients crossing at the cut
    # (the stage whose output they are), what `bits_per_elem_by_cut` is measured from
    by_cut: dict[tuple[int, int], list[int]] = field(default_factory=dict)

    def count(self, kind: str, n: int, level: int | None = None, elems: int = 0,
              cut: int | None = None) -> None:
        setattr(self, kind, getattr(self, kind) + n)
        if level is not None:
            _tally(self.by_level, level, n, elems)
            if cut is not None:
                _tally(self.by_cut, (level, cut), n, elems)

    @property
    def charged(self) -> int:
        """What the cost model's bytes_per_round counts: up, down, adapter and gradient
        uploads."""
        return self.up + self.down + self.adapters + self.gradients

    def dump(self) -> dict[str, Any]:
        """Everything counted, as JSON (a party's process sends it to rank 0)."""
        return {**self.record(), "by_level": {str(k): v for k, v in self.by_level.items()},
                "by_cut": self.cut_record()}

    def add(self, other: dict[str, Any]) -> None:
        """Another process's `dump` into this meter."""
        for kind, n in other.items():
            if kind == "by_level":
                for level, (nbytes, elems) in n.items():
                    _tally(self.by_level, int(level), nbytes, elems)
            elif kind == "by_cut":
                for level, cuts in n.items():
                    for cut, (nbytes, elems) in cuts.items():
                        _tally(self.by_cut, (int(level), int(cut)), nbytes, elems)
            else:
                setattr(self, kind, getattr(self, kind) + n)

    def cut_record(self) -> dict[str, dict[str, list[int]]]:
        """``by_cut`` as JSON: {level: {cut: [bytes, elements]}}, both in increasing order."""
        out: dict[str, dict[str, list[int]]] = {}
        for (level, cut), v in sorted(self.by_cut.items()):
            out.setdefault(str(level), {})[str(cut)] = list(v)
        return out

    def record(self) -> dict[str, Any]:
        return {"up": self.up, "down": self.down, "adapters": self.adapters,
                "gradients": self.gradients, "broadcast": self.broadcast,
                "labels": self.labels}


def _tally(table: dict[Any, list[int]], key: Any, nbytes: int, elems: int) -> None:
    entry = table.setdefault(key, [0, 0])
    entry[0] += nbytes
    entry[1] += elems
