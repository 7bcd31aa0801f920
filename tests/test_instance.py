"""Schema: defaults, every kind of bad input reported with its JSON path, hashing, JSON Schema."""

from __future__ import annotations

import json

import pytest

from sftopt import InstanceError, load_instance
from sftopt.core.errors import short
from sftopt.core.loading import json_schema


def paths(exc: InstanceError) -> list[str]:
    return [p.path for p in exc.problems]


def test_defaults_filled(tiny):
    del tiny["training"]["agg_every"]
    inst = load_instance(tiny)
    assert inst.training.agg_every == 1
    assert inst.training.state_factor == 4
    assert inst.max_cut == 2 and inst.model.n_blocks == 2
    tiny["training"].pop("max_cut")
    tiny["training"].pop("rounds_per_frame")
    inst = load_instance(tiny)
    assert inst.max_cut == inst.model.n_blocks  # head stays on the server
    assert inst.rounds_per_frame == 500


def test_unknown_field_is_an_error(tiny):
    tiny["devices"][0]["flop"] = 1.0
    with pytest.raises(InstanceError) as err:
        load_instance(tiny)
    assert "$.devices[0].flop" in paths(err.value)
    assert "unknown field" in str(err.value)


def test_every_problem_reported_at_once(tiny):
    tiny["devices"][1]["flops"] = -5
    tiny["channel"]["bandwidth_hz"] = "wide"
    del tiny["server"]["memory_bytes"]
    with pytest.raises(InstanceError) as err:
        load_instance(tiny)
    got = paths(err.value)
    assert "$.devices[1].flops" in got
    assert "$.channel.bandwidth_hz" in got
    assert "$.server.memory_bytes" in got
    text = str(err.value)
    assert "-5" in text and "'wide'" in text and "required" in text


def test_gain_and_distance_exclusive(tiny):
    tiny["devices"][0]["gain"] = 1e-12  # device 0 already has distance_m
    del tiny["devices"][1]["gain"]
    with pytest.raises(InstanceError) as err:
        load_instance(tiny)
    msgs = {p.path: p for p in err.value.problems}
    assert msgs["$.devices[0]"].got == "both"
    assert msgs["$.devices[1]"].got == "neither"


def test_cut_range_and_duplicate_ids(tiny):
    tiny["training"]["max_cut"] = 9
    with pytest.raises(InstanceError, match="at most L") as err:
        load_instance(tiny)
    assert paths(err.value) == ["$.training.max_cut"]
    tiny["training"]["max_cut"] = 2
    tiny["devices"][1]["id"] = "phone-0"
    with pytest.raises(InstanceError, match="duplicates") as err:
        load_instance(tiny)
    assert paths(err.value) == ["$.devices"] and "phone-0" in str(err.value)


def test_family_errors_are_clear(tiny):
    tiny["family"] = "cooperative"  # another family's sections: that family's schema speaks
    with pytest.raises(InstanceError, match="blocks") as err:
        load_instance(tiny)
    tiny["family"] = "federated"
    with pytest.raises(InstanceError, match="one of") as err:
        load_instance(tiny)
    assert paths(err.value) == ["$.family"] and "'federated'" in str(err.value)
    del tiny["family"]
    with pytest.raises(InstanceError, match="required") as err:
        load_instance(tiny)
    assert paths(err.value) == ["$.family"]


