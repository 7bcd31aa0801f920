"""The command line as a script sees it: bad files named (exit 2, no traceback, no hang), output
checked before any work and never half written, one JSON document with --json, logging through
the `sftopt` logger, every option's help naming its default, interrupts that keep finished
plans, exit codes as documented (sftopt/cli/common.py)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sftopt.cli import build_parser, main
from sftopt.cli.solve import plan_names
from sftopt.core.errors import InstanceError
from sftopt.core.files import read_json

from .conftest import ROOT

TINY = str(ROOT / "data" / "instances" / "tiny-example.json")
DEFAULT = str(ROOT / "data" / "instances" / "default.json")
CLI = [sys.executable, "-m", "sftopt.cli"]


def _bad_files(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """name -> (path, the words the error must contain)."""
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    (tmp_path / "folder.json").mkdir()
    files = {
        "deep": ("[" * 3000 + "]" * 3000, "nested at most 500 deep"),
        "deep-600": ("[" * 600 + "]" * 600, "nested at most 500 deep"),
        "digits": ('{"a": ' + "9" * 5000 + "}", "integers of at most"),
        "nan": ('{"a": NaN}', "NaN and Infinity are not JSON"),
    }
    out = {k: (str(tmp_path / f"{k}.json"), words) for k, (_, words) in files.items()}
    for k, (text, _) in files.items():
        Path(out[k][0]).write_text(text)
    (tmp_path / "latin1.json").write_bytes(b'{"name": "caf\xe9"}')
    (tmp_path / "utf16.json").write_text('{"a": 1}', encoding="utf-16")
    out.update({
        "latin1": (str(tmp_path / "latin1.json"), "line 1, column 14): expected UTF-8 text, "
                                                  "got byte 0xe9"),
        "utf16": (str(tmp_path / "utf16.json"), "got UTF-16 (byte order mark ff fe)"),
        "fifo": (str(fifo), "expected a regular file, got a FIFO"),
        "zero": ("/dev/zero", "expected a regular file, got a character device"),
        "folder": (str(tmp_path / "folder.json"), "expected a regular file, got a folder"),
        "under-a-file": (TINY + "/x.json", "Not a directory"),
    })
    return out


def test_bad_files_are_named_and_exit_2(tmp_path, capsys):
    start = time.perf_counter()
    for name, (path, words) in _bad_files(tmp_path).items():
        assert main(["solve", path]) == 2, name
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err, (name, err)
    assert time.perf_counter() - start < 10  # nothing hangs (FIFO, /dev/zero)


def test_size_cap_is_named(tmp_path):
    path = tmp_path / "i.json"
    path.write_text(Path(TINY).read_text())
    with pytest.raises(InstanceError, match="a file of at most 100 bytes"):
        read_json(path, max_bytes=100)
    assert read_json(path)["name"] == "tiny-example"
    bom = tmp_path / "bom.json"
    bom.write_text('{"a": 1}', encoding="utf-8-sig")  # UTF-8 with a byte order mark is UTF-8
    assert read_json(bom) == {"a": 1}


@pytest.mark.parametrize("argv, needle", [
    (["solve", TINY, "--out", TINY], "exists and is not a folder"),
    (["solve", TINY, "--out", TINY + "/plans"], "cannot write there"),
    (["schema", "--out", "/nonexistent-h4/s.json"], "the folder '/nonexistent-h4' does not "
                                                     "exist"),
    (["generate", "--out", "/nonexistent-h4/g.json"], "does not exist"),
    (["generate", "--out", str(ROOT)], "is a folder"),
    (["plot", TINY, TINY, "--out", TINY + "/f.png"], "exists and is not a folder"),
])
def test_bad_output_is_named_before_any_work(argv, needle, capsys, monkeypatch):
    import sftopt.cli.solve as solve_cli

    def never(*a, **k):
        raise AssertionError("solved before the output was checked")

    monkeypatch.setattr(solve_cli, "solve", never)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_named(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    assert main(["solve", TINY, "--out", str(ro), "--no-simulate"]) == 2
    assert "cannot write there" in capsys.readouterr().err


def test_same_file_names_never_share_a_plan_name(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    data = json.loads(Path(TINY).read_text())
    (a / "tiny.json").write_text(json.dumps(data))
    data["devices"][0]["batch"] = 4
    (b / "tiny.json").write_text(json.dumps(data))
    out = tmp_path / "out"
    assert main(["solve", str(a / "tiny.json"), str(b / "tiny.json"), "--solver", "greedy",
                 "--no-simulate", "--bound", "none", "--out", str(out)]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert len(files) == 2 and all(f.startswith("tiny-") for f in files), files
    # identical contents under one name still get two names
    assert plan_names(["x/i.json", "y/i.json", "z/j.json"], [type("I", (), {"sha256": "ab" * 32})]
                      * 3) == ["i-abababab", "i-abababab-2", "j"]


def test_refusal_writes_no_plan_and_does_not_fail_the_others(tmp_path, capsys):
    assert main(["solve", DEFAULT, "--solver", "greedy,exhaustive", "--no-simulate", "--bound",
                 "none", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "refused" in captured.out and "exhaustive refuses" in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["default.greedy.plan.json"]
    # alone, the refusal leaves the instance without a plan: a failure
    assert main(["solve", DEFAULT, "--solver", "exhaustive", "--no-simulate", "--bound",
                 "none"]) == 1


def test_json_documents(tmp_path, capsys):
    assert main(["solve", TINY, "--solver", "greedy-delay,exhaustive", "--json", "--out",
                 str(tmp_path), "--no-simulate", "--bound", "relaxation"]) == 0
    doc = json.loads(capsys.readouterr().out)  # one document, nothing else on stdout
    assert doc["exit_code"] == 0 and [r["solver"] for r in doc["runs"]] == [
        "greedy-delay", "exhaustive"]
    run = doc["runs"][0]
    assert Path(run["plan_file"]).is_file() and run["result"]["plan"] is not None
    assert run["row"]["verified"] is True and run["result"]["gap"] is not None
    plan = run["plan_file"]
    assert main(["check", TINY, plan, "--json"]) == 0
    check = json.loads(capsys.readouterr().out)
    assert check["feasible"] and check["ok"] and len(check["binding"]) == 5
    assert main(["simulate", TINY, plan, "--json", "--seed", "1"]) == 0
    sim = json.loads(capsys.readouterr().out)
    assert sim["simulation"]["seed"] == 1 and sim["average_channel_s"] > 0
    assert main(["solvers", "--json", "--family", "split"]) == 0
    cat = json.loads(capsys.readouterr().out)["families"]["split"]
    defaults = [s["name"] for s in cat["solvers"] if s["default"]]
    assert defaults == [cat["default_solver"]] == ["alm"]


def test_verbosity_goes_through_logging(capsys):
    assert main(["-v", "solve", TINY, "--solver", "greedy", "--no-simulate", "--bound",
                 "none"]) == 0
    err = capsys.readouterr().err
    assert "INFO: sftopt: solving tiny-example with greedy" in err
    assert main(["-v", "solve", TINY, "--solver", "milp", "--no-simulate", "--bound",
                 "none"]) == 0
    err = capsys.readouterr().err  # milp's progress: incumbent and bound as it goes
    assert "INFO: sftopt.milp: milp:" in err and "incumbent" in err and "bound" in err
    # -q: no notes (here: the refusal's), no info; the table still on stdout
    argv = ["solve", DEFAULT, "--solver", "greedy,exhaustive", "--no-simulate", "--bound",
            "none"]
    assert main(argv) == 0
    assert "note: exhaustive on default: refused" in capsys.readouterr().err
    assert main([*argv, "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "refused" in captured.out


def test_every_option_explains_itself_and_names_its_default():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) >= {"solve", "check", "simulate", "plot", "solvers", "generate",
                                "schema", "execute", "bench", "calibrate"}
    for name, sp in sub.choices.items():
        for action in sp._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            label = f"{name} {action.option_strings or action.dest}"
            assert action.help, f"{label}: no help"
            default = action.default
            if default in (None, False, [], argparse.SUPPRESS) or action.required:
                continue
            assert "default" in action.help, f"{label}: default {default!r} not named"
            if isinstance(default, int | float | str) and not isinstance(default, bool):
                text = f"{default:g}" if isinstance(default, float) else str(default)
                assert text in action.help, f"{label}: default {default!r} not in its help"
        # and argparse renders it (the text a user reads)
        assert sp.format_help().count("default") >= 1


def _cli(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + args, capture_output=True, text=True, timeout=120, **kw)


def test_full_disk_and_closed_pipe_end_quietly(tmp_path):
    with open("/dev/full", "w") as full:
        proc = subprocess.run(CLI + ["schema"], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 3
    assert "cannot write standard output: No space left on device" in proc.stderr
    assert "Traceback" not in proc.stderr
    # a reader gone before the output comes (`| head -0`, or `| head -1` of a long output)
    p = subprocess.Popen(CLI + ["schema"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()
    assert p.wait(timeout=120) == 141
    assert p.stderr.read() == b""


@pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"),
                                             (signal.SIGTERM, 143, "terminated")])
def test_an_interrupt_keeps_the_finished_plans(tmp_path, sig, code, word):
    out = tmp_path / "out"
    # SIGINT as at a terminal: a shell starts background jobs (a CI run with `&`) with SIGINT
    # ignored, which the CLI would inherit, and Python then installs no KeyboardInterrupt
    p = subprocess.Popen(CLI + ["-v", "solve", DEFAULT, "--solver", "greedy,baseline-equal,alm",
                                "--no-simulate", "--bound", "none", "--out", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # lines as they come (a select on the pipe misses lines already in the reader's buffer and
    # would see this one late, after alm); the process ends, so the loop does
    seen = ""
    while "solving default with alm" not in seen:
        line = p.stderr.readline()
        if not line:
            break
        seen += line
    assert "solving default with alm" in seen
    time.sleep(0.3)  # inside alm (seconds on this instance)
    p.send_signal(sig)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == code, stderr
    assert "Traceback" not in stderr
    # the signal lands inside alm, or on a fast machine after it (while verifying): either
    # way every finished plan is written whole and nothing else
    finished = 2 if f"{word} after 2 of 3 solves" in stderr else 3
    assert f"{word} after {finished} of 3 solves" in stderr, stderr
    names = ["default.baseline-equal.plan.json", "default.greedy.plan.json"]
    if finished == 3:
        names = ["default.alm.plan.json", *names]
    assert sorted(f.name for f in out.iterdir()) == names  # no temporary file
    assert "greedy" in stdout and "baseline-equal" in stdout  # the table of what was done
    plan = json.loads((out / "default.greedy.plan.json").read_text())
    assert plan["plan"] is not None


def test_calibrate_never_overwrites_unasked(tmp_path, capsys):
    existing = tmp_path / "profile.json"
    existing.write_text("{}")
    argv = ["calibrate", "--model", "minilm-l6", "--batch", "1", "--seq-len", "8", "--out",
            str(existing), "--no-codec"]
    assert main(argv) == 2
    assert "exists; --overwrite to replace it" in capsys.readouterr().err
    assert existing.read_text() == "{}"
    codec = tmp_path / "codec-minilm-l6.json"
    codec.write_text("{}")  # the codec table beside --out is protected the same way
    assert main([*argv[:-1], "--codec", "--out", str(tmp_path / "new.json")]) == 2
    assert "--codec-out" in capsys.readouterr().err
