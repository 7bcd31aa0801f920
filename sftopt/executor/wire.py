"""What crosses a link: tensors through `sftopt.codec` at a codec level, adapters as raw fp32,
and the byte counts of both, by direction and party. The transport moves bytes only, so the
same code runs in one process or over torch.distributed."""

from __future__ import annotations

from collections import defaultdict
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


def unpack(data: bytes) -> Any:
    """The fp32 tensor back from codec bytes."""
    return decode(data).float()


def pack_adapters(tensors: list[Any]) -> bytes:
    """Adapter tensors as their raw fp32 bytes, one after another (what an upload sends)."""
    return b"".join(t.detach().float().contiguous().numpy().tobytes() for t in tensors)


def unpack_adapters(data: bytes, like: list[Any]) -> list[Any]:
    """The tensors of `pack_adapters` back, shaped like ``like``."""
    import torch

    flat = np.frombuffer(data, dtype=np.float32)
    out, pos = [], 0
    for t in like:
        n = t.numel()
        if pos + n > len(flat):
            raise ValueError(f"adapter upload of {len(data)} bytes is too short")
        out.append(torch.from_numpy(flat[pos:pos + n].copy()).reshape(t.shape))
        pos += n
    if pos != len(flat):
        raise ValueError(f"adapter upload of {len(data)} bytes holds {len(flat) - pos} extra "
                         "values")
    return out


@dataclass
class Meter:
    """Bytes sent in a round: hidden states up, gradients down, adapter uploads (charged by the
    cost model) and averaged adapters broadcast back (not charged: a broadcast)."""

    up: int = 0
    down: int = 0
    adapters: int = 0
    broadcast: int = 0
    by_link: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # per codec level: [bytes, elements] of the tensors sent at it (both directions)
    by_level: dict[int, list[int]] = field(default_factory=dict)

    def count(self, kind: str, src: str, dst: str, n: int, level: int | None = None,
              elems: int = 0) -> None:
        setattr(self, kind, getattr(self, kind) + n)
        self.by_link[f"{src}->{dst}"] += n
        if level is not None:
            entry = self.by_level.setdefault(level, [0, 0])
            entry[0] += n
            entry[1] += elems

    @property
    def charged(self) -> int:
        """What the cost model's bytes_per_round counts: up, down and adapter uploads."""
        return self.up + self.down + self.adapters