def test_file_errors(tmp_path):
    with pytest.raises(InstanceError, match="no file"):
        load_instance(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": ')
    with pytest.raises(InstanceError) as err:
        load_instance(bad)
    assert "bad.json" in str(err.value) and "line 1" in str(err.value)
    bad.write_text(json.dumps({"schema": "sftopt.instance/9"}))
    with pytest.raises(InstanceError, match=r"\$\.schema"):
        load_instance(bad)


def test_unknown_profile_name(tiny):
    tiny["model"] = "no-such-model"
    with pytest.raises(InstanceError) as err:
        load_instance(tiny)
    assert err.value.problems[0].path == "$.model"
    assert "no-such-model" in str(err.value)


def test_hash_stable_and_sensitive(tiny):
    a = load_instance(tiny).sha256
    assert a == load_instance(json.loads(json.dumps(tiny))).sha256
    tiny["devices"][0]["batch"] = 9
    assert load_instance(tiny).sha256 != a


def test_distance_gain(tiny):
    inst = load_instance(tiny)
    # 120 m: PL = 128.1 + 37.6 log10(0.12) dB
    import math

    pl = 128.1 + 37.6 * math.log10(0.12)
    assert inst.arrays.gain[0] == pytest.approx(10 ** (-pl / 10), rel=1e-12)
    assert inst.arrays.gain[1] == 3.0e-13


def test_json_schema_export():
    schema = json_schema()
    assert schema["$id"] == "sftopt.instance/1"
    # every implemented family, told apart by `family`
    assert schema["discriminator"]["propertyName"] == "family"
    assert set(schema["discriminator"]["mapping"]) == {"split", "cooperative", "hierarchical"}
    split = json_schema("split")
    assert {"model", "devices", "codec", "channel"} <= set(split["properties"])
    assert "blocks" in schema["$defs"]["CooperativeInstance"]["properties"]
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    from pathlib import Path

    for name in ("tiny-example.json", "coop-roberta-base.json"):
        data = json.loads((Path(__file__).parent.parent / "data/instances" / name).read_text())
        validator.validate(data)  # every bundled instance: tests/test_schema_json.py


def test_committed_schema_file_is_current():
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "docs" / "instance.schema.json"
    assert json.loads(path.read_text()) == json_schema(), "run: sftopt schema --out " + str(path)


# ------------------------------------------------------------------ strict types and ranges
@pytest.mark.parametrize("where, value", [
    (("devices", 0, "batch"), "8"), (("devices", 0, "flops"), True),
    (("training", "rounds"), "500"), (("devices", 1, "gain"), "3e-13"),
    (("devices", 0, "batch"), 8.5), (("channel", "fading"), 1), (("devices", 0, "id"), 7),
    (("training", "agg_every"), True), (("codec", "levels", 0, "bits"), "16"),
    (("model", "stages", 1, "fwd_flops"), None), (("devices",), {"0": {}}),
])
def test_no_type_coercion(tiny, where, value):
    target = tiny
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    with pytest.raises(InstanceError) as err:
        load_instance(tiny)
    path = "$" + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in where)
    assert paths(err.value) == [path], str(err.value)


def test_integers_are_numbers_and_integral_numbers_are_integers(tiny):
    tiny["devices"][0]["flops"] = 2_000_000_000_000  # an int for a float field
    tiny["devices"][0]["batch"] = 8.0  # JSON has one number type: 8.0 is the integer 8
    inst = load_instance(tiny)
    assert inst.devices[0].flops == 2e12 and type(inst.devices[0].flops) is float
    assert inst.devices[0].batch == 8 and type(inst.devices[0].batch) is int


@pytest.mark.parametrize("where, value", [
    (("training", "rounds"), 1e308), (("training", "rounds"), 5e-324),
    (("devices", 0, "tx_power_w"), 1e308), (("devices", 1, "gain"), 1e308),
    (("devices", 0, "distance_m"), 5e-324), (("server", "flops"), 5e-324),
    (("channel", "noise_dbm_hz"), 1e308), (("devices", 0, "batch"), 10**400),
    (("devices", 0, "flops"), 10**400), (("devices", 0, "memory_bytes"), -(10**5000)),
    (("channel", "seed"), 2**64), (("channel", "bandwidth_hz"), 1e-300),
    (("devices", 0, "flops"), float("nan")), (("server", "memory_bytes"), float("inf")),
    (("model", "stages", 0, "act_bytes"), -1.0), (("codec", "levels", 1, "keep_ratio"), 0.0),
    (("model", "seq_len"), 10**9), (("training", "eta"), 1e300),
], ids=lambda v: short(v) if not isinstance(v, tuple) else ".".join(map(str, v)))
def test_every_number_finite_and_in_range(tiny, where, value):
    target = tiny
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    with pytest.raises(InstanceError) as err:
        load_instance(tiny)
    path = "$" + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in where)
    assert paths(err.value) == [path], str(err.value)
    assert len(str(err.value)) < 400  # a 5,000-digit number is described, not printed


def test_a_distance_must_give_a_gain_in_range(tiny):
    tiny["devices"][0]["distance_m"] = 1e-3  # 1 mm: the law gives a gain far above 1
    with pytest.raises(InstanceError) as err:
        load_instance(tiny)
    assert paths(err.value) == ["$.devices[0].distance_m"]
    assert "gain" in str(err.value) and "channel.pathloss" in str(err.value)


