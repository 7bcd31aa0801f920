"""Assignments of blocks to devices: matchings under a capacity, and why none exists.

Shared by the solvers: the least-band assignment for a round delay (Hungarian method), whether
the memory-feasible pairs admit any assignment (a bipartite matching) and, when they do not, a
message naming the blocks that cannot all be placed (a Hall violator)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from .arrays import Arrays


def as_assignment(a: Arrays, owner: np.ndarray) -> list[list[int]]:
    """A device per block (``owner[j]``) as the blocks of each device."""
    out: list[list[int]] = [[] for _ in range(a.n_devices)]
    for j, k in enumerate(owner):
        out[int(k)].append(j)
    return out


def slots(a: Arrays) -> np.ndarray:
    """The device of every slot: each device repeated max_blocks times (a capacity as copies)."""
    return np.repeat(np.arange(a.n_devices), a.max_blocks)


def cheapest(cost: np.ndarray, cap: int = 1) -> tuple[np.ndarray, float] | None:
    """The assignment of every block (columns of the (K, N) ``cost``) to a device (row), at most
    ``cap`` blocks per device, of least total cost, costs adding up per pair (inf: forbidden);
    None if every assignment uses a forbidden pair. Returns (device of each block, total)."""
    K, N = cost.shape
    if K * cap < N:
        return None
    finite = np.isfinite(cost)
    if not finite.any(axis=0).all():
        return None
    big = (np.abs(cost[finite]).sum() + 1.0) * 2.0
    c = np.where(finite, cost, big)
    if cap > 1:
        c = np.repeat(c, cap, axis=0)
    rows, cols = linear_sum_assignment(c.T)  # blocks as rows: every block gets a device
    dev = cols // cap
    chosen = cost[dev, rows]
    if not np.isfinite(chosen).all():
        return None
    out = np.empty(N, dtype=int)
    out[rows] = dev
    return out, float(chosen.sum())


def match(allowed: np.ndarray, cap: int = 1) -> np.ndarray | None:
    """A device for every block (columns of the (K, N) boolean ``allowed``), at most ``cap`` per
    device, or None if there is none (Hopcroft-Karp)."""
    K, N = allowed.shape
    if K * cap < N:
        return None
    graph = csr_matrix(np.repeat(allowed, cap, axis=0).T.astype(np.int8))
    got = maximum_bipartite_matching(graph, perm_type="column")
    if (got < 0).any():
        return None
    return got // cap


def hall_violator(allowed: np.ndarray, cap: int = 1) -> tuple[list[int], list[int]] | None:
    """Blocks S and the devices N(S) that may hold them with cap |N(S)| < |S| (why no assignment
    exists: Hall's condition), or None if an assignment exists."""
    K, N = allowed.shape
    big = np.repeat(allowed, cap, axis=0)
    graph = csr_matrix(big.T.astype(np.int8))
    got = maximum_bipartite_matching(graph, perm_type="column")  # block -> slot
    free = np.flatnonzero(got < 0)
    if free.size == 0:
        return None
    owner = np.full(big.shape[0], -1)
    owner[got[got >= 0]] = np.flatnonzero(got >= 0)
    # blocks reachable from an unmatched block by alternating paths, and their slots
    seen_b, seen_s = {int(free[0])}, set()
    todo = [int(free[0])]
    while todo:
        j = todo.pop()
        for s in np.flatnonzero(big[:, j]):
            if s not in seen_s:
                seen_s.add(int(s))
                if owner[s] >= 0 and owner[s] not in seen_b:
                    seen_b.add(int(owner[s]))
                    todo.append(int(owner[s]))
    devices = sorted({s // cap for s in seen_s})
    return sorted(seen_b), devices


def why_unassignable(a: Arrays, allowed: np.ndarray, what: str = "memory") -> str:
    """A message naming the blocks that cannot all be placed under ``allowed`` pairs."""
    bad = hall_violator(allowed, a.max_blocks)
    if bad is None:
        return ""
    blocks, devices = bad
    at = ", ".join(str(int(a.layers[j])) for j in blocks)
    if not devices:
        need = (a.weights + a.batch.min() * a.act[blocks[0]] + a.adapter_state[blocks[0]])
        return (f"{what}: no device can hold the block at layer {at} (it needs at least "
                f"{need:.4g} B; the largest device has {a.memory.max():.4g} B)")
    return (f"{what}: the blocks at layers {at} fit ({what}) only on "
            f"{', '.join(a.device_ids[k] for k in devices)}, which take at most "
            f"{len(devices) * a.max_blocks} of those {len(blocks)} blocks (max_blocks "
            f"{a.max_blocks})")
