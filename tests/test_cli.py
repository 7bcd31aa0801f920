"""The `sftopt` command end to end: tables out, plans to files, clear errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sftopt import load_instance
from sftopt.cli import main

from .conftest import ROOT

TINY = str(ROOT / "data" / "instances" / "tiny-example.json")


def test_solve_writes_verified_plans(tmp_path, capsys):
    rc = main(["solve", TINY, "--solver", "greedy,baseline-equal", "--out", str(tmp_path),
               "--seed", "3"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "greedy" in out and "baseline-equal" in out and "feasible" in out
    plan = json.loads((tmp_path / "tiny-example.greedy.plan.json").read_text())
    assert plan["schema"] == "sftopt.plan/2" and plan["solver"] == "greedy"
    assert plan["family"] == "split" and len(plan["plan"]["devices"]) == 2
    assert plan["simulation"]["seed"] == 3 and plan["options"]["seed"] == 3
    assert "seed" in plan["ignored_options"]  # greedy has no randomness
    # by Jensen, the fading simulation never beats the average channel
    assert plan["simulation"]["total_delay_s"] >= plan["objective"]
    assert main(["check", TINY, str(tmp_path / "tiny-example.greedy.plan.json")]) == 0
    assert "feasible: total delay" in capsys.readouterr().out


def test_single_solve_prints_device_table(capsys):
    assert main(["solve", TINY, "--no-simulate"]) == 0
    out = capsys.readouterr().out
    assert "phone-0" in out and "band_MHz" in out
    assert " alm " in out  # the split family's default solver


def test_check_rejects_tampered_plan(tmp_path, capsys):
    main(["solve", TINY, "--solver", "greedy", "--out", str(tmp_path), "--no-simulate"])
    path = tmp_path / "tiny-example.greedy.plan.json"
    plan = json.loads(path.read_text())
    plan["plan"]["devices"][0]["bandwidth_hz"] = 2.0e7
    path.write_text(json.dumps(plan))
    capsys.readouterr()
    assert main(["check", TINY, str(path)]) == 1
    assert "INFEASIBLE" in capsys.readouterr().out


@pytest.mark.parametrize("argv, needle", [
    (["solve", "nope.json"], "no file"),
    (["solve", TINY, "--solver", "simplex"], "unknown solver 'simplex' for family 'split'"),
    (["solve", TINY, "--option", "depth=3"], "has no option 'depth'"),
    (["solve", TINY, "--option", "novalue"], "KEY=VALUE"),
    (["generate", "--memory-pressure", "3"], "memory_pressure"),
    (["generate", "--param", "colour=red"], "colour"),
    (["generate", "--family", "hierarchical", "--param", "n_edges=0"],
     "n_edges must be a whole number in [1"),
    (["solve", TINY, "--option", "seed=-1"], "option seed: expected a whole number"),
    (["simulate", TINY, TINY], "$.schema"),
    (["solve", TINY, "--bound", "magic"], "family 'split' has the bounds lagrangian"),
    (["plot", TINY, TINY, "--out", "figure.txt"], "expected a name ending in .png"),
    (["generate", "--param", "devices=3"], "unexpected keyword argument 'devices'"),
    (["generate", "--param", "n_devices=many"], "n_devices must be a whole number"),
    (["generate", "--param", "codec=nope"], "no codec table 'nope'"),
])
def test_bad_input_exits_2_without_traceback(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_bad_instance_field_names_path(tmp_path, capsys):
    data = json.loads(Path(TINY).read_text())
    data["devices"][1]["batch"] = 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    assert main(["solve", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "$.devices[1].batch" in err and "got 0" in err


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["solve", TINY, "--seed", "-1"])
    assert exc.value.code == 2


def test_generate_and_schema(tmp_path, capsys):
    out = tmp_path / "g.json"
    assert main(["generate", "--devices", "3", "--seed", "5", "--out", str(out)]) == 0
    assert len(json.loads(out.read_text())["devices"]) == 3
    capsys.readouterr()
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["$id"] == "sftopt.instance/1"


def test_solvers_table(capsys):
    assert main(["solvers"]) == 0
    out = capsys.readouterr().out
    assert "greedy" in out and "baseline-equal" in out and "available" in out
    assert out.startswith("family split:")  # grouped by family


def test_console_script_runs():
    for module in ("sftopt.cli", "sftopt"):
        proc = subprocess.run([sys.executable, "-m", module, "solve", TINY, "--no-simulate"],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "tiny-example" in proc.stdout


def test_every_parallel_plan_gets_a_certified_gap(tmp_path, capsys):
    assert main(["solve", TINY, "--solver", "greedy,exhaustive,vanilla-sl", "--no-simulate",
                 "--out", str(tmp_path)]) == 0
    plans = {s: json.loads((tmp_path / f"tiny-example.{s}.plan.json").read_text())
             for s in ("greedy", "exhaustive", "vanilla-sl")}
    best = plans["exhaustive"]["bound"]
    # the exact solver's dual bound is the best known, and it certifies greedy's gap
    assert plans["greedy"]["bound"] == pytest.approx(best)
    assert plans["greedy"]["gap"] == pytest.approx(
        (plans["greedy"]["objective"] - best) / plans["greedy"]["objective"])
    assert plans["greedy"]["gap"] > 0.5  # greedy is far off on this instance
    # a sequential plan gets the sequential optimum, not the (larger) parallel bound
    from sftopt.families.split.bounds import sequential_bound

    seq = plans["vanilla-sl"]
    assert seq["bound"] == pytest.approx(sequential_bound(load_instance(TINY)))
    assert seq["bound"] <= seq["objective"] * (1 + 1e-9)
    assert seq["bound"] != pytest.approx(best)
    assert main(["solve", TINY, "--solver", "greedy", "--bound", "none", "--no-simulate",
                 "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "tiny-example.greedy.plan.json").read_text())["gap"] is None


def test_time_limit_note_names_the_untimed_solvers(capsys):
    assert main(["solve", TINY, "--solver", "greedy,greedy-delay,vanilla-sl", "--time-limit",
                 "5", "--no-simulate", "--bound", "none"]) == 0
    err = capsys.readouterr().err
    assert "note: --time-limit not used by greedy, vanilla-sl (no time limit" in err
    assert err.count("time limit") == 1  # one note, greedy-delay (which has one) not in it


def test_figures_of_a_plan_and_its_simulation(tmp_path, capsys):
    assert main(["solve", TINY, "--solver", "greedy-delay", "--no-simulate", "--bound", "none",
                 "--out", str(tmp_path)]) == 0
    plan = str(tmp_path / "tiny-example.greedy-delay.plan.json")
    fig = tmp_path / "plan.png"
    assert main(["plot", TINY, plan, "--out", str(fig)]) == 0
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rounds = tmp_path / "figs" / "rounds.svg"
    capsys.readouterr()
    assert main(["simulate", TINY, plan, "--seed", "2", "--plot", str(rounds)]) == 0
    out = capsys.readouterr().out
    assert "figure written" in out and rounds.read_text().lstrip().startswith("<?xml")
    # the same numbers with and without the figure
    assert main(["simulate", TINY, plan, "--seed", "2"]) == 0
    assert capsys.readouterr().out.splitlines()[2] == out.splitlines()[2]
    assert main(["simulate", TINY, plan, "--allocator", "psychic"]) == 2
    assert "--allocator must be one of" in capsys.readouterr().err


def test_generate_takes_family_parameters(tmp_path, capsys):
    out = tmp_path / "g.json"
    assert main(["generate", "--family", "split", "--devices", "2", "--param", "rounds=50",
                 "--param", "fading=none", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["training"]["rounds"] == 50 and data["channel"]["fading"] == "none"
    assert load_instance(data).family == "split"


def test_plans_that_do_not_fit_are_refused(tmp_path, capsys):
    assert main(["solve", TINY, "--solver", "greedy", "--no-simulate", "--bound", "none",
                 "--out", str(tmp_path)]) == 0
    path = tmp_path / "tiny-example.greedy.plan.json"
    plan = json.loads(path.read_text())
    plan["plan"]["devices"][1]["cut"] = 9
    path.write_text(json.dumps(plan))
    capsys.readouterr()
    for cmd in (["simulate", TINY, str(path)], ["plot", TINY, str(path), "--out",
                                                  str(tmp_path / "f.png")]):
        assert main(cmd) == 2
        err = capsys.readouterr().err
        assert "does not fit" in err and "cut 9 outside" in err and "Traceback" not in err
    assert main(["check", TINY, str(path)]) == 1  # the verifier's finding, not bad input
    assert "cut 9 outside" in capsys.readouterr().out
    plan["plan"] = None
    plan["status"] = "none"
    path.write_text(json.dumps(plan))
    assert main(["check", TINY, str(path)]) == 2
    assert "holds no plan" in capsys.readouterr().err


def test_a_refusal_fails_the_run(capsys):
    default = str(ROOT / "data" / "instances" / "default.json")
    assert main(["solve", default, "--solver", "exhaustive", "--no-simulate", "--bound",
                 "none"]) == 1
    assert "refused" in capsys.readouterr().out


def test_written_files_are_readable_by_others(tmp_path):
    out = tmp_path / "g.json"
    assert main(["generate", "--devices", "2", "--out", str(out)]) == 0
    assert out.stat().st_mode & 0o044 == 0o044  # the umask's mode, as a plain write gives