def test_cut_ranges_against_the_blocks(tiny):
    del tiny["model"]["stages"][2]  # one block: L = 1
    tiny["training"]["max_cut"] = 3  # above L+1 = 2
    with pytest.raises(InstanceError) as err:
        load_instance(tiny)
    assert paths(err.value) == ["$.training.max_cut"] and "L+1 = 2" in str(err.value)
    tiny["training"]["max_cut"] = 2  # L+1: a device may run everything (docs/model.md)
    assert load_instance(tiny).max_cut == 2
    tiny["training"]["min_cut"] = 3
    with pytest.raises(InstanceError) as err:
        load_instance(tiny)
    assert paths(err.value) == ["$.training.min_cut"]


def test_per_cut_codec_figures_are_checked_against_the_blocks(tiny):
    """`bits_per_elem_by_cut` holds one figure per cut 0..L (L+1 entries) in every family; its
    entries are numbers in (0, 64]; left out, the level means what it meant."""
    from sftopt.core.family import get_family

    L = len(tiny["model"]["stages"]) - 2
    plain = load_instance(tiny)
    tiny["codec"]["levels"][1]["bits_per_elem_by_cut"] = [5.0] * (L + 1)
    inst = load_instance(tiny)
    assert [lv.beta(s) for lv in inst.codec.levels[1:2] for s in range(L + 1)] == [5.0] * (L + 1)
    assert inst.codec.levels[0].beta(0) == plain.codec.levels[0].bits_per_elem
    assert plain.codec.beta_table(L).tolist() == [[lv.bits_per_elem] * (L + 2)
                                                  for lv in plain.codec.levels]
    for bad in ([5.0] * L, [5.0] * (L + 2)):
        tiny["codec"]["levels"][1]["bits_per_elem_by_cut"] = bad
        with pytest.raises(InstanceError) as err:
            load_instance(tiny)
        assert paths(err.value) == ["$.codec.levels[1].bits_per_elem_by_cut"]
        assert f"{L + 1} entries" in str(err.value) and f"got {len(bad)} entries" in str(err.value)
    for bad, where in (([5.0, 0.0, 5.0], "[1]"), ([5.0, "5", 5.0], "[1]"), ([], "")):
        tiny["codec"]["levels"][1]["bits_per_elem_by_cut"] = bad
        with pytest.raises(InstanceError) as err:
            load_instance(tiny)
        assert paths(err.value) == [f"$.codec.levels[1].bits_per_elem_by_cut{where}"]
    # cooperative and hierarchical check the length against their own model
    coop = get_family("cooperative").generate(n_devices=3, n_blocks=2, seed=0)
    hier = get_family("hierarchical").generate(n_users=3, n_edges=2, seed=0, model="minilm-l6",
                                               seq_len=64)
    for data in (coop, hier):
        data["codec"]["levels"][0]["bits_per_elem_by_cut"] = [16.0] * 3
        with pytest.raises(InstanceError) as err:
            load_instance(data)
        assert paths(err.value) == ["$.codec.levels[0].bits_per_elem_by_cut"]


def test_duplicate_ids_are_named_in_every_family(tiny):
    from sftopt.core.family import get_family

    coop = get_family("cooperative").generate(n_devices=3, n_blocks=2, seed=0)
    coop["devices"][2]["id"] = coop["devices"][0]["id"]
    hier = get_family("hierarchical").generate(n_users=3, n_edges=2, seed=0, model="minilm-l6",
                                               seq_len=64)
    hier["users"][1]["id"] = hier["users"][0]["id"]
    hier["edges"][1]["id"] = hier["edges"][0]["id"]
    for data, want in ((coop, ["$.devices"]), (hier, ["$.edges", "$.users"])):
        with pytest.raises(InstanceError) as err:
            load_instance(data)
        assert set(want) <= set(paths(err.value)) and "duplicates" in str(err.value)


def test_loading_is_linear_in_devices(tiny):
    """Every check is linear: eight times the devices take well under 24 times as long (a
    quadratic step would take 64; the margin absorbs a busy machine)."""
    import time

    def load_time(n: int) -> float:
        data = dict(tiny, devices=[dict(tiny["devices"][k % 2], id=f"d{k}") for k in range(n)])
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            load_instance(data)
            best = min(best, time.perf_counter() - t)
        return best

    load_time(500)  # warm up
    small, large = load_time(2_000), load_time(16_000)
    assert large < 24 * small + 0.05, (small, large)


