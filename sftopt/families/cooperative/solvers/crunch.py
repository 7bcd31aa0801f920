"""`crunch`: cutting, recounting, checking: the min-max matching of blocks to devices for a
fixed band split (one block per device, as in the paper).

With the bands fixed, device k fine-tuning block j takes D_kj seconds (inf if it breaks
memory). The optimum is one of the D_kj: the least threshold under which every block has its
own device (a binary search over the sorted candidates: cutting). Under a threshold, each
device's feasible blocks are a depth prefix (from the output down), because a deeper block
takes less backward compute and keeps fewer activations; for such nested sets an assignment
exists iff, for every depth, the devices reaching that depth are at least the blocks from
there to the output (recounting; checking). Where the upload sizes break the nesting (blocks
of different sizes), the check is a bipartite matching instead, and the result says so.
"""

from __future__ import annotations

import numpy as np

from ....core.options import REALLOCATE, reals
from ....core.registry import register
from ....core.result import Result
from ..allocation import allocate, equal_bands, pair_delays
from ..matching import as_assignment, match
from ..plans import infeasible, make_result, preflight
from ..schema import CooperativeInstance


def nested(allowed: np.ndarray) -> np.ndarray | None:
    """The shallowest block index each device reaches if every row of ``allowed`` is a depth
    prefix (blocks s_k..N-1), else None."""
    N = allowed.shape[1]
    first = np.where(allowed.any(axis=1), allowed.argmax(axis=1), N)
    suffix = np.arange(N)[None, :] >= first[:, None]
    return first if np.array_equal(suffix, allowed) else None


def counting_check(first: np.ndarray, N: int) -> np.ndarray | None:
    """For nested feasible sets (device k takes blocks first_k..N-1): a device per block, or
    None. Blocks from the shallowest down: any device reaching a block also reaches every deeper
    one, so any free one will do; the count fails iff some depth has fewer devices than
    blocks."""
    order = np.argsort(first, kind="stable")
    reach = first[order]
    if len(first) < N or (reach[:N] > np.arange(N)).any():
        return None  # the i-th shallowest block needs i+1 devices reaching it
    owner = np.empty(N, dtype=int)
    owner[:] = order[:N]  # the i-th device in reach order takes the i-th block
    return owner


def check(allowed: np.ndarray) -> tuple[np.ndarray | None, bool]:
    """A device per block under ``allowed`` pairs, and whether the counting check decided."""
    first = nested(allowed)
    if first is not None:
        return counting_check(first, allowed.shape[1]), True
    return match(allowed), False


def min_max_matching(delays: np.ndarray) -> tuple[np.ndarray, float, int, bool] | None:
    """The assignment minimising the largest pair delay (None if none is finite): the owners,
    the threshold, the candidates tried and whether every check was a count."""
    cand = np.unique(delays[np.isfinite(delays)])
    lo, hi = 0, len(cand) - 1
    owner, counted = check(delays <= cand[hi])
    tries, all_counted = 1, counted
    if owner is None:
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        got, counted = check(delays <= cand[mid])
        tries += 1
        all_counted &= counted
        if got is None:
            lo = mid + 1
        else:
            hi, owner = mid, got
    return owner, float(cand[hi]), tries, all_counted


@register("cooperative", "crunch",
          description="min-max block matching for a fixed band split (counting check)",
          options={"bandwidth_hz": reals(0, 1e11, "the band split, Hz per device (one per "
                                         "device; default B/K each)", none=True),
                   "reallocate": REALLOCATE})
def solve_crunch(instance: CooperativeInstance, *, bandwidth_hz: list[float] | None = None,
                 reallocate: bool = False) -> Result:
    """The min-max matching for the band split ``bandwidth_hz`` (default B/K each); with
    ``reallocate`` the band is then split exactly for the matching found."""
    stop = preflight(instance, "crunch", one_block=True)
    if stop is not None:
        return stop
    a = instance.arrays
    if bandwidth_hz is None:
        bands = equal_bands(a)
    else:
        bands = np.asarray(bandwidth_hz, dtype=float)
        if bands.shape != (a.n_devices,) or (bands < 0).any() or not np.isfinite(bands).all():
            raise ValueError(f"bandwidth_hz: {a.n_devices} bands >= 0, one per device; got "
                             f"{bandwidth_hz!r}")
    got = min_max_matching(pair_delays(a, bands))
    if got is None:
        return infeasible(instance, "bandwidth: with this band split no assignment has a "
                                    "finite delay")
    owner, threshold, tries, counted = got
    assignment = as_assignment(a, owner)
    how = "counting checks" if counted else "matching checks (the depth nesting fails here)"
    if reallocate:
        bands = allocate(a, assignment).bandwidth
    return make_result(instance, assignment, bands, iterations=tries,
                       message=f"{tries} thresholds, {how}; min-max pair delay "
                               f"{threshold:.6g} s" + (", bands reallocated" if reallocate
                                                       else ""))
