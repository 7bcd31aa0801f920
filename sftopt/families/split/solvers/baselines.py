"""Baselines from the literature as plans of the same model: no compression, equal bandwidth,
one common cut, device-only, server-only and vanilla (sequential) split learning."""

from __future__ import annotations

import numpy as np

from ....core.options import MOVES, Deadline
from ....core.registry import register
from ....core.result import Result
from ..allocation import Allocation, exact_allocation
from ..cost import Terms, comm_delay
from ..options import OptionSpace
from ..plans import failed, infeasible, uncompressed_refusal
from ..schema import SEQUENTIAL, SplitInstance
from ..search import AllocFn, Search, sequential_allocation


def equal_band_allocation(t: Terms, bandwidth_hz: float) -> Allocation:
    """b_k = B/K for every device, server shares optimal for those bands (exact allocator on
    the comm delays folded into the constant term)."""
    k = len(t.compute)
    b = np.full(k, bandwidth_hz / k)
    fixed = Terms(t.compute + comm_delay(t, b), np.zeros(k), np.zeros(k), t.server_work,
                  t.snr_ul, t.snr_dl)
    al = exact_allocation(fixed, bandwidth_hz)
    return Allocation(b, al.share, al.round_delay, al.iterations)


def _best_common(search: Search, cuts: list[int], levels: list[int]
                 ) -> tuple[np.ndarray | None, Allocation | None, str]:
    """The best plan giving every device the same (cut, level) from the lists, and why not."""
    sp = search.space
    best, best_val, best_al = None, np.inf, None
    reasons = []
    for s in cuts:
        for c in levels:
            o = sp.option(s, c)
            if o < 0:
                continue
            plan = np.full(sp.K, o)
            if not sp.fits[:, o].all():
                bad = [sp.a.device_ids[k] for k in np.flatnonzero(~sp.fits[:, o])][:5]
                reasons.append(f"device memory: cut {s} does not fit device(s) {bad}")
                continue
            v, al = search.evaluate(plan)
            if not np.isfinite(v):
                reasons.append(f"server memory: cut {s} needs {sp.server_memory(plan):.4g} B > "
                               f"{sp.a.server_memory:.4g} B")
                continue
            if v < best_val:
                best, best_val, best_al = plan, v, al
    why = "; ".join(dict.fromkeys(reasons)) if best is None else ""
    return best, best_al, why


def _searched(instance: SplitInstance, sp: OptionSpace, alloc: AllocFn, max_iter: int,
              time_limit: float | None, what: str) -> Result:
    """Own-delay plan, memory repair and local search, all under ``alloc`` and within
    ``time_limit`` (past it the repair finishes with `Search.quick_repair`)."""
    search = Search(sp, alloc, Deadline(time_limit))
    plan = search.repair_memory(search.own_delay_plan())
    if plan is None:
        return failed(instance, "server memory: repair by deepening cuts failed")
    plan, _, moves = search.local_search(plan, max_iter=max_iter)
    _, al = search.evaluate(plan)
    return search.result(plan, al, iterations=moves, message=f"{what}; {moves} local-search moves")


@register("split", "no-compression", description="best plan with level 0 (uncompressed) only: "
                                                 "greedy-delay search over cuts, exact shares",
          options={"max_iter": MOVES})
def solve_no_compression(instance: SplitInstance, *, max_iter: int = 1000,
                         time_limit: float | None = None) -> Result:
    """Level 0 for every device; cuts by the `greedy-delay` search (own-delay start, memory
    repair, local search with at most ``max_iter`` moves or ``time_limit`` s); exact shares."""
    refused = uncompressed_refusal(instance)
    if refused:
        return refused
    sp = OptionSpace(instance)
    sp.fits &= (sp.opt_level == 0)[None, :]
    why = sp.diagnose()
    if why:
        return infeasible(instance, why)
    return _searched(instance, sp, exact_allocation, max_iter, time_limit, "level 0 only")


