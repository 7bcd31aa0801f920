"""The formal Pyomo model of the `hierarchical` problem, written from docs/model.md section 8
independently of cost.py (it reads the instance's fields, not its arrays, and shares no formula
with the cost model).

Binaries y[e,p] (edge e cuts at pair p = (s1, s2)) and z[u,e] (user u is served by edge e),
cloud shares phi[e], the cloud's held weights Wc, one batch of cloud activations per edge
act[e], and the epoch delay T, the objective. Each edge's delay, the sum over its users of
their turns and of the cloud's seconds at its share, is at most T. The verifier fixes a plan's
values in this model; ``pairs`` restricts each edge's candidate pairs (the verifier passes the
plan's, so that large plans stay quick to check).
"""

from __future__ import annotations

import math

import pyomo.environ as pyo

from ...core.formal import noise_w_per_hz
from .schema import HierarchicalInstance


def _gain(user, e: int, own: int, pathloss) -> float | None:
    """The user's large-scale gain to edge e (None where the instance gives none)."""
    v = user.gain if user.gain is not None else user.distance_m
    if isinstance(v, tuple | list):
        v = v[e]
    elif e != own:
        return None
    if user.gain is not None:
        return v
    return 10.0 ** (-(pathloss.a_db + 10.0 * pathloss.g * math.log10(v / 1000.0)) / 10.0)


