"""`lagrange`: plans rounded from the dual of the `lagrangian` bound, returned with that bound.

The `lagrangian` bound (lagrangian.py; docs/solvers.md, "Lower bounds") evaluates, at round
delays T, the dual L(nu) = sum_k min_o (w_k delta_o + nu g_ko(T)) - nu of the least mean
distortion over resource tests g (certified per-option needs of band, server share and server
memory). At a T near the optimum's round delay the options the devices take in the dual's inner
minimum form a plan that spends about the resources there are: rounding the dual.

1. The bound, computed by bounds.lagrangian_bound (the function `lower_bound(method=
   "lagrangian")` uses), keeping the ``points`` evaluated round delays of least dual value.
2. At each kept point, for its ``columns`` tests of best dual value, each device takes its
   entry of least w_k delta_o + nu g_ko(T). The shallowest cut couples the devices through the
   server's weights, so the rounding is done for each floor s (every cut >= s) from the plain
   choice's shallowest cut up, the server activations fitted by the same prices (the moves
   freeing the most activation bytes per unit of score first), and the floor of least total
   score is kept. The exact allocator shares band and server (`Search.evaluate`); a plan that
   still breaks the server memory is repaired (`Search.repair_memory`).
3. The best (point, test)'s price scaled by SCALES: a price off the dual's optimum trades
   distortion for resources, and the exact allocation says which trade pays.
4. The best plan polished by ``polish`` improving steps of `Search.local_search` (from 100
   devices a step is a batch of devices moved at once).

The bound is returned with the plan (`Result.bound`); when its refinement was complete (not cut
by the time limit) the result is marked as carrying the `lagrangian` bound
(`Result.bound_methods`), so `certify` does not compute the same bound again. With
``time_limit`` the bound may take ``bound_share`` of it; a bound cut short is still certified,
only looser, and certify then computes its own. Without a dual to round (the time limit hit
first) the plan is greedy-delay's start (own-delay choice, memory repaired).
"""

from __future__ import annotations

import time

import numpy as np

from ....core.options import ITER_MAX, Deadline, real, whole
from ....core.registry import register
from ....core.result import Result
from ..bounds import lagrangian_bound
from ..cost import REL_TOL
from ..lagrangian import LagrangianBound
from ..options import OptionSpace, OptionTable
from ..plans import failed, infeasible
from ..schema import SplitInstance
from ..search import Search

# the best (round delay, test)'s price scaled by these: a price off the dual's optimum trades
# distortion for resources, and the exact allocation decides which trade pays
SCALES = (0.7, 0.8, 0.9, 0.95, 1.05, 1.1, 1.25, 1.4)
BOUND_METHOD = "lagrangian"  # the family bound method whose computation this solver shares


