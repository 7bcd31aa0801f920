"""What every family's formal model and verifier share: the channel written out for Pyomo (on
purpose apart from channel.py: the formal model shares no formula with the cost models), and
the reading of a model whose variables a plan has fixed: slacks, violations, claims."""

from __future__ import annotations

import math
from typing import Any

REL_TOL = 1e-9  # resource sums may exceed their capacity by this much (relative)


def noise_w_per_hz(noise_dbm_hz: float) -> float:
    return 10.0 ** ((noise_dbm_hz - 30.0) / 10.0)


def gain(dev: Any, channel: Any) -> float:
    """A device's large-scale gain: given, or by the channel's path-loss law."""
    if dev.gain is not None:
        return dev.gain
    pl = channel.pathloss.a_db + 10.0 * channel.pathloss.g * math.log10(dev.distance_m / 1000.0)
    return 10.0 ** (-pl / 10.0)


def read_constraints(model: Any, skip: set[str]) -> tuple[dict[str, float], list[str]]:
    """Every active constraint of ``model`` (its variables fixed by a plan) but those named in
    ``skip``: relative slack by name (inequalities) and the violations (beyond REL_TOL)."""
    import pyomo.environ as pyo

    slacks: dict[str, float] = {}
    violations: list[str] = []
    for con in model.component_data_objects(pyo.Constraint, active=True):
        if con.name in skip:
            continue
        scale = max([*(abs(pyo.value(a)) for a in con.expr.args), 1e-300])
        slack = min(con.lslack(), con.uslack())
        rel = slack / scale
        if not con.equality:  # equalities (one choice of several) have no slack worth listing
            slacks[con.name] = rel
        elif abs(rel) > REL_TOL:
            rel = -abs(rel)
        if rel < -REL_TOL:
            violations.append(f"{con.name}: violated by {-slack:.6g} ({-rel:.3g} relative)")
    return slacks, violations


def claims(result: Any, instance: Any, stated: list[tuple[str, float | None, float]]
           ) -> list[str]:
    """The figures a plan states that disagree with the model (beyond 1e-9 relative), and a
    plan made for another instance."""
    out = []
    if result.instance_sha256 not in (None, instance.sha256):
        out.append(f"instance: the plan is for {result.instance!r} with sha256 "
                   f"{result.instance_sha256[:12]}..., this instance {instance.name!r} has "
                   f"{instance.sha256[:12]}...")
    for label, said, actual in stated:
        if said is not None and abs(said - actual) > 1e-9 * max(abs(actual), 1e-300):
            out.append(f"{label}: plan says {said:.12g}, model gives {actual:.12g}")
    return out


def open_plan(instance: Any, result: Any, structure_problems: Any,
              epigraph: tuple[str, ...]) -> tuple[Any, Any]:
    """A verifier's first step: ``result`` as a Result (a plan file or its dict loaded), and a
    Report rejecting it when it holds no plan or one ``structure_problems(instance, plan)``
    finds unfit to evaluate (None: go on and check it)."""
    from .family import Report
    from .loading import load_plan
    from .result import Result

    if not isinstance(result, Result):
        result = load_plan(result)
    if result.plan is None:
        why = "the result holds no plan" + (f" ({result.message})" if result.message else "")
        return result, Report(False, None, [why], epigraph=epigraph)
    bad = structure_problems(instance, result.plan)
    return result, (Report(False, None, bad, epigraph=epigraph) if bad else None)
