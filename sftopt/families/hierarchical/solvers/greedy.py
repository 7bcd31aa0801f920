"""`greedy`: a three-tier plan for large fleets (1,000 users, 20 edges in about a second).

Users without an edge start at the edge with their best uplink (among edges where some cut
pair fits them). Each edge then takes the pair that needs the least cloud share at the best
epoch delay of that association (bisection on the delay, per edge the least share over its
pairs; shallower cloud cuts given up, edge by edge, where the cloud's memory overflows, and the
users of the least busy edge gathered on the others where even that does not fit: the cloud
holds one batch per busy edge). Users are then moved off the edges at the epoch delay (the best
shares tie every edge with cloud work there, so each is a candidate) while a move lowers it,
and the pairs chosen again, until neither helps.
"""

from __future__ import annotations

import numpy as np

from ....core.options import ITER_MAX, Deadline, whole
from ....core.registry import register
from ....core.result import Result, Termination
from ..arrays import REL_TOL, Arrays
from ..cost import Layout, best_shares, epoch_delays, memory
from ..plans import make_result, no_plan, preflight
from ..schema import HierarchicalInstance


def _sums(a: Arrays, edge_of: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (edge, pair): its users' summed turns and cloud seconds, and whether the pair fits
    all of them."""
    E, P = a.n_edges, a.n_pairs
    A, C, ok = np.zeros((E, P)), np.zeros((E, P)), np.ones((E, P), dtype=bool)
    cloud = a.cloud_time()
    for e in range(E):
        u = np.flatnonzero(edge_of == e)
        if len(u):
            A[e], C[e] = a.turn(e, u).sum(axis=0), cloud[u].sum(axis=0)
            ok[e] = a.fits(e, u).all(axis=0)
    return A, C, ok


def choose_pairs(a: Arrays, edge_of: np.ndarray) -> np.ndarray | None:
    """Per edge the pair of least cloud share at the best delay of this association (None if
    some busy edge has no pair that fits all its users, or the cloud's memory cannot be met)."""
    A, C, ok = _sums(a, edge_of)
    busy = np.bincount(edge_of, minlength=a.n_edges) > 0
    if not ok[busy].any(axis=1).all():
        return None

    def pick(T: float) -> tuple[np.ndarray, float]:
        with np.errstate(divide="ignore", invalid="ignore"):
            need = np.where(ok & (A < T), C / (T - A), np.inf)
        need[~busy] = 0.0
        pair = need.argmin(axis=1)
        return pair, float(need[np.arange(a.n_edges), pair].sum())

    lo = float(np.where(ok, A, np.inf)[busy].min(axis=1).max())
    hi = max(2.0 * lo, 1e-9)
    while pick(hi)[1] > 1.0:
        hi *= 2.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if pick(mid)[1] <= 1.0 else (mid, hi)
        if hi - lo <= 1e-12 * hi:
            break
    pair = pick(hi)[0]
    return _fit_cloud(a, edge_of, pair, A, C, ok, busy)


def _fit_cloud(a: Arrays, edge_of: np.ndarray, pair: np.ndarray, A: np.ndarray, C: np.ndarray,
               ok: np.ndarray, busy: np.ndarray) -> np.ndarray | None:
    """Deepen edge cuts until the cloud's memory holds: each step the change of one busy edge's
    pair that frees cloud memory at the least cost in epoch delay."""
    lay = Layout(edge_of, pair)
    for _ in range(a.n_edges * a.n_pairs):
        if memory(a, lay)[2] <= a.cloud_memory * (1 + REL_TOL):
            return lay.pair
        cloud_now = memory(a, lay)[2]
        best, best_key = None, None
        for e in np.flatnonzero(busy):
            for p in np.flatnonzero(ok[e] & (a.s2 > a.s2[lay.pair[e]])):
                trial = lay.pair.copy()
                trial[e] = p
                freed = cloud_now - memory(a, Layout(edge_of, trial))[2]
                if freed <= 0:
                    continue
                T = best_shares(A[np.arange(a.n_edges), trial] * busy,
                                C[np.arange(a.n_edges), trial] * busy)[0]
                key = T / freed
                if best_key is None or key < best_key:
                    best, best_key = trial, key
        if best is None:
            return None
        lay = Layout(edge_of, best)
    return None


def _epoch(a: Arrays, A: np.ndarray, C: np.ndarray) -> float:
    return best_shares(A, C)[0]


def _move_one(a: Arrays, edge_of: np.ndarray, pair: np.ndarray, slow: int, T: float,
              A: np.ndarray, C: np.ndarray, t_u: np.ndarray, c_u: np.ndarray,
              turns: np.ndarray, cloud: np.ndarray, fits: np.ndarray) -> np.ndarray | None:
    """The association with one user of edge ``slow`` moved to another edge, the move that
    lowers the epoch delay most below T among the first users (heaviest turns first, in chunks)
    that have one, and the cloud's memory holding (None: no such move)."""
    users = np.flatnonzero((edge_of == slow) & (a.fixed < 0))
    users = users[np.argsort(-t_u[users], kind="stable")]
    E = a.n_edges
    dest_turn = turns[np.arange(E), :, pair]  # E x U: each user's turn at each edge's pair
    dest_fits = fits[np.arange(E), :, pair]
    dest_cloud = cloud[:, pair].T  # E x U
    for lo in range(0, len(users), _CHUNK):
        chunk = users[lo:lo + _CHUNK]
        ok = dest_fits[:, chunk].T & a.allowed[chunk]  # users x edges
        ok[:, slow] = False
        uu, ee = np.nonzero(ok)
        if not len(uu):
            continue
        u, e = chunk[uu], ee
        A2 = np.repeat(A[None], len(u), axis=0)
        C2 = np.repeat(C[None], len(u), axis=0)
        rows = np.arange(len(u))
        A2[:, slow] -= t_u[u]
        C2[:, slow] -= c_u[u]
        A2[rows, e] += dest_turn[e, u]
        C2[rows, e] += dest_cloud[e, u]
        T2 = epoch_delays(A2, C2)
        for k in np.argsort(T2, kind="stable"):
            if T2[k] >= T * (1 - 1e-12):
                break
            trial = edge_of.copy()
            trial[u[k]] = e[k]
            if memory(a, Layout(trial, pair))[2] <= a.cloud_memory * (1 + REL_TOL):
                return trial
    return None


_CHUNK = 16  # users of the slow edge priced per vectorised call


def _consolidate(a: Arrays, edge_of: np.ndarray, fits_any: np.ndarray) -> np.ndarray | None:
    """The association with the busy edge of fewest users emptied, each of its users at its
    best uplink among the other busy edges that hold it (None: no edge can be emptied)."""
    count = np.bincount(edge_of, minlength=a.n_edges)
    busy = count > 0
    if busy.sum() <= 1:
        return None
    for e in np.flatnonzero(busy)[np.argsort(count[busy], kind="stable")]:
        users = np.flatnonzero(edge_of == e)
        if (a.fixed[users] >= 0).any():
            continue
        trial = edge_of.copy()
        others = busy.copy()
        others[e] = False
        for u in users:
            ok = fits_any[u] & others & a.allowed[u]
            if not ok.any():
                break
            trial[u] = int(np.where(ok, a.rate_ul[u], -1.0).argmax())
        else:
            return trial
    return None


def greedy_layout(a: Arrays, *, max_moves: int | None = None,
                  deadline: Deadline | None = None) -> Layout | None:
    """The greedy layout (None if it finds none that fits)."""
    deadline = deadline or Deadline()
    edge_of = a.fixed.copy()
    fits_any = np.stack([a.fits(e).any(axis=1) for e in range(a.n_edges)], axis=1)
    for u in np.flatnonzero(edge_of < 0):
        rate = np.where(fits_any[u], a.rate_ul[u], -1.0)
        edge_of[u] = int(rate.argmax())
    pair = choose_pairs(a, edge_of)
    while pair is None:  # the cloud holds one batch per busy edge: fewer busy edges, less
        edge_of = _consolidate(a, edge_of, fits_any)
        if edge_of is None:
            return None
        pair = choose_pairs(a, edge_of)
    moves = 0
    limit = 10 * a.n_users if max_moves is None else max_moves
    cloud = a.cloud_time()
    turns = np.stack([a.turn(e) for e in range(a.n_edges)])  # E x U x P
    fits = np.stack([a.fits(e) for e in range(a.n_edges)])
    while moves < limit and not deadline.expired():
        u_all = np.arange(a.n_users)
        t_u = turns[edge_of, u_all, pair[edge_of]]
        c_u = cloud[u_all, pair[edge_of]]
        A = np.bincount(edge_of, t_u, a.n_edges)
        C = np.bincount(edge_of, c_u, a.n_edges)
        T, phi = best_shares(A, C)
        # the best shares equalise every edge with cloud work at T: each edge at T is a
        # candidate to relieve, the one with the most turn time (least helped by shares) first
        delay = np.where(C > 0, A + C / np.where(phi > 0, phi, 1), A)
        slowest = np.flatnonzero(delay >= T * (1 - 1e-9))
        moved = None
        for slow in slowest[np.argsort(-A[slowest], kind="stable")]:
            moved = _move_one(a, edge_of, pair, slow, T, A, C, t_u, c_u, turns, cloud, fits)
            if moved is not None:
                edge_of, moves = moved, moves + 1
                break
        improved = moved is not None
        if not improved:
            new = choose_pairs(a, edge_of)
            if new is None or np.array_equal(new, pair):
                break
            pair = new
    lay = Layout(edge_of, pair)
    return lay if memory(a, lay)[2] <= a.cloud_memory * (1 + REL_TOL) else None


@register("hierarchical", "greedy",
          description="best-uplink association, least-share cut pairs, moves off the slowest "
                      "edge",
          options={"max_moves": whole(0, ITER_MAX, "most moves (default: a few per user)",
                                      none=True)})
def solve_greedy(instance: HierarchicalInstance, *, max_moves: int | None = None,
                 time_limit: float | None = None) -> Result:
    """The greedy plan; ``max_moves`` caps the users moved between edges (default 10 per
    user), ``time_limit`` stops the moves (the plan so far is kept)."""
    stop = preflight(instance)
    if stop is not None:
        return stop
    deadline = Deadline(time_limit)
    lay = greedy_layout(instance.arrays, max_moves=max_moves, deadline=deadline)
    if lay is None:  # not a proof: the heuristic's search has no plan, one may still exist
        return no_plan(instance, Termination.ERROR, "greedy found no layout that fits every "
                       "tier's memory (not a proof: exact decides whether one exists)")
    return make_result(instance, lay, termination=Termination.TIME_LIMIT if deadline.hit
                       else Termination.CONVERGED)
