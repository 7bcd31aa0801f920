"""Bad instances never end in a traceback: the committed corpus of the inputs that once crashed,
hung or passed (tests/corpus/instances, each with the JSON path its error must name), the huge
ones generated here, and a property: any field of a valid instance set to any JSON value either
loads, with every number finite and within the schema's range, or gives an InstanceError."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sftopt import InstanceError, load_instance
from sftopt.core.loading import json_schema

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus" / "instances"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_instance_is_named(name):
    with pytest.raises(InstanceError) as err:
        load_instance(CORPUS / name)
    assert [p.path for p in err.value.problems] == [EXPECTED[name]], str(err.value)
    assert len(str(err.value)) < 600


def test_corpus_is_complete():
    assert sorted(p.name for p in CORPUS.glob("*.json")) == sorted([*EXPECTED, "expected.json"])


def tiny() -> dict:
    return json.loads((ROOT / "data" / "instances" / "tiny-example.json").read_text())


def test_huge_numbers_are_named():
    for digits in (400, 5000):
        for where in ("batch", "flops"):
            data = tiny()
            data["devices"][0][where] = 10**digits
            with pytest.raises(InstanceError) as err:
                load_instance(data)
            assert [p.path for p in err.value.problems] == [f"$.devices[0].{where}"]
            assert "digits" in str(err.value) or "less than" in str(err.value)


def test_deep_nesting_is_named(tmp_path):
    deep: list = []
    node = deep
    for _ in range(3000):
        node.append([])
        node = node[0]
    for where, path in ((("devices",), "$.devices[0]"), (("devices", 0, "flops"), None),
                        (("model", "provenance"), None)):
        data = tiny()
        target = data
        for key in where[:-1]:
            target = target[key]
        target[where[-1]] = {"x": deep} if where[-1] == "provenance" else deep
        with pytest.raises(InstanceError) as err:
            load_instance(data)
        path = path or "$" + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in where)
        assert [p.path for p in err.value.problems] == [path], str(err.value)


def test_huge_and_deep_files_are_named(tmp_path):
    """The same inputs as files: the file reader names them (sftopt/core/files.py)."""
    text = json.dumps(tiny())
    for name, bad in (("digits", text.replace('"batch": 8', '"batch": ' + "9" * 5000, 1)),
                      ("deep", text.replace('"devices": [', '"devices": [' + "[" * 3000, 1))):
        path = tmp_path / f"{name}.json"
        path.write_text(bad)
        with pytest.raises(InstanceError) as err:
            load_instance(path)
        assert name in path.name and len(str(err.value)) < 600


# ------------------------------------------------------------------ the property
def bundled(name: str) -> dict:
    return json.loads((ROOT / "data" / "instances" / name).read_text())


BASES = {"split": tiny(), "cooperative": bundled("minilm-topics-coop-4dev.json"),
         "hierarchical": bundled("minilm-topics-hier-4user.json")}
SCHEMA = jsonschema.Draft202012Validator(json_schema())


def leaves(node, where=()):
    """Every place in a JSON document (objects' keys and arrays' items), the root excluded."""
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return
    for key, value in items:
        yield (*where, key)
        yield from leaves(value, (*where, key))


PLACES = {f: [w for w in leaves(d) if w[0] != "model" or not isinstance(d["model"], str)]
          for f, d in BASES.items()}
NUMBERS = st.one_of(
    st.integers(-(10**30), 10**30), st.sampled_from([0, 1, -1, 2**63]),
    st.builds(lambda digits: 10**digits, st.sampled_from([400, 5000])),  # no repr of 10^5000
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([5e-324, 1e-300, 1e308, -0.0, 1e-20, 1e18, 1e15, 1e11]))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=8),
                    st.sampled_from(["8", "1e3", "true", "none", "rayleigh", "phone-0"]))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6)


def numbers(node):
    if isinstance(node, bool):
        return
    if isinstance(node, int | float):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from numbers(v)
    elif isinstance(node, list):
        for v in node:
            yield from numbers(v)


@settings(derandomize=True, max_examples=800, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(family=st.sampled_from(sorted(BASES)), data=st.data(), value=JSON,
       delete=st.booleans())
def test_any_value_anywhere_loads_in_range_or_is_named(family, data, value, delete):
    doc = copy.deepcopy(BASES[family])
    where = data.draw(st.sampled_from(PLACES[family]))
    target = doc
    for key in where[:-1]:
        target = target[key]
    if delete:
        del target[where[-1]]
    else:
        target[where[-1]] = value
    try:
        inst = load_instance(copy.deepcopy(doc))
    except InstanceError as err:
        assert err.problems and all(p.path.startswith("$") for p in err.problems)
        assert len(str(err)) < 20_000
        return
    # it loaded: every number is finite, and the schema (which holds every range) agrees
    resolved = inst.to_dict()
    assert all(math.isfinite(x) if isinstance(x, float) else abs(x) < 2**1024
               for x in numbers(resolved))
    assert not list(SCHEMA.iter_errors(resolved)), (where, value)
    assert not list(SCHEMA.iter_errors(doc)), (where, value)
