"""Cost model against figures computed by hand (conftest.hand_instance)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sftopt import load_instance
from sftopt.families.split.cost import evaluate, server_memory, terms


def test_hand_computed_round(hand):
    inst = load_instance(hand)
    ev = evaluate(inst, [1], [1], [1e6], [0.5])
    # device runs embed + block1: 2 samples x (1e9 + 5e9) FLOPs / 1e10 FLOP/s
    assert ev.compute_s[0] == pytest.approx(1.2, rel=1e-12)
    # server runs block2 + head: 2 x 7e9 / (0.5 x 1e11)
    assert ev.server_s[0] == pytest.approx(0.28, rel=1e-12)
    # up: 2 x 1000 x 8 bits of activations + 8 x 4 x 100 adapter bits / agg_every 2, at 1 Mbit/s
    # down: 16000 bits at 1e6 log2(1 + 2e6/1e6) bit/s (server power 1 W vs device 0.5 W)
    up = (16000 + 1600) / 1e6
    down = 16000 / (1e6 * math.log2(3.0))
    assert ev.comm_s[0] == pytest.approx(up + down, rel=1e-12)
    T = 1.2 + 0.28 + up + down
    assert ev.round_delay == pytest.approx(T, rel=1e-12)
    assert ev.rounds == pytest.approx(100 * (1 + 2.0 * 0.01), rel=1e-12)
    assert ev.total_delay == pytest.approx(102 * T, rel=1e-12)
    assert ev.bytes_per_round == pytest.approx((17600 + 16000) / 8, rel=1e-12)
    # device memory: weights 1000 + 2000, adapter state 4 x 4 x 100, 2 x (10 + 20) activations
    assert ev.device_memory[0] == pytest.approx(3000 + 1600 + 60, rel=1e-12)
    # server: block2 + head weights, block2 adapter state, 2 x (20 + 40) activations
    assert ev.server_memory == pytest.approx(2000 + 3000 + 1600 + 120, rel=1e-12)
    assert ev.feasible


def test_cut_zero_and_all_device(hand):
    hand["training"]["max_cut"] = 3
    inst = load_instance(hand)
    ev = evaluate(inst, [0], [0], [1e6], [1.0])
    assert ev.compute_s[0] == pytest.approx(2 * 1e9 / 1e10)
    assert ev.comm_s[0] == pytest.approx(2 * 1000 * 16 / 1e6 + 32000 / (1e6 * math.log2(3)))
    # cut L+1: nothing crosses but the adapters, no server work, zero share is fine
    ev = evaluate(inst, [3], [0], [1e6], [0.0])
    assert ev.server_s[0] == 0.0
    assert ev.comm_s[0] == pytest.approx(8 * 4 * 200 / 2 / 1e6)
    assert ev.feasible


def test_violations_are_named(hand):
    inst = load_instance(hand)
    ev = evaluate(inst, [1], [2], [3e6], [0.0])
    text = " | ".join(ev.violations)
    assert "accuracy" in text  # level 2 distortion 0.1 > 0.05
    assert "bandwidth: sum b" in text  # 3 MHz > 2 MHz
    assert "server share: device d0 has phi = 0" in text
    hand["devices"][0]["memory_bytes"] = 1000
    ev = evaluate(load_instance(hand), [1], [0], [1e6], [1.0])
    assert any(v.startswith("device memory: device d0") for v in ev.violations)
    hand["server"]["memory_bytes"] = 1000  # the least valid; the plan needs 6,720 B
    ev = evaluate(load_instance(hand), [0], [0], [1e6], [1.0])
    assert any(v.startswith("server memory") for v in ev.violations)


def test_out_of_range_choices(hand):
    ev = evaluate(load_instance(hand), [7], [5], [1e6], [1.0])
    assert not ev.feasible and math.isnan(ev.total_delay)
    assert any("cut 7 outside" in v for v in ev.violations)


def test_server_memory_counts_shallowest_cut_once(tiny):
    inst = load_instance(tiny)
    a = inst.arrays
    two = server_memory(inst, [0, 2])
    st = inst.model.stages
    lb = [4 * 4 * s.lora_params for s in st]
    static = sum(st[i].param_bytes + lb[i] for i in (1, 2, 3))
    acts = 8 * sum(s.act_bytes for s in st[1:]) + 8 * st[3].act_bytes
    assert two == pytest.approx(static + acts, rel=1e-12)
    assert a.srv_static[0] == pytest.approx(static, rel=1e-12)


def test_sequential_schedule_sums(tiny):
    inst = load_instance(tiny)
    B = inst.channel.bandwidth_hz
    par = evaluate(inst, [1, 1], [0, 0], [B, B], [1, 1], schedule="sequential")
    assert par.feasible
    assert par.round_delay == pytest.approx(par.device_delay.sum())


def test_fading_scale_is_gain_scale(tiny):
    inst = load_instance(tiny)
    t = terms(inst, np.array([1, 2]), np.array([1, 1]))
    scaled = t.with_gains(np.array([2.0, 0.5]))
    assert np.allclose(scaled.snr_ul, t.snr_ul * [2.0, 0.5])
    assert np.allclose(scaled.snr_dl, t.snr_dl * [2.0, 0.5])


def test_per_cut_bits_per_element(hand):
    """A level with `bits_per_elem_by_cut` charges a cut's activations (and their gradients) at
    that cut's figure; a level without one charges its own figure at every cut."""
    hand["training"]["max_cut"] = 3
    hand["codec"]["levels"][1]["bits_per_elem_by_cut"] = [6.0, 7.5, 9.0]  # cuts 0, 1, 2
    inst = load_instance(hand)
    ev = evaluate(inst, [1], [1], [1e6], [0.5])
    # cut 1 at level 1: 2 samples x 1000 elements x 7.5 bits, up and down
    act = 2 * 1000 * 7.5
    up, down = (act + 1600) / 1e6, act / (1e6 * math.log2(3.0))
    assert ev.comm_s[0] == pytest.approx(up + down, rel=1e-12)
    assert ev.bytes_per_round == pytest.approx((2 * act + 1600) / 8, rel=1e-12)
    assert evaluate(inst, [0], [1], [1e6], [1.0]).bytes_per_round == pytest.approx(
        (2 * 2 * 1000 * 6.0 + 0) / 8, rel=1e-12)  # cut 0: no adapters on the device
    assert evaluate(inst, [2], [1], [1e6], [1.0]).bytes_per_round == pytest.approx(
        (2 * 2 * 1000 * 9.0 + 8 * 4 * 200 / 2) / 8, rel=1e-12)
    # cut L+1 sends no activations, whatever the table says
    assert evaluate(inst, [3], [1], [1e6], [0.0]).bytes_per_round == pytest.approx(
        8 * 4 * 200 / 2 / 8, rel=1e-12)
    # level 0 has no table: 16 bits at every cut
    assert evaluate(inst, [1], [0], [1e6], [1.0]).bytes_per_round == pytest.approx(
        (2 * 2 * 1000 * 16 + 1600) / 8, rel=1e-12)
    assert inst.codec.levels[0].beta(2) == 16.0 and inst.codec.levels[1].beta(2) == 9.0
