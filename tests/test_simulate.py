"""Two-timescale simulation: seeded, never below the average channel, exact with no fading."""

from __future__ import annotations

import math

import pytest

from sftopt import load_instance, simulate, solve


def test_no_fading_repeats_the_average_round(tiny):
    tiny["channel"]["fading"] = "none"
    inst = load_instance(tiny)
    res = solve(inst, "greedy", certify=False)
    sim = simulate(inst, res)
    assert sim.rounds == math.ceil(res.plan.rounds)
    assert sim.mean_round_delay_s == pytest.approx(res.plan.round_delay_s, rel=1e-6)


@pytest.mark.parametrize("method", ["greedy", "baseline-equal"])
def test_fading_is_seeded_and_above_average(tiny, method):
    inst = load_instance(tiny)
    res = solve(inst, method, certify=False)
    a = simulate(inst, res, seed=1)
    assert a == simulate(inst, res, seed=1)
    assert a.total_delay_s != simulate(inst, res, seed=2).total_delay_s
    assert a.total_delay_s >= res.objective  # Jensen: delay is convex in the gains


def test_fixed_allocator_and_bad_name(tiny):
    inst = load_instance(tiny)
    res = solve(inst, "greedy", certify=False)
    fixed = simulate(inst, res, allocator="fixed", seed=4)
    exact = simulate(inst, res, allocator="exact", seed=4)
    assert exact.total_delay_s <= fixed.total_delay_s * (1 + 1e-9)  # re-allocating helps
    with pytest.raises(ValueError, match="allocator"):
        simulate(inst, res, allocator="psychic")
