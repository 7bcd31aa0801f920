"""THE cost model of the `split` family (docs/model.md section 2): delays, memory and bytes of a
plan, vectorised over devices.

Every solver, bound, the simulator, the placement's predictions and the benchmark tables take
their figures from here. The verifier (verifier.py) is the deliberately independent second
expression of the same model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...channel import inv_rate, shannon_rate
from .arrays import Arrays
from .schema import PARALLEL, SEQUENTIAL, SplitInstance

SCHEDULES = (PARALLEL, SEQUENTIAL)
REL_TOL = 1e-9  # resource sums may exceed capacity by this much (relative)


@dataclass(frozen=True)
class Terms:
    """Per-device constants of the delay for fixed cuts and levels.

    T_k(b, phi) = compute + up_bits/r_ul(b) + down_bits/r_dl(b) + server_work/phi.
    """

    compute: np.ndarray  # s, device-side compute
    up_bits: np.ndarray  # bits up per round: activations + amortised adapter upload
    down_bits: np.ndarray  # bits down per round: gradients
    server_work: np.ndarray  # s, server compute with the whole server (phi = 1)
    snr_ul: np.ndarray  # Hz
    snr_dl: np.ndarray  # Hz

    def subset(self, idx: np.ndarray) -> Terms:
        return Terms(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))

    def with_gains(self, scale: np.ndarray) -> Terms:
        """The same terms under per-device power-gain factors (fading draw)."""
        return Terms(self.compute, self.up_bits, self.down_bits, self.server_work,
                     self.snr_ul * scale, self.snr_dl * scale)


def terms(inst: SplitInstance | Arrays, cuts: np.ndarray, levels: np.ndarray) -> Terms:
    """Delay constants for every device under cuts s_k and codec levels c_k."""
    a = inst.arrays if isinstance(inst, SplitInstance) else inst
    cuts = np.asarray(cuts, dtype=int)
    levels = np.asarray(levels, dtype=int)
    crosses = a.has_server[cuts]  # a cut L+1 sends no activations
    act_bits = np.where(crosses, a.batch * a.cut_elems * a.beta[levels, cuts], 0.0)
    return Terms(
        compute=a.batch * a.w_dev[cuts] / a.flops,
        up_bits=act_bits + a.adapter_bits[cuts] / a.agg_every,
        down_bits=act_bits,
        server_work=a.batch * a.w_srv[cuts] / a.server_flops,
        snr_ul=a.snr_ul,
        snr_dl=a.snr_dl,
    )


def comm_delay(t: Terms, bandwidth: np.ndarray) -> np.ndarray:
    """Seconds on air per round; inf where bits must move but the rate is not a finite positive
    number: a band of 0, or one so small that x/b overflows (b below x / 1.8e308 Hz: a delay
    beyond 1e300 s), never 0 for a vanishing band."""
    bandwidth = np.asarray(bandwidth, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r_ul = shannon_rate(bandwidth, t.snr_ul)
        r_dl = shannon_rate(bandwidth, t.snr_dl)
        up = np.where(t.up_bits > 0, t.up_bits / _usable(r_ul), 0.0)
        down = np.where(t.down_bits > 0, t.down_bits / _usable(r_dl), 0.0)
    return up + down


def _no_rate(b: float, x_ul: float, x_dl: float) -> str:
    """Why a device's band gives no usable rate (for a violation's message)."""
    if b == 0:
        return "no band"
    with np.errstate(over="ignore", divide="ignore"):
        if not np.isfinite(max(x_ul, x_dl) / b):
            return "a band so small that x/b overflows"
    return "the rate b log2(1 + x/b) rounds to 0 at that band (signal far below the noise)"


def _usable(rate: np.ndarray) -> np.ndarray:
    """The rate where it is a finite positive number, else 0 (so bits / rate is inf)."""
    return np.where(np.isfinite(rate) & (rate > 0), rate, 0.0)


def comm_delay_and_slope(t: Terms, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The comm delay D(b) and its slope D'(b) (negative) in one pass, for b > 0.

    D = bits / r(b) summed over up and down, D' = bits (1/r)'(b) (channel.inv_rate). Used for
    tangent cuts and bounds; where nothing is sent both are 0.
    """
    d = 0.0
    slope = 0.0
    for bits, x in ((t.up_bits, t.snr_ul), (t.down_bits, t.snr_dl)):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            inv, minus_dinv = inv_rate(b, x, order=1)
        send = bits > 0
        d = d + np.where(send, bits * inv, 0.0)
        slope = slope - np.where(send, bits * minus_dinv, 0.0)
    return d, slope


