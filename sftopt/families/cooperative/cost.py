"""THE cost model of the `cooperative` family (docs/model.md section 7): delays, memory and bytes
of a plan.

Every solver, bound, the placement's predictions and the benchmark tables take their figures
from here. The verifier (verifier.py) is the deliberately independent second expression.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ...channel import shannon_rate
from ..split.cost import Terms
from .arrays import REL_TOL, Arrays
from .schema import CooperativeInstance

Assignment = Sequence[Sequence[int]]  # per device, the indices of the blocks it fine-tunes


@dataclass(frozen=True)
class Load:
    """What an assignment asks of each device: compute seconds, upload bits, memory bytes (0 for
    an idle device)."""

    compute: np.ndarray
    upload_bits: np.ndarray
    memory: np.ndarray
    busy: np.ndarray

    def terms(self, a: Arrays) -> Terms:
        """The busy devices' delay as `split` allocation terms: compute + upload / r(b), no
        downlink and no server work (so the exact `split` allocator shares the band)."""
        idx = np.flatnonzero(self.busy)
        zero = np.zeros(idx.size)
        return Terms(self.compute[idx], self.upload_bits[idx], zero, zero, a.snr_ul[idx],
                     a.snr_ul[idx])


def load(a: Arrays, assignment: Assignment) -> Load:
    """Per device: backward down to its shallowest block, every block's upload and state."""
    K = a.n_devices
    compute, bits, memory = np.zeros(K), np.zeros(K), np.zeros(K)
    busy = np.zeros(K, dtype=bool)
    for k, held in enumerate(assignment):
        if not held:
            continue
        held = np.asarray(held, dtype=int)
        top = held.min()  # blocks are indexed shallow to deep: the shallowest has the least j
        busy[k] = True
        compute[k] = a.compute[k, top]
        bits[k] = a.upload_bits[held].sum()
        memory[k] = a.weights + a.batch[k] * a.act[top] + a.adapter_state[held].sum()
    return Load(compute, bits, memory, busy)


def upload_delay(bits: np.ndarray, bandwidth: np.ndarray, snr: np.ndarray) -> np.ndarray:
    """bits / r(b) per device: 0 where nothing is sent, inf where bits meet a zero band."""
    r = shannon_rate(np.asarray(bandwidth, dtype=float), snr)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(bits > 0, bits / r, 0.0)


@dataclass
class Evaluation:
    """Every figure of a plan; ``violations`` empty iff feasible."""

    round_delay: float
    rounds: float
    total_delay: float
    device_delay: np.ndarray
    compute_s: np.ndarray
    comm_s: np.ndarray
    server_s: float
    device_memory: np.ndarray
    server_memory: float | None
    bytes_per_round: float
    violations: list[str] = field(default_factory=list)

    @property
    def feasible(self) -> bool:
        return not self.violations


def index_violations(inst: CooperativeInstance, assignment: Assignment,
                     server_blocks: Sequence[int] = ()) -> list[str]:
    """Why an assignment is not one of the instance's (block indices out of range, a block held
    twice or by nobody, more blocks than `max_blocks`, a partial offload)."""
    N, cap = inst.n_blocks, inst.training.max_blocks
    out, owners = [], {}
    for k, held in enumerate(assignment):
        for j in held:
            if not (isinstance(j, int | np.integer) and 0 <= j < N):
                out.append(f"devices[{k}].blocks: {j} is not a block index (0..{N - 1})")
            else:
                owners.setdefault(int(j), []).append(inst.devices[k].id)
        if len(held) > cap:
            out.append(f"devices[{k}].blocks: {len(held)} blocks, max_blocks is {cap}")
    if server_blocks:
        if sorted(server_blocks) != list(range(N)):
            out.append(f"server_blocks: the server fine-tunes every block (0..{N - 1}) or none;"
                       f" got {list(server_blocks)}")
        if owners:
            out.append("server_blocks: with every block on the server no device holds one; "
                       f"devices hold {sorted(owners)}")
        return out
    for j in range(N):
        who = owners.get(j, [])
        if len(who) != 1:
            out.append(f"block {j} (layer {inst.blocks[j]}): held by "
                       f"{', '.join(who) if who else 'no device'}; every block by exactly one")
    return out


def evaluate(inst: CooperativeInstance, assignment: Assignment, bandwidth: Sequence[float],
             server_blocks: Sequence[int] = ()) -> Evaluation:
    """Every figure of a plan: the device class (blocks on devices) or the offloading baseline
    (``server_blocks`` = every block)."""
    a = inst.arrays
    bad = index_violations(inst, assignment, server_blocks)
    if bad:
        raise ValueError("; ".join(bad))
    b = np.asarray(bandwidth, dtype=float)
    violations = []
    if server_blocks:
        compute, bits, memory = a.offload_device_compute, a.offload_bits, a.offload_device_memory
        busy = np.ones(a.n_devices, dtype=bool)
        server_s, server_memory = a.offload_server_work, a.offload_server_memory
        if server_memory > a.server_memory * (1 + REL_TOL):
            violations.append(f"server memory: {server_memory:.4g} B > {a.server_memory:.4g} B "
                              "(every block on every device's batch)")
    else:
        ld = load(a, assignment)
        compute, bits, memory, busy = ld.compute, ld.upload_bits, ld.memory, ld.busy
        server_s, server_memory = 0.0, None
    comm = upload_delay(bits, b, a.snr_ul)
    device = np.where(busy, compute + comm, 0.0)
    for k in np.flatnonzero(memory > a.memory * (1 + REL_TOL)):
        violations.append(f"device {a.device_ids[k]} memory: {memory[k]:.4g} B > "
                          f"{a.memory[k]:.4g} B")
    if (b < 0).any() or not np.isfinite(b).all():
        violations.append(f"bandwidth: every band finite and >= 0; got {b.tolist()}")
    if b.sum() > a.bandwidth * (1 + REL_TOL):
        violations.append(f"bandwidth: {b.sum():.6g} Hz > B = {a.bandwidth:.6g} Hz")
    for k in np.flatnonzero(~np.isfinite(comm)):
        violations.append(f"device {a.device_ids[k]}: bandwidth 0 but {bits[k]:.4g} bits to "
                          "upload (infinite delay)")
    round_delay = float(device.max(initial=0.0)) + server_s
    return Evaluation(round_delay=round_delay, rounds=a.rounds,
                      total_delay=a.rounds * round_delay, device_delay=device,
                      compute_s=compute * busy, comm_s=comm, server_s=server_s,
                      device_memory=memory, server_memory=server_memory,
                      bytes_per_round=float(bits.sum()) / 8.0, violations=violations)
