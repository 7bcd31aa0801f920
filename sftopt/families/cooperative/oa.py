"""The feasibility test of a round delay T when a device may hold several blocks: a MILP with
outer approximation of each device's convex band need (HiGHS, imported when
the test is built: without highspy only max_blocks = 1 is solved exactly).

For T, device k whose shallowest block is j needs the band h_kj(U) = r_k^-1(U / (T - t_kj)) to
upload U bits in time: convex and increasing in U, 0 at 0, so its tangents lie below it and the
MILP with tangent cuts under-estimates every assignment's band. Its optimum above B proves T
infeasible; its answer's true band within B proves T feasible; otherwise the cuts at that
answer are added and the MILP solved again (the same answer cannot come back below B). HiGHS
keeps the model between rounds: a round adds rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from ...channel import LN2, band_for_rate
from ...core import highs
from ...core.options import Deadline
from .arrays import Arrays

if TYPE_CHECKING:
    import highspy


def _highspy():
    import highspy

    return highspy


_MAX_ROUNDS = 200  # cut rounds per test (each adds the cuts of a new assignment)


class BandMilp:
    """``test(T)``: an assignment (blocks per device) whose exact bands fit in B within T, or
    None; ``undecided`` is set when the time ran out before a proof either way."""

    def __init__(self, a: Arrays, deadline: Deadline):
        self.a, self.deadline = a, deadline
        self.undecided = False
        K, N = a.n_devices, a.n_blocks
        self.K, self.N, self.P = K, N, K * N
        # bit totals worth a first cut: every block alone and the m largest together
        top = np.cumsum(np.sort(a.upload_bits)[::-1])[: a.max_blocks]
        self.points = sorted({float(v) for v in (*a.upload_bits, *top) if v > 0})
        self.static = self._static_rows()

    # variables: x (k holds j), z (j is k's shallowest), u (bits k uploads if z), w (its band)
    def _ix(self, block: int, k: int, j: int) -> int:
        return block * self.P + k * self.N + j

    def _static_rows(self) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
        a, K, N, P = self.a, self.K, self.N, self.P
        X, Z, U = 0, 1, 2
        rows, lo, hi = [], [], []

        def row(entries: list[tuple[int, float]], low: float, high: float) -> None:
            rows.append(entries)
            lo.append(low)
            hi.append(high)

        for j in range(N):  # every block exactly once
            row([(self._ix(X, k, j), 1.0) for k in range(K)], 1.0, 1.0)
        for k in range(K):
            row([(self._ix(Z, k, j), 1.0) for j in range(N)], 0.0, 1.0)
            row([(self._ix(X, k, j), 1.0) for j in range(N)], 0.0, float(a.max_blocks))
            row([(self._ix(Z, k, j), a.weights + a.batch[k] * a.act[j]) for j in range(N)]
                + [(self._ix(X, k, j), a.adapter_state[j]) for j in range(N)],
                -np.inf, float(a.memory[k]))
            row([(self._ix(U, k, j), 1.0) for j in range(N)]
                + [(self._ix(X, k, j), -a.upload_bits[j]) for j in range(N)], 0.0, 0.0)
            for j in range(N):
                # k holds j only below (or at) its shallowest block, and holds its shallowest
                row([(self._ix(X, k, j), 1.0)] + [(self._ix(Z, k, i), -1.0)
                                                  for i in range(j + 1)], -np.inf, 0.0)
                row([(self._ix(Z, k, j), 1.0), (self._ix(X, k, j), -1.0)], -np.inf, 0.0)
        r = [i for i, e in enumerate(rows) for _ in e]
        c = [v for e in rows for v, _ in e]
        d = [x for e in rows for _, x in e]
        A = sparse.csr_matrix((d, (r, c)), shape=(len(rows), 4 * P))
        return A, np.array(lo, dtype=float), np.array(hi, dtype=float)

    def _need(self, T: float, k: np.ndarray, j: np.ndarray, u: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
        """h_kj(u) and dh/du at the given (k, j, u), u > 0, T > t_kj."""
        a = self.a
        slack = T - a.compute[k, j]
        b = band_for_rate(u / slack, a.snr_ul[k])
        z = a.snr_ul[k] / b
        dr = (np.log1p(z) - z / (1.0 + z)) / LN2  # r'(b)
        return b, 1.0 / (slack * dr)

    def __call__(self, T: float) -> list[list[int]] | None:
        a, K, N, P = self.a, self.K, self.N, self.P
        hs = _highspy()
        self.undecided = False
        slack = T - a.compute
        open_ = a.fits & (slack > 0)
        cap = np.where(open_, slack * a.snr_ul[:, None] / LN2 * (1.0 - 1e-9), 0.0)
        ub = np.concatenate([np.where(a.fits, 1.0, 0.0).ravel(), open_.ravel().astype(float),
                             cap.ravel(), np.full(P, hs.kHighsInf)])
        h = hs.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("mip_rel_gap", 1e-9)
        cost = np.concatenate([np.zeros(3 * P), np.ones(P)])
        h.addCols(4 * P, cost, np.zeros(4 * P), ub, 0, np.zeros(0, np.int32),
                  np.zeros(0, np.int32), np.zeros(0))
        h.changeColsIntegrality(2 * P, np.arange(2 * P, dtype=np.int32),
                                np.full(2 * P, hs.HighsVarType.kInteger, dtype=np.uint8))
        A, lo, hi = self.static
        _add_rows(h, A, lo, hi)
        # u[k,j] <= cap[k,j] z[k,j]: bits count only at the device's shallowest block
        Z, U = 1, 2
        idx = np.arange(P)
        gate = sparse.csr_matrix((np.concatenate([np.ones(P), -cap.ravel()]),
                                  (np.tile(idx, 2), np.concatenate([U * P + idx, Z * P + idx]))),
                                 shape=(P, 4 * P))
        _add_rows(h, gate, np.full(P, -hs.kHighsInf), np.zeros(P))
        kk, jj = np.nonzero(open_)
        cuts = [(int(k), int(j), u) for k, j in zip(kk, jj, strict=True) for u in self.points
                if u < cap[k, j]]
        for _ in range(_MAX_ROUNDS):
            if cuts:
                _add_rows(h, *self._cuts(T, cuts))
            if self.deadline.expired():
                self.undecided = True
                return None
            out = highs.run(h, self.deadline.seconds_left())
            if out.status == hs.HighsModelStatus.kInfeasible:  # no assignment within T
                return None
            if out.status != hs.HighsModelStatus.kOptimal:
                self.undecided = True
                return None
            if out.dual_bound > a.bandwidth:
                return None
            x = out.x[:P].reshape(K, N) > 0.5
            held = [list(np.flatnonzero(x[k])) for k in range(K)]
            busy = np.array([k for k in range(K) if held[k]])
            top = np.array([held[k][0] for k in busy])
            bits = np.array([a.upload_bits[held[k]].sum() for k in busy])
            send = bits > 0
            need = np.zeros(len(busy))
            if send.any():
                need[send] = self._need(T, busy[send], top[send], bits[send])[0]
            if need.sum() <= a.bandwidth:
                return [[int(j) for j in hh] for hh in held]
            cuts = [(int(k), int(j), float(u)) for k, j, u in zip(busy[send], top[send],
                                                                   bits[send], strict=True)]
        self.undecided = True
        return None

    def _cuts(self, T: float, cuts: list[tuple[int, int, float]]
              ) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
        """Tangent rows w[k,j] - h'(u0) u[k,j] >= h(u0) - h'(u0) u0 at the points given."""
        k = np.array([c[0] for c in cuts])
        j = np.array([c[1] for c in cuts])
        u = np.array([c[2] for c in cuts])
        h, dh = self._need(T, k, j, u)
        n = len(cuts)
        U, W = 2, 3
        cols = np.concatenate([[self._ix(W, a, b) for a, b in zip(k, j, strict=True)],
                               [self._ix(U, a, b) for a, b in zip(k, j, strict=True)]])
        A = sparse.csr_matrix((np.concatenate([np.ones(n), -dh]),
                               (np.tile(np.arange(n), 2), cols)), shape=(n, 4 * self.P))
        return A, h - dh * u, np.full(n, _highspy().kHighsInf)


def _add_rows(h: highspy.Highs, A: sparse.csr_matrix, lo: np.ndarray, hi: np.ndarray) -> None:
    h.addRows(A.shape[0], lo, hi, A.nnz, A.indptr[:-1].astype(np.int32),
              A.indices.astype(np.int32), A.data.astype(float))
