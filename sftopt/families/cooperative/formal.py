"""The formal Pyomo model of the `cooperative` problem, written from docs/model.md section 7
independently of cost.py (it reads the instance's fields, not its arrays, and shares no formula
with the cost model).

Blocks on devices (plan class "devices"): binaries x[k,j] (device k fine-tunes block j) and
z[k,j] (block j is device k's shallowest, where its backward pass stops), bands b[k], upload
times tc[k] and the round delay T. Every block on the server ("offload"): the devices run the
embedding and upload its output, the server trains everything on every batch. The objective
is T. The verifier fixes a plan's values in this model.
"""

from __future__ import annotations

import math

import pyomo.environ as pyo

from ...core.formal import gain, noise_w_per_hz
from .schema import DEVICES, OFFLOAD, CooperativeInstance


def build_cooperative_model(inst: CooperativeInstance, *, plan_class: str = DEVICES,
                            rate_floor_hz: float = 0.0) -> pyo.ConcreteModel:
    """The model of one plan class as a Pyomo ConcreteModel. ``rate_floor_hz`` > 0 keeps bands
    away from 0 for numerical solvers; the verifier keeps 0 and treats a zero band itself."""
    if plan_class not in (DEVICES, OFFLOAD):
        raise ValueError(f"plan_class must be {DEVICES!r} or {OFFLOAD!r}, got {plan_class!r}")
    m = pyo.ConcreteModel(name=f"cooperative:{inst.name}")
    st = inst.model.stages
    tr = inst.training
    n_st = len(st)
    level = inst.codec.levels[tr.upload_level]
    omega, adb = tr.state_factor, inst.model.adapter_dtype_bytes
    n0 = noise_w_per_hz(inst.channel.noise_dbm_hz)
    B = inst.channel.bandwidth_hz
    devs = inst.devices
    layer = inst.blocks

    m.K = pyo.RangeSet(0, len(devs) - 1)
    m.J = pyo.RangeSet(0, len(layer) - 1)
    m.b = pyo.Var(m.K, bounds=(rate_floor_hz, B))
    m.tc = pyo.Var(m.K, domain=pyo.NonNegativeReals)  # seconds on air
    m.T = pyo.Var(domain=pyo.NonNegativeReals)

    def rate(k: int):
        x = devs[k].tx_power_w * gain(devs[k], inst.channel) / n0
        return m.b[k] * pyo.log(1.0 + x / m.b[k]) / math.log(2.0)

    def state(i: int) -> float:  # adapter bytes with optimiser state
        return omega * adb * st[i].lora_params

    all_fwd = sum(s.fwd_flops for s in st)
    all_params = sum(s.param_bytes for s in st)
    m.rate = pyo.Expression(m.K, rule=lambda m, k: rate(k))
    m.bandwidth = pyo.Constraint(expr=sum(m.b[k] for k in m.K) <= B)

    if plan_class == DEVICES:
        m.x = pyo.Var(m.K, m.J, domain=pyo.Binary)
        m.z = pyo.Var(m.K, m.J, domain=pyo.Binary)
        m.one_owner = pyo.Constraint(m.J, rule=lambda m, j: sum(m.x[k, j] for k in m.K) == 1)
        m.max_blocks = pyo.Constraint(m.K, rule=lambda m, k: sum(m.x[k, j] for j in m.J)
                                      <= tr.max_blocks)
        m.one_top = pyo.Constraint(m.K, rule=lambda m, k: sum(m.z[k, j] for j in m.J) <= 1)
        m.top_held = pyo.Constraint(m.K, m.J, rule=lambda m, k, j: m.z[k, j] <= m.x[k, j])
        m.below_top = pyo.Constraint(m.K, m.J, rule=lambda m, k, j: m.x[k, j] <= sum(
            m.z[k, i] for i in m.J if i <= j))

        def backward(j: int) -> float:  # backward FLOPs down to layer l_j, per sample
            return sum(st[i].bwd_flops for i in range(layer[j], n_st))

        def kept(j: int) -> float:  # activation bytes kept down to layer l_j, per sample
            return sum(st[i].act_bytes for i in range(layer[j], n_st))

        m.compute = pyo.Expression(m.K, rule=lambda m, k: sum(
            devs[k].batch * (all_fwd + backward(j)) / devs[k].flops * m.z[k, j] for j in m.J))
        m.bits = pyo.Expression(m.K, rule=lambda m, k: sum(
            st[layer[j]].lora_params * level.bits_per_elem * m.x[k, j] for j in m.J))
        m.device_memory = pyo.Constraint(m.K, rule=lambda m, k: sum(
            (all_params + devs[k].batch * kept(j)) * m.z[k, j] + state(layer[j]) * m.x[k, j]
            for j in m.J) <= devs[k].memory_bytes)
        m.server_time = pyo.Expression(expr=0.0)
    else:
        total = sum(d.batch for d in devs)
        top = layer[0]
        # 1: every device runs the embedding and the server the rest (fixed: the memory rows
        # would otherwise hold no variable)
        m.offload = pyo.Var(domain=pyo.Binary, initialize=1)
        m.offload.fix(1)
        m.compute = pyo.Expression(m.K, rule=lambda m, k: devs[k].batch * st[0].fwd_flops
                                   / devs[k].flops)
        # the embedding's output crosses at cut 0: the level's figure for cut 0 if it has one
        at_cut0 = level.bits_per_elem if level.bits_per_elem_by_cut is None \
            else level.bits_per_elem_by_cut[0]
        m.bits = pyo.Expression(m.K, rule=lambda m, k: devs[k].batch * inst.model.cut_elems
                                * at_cut0)
        m.device_memory = pyo.Constraint(m.K, rule=lambda m, k: (
            st[0].param_bytes + state(0) + devs[k].batch * st[0].act_bytes) * m.offload
            <= devs[k].memory_bytes)
        m.server_memory = pyo.Constraint(
            expr=(sum(st[i].param_bytes for i in range(1, n_st)) + sum(state(i) for i in layer)
                  + total * sum(st[i].act_bytes for i in range(top, n_st))) * m.offload
            <= inst.server.memory_bytes)
        m.server_time = pyo.Expression(
            expr=total * (sum(st[i].fwd_flops for i in range(1, n_st))
                          + sum(st[i].bwd_flops for i in range(top, n_st))) / inst.server.flops)

    # tc >= bits / rate, without dividing by a variable's value
    m.comm = pyo.Constraint(m.K, rule=lambda m, k: m.tc[k] * m.rate[k] >= m.bits[k])
    m.delay_k = pyo.Expression(m.K, rule=lambda m, k: m.compute[k] + m.tc[k])
    m.delay = pyo.Constraint(m.K, rule=lambda m, k: m.delay_k[k] + m.server_time <= m.T)
    m.rounds = pyo.Expression(expr=tr.rounds * (1.0 + tr.eta * level.distortion))
    m.objective = pyo.Objective(expr=m.T, sense=pyo.minimize)
    return m
