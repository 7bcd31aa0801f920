"""The documentation stands alone and its examples are true: the README's Python snippets print
what the README shows, docs/model.md's JSON examples load, nothing points outside the repo."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from sftopt import load_instance, load_plan

from .conftest import ROOT


def _blocks(text: str, lang: str) -> list[tuple[str, int]]:
    """The fenced code blocks of language ``lang`` and where each one ends."""
    return [(m.group(1), m.end()) for m in re.finditer(rf"```{lang}\n(.*?)```", text, re.S)]


def test_readme_python_snippets_print_what_they_show(tmp_path):
    readme = (ROOT / "README.md").read_text()
    blocks = _blocks(readme, "python")
    assert blocks, "README has no Python example"
    for i, (code, end) in enumerate(blocks):
        shown = re.search(r"```\n(.*?)```", readme[end:], re.S).group(1)
        here = tmp_path / f"snippet-{i}"
        here.mkdir()
        (here / "data").symlink_to(ROOT / "data")
        proc = subprocess.run([sys.executable, "-c", code], cwd=here, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == shown
        if (here / "plan.json").exists():
            assert load_plan(here / "plan.json").family in ("split", "cooperative")


def test_model_page_examples_load():
    text = (ROOT / "docs" / "model.md").read_text()
    blocks = [json.loads(code) for code, _ in _blocks(text, "json")]
    instances = [b for b in blocks if b.get("schema") == "sftopt.instance/1"]
    plans = [b for b in blocks if b.get("schema") == "sftopt.plan/2"]
    assert len(instances) == 1 and len(plans) == 1
    tiny = load_instance(ROOT / "data" / "instances" / "tiny-example.json")
    assert load_instance(instances[0]).sha256 == tiny.sha256
    plan = load_plan(plans[0])
    assert plan.plan.cuts.tolist() == [0, 0] and plan.simulation.rounds == 530


@pytest.mark.parametrize("folder", ["README.md", "docs", "sftopt", "data", "models",
                                    "benchmarks", "tests"])
def test_nothing_points_outside_the_repository(folder):
    path = ROOT / folder
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()
                                           and p.suffix in (".md", ".py", ".json", ".toml")]
    needle = "../" + "shared/"  # spelled apart so this file does not match itself
    hits = [str(p.relative_to(ROOT)) for p in files if needle in p.read_text(errors="ignore")]
    assert not hits
