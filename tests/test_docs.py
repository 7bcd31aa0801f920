"""The documentation stands alone and its examples are true: every fenced example of README.md
and docs/*.md that is a shell session of `$ sftopt ...` commands or a Python snippet runs
verbatim (in a scratch folder that sees the repository's data/, docs/ and benchmarks/) and
prints what the page shows; docs/model.md's JSON examples load; nothing points outside the
repository.

A shell block is `$ <command>` lines, each followed by the output it prints (stdout and stderr
as a terminal shows them). A Python block's output is the plain fenced block after it when the
text in between says "prints". Timing columns of tables (`wall_s`) are compared as "*", table
numbers below 1e-12 (rounding noise) as "~0". The
blocks of one page run in order in one folder, so a later command may read an earlier one's
files (the worked example: `solve --out plans`, then `check plans/...`). A block that is not
run is listed in NOT_RUN with the reason."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from sftopt import load_instance, load_plan

from .conftest import ROOT

PAGES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
TIMING_COLUMNS = {"wall_s"}  # machine- and load-dependent: compared as "*"
LINKED = ("data", "docs", "benchmarks")  # what the examples' relative paths reach
# (page, start of the block's first line) -> why it is not run
NOT_RUN = {
    ("docs/codec.md", "from sftopt.codec import encode"):
        "an API synopsis (signatures with placeholder arguments), not an example",
    ("docs/bench.md", "$ sftopt bench benchmarks/configs/smoke.toml"):
        "the suite's smoke run (about 20 s); tests/test_bench.py runs that config",
}
FENCE = re.compile(r"^```([A-Za-z]*)\n(.*?)^```\n", re.S | re.M)


def _fences(text: str) -> list[tuple[str, str, int, int]]:
    """(language, body, start, end) of every fenced block."""
    return [(m.group(1), m.group(2), m.start(), m.end()) for m in FENCE.finditer(text)]


def examples(page: str) -> list[tuple[str, str, str | None]]:
    """The page's runnable examples in order: (kind "shell" or "python", code, shown output or
    None when the page shows none); blocks in NOT_RUN left out."""
    text = (ROOT / page).read_text(encoding="utf-8")
    fences = _fences(text)
    found = []
    for i, (lang, body, _, end) in enumerate(fences):
        first = body.lstrip().splitlines()[0] if body.strip() else ""
        if any(p == page and first.startswith(s) for p, s in NOT_RUN):
            continue
        if lang == "python":
            shown = None
            if i + 1 < len(fences) and fences[i + 1][0] == "":
                between = text[end:fences[i + 1][2]]
                if "prints" in between and len(between) < 400:
                    shown = fences[i + 1][1]
            found.append(("python", body, shown))
        elif lang in ("", "console", "shell") and first.startswith("$ sftopt"):
            found.append(("shell", body, None))
    return found


def _sessions(body: str) -> list[tuple[str, str]]:
    """A shell block as (command, the output shown after it); `\\` continues a command."""
    out: list[tuple[str, list[str]]] = []
    lines = body.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            cmd = line[2:]
            while cmd.endswith("\\") and i + 1 < len(lines):
                i += 1
                cmd = cmd[:-1] + " " + lines[i].strip()
            out.append((cmd, []))
        else:
            out[-1][1].append(line)
        i += 1
    return [(cmd, "\n".join(shown)) for cmd, shown in out]


def _noise(cell: str) -> str:
    """A table number below 1e-12 in size is rounding noise (a gap of 1e-15, a slack of
    -2e-16): the last bits of a sum differ between machines, so it compares as "~0"."""
    try:
        return "~0" if abs(float(cell)) < 1e-12 else cell
    except ValueError:
        return cell


def _normalised(text: str) -> list[str]:
    """Lines with trailing blanks cut and every table cell under a timing column as "*" (cells
    found from the table's dashed rule, so column widths may differ)."""
    lines = [line.rstrip() for line in text.strip("\n").splitlines()]
    out: list[str] = []
    spans: list[tuple[int, int]] | None = None
    timing: set[int] = set()
    for k, line in enumerate(lines):
        if re.fullmatch(r"-+(  +-+)*", line) and k > 0:
            spans = [m.span() for m in re.finditer(r"-+", line)]
            header = _cells(lines[k - 1], spans)
            timing = {j for j, name in enumerate(header) if name in TIMING_COLUMNS}
            out[-1] = " | ".join(header)
            out.append("---")
            continue
        if spans and line and len(line) >= spans[-1][0]:
            cells = _cells(line, spans)
            out.append(" | ".join("*" if j in timing else _noise(c) for j, c in enumerate(cells)))
            continue
        spans = None
        out.append(line)
    return out


def _cells(line: str, spans: list[tuple[int, int]]) -> list[str]:
    """A fixed-width row cut at the starts of the rule's columns (a left-aligned cell may run
    past its rule; the next column starts two blanks after the rule)."""
    starts = [a for a, _ in spans] + [len(line) + 1]
    return [line[starts[j]:starts[j + 1]].strip() for j in range(len(spans))]


def _scratch(tmp_path: Path) -> Path:
    here = tmp_path / "work"
    here.mkdir()
    for name in LINKED:
        (here / name).symlink_to(ROOT / name)
    return here


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SFTOPT_")}
    env["COLUMNS"] = "200"
    return env


def _run_shell(cmd: str, here: Path) -> str:
    argv = shlex.split(cmd, comments=True)
    assert argv[0] == "sftopt", cmd
    proc = subprocess.run([sys.executable, "-m", "sftopt", *argv[1:]], cwd=here, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300,
                          env=_env())
    assert "Traceback" not in proc.stdout, f"$ {cmd}\n{proc.stdout}"
    return proc.stdout


@pytest.mark.parametrize("page", PAGES)
def test_examples_run_verbatim_and_print_what_is_shown(page: str, tmp_path: Path) -> None:
    here = _scratch(tmp_path)
    for kind, code, shown in examples(page):
        if kind == "python":
            proc = subprocess.run([sys.executable, "-c", code], cwd=here, capture_output=True,
                                  text=True, timeout=300, env=_env())
            assert proc.returncode == 0, f"{page}:\n{code}\n{proc.stderr}"
            if shown is not None:
                assert _normalised(proc.stdout) == _normalised(shown), f"{page}:\n{code}"
            continue
        for cmd, want in _sessions(code):
            got = _run_shell(cmd, here)
            if want.strip():
                assert _normalised(got) == _normalised(want), f"{page}: $ {cmd}"


def test_the_examples_are_found() -> None:
    """The extraction finds what the pages hold (a page change that hides an example from the
    test, e.g. a different fence, shows here)."""
    readme = examples("README.md")
    kinds = [k for k, _, _ in readme]
    assert kinds.count("python") >= 2 and kinds.count("shell") >= 4
    assert all(shown for k, _, shown in readme if k == "python")  # each shows its output
    assert any("$ sftopt check" in code for _, code, _ in readme)
    assert any(k == "shell" for k, _, _ in examples("docs/hierarchical.md"))
    for page, start in NOT_RUN:  # every exemption still names a block that exists
        assert any(body.lstrip().startswith(start)
                   for _, body, _, _ in _fences((ROOT / page).read_text(encoding="utf-8")))


def test_normalised_tables_ignore_timing_only() -> None:
    a = "x    wall_s  total\n---  ------  -----\nab   0.0123    1.5\n"
    b = "x    wall_s     total\n---  ---------  -----\nab   12.34567     1.5\n"
    assert _normalised(a) == _normalised(b) == ["x | wall_s | total", "---", "ab | * | 1.5"]
    assert _normalised(a) != _normalised(a.replace("1.5", "1.6"))
    assert _sessions("$ sftopt a \\\n  --b\nout\n$ sftopt c\n") == [("sftopt a  --b", "out"),
                                                                    ("sftopt c", "")]


def test_model_page_examples_load() -> None:
    text = (ROOT / "docs" / "model.md").read_text()
    blocks = [json.loads(body) for lang, body, _, _ in _fences(text) if lang == "json"]
    instances = [b for b in blocks if b.get("schema") == "sftopt.instance/1"]
    plans = [b for b in blocks if b.get("schema") == "sftopt.plan/2"]
    assert len(instances) == 1 and len(plans) == 1
    tiny = load_instance(ROOT / "data" / "instances" / "tiny-example.json")
    assert load_instance(instances[0]).sha256 == tiny.sha256
    plan = load_plan(plans[0])
    assert plan.plan.cuts.tolist() == [0, 0] and plan.simulation.rounds == 530


# spelled apart so that this file does not match itself
OUTSIDE = ["../" + "shared", "/" + "work/", "SPEC" + ".md", "/" + "root/", "/" + "home/",
           "/" + "tmp/", "/" + "Users/"]


def _tracked() -> list[Path]:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / f for f in files if Path(f).suffix in (".md", ".py", ".json", ".toml", ".csv",
                                                          ".txt", ".cfg", ".yml", "")]


def test_nothing_points_outside_the_repository() -> None:
    hits = []
    for path in _tracked():
        if not path.is_file() or path == Path(__file__):
            continue
        text = path.read_text(errors="ignore")
        hits += [f"{path.relative_to(ROOT)}: {n}" for n in OUTSIDE if n in text]
    assert not hits
