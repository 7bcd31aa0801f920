"""The feasibility test of an epoch delay T: a MILP (HiGHS) that finds, if one exists, a layout
(association and a cut pair per edge) whose cloud shares fit in 1 within T.

For fixed T, edge e with pair p and users U_e needs the share
    phi_e = sum_u c_up / (T - sum_u a_uep)        (a: a user's turn, c: its cloud seconds)
With every user's edge fixed the sums are constants per (e, p), so phi_e is linear in the
binary choice x_ep of e's pair: minimise sum_e phi_e over one pair per edge under the cloud's
memory (the weights of the shallowest edge cut, one batch per edge); T is feasible iff the
minimum is <= 1. With users to associate, w_uep (u at e with pair p) makes the time row
bilinear, sum_u w_uep a_uep + sum_u w_uep c_up / phi_e <= T; multiplied by phi_e and with
v_uep = w_uep phi_e (exact for binary w by the four McCormick rows) it is linear again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from ...core import highs
from ...core.options import Deadline
from .arrays import REL_TOL, Arrays
from .cost import Layout

if TYPE_CHECKING:
    import highspy

MAX_ASSOCIATION_VARS = 4_000  # (user, edge, pair) choices beyond which the MILP is refused


def _highspy():
    import highspy

    return highspy


def association_size(a: Arrays) -> int:
    """Binary (user, edge, pair) choices the associating MILP would hold."""
    return int(sum(a.fits(e).sum() for e in range(a.n_edges)))


class Test:
    """``test(T)``: a layout whose best shares fit within T, or None (``undecided`` when time
    ran out before a proof either way)."""

    def __init__(self, a: Arrays, deadline: Deadline):
        self.a, self.deadline = a, deadline
        self.undecided = False
        self.cloud = a.cloud_time()
        self.fixed = bool((a.fixed >= 0).all())
        if self.fixed:  # per (edge, pair): the sums over its users, and the pairs all fit
            # (each edge's own users only: at 100,000 users every user at every edge took
            # seconds per edge)
            users = [np.flatnonzero(a.fixed == e) for e in range(a.n_edges)]
            self.busy = np.array([len(u) > 0 for u in users])
            self.A = np.array([a.turn(e, u).sum(axis=0) for e, u in enumerate(users)])
            self.C = np.array([self.cloud[u].sum(axis=0) for u in users])
            self.ok = np.array([a.fits(e, u).all(axis=0) for e, u in enumerate(users)])
            self.top = np.array([a.batch[u].max() if len(u) else 0.0 for u in users])
        else:  # users x pairs, per edge
            self.turn = [a.turn(e) for e in range(a.n_edges)]
            self.fits = [a.fits(e) for e in range(a.n_edges)]

    def __call__(self, T: float) -> Layout | None:
        self.undecided = False
        if self.deadline.expired():
            self.undecided = True
            return None
        return self._fixed(T) if self.fixed else self._associate(T)

    # ------------------------------------------------------------------ fixed association
    def _fixed(self, T: float) -> Layout | None:
        a, E, P = self.a, self.a.n_edges, self.a.n_pairs
        with np.errstate(divide="ignore", invalid="ignore"):
            need = np.where(self.ok & (self.A < T), self.C / (T - self.A), np.inf)
        need[~self.busy] = 0.0
        if np.isinf(need.min(axis=1)).any():
            return None
        pair = need.argmin(axis=1)
        lay = Layout(a.fixed.copy(), pair)
        if need[np.arange(E), pair].sum() > 1.0 + REL_TOL:
            return None  # every edge at its least share still needs more than the cloud
        if self._cloud_memory(pair) <= a.cloud_memory * (1 + REL_TOL):
            return lay
        hs = _highspy()
        # x_ep for finite needs of busy edges; Wc (cloud weights, a fraction of the cloud's
        # memory: in bytes the rows span 1e10 and HiGHS misjudged feasibility) last
        M = a.cloud_memory
        cols = [(e, p) for e in range(E) if self.busy[e] for p in range(P)
                if np.isfinite(need[e, p])]
        n = len(cols)
        h = self._model(np.append([need[e, p] for e, p in cols], 0.0),
                        np.append(np.zeros(n), 0.0), np.append(np.ones(n), hs.kHighsInf), n)
        col = {c: i for i, c in enumerate(cols)}
        rows: list[tuple[dict[int, float], float, float]] = []
        for e in np.flatnonzero(self.busy):
            rows.append(({col[(e, p)]: 1.0 for p in range(P) if (e, p) in col}, 1.0, 1.0))
            for p in range(P):
                if (e, p) in col:  # Wc >= cloud weights of the chosen pair
                    rows.append(({n: 1.0, col[(e, p)]: -a.cloud_held[p] / M}, 0.0,
                                 hs.kHighsInf))
        mem = {i: self.top[e] * a.cloud_act[p] / M for i, (e, p) in enumerate(cols)}
        mem[n] = 1.0
        rows.append((mem, -hs.kHighsInf, 1.0 + REL_TOL))
        x = self._solve(h, rows)
        if x is None:
            return None
        for i, (e, p) in enumerate(cols):
            if x[i] > 0.5:
                pair[e] = p
        return Layout(a.fixed.copy(), pair)

    def _cloud_memory(self, pair: np.ndarray) -> float:
        a = self.a
        busy = self.busy
        return float(a.cloud_held[pair[busy]].max() + (self.top[busy]
                                                        * a.cloud_act[pair[busy]]).sum())

    # ------------------------------------------------------------------ open association
    def _associate(self, T: float) -> Layout | None:
        a, E, P, U = self.a, self.a.n_edges, self.a.n_pairs, self.a.n_users
        hs = _highspy()
        inf = hs.kHighsInf
        x = [(e, p) for e in range(E) for p in range(P) if self.fits[e][:, p].any()]
        w = [(u, e, p) for e in range(E) for u, p in zip(*np.nonzero(self.fits[e]),
                                                         strict=True)
             if self.turn[e][u, p] + self.cloud[u, p] <= T]
        nx, nw = len(x), len(w)
        # columns: x | w | v | phi (E) | Wc | act (E); time rows in units of T and memory in
        # units of the cloud's (in seconds and bytes the rows span 1e10: HiGHS then called
        # feasible tests infeasible)
        M = a.cloud_memory
        X0, W0, V0, F0, C0, A0 = 0, nx, nx + nw, nx + 2 * nw, nx + 2 * nw + E, nx + 2 * nw + E + 1
        ncol = A0 + E
        cost = np.zeros(ncol)
        cost[F0:F0 + E] = 1.0
        ub = np.full(ncol, inf)
        ub[:V0 + nw] = 1.0
        ub[F0:F0 + E] = 1.0
        h = self._model(cost, np.zeros(ncol), ub, V0)
        xi = {c: X0 + i for i, c in enumerate(x)}
        rows: list[tuple[dict[int, float], float, float]] = []
        by_user: dict[int, dict[int, float]] = {u: {} for u in range(U)}
        time = [dict[int, float]() for _ in range(E)]
        for i, (u, e, p) in enumerate(w):
            wi, vi = W0 + i, V0 + i
            by_user[u][wi] = 1.0
            rows.append(({wi: 1.0, xi[(e, p)]: -1.0}, -inf, 0.0))  # w <= x
            rows.append(({vi: 1.0, wi: -1.0}, -inf, 0.0))  # v <= w
            rows.append(({vi: 1.0, F0 + e: -1.0}, -inf, 0.0))  # v <= phi
            rows.append(({vi: 1.0, F0 + e: -1.0, wi: -1.0}, -1.0, inf))  # v >= phi - 1 + w
            time[e][vi] = self.turn[e][u, p] / T
            time[e][wi] = self.cloud[u, p] / T
            rows.append(({A0 + e: 1.0, wi: -a.batch[u] * a.cloud_act[p] / M}, 0.0, inf))
        for u in range(U):
            if not by_user[u]:
                return None  # no edge and pair brings this user's turn within T
            rows.append((by_user[u], 1.0, 1.0))
        for e in range(E):
            pe = {xi[(e, p)]: 1.0 for p in range(P) if (e, p) in xi}
            if pe:
                rows.append((pe, 0.0, 1.0))
            time[e][F0 + e] = -1.0
            rows.append((time[e], -inf, 0.0))
        for (_e, p), i in xi.items():
            rows.append(({C0: 1.0, i: -a.cloud_held[p] / M}, 0.0, inf))
        rows.append(({C0: 1.0, **{A0 + e: 1.0 for e in range(E)}}, -inf, 1.0 + REL_TOL))
        sol = self._solve(h, rows)
        if sol is None:
            return None
        edge_of = np.full(U, -1)
        pair = np.zeros(E, dtype=int)
        for (e, p), i in xi.items():
            if sol[i] > 0.5:
                pair[e] = p
        for i, (u, e, _p) in enumerate(w):
            if sol[W0 + i] > 0.5:
                edge_of[u] = e
        return Layout(edge_of, pair)

    # ------------------------------------------------------------------ HiGHS
    def _model(self, cost: np.ndarray, lb: np.ndarray, ub: np.ndarray, n_int: int
               ) -> highspy.Highs:
        hs = _highspy()
        h = hs.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("mip_rel_gap", 1e-9)
        # rows are in units of T and of the cloud's memory: a tolerance of 1e-7 there moves a
        # share, and so the delay, by up to 1e-6 relative, more than exact's rel_tol
        h.setOptionValue("primal_feasibility_tolerance", 1e-10)
        h.setOptionValue("mip_feasibility_tolerance", 1e-10)
        h.addCols(len(cost), cost, lb, ub, 0, np.zeros(0, np.int32), np.zeros(0, np.int32),
                  np.zeros(0))
        if n_int:
            h.changeColsIntegrality(n_int, np.arange(n_int, dtype=np.int32),
                                    np.full(n_int, hs.HighsVarType.kInteger, dtype=np.uint8))
        return h

    def _solve(self, h: highspy.Highs, rows: list[tuple[dict[int, float], float, float]]
               ) -> np.ndarray | None:
        """Add ``rows`` and solve: the solution if the least share sum is <= 1, else None
        (``undecided`` set if HiGHS stopped without a proof)."""
        hs = _highspy()
        data, ri, ci = [], [], []
        for r, (coef, _lo, _hi) in enumerate(rows):
            for c, v in coef.items():
                ri.append(r)
                ci.append(c)
                data.append(v)
        A = sparse.csr_matrix((data, (ri, ci)), shape=(len(rows), h.getNumCol()))
        h.addRows(len(rows), np.array([r[1] for r in rows]), np.array([r[2] for r in rows]),
                  A.nnz, A.indptr[:-1].astype(np.int32), A.indices.astype(np.int32),
                  A.data)
        out = highs.run(h, self.deadline.seconds_left())
        if out.status == hs.HighsModelStatus.kInfeasible:
            return None
        if out.status != hs.HighsModelStatus.kOptimal:
            self.undecided = True
            return None
        if out.objective > 1.0 + 1e-9:
            return None
        return out.x
