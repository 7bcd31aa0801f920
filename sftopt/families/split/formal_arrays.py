"""The formal model of docs/model.md section 5 with a plan's values fixed, evaluated on numpy
arrays: the verifier's route above ``verifier.PYOMO_MAX_DEVICES`` devices, where building the
Pyomo model costs seconds to minutes.

Like formal.py it is written from docs/model.md and reads the instance's fields (not its
arrays, nor any formula of cost.py). It evaluates the very constraints formal.py declares, in
the same order, under the same names and with the same slack convention as
``core.formal.read_constraints`` (slack over the larger magnitude of the two sides), so that
its report equals the Pyomo one; tests/test_verify_scale.py holds the two to 1e-9 on random
feasible and violated plans.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...core.formal import REL_TOL, gain, noise_w_per_hz
from .schema import PARALLEL, SplitInstance, SplitPlan


@dataclass
class Evaluation:
    """The fixed formal model's findings: what the verifier turns into a Report."""

    violations: list[str]
    slacks: dict[str, float]
    round_delay: float
    rounds: float
    objective: float


def _rows(labels: list[str], lhs: np.ndarray, rhs: np.ndarray,
          slacks: dict[str, float], violations: list[str], *, equality: bool = False,
          keep: np.ndarray | None = None) -> None:
    """Rows ``lhs <= rhs`` (``==`` if ``equality``) of one constraint family: relative slack
    (slack over the larger side, as read_constraints) into ``slacks``, the violated rows into
    ``violations``. ``keep`` masks rows left out (not evaluable)."""
    lhs, rhs = np.broadcast_arrays(np.asarray(lhs, float), np.asarray(rhs, float))
    with np.errstate(invalid="ignore", over="ignore"):
        slack = -np.abs(rhs - lhs) if equality else rhs - lhs
        scale = np.maximum(np.maximum(np.abs(lhs), np.abs(rhs)), 1e-300)
        rel = slack / scale
    idx = np.arange(lhs.size) if keep is None else np.flatnonzero(keep)
    if not equality:
        slacks.update(zip([labels[i] for i in idx] if keep is not None else labels,
                          rel.ravel()[idx].tolist(), strict=True))
    bad = idx[rel.ravel()[idx] < -REL_TOL]
    violations += [f"{labels[i]}: violated by {-slack.flat[i]:.6g} ({-rel.flat[i]:.3g} relative)"
                   for i in bad]