def build_hierarchical_model(inst: HierarchicalInstance, *,
                             pairs: list[list[tuple[int, int]]] | None = None
                             ) -> pyo.ConcreteModel:
    m = pyo.ConcreteModel(name=f"hierarchical:{inst.name}")
    st, tr = inst.model.stages, inst.training
    L = len(st) - 2
    top = L if tr.max_edge_cut is None else tr.max_edge_cut
    all_pairs = [(a, b) for a in range(tr.min_user_cut, top) for b in range(a + 1, top + 1)]
    cand = pairs or [all_pairs] * len(inst.edges)
    level = inst.codec.levels[tr.level]
    omega, adb = tr.state_factor, inst.model.adapter_dtype_bytes
    n0 = noise_w_per_hz(inst.radio.noise_dbm_hz)
    ids = [e.id for e in inst.edges]
    users, edges = inst.users, inst.edges

    def span(lo: int, hi: int, f) -> float:  # sum of f over stages lo..hi
        return sum(f(st[i]) for i in range(lo, hi + 1))

    work = lambda s: s.fwd_flops + s.bwd_flops  # noqa: E731
    held = lambda s: s.param_bytes + omega * adb * s.lora_params  # noqa: E731
    act = lambda s: s.act_bytes  # noqa: E731
    bits_of = lambda s: 8.0 * adb * s.lora_params  # noqa: E731

    def coded(cut: int) -> float:  # bits per element of the level at a cut (docs/model.md)
        per_cut = level.bits_per_elem_by_cut
        return level.bits_per_elem if per_cut is None else per_cut[cut]

    m.E = pyo.RangeSet(0, len(edges) - 1)
    m.U = pyo.RangeSet(0, len(users) - 1)
    m.EP = pyo.Set(dimen=2, initialize=[(e, p) for e in m.E for p in range(len(cand[e]))])
    allowed = [(u, e) for u in m.U for e in m.E
               if users[u].edge is None or ids[e] == users[u].edge]
    m.UE = pyo.Set(dimen=2, initialize=allowed)
    m.y = pyo.Var(m.EP, domain=pyo.Binary)
    m.z = pyo.Var(m.UE, domain=pyo.Binary)
    m.busy = pyo.Var(m.E, domain=pyo.Binary)
    m.phi = pyo.Var(m.E, bounds=(0.0, 1.0))
    m.Wc = pyo.Var(domain=pyo.NonNegativeReals)
    m.act = pyo.Var(m.E, domain=pyo.NonNegativeReals)
    m.T = pyo.Var(domain=pyo.NonNegativeReals)

    def pair_of(e: int, p: int) -> tuple[int, int]:
        return cand[e][p]

    def turn(u: int, e: int, p: int) -> float:
        """User u's turn at edge e with pair p, without the cloud (docs/model.md section 8)."""
        s1, s2 = pair_of(e, p)
        us, ed = users[u], edges[e]
        own = ids.index(us.edge) if us.edge is not None else -1
        g = _gain(us, e, own, inst.radio.pathloss)
        B = ed.bandwidth_hz
        r_up = B * math.log2(1.0 + us.tx_power_w * g / (n0 * B))
        r_down = B * math.log2(1.0 + ed.tx_power_w * g / (n0 * B))
        n = us.batch
        a_bits = n * inst.model.cut_elems * coded(s1)  # the user's output, over the cell
        b_bits = n * inst.model.cut_elems * coded(s2)  # the edge's output, over the backhaul
        user_adapters = span(0, s1, bits_of)
        edge_adapters = span(s1 + 1, s2, bits_of)
        return (n * span(0, s1, work) / us.flops
                + a_bits / r_up + a_bits / r_down + user_adapters / r_up
                + n * span(s1 + 1, s2, work) / ed.flops
                + (2.0 * b_bits + user_adapters + edge_adapters) / ed.backhaul_bps)

    def cloud_s(u: int, e: int, p: int) -> float:
        return users[u].batch * span(pair_of(e, p)[1] + 1, L + 1, work) / inst.cloud.flops

    def cloud_weights(e: int, p: int) -> float:  # the cloud's stages for edge e
        return span(pair_of(e, p)[1] + 1, L + 1, held)

    def cloud_batch(u: int, e: int, p: int) -> float:  # one batch of u's cloud activations
        return users[u].batch * span(pair_of(e, p)[1] + 1, L + 1, act)

    m.one_pair = pyo.Constraint(m.E, rule=lambda m, e: sum(
        m.y[e, p] for p in range(len(cand[e]))) == 1)
    m.one_edge = pyo.Constraint(m.U, rule=lambda m, u: sum(
        m.z[u, e] for e in m.E if (u, e) in m.UE) == 1)
    m.busy_if = pyo.Constraint(m.UE, rule=lambda m, u, e: m.busy[e] >= m.z[u, e])
    m.shares = pyo.Constraint(expr=sum(m.phi[e] for e in m.E) <= 1.0)

    # delay: edge e's users one after another, the cloud's part at share phi_e
    def edge_delay(m, e):
        served = [u for u in m.U if (u, e) in m.UE]
        own = sum(m.z[u, e] * m.y[e, p] * turn(u, e, p) for u in served
                  for p in range(len(cand[e])))
        cloud = sum(m.z[u, e] * m.y[e, p] * cloud_s(u, e, p) for u in served
                    for p in range(len(cand[e])))
        return m.phi[e] * own + cloud <= m.phi[e] * m.T  # own + cloud / phi <= T, times phi
    m.delay = pyo.Constraint(m.E, rule=edge_delay)

    # memory
    m.user_mem = pyo.Constraint(m.UE, rule=lambda m, u, e: m.z[u, e] * sum(
        m.y[e, p] * (span(0, pair_of(e, p)[0], held) + users[u].batch * span(
            0, pair_of(e, p)[0], act)) for p in range(len(cand[e])))
        <= users[u].memory_bytes)
    m.edge_mem = pyo.Constraint(m.UE, rule=lambda m, u, e: m.z[u, e] * sum(
        m.y[e, p] * (span(pair_of(e, p)[0] + 1, pair_of(e, p)[1], held) + users[u].batch
                     * span(pair_of(e, p)[0] + 1, pair_of(e, p)[1], act))
        for p in range(len(cand[e]))) <= edges[e].memory_bytes)
    m.cloud_held = pyo.Constraint(m.E, rule=lambda m, e: m.Wc >= m.busy[e] * sum(
        m.y[e, p] * cloud_weights(e, p) for p in range(len(cand[e]))))
    m.cloud_batch = pyo.Constraint(m.UE, rule=lambda m, u, e: m.act[e] >= m.z[u, e] * sum(
        m.y[e, p] * cloud_batch(u, e, p) for p in range(len(cand[e]))))
    m.cloud_mem = pyo.Constraint(expr=m.Wc + sum(m.act[e] for e in m.E)
                                 <= inst.cloud.memory_bytes)
    m.rounds = pyo.Expression(expr=tr.rounds * (1.0 + tr.eta * level.distortion))
    m.objective = pyo.Objective(expr=m.T, sense=pyo.minimize)
    # the per-choice figures, for the verifier
    m.figures = {"turn": turn, "cloud_s": cloud_s, "cloud_weights": cloud_weights,
                 "cloud_batch": cloud_batch}
    return m
