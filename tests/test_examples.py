"""The worked examples under examples/ run and do what they say."""

from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT


def test_the_scheduler_example_replans_a_changing_fleet():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "scheduler.py")],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    plans = [line for line in out.splitlines() if line.startswith("plan for")]
    assert [p.split(":")[0] for p in plans] == ["plan for 10 devices", "plan for 9 devices",
                                                 "plan for 10 devices"]
    assert "dev-3 left" in out and "dev-new joined" in out
    # the re-plans started from the plan before: every kept device's choice was reused
    assert "warm start: 9 of 9 devices kept their choice" in out
    assert "warm start: 9 of 10 devices kept their choice" in out
    assert out.count("fading rounds: round delay") == 3
