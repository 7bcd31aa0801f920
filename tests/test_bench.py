"""`sftopt bench`: a config's runs certified and verified, one row each; the same rows on the
local, Dask and Ray engines; resuming skips finished tasks; a failing run is a row; a bad config
is named."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from sftopt.bench import ConfigError, load_config, parse_config, read_rows, run
from sftopt.cli import main

from .conftest import ROOT

CONFIG = {
    "name": "t",
    "time_limits": [10],
    "solvers": {"split": ["greedy-delay", "baseline-equal"], "cooperative": ["exact", "crunch"],
                "hierarchical": ["exact", "greedy"]},
    "sets": [{"name": "files", "files": [str(ROOT / "data/instances/tiny-example.json")]},
             {"name": "coop", "family": "cooperative",
              "generate": {"n_devices": 5, "n_blocks": 3, "seed": [1, 2]}},
             {"name": "hier", "family": "hierarchical",
              "generate": {"n_users": 4, "n_edges": 2, "model": "minilm-l6", "seq_len": 64}}],
}
SAME = ("task", "instance", "family", "parties", "solver", "seed", "status", "termination",
        "objective", "bound", "gap", "bytes", "peak_memory", "verified", "error",
        "instance_sha256")


def _key(rows):
    return sorted(tuple(r[k] for k in SAME) for r in rows)


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> Path:
    return run(parse_config(CONFIG), tmp_path_factory.mktemp("b") / "local", progress=False)


def test_every_run_is_a_certified_verified_row(local):
    rows = read_rows(local / "runs.csv")
    assert len(rows) == 2 + 2 * 2 + 2  # one instance x 2 solvers per set entry
    assert {r["family"] for r in rows} == {"split", "cooperative", "hierarchical"}
    for r in rows:
        assert r["status"] in ("optimal", "feasible"), r
        assert r["verified"] == "True" and float(r["gap"]) >= 0 and r["bound"], r
        assert len(r["instance_sha256"]) == 64 and json.loads(r["versions"])["sftopt"]
    exact = [r for r in rows if r["solver"] == "exact"]
    assert all(float(r["gap"]) < 1e-5 for r in exact)
    text = (local / "summary.md").read_text()
    assert "| coop | cooperative | crunch | 2 | 2 | 2 |" in text
    assert json.loads((local / "config.json").read_text())["name"] == "t"


@pytest.mark.parametrize("engine", ["dask", "ray"])
def test_engines_give_the_local_rows(local, tmp_path, engine):
    pytest.importorskip({"dask": "distributed", "ray": "ray"}[engine])
    out = run(parse_config(CONFIG), tmp_path / engine, engine=engine, workers=2,
              progress=False)
    assert _key(read_rows(out / "runs.csv")) == _key(read_rows(local / "runs.csv"))


def test_resume_skips_finished_tasks_and_runs_new_ones(local, tmp_path):
    out = tmp_path / "r"
    cfg = dict(CONFIG, sets=CONFIG["sets"][1:2])
    run(parse_config(cfg), out, progress=False)
    first = read_rows(out / "runs.csv")
    with pytest.raises(ConfigError, match="--resume"):
        run(parse_config(cfg), out, progress=False)
    # an interrupted write: a torn last line is dropped on resume
    with (out / "runs.csv").open("a") as f:
        f.write("coop|torn,coop,half")
    run(parse_config(dict(cfg, seeds=[0, 1])), out, resume=True, progress=False)
    rows = read_rows(out / "runs.csv")
    assert rows[:len(first)] == first  # finished rows kept as they were
    assert len(rows) == 2 * len(first) and {r["seed"] for r in rows} == {"0", "1"}
    assert not any("torn" in r["task"] for r in rows)


def test_a_failing_run_is_a_row_not_a_crash(tmp_path):
    cfg = dict(CONFIG, sets=CONFIG["sets"][:1], options={"baseline-equal": {"depth": 3}})
    out = run(parse_config(cfg), tmp_path / "f", progress=False)
    rows = {r["solver"]: r for r in read_rows(out / "runs.csv")}
    assert rows["baseline-equal"]["status"] == "error"
    assert "has no option 'depth'" in rows["baseline-equal"]["error"]
    assert rows["greedy-delay"]["verified"] == "True"
    assert "1 runs failed" in (out / "summary.md").read_text()


@pytest.mark.parametrize("change, needle", [
    ({"colour": 1}, "colour"),
    ({"solvers": {"split": ["simplex"]}}, "solvers.split"),
    ({"solvers": {"federated": ["x"]}}, "solvers.federated"),
    ({"sets": [{"name": "x", "files": ["nope.json"]}]}, "sets[0].files"),
    ({"sets": [{"name": "x", "family": "cooperative", "generate": {"n_devices": 0}}]},
     "sets[0].generate"),
    ({"seeds": [-1]}, "seeds"),
    ({"time_limits": [0]}, "time_limits"),
])
def test_a_bad_config_is_named(change, needle):
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        parse_config({**CONFIG, **change})


def test_command_line(tmp_path, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(dict(CONFIG, sets=CONFIG["sets"][:1])))
    out = tmp_path / "o"
    assert main(["bench", str(cfg), "--out", str(out), "--no-progress"]) == 0
    assert "| files | split | greedy-delay | 1 | 1 | 1 |" in capsys.readouterr().out
    before = (out / "runs.csv").read_text()
    assert main(["bench", str(cfg), "--out", str(out)]) == 2  # never overwritten
    assert "--resume" in capsys.readouterr().err
    assert (out / "runs.csv").read_text() == before
    bad = tmp_path / "bad.toml"
    bad.write_text("name = ")
    assert main(["bench", str(bad)]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_the_committed_configs_load():
    for path in sorted((ROOT / "benchmarks" / "configs").glob("*.toml")):
        cfg = load_config(path)
        assert cfg.tasks(), path
    with (ROOT / "benchmarks/configs/smoke.toml").open() as f:
        assert "sets" in f.read()
    assert csv  # the runs file is CSV (read through csv.DictReader)


def test_benchmarks_run_parses_and_names_its_commands(capsys):
    from benchmarks.run import SUITES
    from benchmarks.run import main as bench_main

    assert bench_main(["--dry-run"]) == 0  # every suite, full size: the commands only
    out = capsys.readouterr().out
    assert [line.split(":")[0][3:] for line in out.splitlines()] == list(SUITES)
    assert "calibration/run.py --commit" in out  # only full runs replace committed files
    assert bench_main(["--quick", "--dry-run", "codec", "calibration"]) == 0
    out = capsys.readouterr().out
    assert "--commit" not in out and out.count("--out") == 2
    with pytest.raises(SystemExit):
        bench_main(["nope"])
    assert "unknown suite(s) nope" in capsys.readouterr().err


def test_benchmarks_run_quick_runs_the_smoke_config(tmp_path):
    """`python -m benchmarks.run --quick` (what `make bench` runs): the smoke config, every
    row certified and verified, into the folder given."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick", "--out",
                           str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = read_rows(tmp_path / "bench" / "runs.csv")
    assert rows and all(r["status"] != "error" for r in rows)
    assert {r["family"] for r in rows} == {"split", "cooperative", "hierarchical"}