@register("split", "equal-bandwidth", description="cuts and levels searched as in greedy-delay, "
                                                  "b = B/K, server shares exact for those bands",
          options={"max_iter": MOVES})
def solve_equal_bandwidth(instance: SplitInstance, *, max_iter: int = 1000,
                          time_limit: float | None = None) -> Result:
    """Bandwidth split equally (b_k = B/K); server shares optimal given those bands; cuts and
    levels by the `greedy-delay` search under that allocation."""
    sp = OptionSpace(instance)
    why = sp.diagnose()
    if why:
        return infeasible(instance, why)
    return _searched(instance, sp, equal_band_allocation, max_iter, time_limit,
                     "equal bandwidth, exact server shares")


@register("split", "fixed-cut", description="one cut and one level for every device (the best "
                                            "common pair), exact shares")
def solve_fixed_cut(instance: SplitInstance) -> Result:
    """Every (cut, level) pair given to all devices alike, exact shares; the best one."""
    search = Search(OptionSpace(instance))
    sp = search.space
    why = sp.diagnose()
    if why:
        return infeasible(instance, why)
    plan, al, why = _best_common(search, [int(s) for s in sp.a.cuts],
                                 [int(c) for c in sp.a.allowed_levels])
    if plan is None:
        return infeasible(instance, why)
    s, c = sp.opt_cut[plan[0]], sp.opt_level[plan[0]]
    return search.result(plan, al, message=f"common cut {s}, level {c}")


def _pinned(instance: SplitInstance, cut: int, name: str) -> Result:
    search = Search(OptionSpace(instance))
    sp = search.space
    if len(sp.a.allowed_levels) == 0:
        return infeasible(instance, sp.diagnose() or "accuracy")
    lo, hi = instance.training.min_cut, instance.max_cut
    if not lo <= cut <= hi:
        return infeasible(instance, f"{name}: cut {cut} is outside [min_cut, max_cut] = "
                                    f"[{lo}, {hi}]")
    plan, al, why = _best_common(search, [cut], [int(c) for c in sp.a.allowed_levels])
    if plan is None:
        return infeasible(instance, why)
    return search.result(plan, al, message=f"{name}: cut {cut}, best common level "
                                           f"{sp.opt_level[plan[0]]}")


@register("split", "device-only", description="every device at the deepest allowed cut "
                                              "(max_cut; all on the device when max_cut = L+1), "
                                              "best common level")
def solve_device_only(instance: SplitInstance) -> Result:
    """All devices at cut max_cut (the whole model on the device if max_cut = L+1), the best
    common allowed level, exact shares."""
    return _pinned(instance, instance.max_cut, "device-only")


@register("split", "server-only", description="every device at cut 0 (embedding only), best "
                                              "common level, exact shares")
def solve_server_only(instance: SplitInstance) -> Result:
    """All devices at cut 0 (raw tokens never leave: the embedding stays on the device), the
    best common allowed level, exact shares."""
    return _pinned(instance, 0, "server-only")


@register("split", "vanilla-sl", online="fixed",
          description="sequential split learning: one device at a time with b = B and phi = 1, "
                      "level 0, best common cut")
def solve_vanilla_sl(instance: SplitInstance) -> Result:
    """Devices served one after another (round delay = sum of T_k), each with the whole band
    and server; no compression (level 0); the common cut minimising the total; the server holds
    one device's activations at a time."""
    refused = uncompressed_refusal(instance)
    if refused:
        return refused
    search = Search(OptionSpace(instance, schedule=SEQUENTIAL), sequential_allocation)
    sp = search.space
    plan, al, why = _best_common(search, [int(s) for s in sp.a.cuts], [0])
    if plan is None:
        return infeasible(instance, why)
    return search.result(plan, al, message=f"sequential, common cut {sp.opt_cut[plan[0]]}, "
                                           "level 0")