# ------------------------------------------------------------------ immutable instances
def test_instances_are_immutable(tiny):
    inst = load_instance(tiny)
    for seq in (inst.devices, inst.model.stages, inst.codec.levels):
        assert isinstance(seq, tuple)
    with pytest.raises(AttributeError):
        inst.devices.append(inst.devices[0])
    with pytest.raises(ValueError, match="frozen"):
        inst.devices[0].flops = 1.0
    with pytest.raises(ValueError, match="frozen"):
        inst.name = "other"


def test_changed_copies_are_new_validated_instances(tiny):
    inst = load_instance(tiny)
    gain = inst.arrays.gain.copy()
    more = inst.with_devices([dict(tiny["devices"][1], id="phone-2")])
    assert [d.id for d in more.devices] == ["phone-0", "phone-1", "phone-2"]
    assert len(more.arrays.gain) == 3 and len(inst.arrays.gain) == 2  # each its own arrays
    assert inst.with_devices([inst.devices[0].model_copy(update={"id": "copy"})]).n_devices == 3
    fewer = more.without_devices(["phone-0"])
    assert [d.id for d in fewer.devices] == ["phone-1", "phone-2"]
    moved = inst.with_device("phone-0", gain=1e-12)  # a gain replaces the distance
    assert moved.devices[0].gain == 1e-12 and moved.devices[0].distance_m is None
    assert moved.arrays.gain[0] == 1e-12 and inst.arrays.gain[0] == gain[0]
    wider = inst.with_channel(bandwidth_hz=4e7)
    assert wider.channel.bandwidth_hz == 4e7 and wider.channel.pathloss == inst.channel.pathloss
    assert inst.with_server(flops=2e14).server.flops == 2e14
    assert inst.channel.bandwidth_hz == 2e7 and inst.server.flops == 1e14  # unchanged
    assert moved.sha256 != inst.sha256 and load_instance(moved.to_dict()).sha256 == moved.sha256


def test_changed_copies_are_checked_like_loaded_ones(tiny):
    inst = load_instance(tiny)
    cases = [
        (lambda: inst.with_device("phone-0", batch="8"), ["$.devices[0].batch"]),
        (lambda: inst.with_device("phone-1", flops=0.0), ["$.devices[1].flops"]),
        (lambda: inst.with_device("nobody", batch=1), ["$.devices"]),
        (lambda: inst.with_devices([dict(tiny["devices"][0])]), ["$.devices"]),  # same id
        (lambda: inst.without_devices(["phone-0", "phone-1"]), ["$.devices"]),  # none left
        (lambda: inst.without_devices(["ghost"]), ["$.devices"]),
        (lambda: inst.with_channel(bandwidth_hz=float("nan")), ["$.channel.bandwidth_hz"]),
        (lambda: inst.with_server(colour="red"), ["$.server.colour"]),
        (lambda: inst.replace(nonsense=1), ["$.nonsense"]),
    ]
    for change, want in cases:
        with pytest.raises(InstanceError) as err:
            change()
        assert paths(err.value) == want, str(err.value)


def test_changed_copies_in_the_other_families():
    from sftopt.core.family import get_family

    coop = load_instance(get_family("cooperative").generate(n_devices=3, n_blocks=2, seed=0))
    assert isinstance(coop.blocks, tuple)
    slower = coop.with_device(coop.devices[0].id, flops=1e9)
    assert slower.arrays is not coop.arrays and slower.devices[0].flops == 1e9
    with pytest.raises(InstanceError) as err:
        coop.with_channel(fading="rayleigh")  # cooperative has no fading
    assert paths(err.value) == ["$.channel.fading"]
    hier = load_instance(get_family("hierarchical").generate(
        n_users=3, n_edges=2, seed=0, model="minilm-l6", seq_len=64))
    user = hier.users[0].id
    assert hier.with_device(user, batch=2).users[0].batch == 2  # a user
    assert hier.without_devices([user]).n_users == 2
    assert hier.with_server(flops=2e15).cloud.flops == 2e15  # the cloud
    assert hier.with_channel(noise_dbm_hz=-170).radio.noise_dbm_hz == -170  # the radio
    edge = hier.edges[0].id
    assert hier.with_edge(edge, bandwidth_hz=1e7).edges[0].bandwidth_hz == 1e7
    with pytest.raises(InstanceError) as err:
        hier.with_device(user, edge="edge-9")
    assert paths(err.value) == ["$.users[0].edge"]