def comm_slope(t: Terms, b: np.ndarray) -> np.ndarray:
    """d/db of the comm delay (negative), b > 0; 0 where nothing is sent."""
    return comm_delay_and_slope(t, b)[1]


def server_delay(t: Terms, share: np.ndarray) -> np.ndarray:
    """Server seconds per round; inf where work is due but the share is 0 or so small that
    the delay overflows (never 0 for a vanishing share)."""
    share = np.asarray(share, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        usable = np.where(np.isfinite(share) & (share > 0), share, 0.0)
        return np.where(t.server_work > 0, t.server_work / usable, 0.0)


def device_delays(t: Terms, bandwidth: np.ndarray, share: np.ndarray) -> np.ndarray:
    """T_k for every device."""
    return t.compute + comm_delay(t, bandwidth) + server_delay(t, share)


def rounds_needed(inst: SplitInstance | Arrays, levels: np.ndarray) -> float:
    """R = rounds (1 + eta delta_bar), delta_bar the sample-weighted mean distortion."""
    a = inst.arrays if isinstance(inst, SplitInstance) else inst
    delta_bar = float(a.sample_weight @ a.delta[np.asarray(levels, dtype=int)])
    return a.rounds * (1.0 + a.eta * delta_bar)


def device_memory(inst: SplitInstance | Arrays, cuts: np.ndarray) -> np.ndarray:
    """Left-hand side of each device's memory constraint, bytes."""
    a = inst.arrays if isinstance(inst, SplitInstance) else inst
    return a.device_memory(cuts)


def server_memory(inst: SplitInstance | Arrays, cuts: np.ndarray,
                  schedule: str = PARALLEL) -> float:
    """Left-hand side of the server memory constraint, bytes.

    The server keeps one copy of the stages above the shallowest cut; activations are held for
    every device at once (parallel) or for one device at a time (sequential).
    """
    a = inst.arrays if isinstance(inst, SplitInstance) else inst
    cuts = np.asarray(cuts, dtype=int)
    acts = a.server_acts(cuts)
    held = acts.sum() if schedule == PARALLEL else acts.max()
    return float(a.srv_static[cuts.min()] + held)


def bytes_per_round(inst: SplitInstance | Arrays, cuts: np.ndarray, levels: np.ndarray) -> float:
    """Bytes over the air per round, all devices, up and down, adapters amortised."""
    t = terms(inst, cuts, levels)
    return float((t.up_bits + t.down_bits).sum() / 8.0)


@dataclass(frozen=True)
class Evaluation:
    """Every figure of a plan under the cost model, and what (if anything) it violates."""

    device_delay: np.ndarray
    compute_s: np.ndarray
    comm_s: np.ndarray
    server_s: np.ndarray
    round_delay: float
    rounds: float
    total_delay: float
    device_memory: np.ndarray
    server_memory: float
    bytes_per_round: float
    violations: list[str] = field(default_factory=list)

    @property
    def feasible(self) -> bool:
        return not self.violations


def _over(value: float, cap: float) -> bool:
    return value > cap * (1.0 + REL_TOL)


def index_violations(inst: SplitInstance, cuts: np.ndarray, levels: np.ndarray) -> list[str]:
    """Choices the model cannot even evaluate: another number of devices, a cut outside
    [min_cut, max_cut], a level that is not an index into codec.levels (-1 included: never
    counted from the end)."""
    a = inst.arrays
    if len(cuts) != a.n_devices or len(levels) != a.n_devices:
        return [f"plan has {len(cuts)} cuts and {len(levels)} levels, instance "
                f"{a.n_devices} devices"]
    out = []
    for k, (s, c) in enumerate(zip(cuts, levels, strict=True)):
        dev = a.device_ids[k]
        if not (inst.training.min_cut <= s <= inst.max_cut):
            out.append(f"device {dev}: cut {s} outside [min_cut, max_cut] = "
                       f"[{inst.training.min_cut}, {inst.max_cut}]")
        if not (0 <= c < len(a.delta)):
            out.append(f"device {dev}: level {c} is not an index into codec.levels "
                       f"(0..{len(a.delta) - 1})")
    return out


def number_violations(ids: list[str], bandwidth: np.ndarray, share: np.ndarray) -> list[str]:
    """Bands and shares that are not finite numbers >= 0 (nan, inf, negative), by device."""
    out = []
    for what, sym, unit, arr in (("bandwidth", "b", " Hz", bandwidth),
                                 ("server share", "phi", "", share)):
        for k in np.flatnonzero(~(np.isfinite(arr) & (arr >= 0))):
            out.append(f"{what}: device {ids[k]} has {sym} = {float(arr[k])!r}{unit}: not a finite "
                       "number >= 0")
    return out


def check_structure(inst: SplitInstance, cuts: np.ndarray, levels: np.ndarray) -> list[str]:
    """Violations of the discrete choices alone: cut range, level index, accuracy, memory."""
    out = index_violations(inst, cuts, levels)
    if out:
        return out
    a = inst.arrays
    for k, c in enumerate(levels):
        if a.delta[c] > inst.training.max_distortion:
            out.append(f"accuracy: device {a.device_ids[k]} level {c} has distortion "
                       f"{a.delta[c]:g} > max_distortion {inst.training.max_distortion:g}")
    mem = device_memory(inst, cuts)
    for k in np.flatnonzero(mem > a.memory * (1 + REL_TOL)):
        out.append(f"device memory: device {a.device_ids[k]} needs {mem[k]:.4g} B > "
                   f"{a.memory[k]:.4g} B")
    return out


def evaluate(
    inst: SplitInstance,
    cuts: np.ndarray,
    levels: np.ndarray,
    bandwidth: np.ndarray,
    share: np.ndarray,
    *,
    schedule: str = PARALLEL,
    gain_scale: np.ndarray | None = None,
) -> Evaluation:
    """Evaluate a plan on the average channel (or under a fading draw ``gain_scale``)."""
    a = inst.arrays
    cuts = np.asarray(cuts, dtype=int)
    levels = np.asarray(levels, dtype=int)
    bandwidth = np.asarray(bandwidth, dtype=float)
    share = np.asarray(share, dtype=float)
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    violations = index_violations(inst, cuts, levels)
    if not violations and (bandwidth.shape != cuts.shape or share.shape != cuts.shape):
        violations = [f"plan has {bandwidth.size} bands and {share.size} shares for "
                      f"{len(cuts)} devices"]
    if violations:
        nan = np.full(len(cuts), np.nan)
        return Evaluation(nan, nan, nan, nan, np.nan, np.nan, np.nan, nan, np.nan, np.nan,
                          violations)
    violations = check_structure(inst, cuts, levels)

    t = terms(a, cuts, levels)
    if gain_scale is not None:
        t = t.with_gains(np.asarray(gain_scale, dtype=float))
    violations += number_violations(a.device_ids, bandwidth, share)
    comm = comm_delay(t, bandwidth)
    srv = server_delay(t, share)
    delays = t.compute + comm + srv
    for k in np.flatnonzero(~np.isfinite(comm) & np.isfinite(bandwidth) & (bandwidth >= 0)):
        violations.append(f"bandwidth: device {a.device_ids[k]} has b = {bandwidth[k]:.6g} Hz "
                          "but data to send: " + _no_rate(bandwidth[k], t.snr_ul[k],
                                                           t.snr_dl[k]) + " (infinite delay)")
    for k in np.flatnonzero(~np.isfinite(srv) & np.isfinite(share) & (share >= 0)):
        violations.append(f"server share: device {a.device_ids[k]} has phi = {share[k]:.6g} "
                          "but server work: " + ("no share" if share[k] == 0 else
                                                 "the server delay overflows") +
                          " (infinite delay)")

    if schedule == PARALLEL:
        round_delay = float(delays.max())
        if _over(bandwidth.sum(), a.bandwidth):
            violations.append(f"bandwidth: sum b = {bandwidth.sum():.6g} Hz > B = "
                              f"{a.bandwidth:.6g} Hz")
        if _over(share.sum(), 1.0):
            violations.append(f"server share: sum phi = {share.sum():.9g} > 1")
    else:
        round_delay = float(delays.sum())
        if any(_over(b, a.bandwidth) for b in bandwidth):
            violations.append("bandwidth: some b_k > B")
        if any(_over(p, 1.0) for p in share):
            violations.append("server share: some phi_k > 1")
    srv_mem = server_memory(a, cuts, schedule)
    if _over(srv_mem, a.server_memory):
        violations.append(f"server memory: needs {srv_mem:.4g} B > {a.server_memory:.4g} B")
    rounds = rounds_needed(a, levels)
    if not violations and not np.isfinite(rounds * round_delay):
        violations.append(f"total delay: R x T = {rounds:.6g} x {round_delay:.6g} s is not "
                          "finite")
    return Evaluation(
        device_delay=delays,
        compute_s=t.compute,
        comm_s=comm,
        server_s=srv,
        round_delay=round_delay,
        rounds=rounds,
        total_delay=rounds * round_delay,
        device_memory=device_memory(a, cuts),
        server_memory=srv_mem,
        bytes_per_round=float((t.up_bits + t.down_bits).sum() / 8.0),
        violations=violations,
    )
