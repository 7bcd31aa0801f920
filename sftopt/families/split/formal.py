"""The formal Pyomo model of the `split` MINLP, written from docs/model.md independently of cost.py
(it reads the instance's fields, not its arrays, and shares no formula with the cost model).

Binary choices x[k,s] (cut s for device k) and y[k,c] (codec level c), continuous bandwidth b[k]
and server share phi[k], epigraph variables for the communication and server times and for the
round delay T. u[i] = 1 when the server holds stage i (some device cuts below i). The objective
is R(y) x T. The verifier fixes a plan's values in this model; the `minlp` route hands it to a
global MINLP solver.
"""

from __future__ import annotations

import math

import pyomo.environ as pyo

from ...core.formal import gain, noise_w_per_hz
from .schema import PARALLEL, SEQUENTIAL, SplitInstance


def build_split_model(
    inst: SplitInstance, *, schedule: str = PARALLEL, rate_floor_hz: float = 0.0
) -> pyo.ConcreteModel:
    """The `split` MINLP of docs/model.md section 2 as a Pyomo ConcreteModel.

    ``rate_floor_hz`` > 0 bounds each band away from 0 so that numerical solvers never evaluate
    log(1 + x/0); the verifier keeps 0 and treats a zero band itself.
    """
    m = pyo.ConcreteModel(name=f"split:{inst.name}")
    st = inst.model.stages
    tr = inst.training
    L = len(st) - 2
    adb = inst.model.adapter_dtype_bytes
    omega = tr.state_factor
    n0 = noise_w_per_hz(inst.channel.noise_dbm_hz)
    B = inst.channel.bandwidth_hz
    levels = inst.codec.levels
    devs = inst.devices
    total_batch = sum(d.batch for d in devs)

    m.K = pyo.RangeSet(0, len(devs) - 1)
    m.S = pyo.RangeSet(tr.min_cut, inst.max_cut)  # admissible cuts
    m.C = pyo.RangeSet(0, len(levels) - 1)
    m.I = pyo.RangeSet(0, L + 1)  # stages

    def work(i: int) -> float:
        return st[i].fwd_flops + st[i].bwd_flops

    def stage_mem(i: int) -> float:  # weights + adapter with optimiser state
        return st[i].param_bytes + omega * adb * st[i].lora_params

    # per admissible cut s, the sums over the device's stages 0..s and the server's s+1..L+1
    # (hoisted out of the per-device rules: the same sums, computed once)
    w_dev = {s: sum(work(i) for i in range(s + 1)) for s in m.S}
    w_srv = {s: sum(work(i) for i in range(s + 1, L + 2)) for s in m.S}
    lora_dev = {s: sum(st[i].lora_params for i in range(s + 1)) for s in m.S}
    mem_dev = {s: sum(stage_mem(i) for i in range(s + 1)) for s in m.S}
    act_dev = {s: sum(st[i].act_bytes for i in range(s + 1)) for s in m.S}
    act_srv = {s: sum(st[i].act_bytes for i in range(s + 1, L + 2)) for s in m.S}

    m.x = pyo.Var(m.K, m.S, domain=pyo.Binary)
    m.y = pyo.Var(m.K, m.C, domain=pyo.Binary)
    m.b = pyo.Var(m.K, bounds=(rate_floor_hz, B))
    m.phi = pyo.Var(m.K, bounds=(0.0, 1.0))
    m.tc = pyo.Var(m.K, domain=pyo.NonNegativeReals)  # seconds on air
    m.ts = pyo.Var(m.K, domain=pyo.NonNegativeReals)  # seconds on the server
    m.u = pyo.Var(m.I, domain=pyo.Binary)  # server holds stage i
    m.T = pyo.Var(domain=pyo.NonNegativeReals)

    m.one_cut = pyo.Constraint(m.K, rule=lambda m, k: sum(m.x[k, s] for s in m.S) == 1)
    m.one_level = pyo.Constraint(m.K, rule=lambda m, k: sum(m.y[k, c] for c in m.C) == 1)
    m.accuracy = pyo.Constraint(
        m.K, rule=lambda m, k: sum(levels[c].distortion * m.y[k, c] for c in m.C)
        <= tr.max_distortion)

    def crossing(k: int):  # 1 when activations cross the air (the server part is not empty)
        return sum(m.x[k, s] for s in m.S if s <= L)

    def coded(c: int, s: int) -> float:  # bits per element of level c at cut s
        per_cut = levels[c].bits_per_elem_by_cut
        return levels[c].bits_per_elem if per_cut is None else per_cut[s]

    def act_bits(k: int):  # zero at cut L+1: nothing crosses the air
        n = devs[k].batch
        return n * inst.model.cut_elems * sum(
            coded(c, s) * m.y[k, c] * m.x[k, s] for c in m.C for s in m.S if s <= L)

    def adapter_bits(k: int):
        return sum(8.0 * adb * lora_dev[s] * m.x[k, s] for s in m.S) / tr.agg_every

    def rate(k: int, power: float):
        x = power * gain(devs[k], inst.channel) / n0
        return m.b[k] * pyo.log(1.0 + x / m.b[k]) / math.log(2.0)

    m.bits_up = pyo.Expression(m.K, rule=lambda m, k: act_bits(k) + adapter_bits(k))
    m.bits_down = pyo.Expression(m.K, rule=lambda m, k: act_bits(k))
    m.rate_up = pyo.Expression(m.K, rule=lambda m, k: rate(k, devs[k].tx_power_w))
    m.rate_down = pyo.Expression(m.K, rule=lambda m, k: rate(k, inst.server.tx_power_w))
    m.device_time = pyo.Expression(m.K, rule=lambda m, k: sum(
        devs[k].batch * w_dev[s] / devs[k].flops * m.x[k, s]
        for s in m.S))
    m.server_work = pyo.Expression(m.K, rule=lambda m, k: sum(
        devs[k].batch * w_srv[s] / inst.server.flops * m.x[k, s]
        for s in m.S))

    # tc >= bits_up / r_ul + bits_down / r_dl, written without division by a variable's value
    m.comm = pyo.Constraint(m.K, rule=lambda m, k: m.tc[k] * m.rate_up[k] * m.rate_down[k]
                            >= m.bits_up[k] * m.rate_down[k] + m.bits_down[k] * m.rate_up[k])
    m.server = pyo.Constraint(m.K, rule=lambda m, k: m.ts[k] * m.phi[k] >= m.server_work[k])
    m.delay_k = pyo.Expression(m.K, rule=lambda m, k: m.device_time[k] + m.tc[k] + m.ts[k])

    if schedule == PARALLEL:
        m.delay = pyo.Constraint(m.K, rule=lambda m, k: m.delay_k[k] <= m.T)
        m.bandwidth = pyo.Constraint(expr=sum(m.b[k] for k in m.K) <= B)
        m.server_share = pyo.Constraint(expr=sum(m.phi[k] for k in m.K) <= 1.0)
    elif schedule == SEQUENTIAL:
        m.delay = pyo.Constraint(expr=sum(m.delay_k[k] for k in m.K) <= m.T)
    else:
        raise ValueError(f"schedule must be 'parallel' or 'sequential', got {schedule!r}")

    m.device_memory = pyo.Constraint(m.K, rule=lambda m, k: sum(
        (mem_dev[s] + devs[k].batch * act_dev[s]) * m.x[k, s]
        for s in m.S) <= devs[k].memory_bytes)
    # the server holds stage i as soon as one device cuts below it
    m.holds = pyo.Constraint(m.K, m.I, rule=lambda m, k, i: m.u[i] >= sum(
        m.x[k, s] for s in m.S if s < i))

    def srv_acts(k: int):
        return devs[k].batch * sum(act_srv[s] * m.x[k, s] for s in m.S)

    static = sum(stage_mem(i) * m.u[i] for i in m.I)
    if schedule == PARALLEL:
        m.server_memory = pyo.Constraint(
            expr=static + sum(srv_acts(k) for k in m.K) <= inst.server.memory_bytes)
    else:  # one device's activations at a time
        m.server_memory = pyo.Constraint(
            m.K, rule=lambda m, k: static + srv_acts(k) <= inst.server.memory_bytes)

    m.rounds = pyo.Expression(expr=tr.rounds * (1.0 + tr.eta * sum(
        devs[k].batch / total_batch * levels[c].distortion * m.y[k, c] for k in m.K for c in m.C)))
    m.objective = pyo.Objective(expr=m.rounds * m.T, sense=pyo.minimize)
    return m
