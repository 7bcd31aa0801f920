"""THE cost model of the `hierarchical` family (docs/model.md section 8): a layout's epoch
delay, memory per tier and bytes.

Every solver, bound, the placement's predictions and the benchmark tables take their figures
from here; the verifier (verifier.py) is the independent second expression of the same model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .arrays import REL_TOL, Arrays


@dataclass(frozen=True)
class Layout:
    """Who is served where and how each edge cuts: ``edge_of[u]`` (edge index), ``pair[e]``
    (pair index; ignored for an edge without users)."""

    edge_of: np.ndarray
    pair: np.ndarray

    def users(self, e: int) -> np.ndarray:
        return np.flatnonzero(self.edge_of == e)

    def busy(self, n_edges: int) -> np.ndarray:
        return np.bincount(self.edge_of, minlength=n_edges) > 0


@dataclass(frozen=True)
class Load:
    """Per edge: the sum of its users' turns without the cloud (``turns``) and the cloud's
    seconds for them with the whole cloud (``cloud``); an edge's delay with cloud share phi is
    turns + cloud / phi."""

    turns: np.ndarray
    cloud: np.ndarray
    turn_s: np.ndarray  # per user
    cloud_s: np.ndarray  # per user, whole cloud


def load(a: Arrays, lay: Layout) -> Load:
    turns, cloud = np.zeros(a.n_edges), np.zeros(a.n_edges)
    turn_s, cloud_s = np.zeros(a.n_users), np.zeros(a.n_users)
    for e in range(a.n_edges):
        u = lay.users(e)
        if len(u):
            p = lay.pair[e]
            turn_s[u] = a.turn(e, u)[:, p]
            cloud_s[u] = a.cloud_time(u)[:, p]
            turns[e], cloud[e] = turn_s[u].sum(), cloud_s[u].sum()
    return Load(turns, cloud, turn_s, cloud_s)


def epoch_delays(turns: np.ndarray, cloud: np.ndarray, rel_tol: float = 1e-13) -> np.ndarray:
    """Per row of ``turns`` and ``cloud`` (rows x edges): the least largest edge delay
    turns_e + cloud_e / phi_e over shares with sum phi <= 1, the root T of
    sum_e cloud_e / (T - turns_e) = 1 (decreasing and convex in T above max turns; Newton from
    the left, where the tangent of a convex decreasing function never passes the root). Rows
    are solved together: the greedy search prices many moves at once."""
    turns, cloud = np.atleast_2d(turns), np.atleast_2d(cloud)
    on = cloud > 0
    T = np.maximum(np.where(on, turns + cloud, -np.inf).max(axis=1, initial=-np.inf),
                   turns.max(axis=1, initial=0.0))
    active = on.any(axis=1)
    for _ in range(200):
        if not active.any():
            break
        gap = np.where(on, T[:, None] - turns, 1.0)
        f = np.where(on, cloud / gap, 0.0).sum(axis=1) - 1.0
        step = f / np.where(on, cloud / gap**2, 0.0).sum(axis=1).clip(min=1e-300)
        # at the root to rounding; a small step alone is not (a tiny cloud_e makes every
        # step tiny while f is still far from 0)
        active &= (f > rel_tol) & (T + step != T)
        T = np.where(active, T + step, T)
    return T


def best_shares(turns: np.ndarray, cloud: np.ndarray) -> tuple[float, np.ndarray]:
    """The cloud shares that minimise the largest edge delay (``epoch_delays`` of one row) and
    that delay T."""
    on = cloud > 0
    if not on.any():
        return float(turns.max(initial=0.0)), np.zeros_like(turns)
    c, t = cloud[on], turns[on]
    T = float(epoch_delays(turns, cloud)[0])
    phi = np.zeros_like(turns)
    phi[on] = c / (T - t)
    phi[on] /= max(1.0, phi.sum())  # rounding: never above 1 in all
    T = float(max(turns.max(initial=0.0), (t + c / phi[on]).max()))
    return T, phi


@dataclass
class Evaluation:
    """A layout's figures under the cost model; ``violations`` name every broken constraint."""

    feasible: bool
    violations: list[str] = field(default_factory=list)
    epoch_delay: float = float("inf")
    edge_delay: np.ndarray | None = None  # s, per edge (0 without users)
    turn_s: np.ndarray | None = None  # s, per user, without the cloud
    cloud_s: np.ndarray | None = None  # s, per user, the cloud's compute at its edge's share
    rounds: float = 0.0
    total_delay: float = float("inf")
    bytes_per_epoch: float = 0.0
    radio_bytes: float = 0.0
    backhaul_bytes: float = 0.0
    user_memory: np.ndarray | None = None
    edge_memory: np.ndarray | None = None
    cloud_memory: float = 0.0