def _column_needs(lb: LagrangianBound, p: dict, case: int, col: int) -> np.ndarray:
    """Per-entry needs of the test column ``col`` of case ``case`` at the point p, in the
    layout of LagrangianBound._needs (tests, tests mixed with the memory share for each alpha,
    the memory share alone, each test with its refined alpha); inf where not valid."""
    val, m = p["val"], lb.mem[case]
    nt = val.shape[0]
    if not lb.alphas or col < nt:
        g = val[col]
    else:
        grid = nt * (1 + len(lb.alphas))
        if col < grid:
            al = lb.alphas[(col - nt) // nt]
            g = al * val[(col - nt) % nt] + (1.0 - al) * m
        elif col == grid:
            g = m
        else:
            al = p["alpha"][case][col - grid - 1]
            g = al * val[col - grid - 1] + (1.0 - al) * m
    with np.errstate(invalid="ignore"):
        return np.where(lb.valid[case] & np.isfinite(g), g, np.inf)


class _Rounder:
    """Plans from the duals of a LagrangianBound's points: per device the entry of least
    w_k delta_o + nu g_ko(T) (the dual's inner minimum), the server memory fitted by the same
    prices (cheapest memory freed per unit of that score), as OptionSpace plans."""

    def __init__(self, lb: LagrangianBound, space: OptionSpace, table: OptionTable):
        e = self.e = lb.e
        self.lb, self.space = lb, space
        level_pos = np.repeat(e.gl, np.diff(np.r_[e.starts, e.n]))
        self.w = e.W[level_pos, e.k]  # w_k delta_o per entry
        self.dev_start = np.flatnonzero(np.r_[True, e.k[1:] != e.k[:-1]])
        self.sizes = np.diff(np.r_[self.dev_start, e.n])
        self.act = table.srv_act[e.k, e.o]
        index = np.full((int(space.opt_cut.max()) + 1, int(space.opt_level.max()) + 1), -1)
        index[space.opt_cut, space.opt_level] = np.arange(space.O)
        self.option = index[table.cut[e.k, e.o], table.level[e.k, e.o]]  # entry -> option
        self.limit = space.a.server_memory * (1.0 + REL_TOL)
        self.cut = table.cut[e.k, e.o]
        self.floors = np.unique(self.cut)

    def directions(self, p: dict, n_cols: int) -> list[tuple[int, int]]:
        """(case, column) of the ``n_cols`` best test columns of every solved case at p."""
        out = []
        for c in np.flatnonzero(p["done"]):
            L = p["L"][c]
            good = np.flatnonzero(np.isfinite(L))
            out += [(int(c), int(col))
                    for col in good[np.argsort(-L[good], kind="stable")][:n_cols]]
        return out

    def plan(self, p: dict, case: int, col: int, scale: float = 1.0) -> np.ndarray | None:
        """The plan rounded from the test ``col`` of ``case`` at p, its price times ``scale``
        (None: some device has no option meeting p's round delay)."""
        if len(self.dev_start) != self.e.K:  # a device without an option: nothing to round
            return None
        with np.errstate(invalid="ignore"):
            score = self.w + scale * p["nu"][case][col] * _column_needs(self.lb, p, case, col)
        return self._floored(np.where(np.isnan(score), np.inf, score))

    def _floored(self, score: np.ndarray) -> np.ndarray | None:
        """The plan of least total score over the shallowest cuts ("floors") s: every device
        at a cut >= s, its least-score entry there, then activations fitted by price
        (`_fit_memory`) to the server memory left beside the weights above s. A floor whose
        plan still breaks the memory counts only if none fits (the caller repairs it)."""
        best, best_key = None, (True, np.inf)
        first = self._least(score)
        if first is None:
            return None
        for s in self.floors[self.floors >= self.cut[first].min()]:
            sc = np.where(self.cut >= s, score, np.inf)
            pick = self._least(sc)
            if pick is None:
                break  # deeper floors leave even fewer options
            fits = self.space.server_memory(self.option[pick]) <= self.limit
            if not fits:
                pick = self._fit_memory(sc, pick)
            plan = self.option[pick]
            key = (self.space.server_memory(plan) > self.limit, float(score[pick].sum()))
            if key < best_key:
                best, best_key = plan, key
            if fits:  # deeper floors only restrict more: their least score is no less
                break
        return best

    def _least(self, score: np.ndarray) -> np.ndarray | None:
        """Per device the first entry of least score (entries grouped by device); None if a
        device has only infinite scores (no option meets the round delay)."""
        least = np.minimum.reduceat(score, self.dev_start)
        if not np.isfinite(least).all():
            return None
        hit = np.flatnonzero(score <= np.repeat(least, self.sizes))
        return hit[np.r_[True, self.e.k[hit][1:] != self.e.k[hit][:-1]]]

    def _fit_memory(self, score: np.ndarray, pick: np.ndarray, rounds: int = 4) -> np.ndarray:
        """``pick`` with devices moved, cheapest score increase per byte of server activations
        freed first, until the server memory (cost.server_memory, via the option space) fits;
        as far as ``rounds`` passes get (the caller repairs what is left exactly)."""
        e, sp = self.e, self.space
        for _ in range(rounds):
            over = sp.server_memory(self.option[pick]) - self.limit
            if over <= 0:
                break
            own = np.repeat(pick, self.sizes)  # each entry's device's current entry
            freed = self.act[own] - self.act
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(freed > 0, (score - score[own]) / freed, np.inf)
            best = np.minimum.reduceat(ratio, self.dev_start)
            hit = np.flatnonzero(ratio <= np.repeat(best, self.sizes))
            first = hit[np.r_[True, e.k[hit][1:] != e.k[hit][:-1]]]  # one per device
            # only moves that free memory within the floor's options (finite ratio)
            first = first[np.isfinite(ratio[first])]
            if first.size == 0:
                break
            dev = e.k[first]
            order = np.argsort(ratio[first], kind="stable")
            gain = np.cumsum(freed[first][order])
            take = order[:int(np.searchsorted(gain, over)) + 1]
            pick = pick.copy()
            pick[dev[take]] = first[take]
        return pick


@register("split", "lagrange", bound=True,
          description="plans rounded from the lagrangian bound's dual (each device its "
                      "option in the dual's inner minimum, per shallowest cut, exact shares, "
                      "a scan of the price), a short local-search polish; returns the "
                      "lagrangian bound too",
          options={"points": whole(1, 100, "round delays whose duals are rounded (the best "
                                            "by dual value among those the bound evaluated)"),
                   "columns": whole(1, 100, "tests rounded per round delay (the best by dual "
                                            "value)"),
                   "polish": whole(0, ITER_MAX, "improving steps of the final local search "
                                               "(from 100 devices a step is a batch of "
                                               "devices; 0: none)"),
                   "bound_share": real(0, 1, "share of time_limit the bound may take",
                                       lo_open=True)})
def solve_lagrange(instance: SplitInstance, *, points: int = 3, columns: int = 3,
                   polish: int = 5, bound_share: float = 0.7,
                   time_limit: float | None = None) -> Result:
    """The best plan rounded from the `lagrangian` bound's dual (module docstring), polished
    by at most ``polish`` improving local-search steps, with the bound attached."""
    space = OptionSpace(instance)
    why = space.diagnose()
    if why:
        return infeasible(instance, why)
    deadline = Deadline(time_limit)
    t0 = time.perf_counter()
    table = space.table()
    keep: list[LagrangianBound] = []
    bound, complete = lagrangian_bound(instance, table, deadline=deadline.part(bound_share),
                                       keep=keep, keep_points=points)
    t1 = time.perf_counter()
    search = Search(space, deadline=deadline)
    seen: set[bytes] = set()
    best: list = [None, np.inf]  # plan, objective
    tried = 0

    def consider(plan: np.ndarray | None) -> float:
        """Evaluate a rounded plan (memory repaired if it still breaks it); keep the best."""
        nonlocal tried
        if plan is None or plan.tobytes() in seen:
            return np.inf
        seen.add(plan.tobytes())
        tried += 1
        if not space.memory_ok(plan):
            plan = search.repair_memory(plan)
            if plan is None:
                return np.inf
        val = search.evaluate(plan)[0]
        if val < best[1]:
            best[:] = [plan, val]
        return val

    if keep and keep[0].points:
        lb = keep[0]
        rounder = _Rounder(lb, space, table)
        solved = sorted((p for p in lb.points if p["L"] is not None and p["done"].any()),
                        key=lb.point_value)[:points]
        # each (point, test) at its dual price, then the best one's price scaled
        got = []
        for p in solved:
            for case, col in rounder.directions(p, columns):
                if tried and deadline.expired():
                    break
                got.append((consider(rounder.plan(p, case, col)), id(p), p, case, col))
        if got:
            _, _, p, case, col = min(got, key=lambda g: g[:2])
            for scale in SCALES:
                if deadline.expired():
                    break
                consider(rounder.plan(p, case, col, scale))
    origin = f"best of {tried} plans rounded from the lagrangian dual"
    if best[0] is None:  # no dual to round (cut by the time limit) or nothing fitted
        origin = (f"no plan rounded from the lagrangian dual ({tried} tried), the search's "
                  f"start plan instead")
        plan, _ = search.start(None)
        if plan is None:
            return failed(instance, "server memory: repair by deepening cuts failed")
        consider(plan)
    plan, val, moves = best[0], best[1], 0
    t2 = time.perf_counter()
    if polish > 0:
        plan, val, moves = search.local_search(plan, max_iter=polish)
        # the polish budget is this algorithm's own rule, not a limit that cut a search short
        search.capped = False
    _, al = search.evaluate(plan)
    t3 = time.perf_counter()
    if not complete:  # the time limit cut the bound short: the result says so
        deadline.hit = True
    res = search.result(plan, al, iterations=moves,
                        message=f"{origin}, then {moves} local-search moves; bound "
                                f"{'complete' if complete else 'cut at the time limit'} (s: "
                                f"bound {t1 - t0:.3g}, rounding {t2 - t1:.3g}, polish "
                                f"{t3 - t2:.3g})")
    res = res.with_bound(bound)
    if complete:
        res = res.with_methods(BOUND_METHOD)
    return res
