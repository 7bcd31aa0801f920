"""Bandwidth for a fixed assignment, and the least band each (device, block) pair needs.

For a fixed assignment the problem is min T = max_k (C_k + U_k / r_k(b_k)) over sum b <= B:
the `split` family's exact allocator with no downlink and no server work (one convex
allocation code for both families). ``pair_bands`` is the inverse view the exact and dual
methods use: the band device k needs to fine-tune block j within a round delay T.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...channel import band_for_rate
from ..split.allocation import exact_allocation
from .arrays import Arrays
from .cost import Assignment, Load, load


@dataclass(frozen=True)
class Bands:
    """A band per device (0 for an idle one), the round delay they give and a certified lower
    bound on the least round delay of the assignment."""

    bandwidth: np.ndarray
    round_delay: float
    lower_bound: float


def allocate_load(a: Arrays, ld: Load, extra_s: float = 0.0) -> Bands:
    """The least round delay of a load (``extra_s``: seconds every device's delay is followed
    by, the offloading server's compute)."""
    b = np.zeros(a.n_devices)
    idx = np.flatnonzero(ld.busy)
    if idx.size == 0:
        return Bands(b, extra_s, extra_s)
    alloc = exact_allocation(ld.terms(a), a.bandwidth)
    b[idx] = alloc.bandwidth
    bound = alloc.lower_bound if np.isfinite(alloc.lower_bound) else alloc.round_delay
    return Bands(b, alloc.round_delay + extra_s, bound + extra_s)


def allocate(a: Arrays, assignment: Assignment) -> Bands:
    """The exact band split for an assignment of blocks to devices."""
    return allocate_load(a, load(a, assignment))


def offload(a: Arrays) -> Bands:
    """The exact band split of the offloading baseline (every device sends its embeddings)."""
    ld = Load(a.offload_device_compute, a.offload_bits, a.offload_device_memory,
              np.ones(a.n_devices, dtype=bool))
    return allocate_load(a, ld, a.offload_server_work)


def equal_bands(a: Arrays) -> np.ndarray:
    """B/K for every device (the fixed split of the paper's matching and baselines)."""
    return np.full(a.n_devices, a.bandwidth / a.n_devices)


def pair_delays(a: Arrays, bandwidth: np.ndarray) -> np.ndarray:
    """(K, N) round delay of device k fine-tuning block j alone with band b_k; inf where the
    pair breaks device memory or sends with no band."""
    from ...channel import shannon_rate

    r = shannon_rate(np.asarray(bandwidth, dtype=float), a.snr_ul)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        up = np.where(a.upload_bits[None, :] > 0, a.upload_bits[None, :] / r, 0.0)
    return np.where(a.fits, a.compute + up, np.inf)


def pair_bands(a: Arrays, T: float) -> np.ndarray:
    """(K, N) least band device k needs to fine-tune block j alone within round delay T (0 when
    it sends nothing in time, inf when no band is enough or the pair breaks memory)."""
    slack = T - a.compute
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(slack > 0, a.upload_bits[None, :] / slack, np.inf)
    need = band_for_rate(rate, np.broadcast_to(a.snr_ul[:, None], rate.shape))
    need = np.where(a.upload_bits[None, :] > 0, need, np.where(slack >= 0, 0.0, np.inf))
    return np.where(a.fits, need, np.inf)
