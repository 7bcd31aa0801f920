"""The package as a user installs it: a wheel built from the sources, installed in a fresh venv
outside the checkout that sees only the core dependencies (no extras: no torch), solves every
bundled instance, including those that name their model profile or codec table by string.

No network: the fresh venv gets the distributions of the core dependencies (the wheel's
Requires-Dist without extras, and theirs, transitively) from this interpreter's environment
through a folder of links named in a .pth file, and `pip install --no-index` of the wheel must
find every requirement satisfied there. torch and the other extras are not linked, so any
import of them on the solve path fails the test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .conftest import ROOT

SOURCES = ("pyproject.toml", "README.md", "LICENSE", "sftopt")


def _run(args: list[str | Path], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "SFTOPT_"))}
    env["PIP_NO_INPUT"] = "1"
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)
    assert proc.returncode == 0, f"{args}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _core_closure(requires: list[str]) -> dict[str, metadata.Distribution]:
    """The installed distributions the requirements need without extras, transitively."""
    env = {**default_environment(), "extra": ""}
    todo, found = list(requires), {}
    while todo:
        req = Requirement(todo.pop())
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = canonicalize_name(req.name)
        if name in found:
            continue
        dist = metadata.distribution(req.name)
        assert dist.version in req.specifier, f"{req} but {dist.version} is installed"
        found[name] = dist
        todo += dist.requires or []
    return found


def _link_site(dists: dict[str, metadata.Distribution], folder: Path) -> None:
    """Link every top-level entry (package, module, .dist-info, .libs) of ``dists`` into
    ``folder``."""
    folder.mkdir()
    for dist in dists.values():
        base = Path(dist.locate_file(""))
        for top in {Path(f).parts[0] for f in dist.files or []}:
            if top == ".." or top.endswith(".pth") or (folder / top).exists():
                continue
            if (base / top).exists():
                (folder / top).symlink_to(base / top)


def test_wheel_installs_and_solves_every_bundled_instance(tmp_path: Path) -> None:
    src, dist_dir = tmp_path / "src", tmp_path / "dist"
    src.mkdir()
    for name in SOURCES:  # a copy: building writes build/ and *.egg-info beside the sources
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "-q", "-w", dist_dir, src], cwd=tmp_path)
    (wheel,) = dist_dir.glob("sftopt-*.whl")

    # the data ship inside: every profile and codec table of the checkout, the py.typed marker
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        metadata_file = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(zf.read(metadata_file).decode())
    packaged = {f"sftopt/models/{p.name}" for p in (ROOT / "sftopt" / "models").glob("*.json")}
    assert packaged and packaged <= names and "sftopt/py.typed" in names
    assert "sftopt/__main__.py" in names

    # a fresh venv outside the checkout seeing the core dependencies only
    core = _core_closure(meta.get_all("Requires-Dist") or [])
    assert "torch" not in core and "numpy" in core and "pyomo" in core
    site_deps = tmp_path / "core-deps"
    _link_site(core, site_deps)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                     cwd=tmp_path).stdout.strip())
    (site / "core-deps.pth").write_text(f"{site_deps}\n")
    # --no-index: every requirement must already be satisfied by the core dependencies
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-index", "-q",
          wheel], cwd=tmp_path)

    work = tmp_path / "user"
    work.mkdir()
    for inst in sorted((ROOT / "data" / "instances").glob("*.json")):
        shutil.copy2(inst, work / inst.name)
    named = [p.name for p in work.glob("*.json")
             if isinstance(json.loads(p.read_text())["model"], str)]
    assert "default.json" in named  # instances naming a packaged profile are among them

    probe = ("import sys, sftopt, sftopt.profiles as P; "
             "print(sftopt.__file__); print(P.models_dir()); "
             "print(any(m.split('.')[0] == 'torch' for m in sys.modules))")
    where, models, torch = _run([python, "-c", probe], cwd=work).stdout.split()
    assert Path(where).is_relative_to(site) and Path(models).is_relative_to(site)
    assert torch == "False"  # `import sftopt` does not import torch

    files = sorted(p.name for p in work.glob("*.json"))
    out = _run([python, "-m", "sftopt", "solve", *files, "--solver", "greedy", "--no-simulate",
                "--bound", "none", "--out", "plans"], cwd=work, timeout=300)
    for name in files:
        plan = json.loads((work / "plans" / f"{Path(name).stem}.greedy.plan.json").read_text())
        assert plan["status"] in ("optimal", "feasible"), (name, plan["status"])
        assert plan["plan"] is not None and plan["objective"] > 0
    assert "greedy" in out.stdout and "default" in out.stdout


@pytest.fixture(autouse=True)
def _needs_venv_symlinks(tmp_path: Path) -> None:
    try:
        (tmp_path / "probe").symlink_to(tmp_path)
    except OSError:
        pytest.skip("symbolic links are not available here")
    (tmp_path / "probe").unlink()
