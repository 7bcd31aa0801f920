"""Random instances: seeded, valid, and shaped by their parameters."""

from __future__ import annotations

import numpy as np
import pytest

from sftopt import load_instance
from sftopt.codec.levels import analytic_level
from sftopt.families.split.generate import random_instance
from sftopt.families.split.options import OptionSpace


def deepest_cuts(inst) -> np.ndarray:
    return OptionSpace(inst).deepest()


def test_seeded_and_valid():
    a = random_instance(6, seed=11)
    assert a == random_instance(6, seed=11)
    assert a != random_instance(6, seed=12)
    inst = load_instance(a)
    assert inst.n_devices == 6 and inst.model.name == "gpt2-small"


def test_memory_pressure_moves_cuts():
    free = load_instance(random_instance(8, memory_pressure=0.0, seed=1))
    tight = load_instance(random_instance(8, memory_pressure=1.0, seed=1))
    assert np.all(deepest_cuts(free) == free.max_cut)
    assert deepest_cuts(tight).mean() < free.max_cut


def test_heterogeneity_zero_gives_identical_compute():
    inst = load_instance(random_instance(5, heterogeneity=0.0, seed=2))
    assert len({d.flops for d in inst.devices}) == 1
    assert len({d.batch for d in inst.devices}) == 1


def test_analytic_levels():
    raw = analytic_level(1.0, 16)
    assert raw["bits_per_elem"] == 16.0 and raw["distortion"] == 0.0
    lvl = analytic_level(0.1, 4)
    assert lvl["bits_per_elem"] == pytest.approx(0.4 + 0.469, abs=1e-3)
    # top-10% of a Gaussian keeps a bit under half the energy (docs/model.md)
    assert 0.3 < lvl["distortion"] < 0.6


def test_bad_parameters():
    with pytest.raises(ValueError, match="memory_pressure"):
        random_instance(3, memory_pressure=2.0)
    with pytest.raises(ValueError, match="n_devices"):
        random_instance(0)


def test_a_codec_table_brings_its_accuracy_model():
    """A measured codec table carries the eta and max_distortion the executor fitted; the
    generator takes them (and explicit values win)."""
    import json
    from pathlib import Path

    table = json.loads((Path(__file__).parents[1] / "sftopt" / "models" /
                        "codec-minilm-l6-topics.json").read_text())
    fitted = table["provenance"].get("accuracy", {})
    d = random_instance(3, model="minilm-l6-topics", codec="minilm-l6-topics", seed=1)
    assert d["codec"]["levels"] == table["levels"]
    assert d["training"]["eta"] == fitted.get("eta", 2.0)
    assert d["training"]["max_distortion"] == fitted.get("max_distortion", 0.2)
    own = random_instance(3, model="minilm-l6-topics", codec="minilm-l6-topics", eta=0.5,
                          max_distortion=0.01)
    assert own["training"]["eta"] == 0.5 and own["training"]["max_distortion"] == 0.01
    with pytest.raises(FileNotFoundError, match="no codec table"):
        random_instance(2, codec="nope")


def test_per_cut_codec_figures_of_another_depth_are_left_out(monkeypatch):
    """A codec table's `bits_per_elem_by_cut` fits a model of L blocks (L+1 entries): a
    generator keeps it for such a model and leaves it out (the level's own figure at every
    cut) for a model of another depth, in every family."""
    import copy

    from sftopt import load_instance, profiles
    from sftopt.core.family import get_family

    table = {"levels": [{"keep_ratio": 1.0, "bits": 16, "bits_per_elem": 16.0,
                         "distortion": 0.0, "bits_per_elem_by_cut": [16.5] * 7}]}
    monkeypatch.setattr(profiles, "load_codec", lambda name: copy.deepcopy(table))
    same = random_instance(3, model="minilm-l6-topics", codec="six", seed=1)  # L = 6
    assert load_instance(same).codec.levels[0].beta(6) == 16.5
    other = random_instance(3, model="gpt2-small", codec="six", seed=1)  # L = 12
    assert "bits_per_elem_by_cut" not in other["codec"]["levels"][0]
    assert load_instance(other).codec.levels[0].beta(12) == 16.0
    for family, params in (("cooperative", dict(n_devices=3, n_blocks=2, model="gpt2-small")),
                           ("hierarchical", dict(n_users=3, n_edges=2, model="gpt2-small"))):
        data = get_family(family).generate(codec="six", seed=0, **params)
        assert "bits_per_elem_by_cut" not in data["codec"]["levels"][0], family
        load_instance(data)
    data = get_family("hierarchical").generate(codec="six", seed=0, n_users=3, n_edges=2,
                                               model="minilm-l6", seq_len=64)
    assert load_instance(data).codec.levels[0].bits_per_elem_by_cut == (16.5,) * 7
