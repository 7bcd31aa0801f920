"""The JSON Schemas are the truth: every bundled instance and committed plan file validates, bad
instances are rejected by the schema and the loader alike, every field is described, every
number bounded, and docs/model.md's "Valid ranges" table says what the schema says."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest

from sftopt import InstanceError, load_instance
from sftopt.core.loading import json_schema, plan_json_schema

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = ("split", "cooperative", "hierarchical")


def validator(schema: dict) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_every_bundled_instance_is_valid_under_the_schema():
    v = validator(json_schema())
    files = sorted((ROOT / "data" / "instances").glob("*.json"))
    assert len(files) >= 10
    named = 0
    for path in files:
        data = json.loads(path.read_text())
        named += isinstance(data["model"], str)
        assert not list(v.iter_errors(data)), path.name
        load_instance(path)
    assert named >= 3  # a model named by a string is part of the format


def committed_plan_files() -> list[Path]:
    out = subprocess.run(["grep", "-rl", "--include=*.json", "sftopt.plan/2", "data",
                          "benchmarks", "docs"], cwd=ROOT, capture_output=True, text=True)
    return [ROOT / p for p in out.stdout.split() if not p.endswith(".schema.json")]


def test_every_committed_plan_file_is_valid_under_the_plan_schema():
    v = validator(plan_json_schema())
    files = committed_plan_files()
    assert len(files) >= 5
    for path in files:
        data = json.loads(path.read_text())
        assert not list(v.iter_errors(data)), path
    bad = json.loads(files[0].read_text())
    for change in ({"status": "great"}, {"objective": "1.0"}, {"family": "federated"},
                   {"plan": {"devices": "none"}}):
        assert list(v.iter_errors({**bad, **change})), change
    del bad["instance"]
    assert list(v.iter_errors(bad))


@pytest.mark.parametrize("name, make", [("instance", json_schema),
                                        ("plan", plan_json_schema)])
def test_committed_schema_files_are_current(name, make):
    path = ROOT / "docs" / f"{name}.schema.json"
    assert json.loads(path.read_text()) == make(), f"regenerate {path.name}"


def walk(node, where="$"):
    """Every (where, object schema) pair below ``node``."""
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from walk(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{where}[{i}]")


def test_every_field_described_and_every_number_bounded():
    schema = json_schema()
    for name, d in schema["$defs"].items():
        for field, prop in d.get("properties", {}).items():
            assert prop.get("description"), f"{name}.{field} has no description"
    numbers = [(w, n) for w, n in walk(schema) if n.get("type") in ("number", "integer")]
    assert len(numbers) > 40
    for where, n in numbers:
        assert ("minimum" in n or "exclusiveMinimum" in n) and "maximum" in n, where


# mutations of a valid instance that both the schema and the loader must reject
BAD = [
    ("split", ("devices", 0, "batch"), "8"), ("split", ("devices", 0, "flops"), True),
    ("split", ("training", "rounds"), "500"), ("split", ("training", "rounds"), 1e308),
    ("split", ("devices", 0, "tx_power_w"), 1e308), ("split", ("channel", "noise_dbm_hz"), 1e308),
    ("split", ("server", "flops"), 5e-324), ("split", ("devices", 0, "colour"), "red"),
    ("split", ("channel", "fading"), "rician"), ("split", ("codec", "levels"), []),
    ("split", ("model",), 7), ("split", ("devices", 0, "batch"), 10**400),
    ("cooperative", ("blocks", 0), "1"), ("cooperative", ("training", "max_blocks"), 0),
    ("hierarchical", ("training", "associate"), "true"),
    ("hierarchical", ("edges", 0, "backhaul_bps"), 0),
    ("hierarchical", ("users", 0, "distance_m"), [1e9]),
]
BUNDLED = {"split": "tiny-example.json", "cooperative": "minilm-topics-coop-4dev.json",
           "hierarchical": "minilm-topics-hier-4user.json"}


@pytest.mark.parametrize("family, where, value", BAD,
                         ids=[f"{f}:{'.'.join(map(str, w))}" for f, w, _ in BAD])
def test_bad_instances_rejected_by_schema_and_loader(family, where, value):
    data = json.loads((ROOT / "data" / "instances" / BUNDLED[family]).read_text())
    target = data
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    assert list(validator(json_schema()).iter_errors(data)), "the schema accepts it"
    assert list(validator(json_schema(family)).iter_errors(copy.deepcopy(data)))
    with pytest.raises(InstanceError):
        load_instance(data)


def schema_range(schema: dict, path: str) -> tuple[float, float]:
    """(minimum, maximum) of the number at ``path`` (``devices[].flops``) in a family's schema."""
    defs, node = schema["$defs"], schema
    for part in path.split("."):
        many = part.endswith("[]")
        node = node["properties"][part.removesuffix("[]")]
        node = _resolve(node, defs)
        if many:
            node = _resolve(node["items"], defs)
    low = node.get("minimum", node.get("exclusiveMinimum"))
    return low, node["maximum"]


def _resolve(node: dict, defs: dict) -> dict:
    """Through $ref, and into the non-null branch of an optional (or the number of a
    number-or-list)."""
    while True:
        if "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[-1]]
        elif "anyOf" in node or "oneOf" in node:
            options = [o for o in node.get("anyOf", node.get("oneOf")) if o.get("type") != "null"]
            node = options[0]
        else:
            return node


def test_the_docs_ranges_table_is_the_schema():
    """Every row of docs/model.md's "Valid ranges" table (field, families, low, high) matches
    the schema of each family it names, and every bounded field of every family has a row."""
    text = (ROOT / "docs" / "model.md").read_text()
    section = re.split(r"^## [\d. ]*Valid ranges$", text, flags=re.M)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \|", section, re.M)
    assert len(rows) > 30
    seen: dict[str, set[str]] = {f: set() for f in FAMILIES}
    for field, families, low, high in rows:
        names = FAMILIES if families.strip() == "all" else [
            f.strip(" `") for f in families.split(",")]
        for family in names:
            for path in field.split(", "):
                got = schema_range(json_schema(family), path)
                want = (float(low.split()[0]), float(high.split()[0]))
                assert got == pytest.approx(want), (family, path, got, want)
                seen[family].add(path)
    for family in FAMILIES:
        bounded = set(_bounded_paths(json_schema(family)))
        assert bounded <= seen[family], (family, sorted(bounded - seen[family]))


def _bounded_paths(schema: dict, node: dict | None = None, prefix: str = ""):
    """Every number's path (``devices[].flops``) in a family's instance schema."""
    defs = schema["$defs"]
    node = _resolve(schema if node is None else node, defs)
    for name, prop in node.get("properties", {}).items():
        prop = _resolve(prop, defs)
        path = f"{prefix}{name}"
        if prop.get("type") == "array":
            item = _resolve(prop["items"], defs)
            if item.get("type") == "object":
                yield from _bounded_paths(schema, item, f"{path}[].")
            elif item.get("type") in ("number", "integer"):
                yield f"{path}[]"
        elif prop.get("type") == "object" and "properties" in prop:
            yield from _bounded_paths(schema, prop, f"{path}.")
        elif prop.get("type") in ("number", "integer"):
            yield path
