"""Certified lower bounds on the epoch delay of every three-tier plan (docs/model.md section 8)."""

from __future__ import annotations

import numpy as np

from .arrays import Arrays


def relaxation(a: Arrays) -> float:
    """The largest of four bounds, each valid for every layout and share split (shares <= 1):
    the slowest user's fastest turn with the whole cloud; all users' fastest turns spread evenly
    over the edges; per edge, its fixed users' turns at their best common pair; and the cloud's
    work at its fastest pairs, done by one cloud whose shares sum to 1."""
    best_turn = np.full(a.n_users, np.inf)  # min over edges and pairs of turn + cloud
    best_cloud = np.full(a.n_users, np.inf)  # min over feasible pairs of the cloud's seconds
    cloud = a.cloud_time()
    per_edge = [0.0]
    for e in range(a.n_edges):
        here = np.flatnonzero(a.allowed[:, e])  # the others have no pair at e
        ok = a.fits(e)[here]
        t = np.where(ok, a.turn(e)[here] + cloud[here], np.inf)
        best_turn[here] = np.minimum(best_turn[here], t.min(axis=1, initial=np.inf))
        best_cloud[here] = np.minimum(best_cloud[here],
                                      np.where(ok, cloud[here], np.inf).min(axis=1,
                                                                             initial=np.inf))
        fixed = np.searchsorted(here, np.flatnonzero(a.fixed == e))  # rows of t
        if len(fixed):
            per_edge.append(float(t[fixed].sum(axis=0).min()))
    if np.isinf(best_turn).any():
        return float("inf")
    return float(max(best_turn.max(), best_turn.sum() / a.n_edges, max(per_edge),
                     best_cloud.sum()))
