"""Schema: defaults, every kind of bad input reported with its JSON path, hashing, JSON Schema."""

from __future__ import annotations

import json

import pytest

from sftopt import InstanceError, load_instance
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
    with pytest.raises(InstanceError, match="max_cut <= L"):
        load_instance(tiny)
    tiny["training"]["max_cut"] = 2
    tiny["devices"][1]["id"] = "phone-0"
    with pytest.raises(InstanceError, match="duplicates"):
        load_instance(tiny)


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
        if isinstance(data.get("model"), str):
            continue  # a named profile: the schema holds the inline form too
        validator.validate(data)


def test_committed_schema_file_is_current():
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "docs" / "instance.schema.json"
    assert json.loads(path.read_text()) == json_schema(), "run: sftopt schema --out " + str(path)
