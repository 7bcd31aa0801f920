"""Baselines of the paper's comparisons: random and greedy assignment with an equal band split,
and computation offloading (the edge server fine-tunes every block alone)."""

from __future__ import annotations

import numpy as np

from ....core.options import REALLOCATE, whole
from ....core.registry import register
from ....core.result import Result, Termination
from ..allocation import allocate, equal_bands, offload
from ..arrays import REL_TOL, Arrays
from ..cost import upload_delay
from ..matching import why_unassignable
from ..plans import infeasible, make_result, no_plan
from ..schema import CooperativeInstance


class _Holdings:
    """What every device holds while blocks are handed out one by one: its shallowest block,
    upload bits, adapter state and count, so that a block's effect on every device is one
    vectorised step (the cost model's `load` for the devices' whole sets)."""

    def __init__(self, a: Arrays):
        K = a.n_devices
        self.a = a
        self.top = np.full(K, a.n_blocks)  # no block: past the deepest
        self.bits = np.zeros(K)
        self.state = np.zeros(K)
        self.count = np.zeros(K, dtype=int)
        self.held: list[list[int]] = [[] for _ in range(K)]

    def with_block(self, j: int, bands: np.ndarray) -> np.ndarray:
        """Each device's delay if it also took block j (inf: no room or memory)."""
        a = self.a
        top = np.minimum(self.top, j)
        memory = a.weights + a.batch * a.act[top] + self.state + a.adapter_state[j]
        bits = self.bits + a.upload_bits[j]
        delay = a.compute[np.arange(a.n_devices), top] + upload_delay(bits, bands, a.snr_ul)
        ok = (self.count < a.max_blocks) & (memory <= a.memory * (1 + REL_TOL))
        return np.where(ok, delay, np.inf)

    def add(self, k: int, j: int) -> None:
        a = self.a
        self.top[k] = min(self.top[k], j)
        self.bits[k] += a.upload_bits[j]
        self.state[k] += a.adapter_state[j]
        self.count[k] += 1
        self.held[k].append(j)


def _finish(instance: CooperativeInstance, assignment: list[list[int]] | None, what: str,
            reallocate: bool) -> Result:
    a = instance.arrays
    if assignment is None:
        why = why_unassignable(a, a.fits)
        if why:
            return infeasible(instance, why)
        return no_plan(instance, Termination.ERROR, f"{what} found no assignment although one "
                                                    "exists (use exact)")
    bands = allocate(a, assignment).bandwidth if reallocate else equal_bands(a)
    return make_result(instance, assignment, bands,
                       message=f"{what}, {'exact' if reallocate else 'equal'} band split")


@register("cooperative", "greedy", description="blocks shallowest first, each to the device "
                                               "that finishes it soonest; equal bands",
          options={"reallocate": REALLOCATE})
def solve_greedy(instance: CooperativeInstance, *, reallocate: bool = False) -> Result:
    """Blocks from the shallowest (the most demanding) down, each to the device with room for
    it that would finish soonest with it, at the equal band split B/K (``reallocate``: then
    split the band exactly for the assignment)."""
    a = instance.arrays
    bands = equal_bands(a)
    h = _Holdings(a)
    for j in range(a.n_blocks):
        delay = h.with_block(j, bands)
        k = int(np.argmin(delay))
        if not np.isfinite(delay[k]):
            return _finish(instance, None, "greedy", reallocate)
        h.add(k, j)
    return _finish(instance, h.held, "greedy", reallocate)


@register("cooperative", "random", description="a seeded random assignment that fits; equal "
                                                "bands",
          options={"attempts": whole(1, 10**7, "random orders tried"),
                   "reallocate": REALLOCATE})
def solve_random(instance: CooperativeInstance, *, seed: int = 0, attempts: int = 100,
                 reallocate: bool = False) -> Result:
    """Blocks in a random order, each to a random device with room for it (memory and
    max_blocks); up to ``attempts`` orders. Equal band split (``reallocate``: exact)."""
    a = instance.arrays
    rng = np.random.default_rng(seed)
    bands = np.full(a.n_devices, a.bandwidth)  # room is about memory: any band will do
    for _ in range(attempts):
        h = _Holdings(a)
        for j in rng.permutation(a.n_blocks):
            room = np.flatnonzero(np.isfinite(h.with_block(int(j), bands)))
            if room.size == 0:
                break
            h.add(int(rng.choice(room)), int(j))
        else:
            return _finish(instance, h.held, f"random (seed {seed})", reallocate)
    return _finish(instance, None, f"random ({attempts} attempts)", reallocate)


@register("cooperative", "offload", description="computation offloading: the server "
                                                 "fine-tunes every block; exact bands")
def solve_offload(instance: CooperativeInstance) -> Result:
    """Every device runs the embedding and sends its output (at the upload level) to the
    server, which fine-tunes every block on all the batches; the band is split exactly for the
    uploads."""
    a = instance.arrays
    bands = offload(a)
    return make_result(instance, [[] for _ in range(a.n_devices)], bands.bandwidth,
                       server_blocks=list(range(a.n_blocks)), lower_bound=bands.lower_bound,
                       message="every block on the server")