def memory(a: Arrays, lay: Layout) -> tuple[np.ndarray, np.ndarray, float]:
    """Peak bytes of every user, every edge (its weights and adapters, one batch: the largest
    of its users') and the cloud (the weights from the shallowest edge cut, one adapter copy,
    one batch per busy edge)."""
    user = a.user_mem[np.arange(a.n_users), lay.pair[lay.edge_of]]
    edge = np.zeros(a.n_edges)
    cloud_held, cloud_act = 0.0, 0.0
    for e in range(a.n_edges):
        u = lay.users(e)
        if len(u):
            p = lay.pair[e]
            top = a.batch[u].max()
            edge[e] = a.edge_held[p] + top * a.edge_act[p]
            cloud_held = max(cloud_held, a.cloud_held[p])
            cloud_act += top * a.cloud_act[p]
    return user, edge, cloud_held + cloud_act


def index_violations(a: Arrays, lay: Layout) -> list[str]:
    """Why a layout cannot be evaluated at all (indices out of range)."""
    out = []
    if len(lay.edge_of) != a.n_users or ((lay.edge_of < 0) | (lay.edge_of >= a.n_edges)).any():
        out.append(f"association: one edge index in 0..{a.n_edges - 1} per user")
    if len(lay.pair) != a.n_edges or ((lay.pair < 0) | (lay.pair >= a.n_pairs)).any():
        out.append("cuts: one pair (user_cut < edge_cut) of the instance per edge")
    return out


def evaluate(a: Arrays, lay: Layout, share: np.ndarray) -> Evaluation:
    """The figures of ``lay`` with cloud shares ``share`` (per edge)."""
    bad = index_violations(a, lay)
    if bad:
        return Evaluation(False, bad)
    share = np.asarray(share, dtype=float)
    v: list[str] = []
    busy = lay.busy(a.n_edges)
    wrong = np.flatnonzero(~a.allowed[np.arange(a.n_users), lay.edge_of])
    for u in wrong:
        v.append(f"users[{u}] ({a.user_ids[u]}): not allowed at edge "
                 f"{a.edge_ids[lay.edge_of[u]]}")
    user, edge, cloud = memory(a, lay)
    for u in np.flatnonzero(user > a.user_memory * (1 + REL_TOL)):
        v.append(f"memory of users[{u}] ({a.user_ids[u]}): {user[u]:.6g} > "
                 f"{a.user_memory[u]:.6g} B")
    for e in np.flatnonzero(edge > a.edge_memory * (1 + REL_TOL)):
        v.append(f"memory of edges[{e}] ({a.edge_ids[e]}): {edge[e]:.6g} > "
                 f"{a.edge_memory[e]:.6g} B")
    if cloud > a.cloud_memory * (1 + REL_TOL):
        v.append(f"memory of the cloud: {cloud:.6g} > {a.cloud_memory:.6g} B")
    if (share < 0).any() or share.sum() > 1 + REL_TOL:
        v.append(f"cloud shares: each >= 0, at most 1 in all; got sum {share.sum():.12g}")
    starved = np.flatnonzero(busy & (share <= 0))
    for e in starved:
        v.append(f"edges[{e}] ({a.edge_ids[e]}) has users but no cloud share")
    ld = load(a, lay)
    with np.errstate(divide="ignore"):
        cloud_s = np.where(share[lay.edge_of] > 0, ld.cloud_s / share[lay.edge_of], np.inf)
    edge_delay = np.where(busy, ld.turns + np.where(share > 0, ld.cloud / np.where(
        share > 0, share, 1.0), np.inf), 0.0)
    epoch = float(edge_delay.max())
    if not np.isfinite(epoch) and not starved.size:
        v.append("a user's link has rate 0: infinite delay")
    radio, backhaul = a.bits()
    rb = radio[np.arange(a.n_users), lay.pair[lay.edge_of]].sum() / 8.0
    bb = backhaul[np.arange(a.n_users), lay.pair[lay.edge_of]].sum() / 8.0
    return Evaluation(not v, v, epoch, edge_delay, ld.turn_s, cloud_s, a.rounds,
                      a.rounds * epoch, rb + bb, rb, bb, user, edge, cloud)