def evaluate_fixed(inst: SplitInstance, plan: SplitPlan) -> Evaluation:
    """Fix ``plan`` (already found structurally sound) in the formal model of ``inst``; set tc,
    ts, u and T to their least feasible values and evaluate every constraint."""
    st = inst.model.stages
    tr = inst.training
    L = len(st) - 2
    adb = inst.model.adapter_dtype_bytes
    levels = inst.codec.levels
    devs = inst.devices
    K = len(devs)
    B = inst.channel.bandwidth_hz
    n0 = noise_w_per_hz(inst.channel.noise_dbm_hz)

    # per stage i: work, weights + adapter with optimiser state, kept activations, adapters
    work = np.array([s.fwd_flops + s.bwd_flops for s in st])
    stage_mem = np.array([s.param_bytes + tr.state_factor * adb * s.lora_params for s in st])
    act = np.array([s.act_bytes for s in st])
    lora = np.array([float(s.lora_params) for s in st])
    w_dev = np.cumsum(work)  # stages 0..s
    w_srv = np.array([work[s + 1:].sum() for s in range(L + 2)])  # stages s+1..L+1
    act_dev, act_srv = np.cumsum(act), np.array([act[s + 1:].sum() for s in range(L + 2)])
    mem_dev, lora_dev = np.cumsum(stage_mem), np.cumsum(lora)
    # bits per element of level c at cut s = 0..L: the level's per-cut figure, else its own
    beta = np.array([[lv.bits_per_elem] * (L + 1) if lv.bits_per_elem_by_cut is None
                     else list(lv.bits_per_elem_by_cut) for lv in levels]).reshape(-1, L + 1)
    delta = np.array([lv.distortion for lv in levels])

    n = np.fromiter((d.batch for d in devs), float, K)
    flops = np.fromiter((d.flops for d in devs), float, K)
    mem = np.fromiter((d.memory_bytes for d in devs), float, K)
    p_up = np.fromiter((d.tx_power_w for d in devs), float, K)
    h = np.fromiter((gain(d, inst.channel) for d in devs), float, K)
    ids = [d.id for d in devs]
    s = np.fromiter((p.cut for p in plan.devices), np.int64, K)
    c = np.fromiter((p.level for p in plan.devices), np.int64, K)
    b = np.fromiter((p.bandwidth_hz for p in plan.devices), float, K)
    phi = np.fromiter((p.server_share for p in plan.devices), float, K)

    crossing = (s <= L).astype(float)  # the server part is not empty
    act_bits = n * inst.model.cut_elems * beta[c, np.minimum(s, L)] * crossing
    up = act_bits + 8.0 * adb * lora_dev[s] / tr.agg_every
    down = act_bits
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        def rate(power: np.ndarray | float) -> np.ndarray:
            r = b * np.log(1.0 + power * h / n0 / b) / math.log(2.0)
            return np.where(np.isfinite(r) & (r > 0), r, np.nan)  # nan: no finite rate

        r_up, r_down = rate(p_up), rate(inst.server.tx_power_w)
        t_up = np.where(up > 0, up / r_up, 0.0)
        t_down = np.where(down > 0, down / r_down, 0.0)
        moves = up + down > 0
        comm_bad = moves & ((b <= 0) | np.isnan(t_up) | np.isnan(t_down))
        tc = np.where(comm_bad, np.inf, np.where(moves, t_up + t_down, 0.0))
        srv = n * w_srv[s] / inst.server.flops
        ts = np.where((phi > 0) & (srv > 0), srv / phi, 0.0)
        srv_bad = (srv > 0) & ~(np.isfinite(ts) & (ts > 0))
        ts = np.where(srv_bad, np.inf, ts)

    found: list[tuple[int, int, str]] = []  # (device, comm 0 / server 1, message)
    for k in np.flatnonzero(comm_bad):
        why = "bandwidth 0" if b[k] == 0 else f"no finite rate at bandwidth {b[k]:.6g} Hz"
        found.append((k, 0, f"comm[{k}]: device {ids[k]} has {why} but {up[k] + down[k]:.4g} "
                            "bits to move (infinite delay)"))
    for k in np.flatnonzero(srv_bad):
        why = "server share 0" if phi[k] == 0 else \
            f"server share {phi[k]:.6g} (the delay overflows)"
        found.append((k, 1, f"server[{k}]: device {ids[k]} has {why} but {srv[k]:.4g} s "
                            "of server work (infinite delay)"))
    violations = [msg for _, _, msg in sorted(found)]
    comm_kept = np.isfinite(tc) & (tc != 0.0)
    srv_kept = ~srv_bad
    tc, ts = np.where(np.isfinite(tc), tc, 0.0), np.where(np.isfinite(ts), ts, 0.0)

    delay_k = n * w_dev[s] / flops + tc + ts
    parallel = plan.schedule == PARALLEL
    T = float(delay_k.max() if parallel else delay_k.sum())
    stages = np.arange(L + 2)
    below = s[:, None] < stages[None, :]  # sum_{s' < i} x[k, s'] for the fixed plan
    u = below.any(axis=0).astype(float)  # the least u meeting "holds"

    slacks: dict[str, float] = {}
    found = []

    def lab(name: str) -> list[str]:
        return [f"{name}[{i}]" for i in ids]

    one = np.ones(K)
    admissible = (s >= tr.min_cut) & (s <= inst.max_cut)
    _rows(lab("one_cut"), admissible.astype(float), one, slacks, found, equality=True)
    _rows(lab("one_level"), ((c >= 0) & (c < len(levels))).astype(float), one,
         slacks, found, equality=True)
    _rows(lab("accuracy"), delta[c], tr.max_distortion, slacks, found)
    with np.errstate(invalid="ignore", over="ignore"):
        _rows(lab("comm"), up * r_down + down * r_up, tc * r_up * r_down, slacks, found,
             keep=comm_kept)
        _rows(lab("server"), srv, ts * phi, slacks, found, keep=srv_kept)
    if parallel:
        _rows(lab("delay"), delay_k, T, slacks, found)
        _rows(["bandwidth"], b.sum(), B, slacks, found)
        _rows(["server_share"], phi.sum(), 1.0, slacks, found)
    else:
        _rows(["delay"], delay_k.sum(), T, slacks, found)
    _rows(lab("device_memory"), mem_dev[s] + n * act_dev[s], mem, slacks, found)
    _rows([f"holds[{i},{j}]" for i in ids for j in range(L + 2)],
         below.astype(float), np.broadcast_to(u, below.shape), slacks, found)
    static = float((stage_mem * u).sum())
    srv_acts = n * act_srv[s]
    if parallel:
        _rows(["server_memory"], static + srv_acts.sum(),
             inst.server.memory_bytes, slacks, found)
    else:
        _rows(lab("server_memory"), static + srv_acts,
             inst.server.memory_bytes, slacks, found)
    violations += found
    for name, v, hi in (("b", b, B), ("phi", phi, 1.0)):
        for k in np.flatnonzero((v < 0) | (v > hi * (1 + REL_TOL))):
            violations.append(f"{name}[{k}] = {v[k]:.6g} outside [0, {hi:g}]")

    total = n.sum()
    rounds = tr.rounds * (1.0 + tr.eta * float((n / total * delta[c]).sum()))
    return Evaluation(violations, slacks, T, rounds, rounds * T)
