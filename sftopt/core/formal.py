"""What every family's formal model and verifier share: the channel written out for Pyomo (on
purpose apart from channel.py: the formal model shares no formula with the cost models), and
the reading of a model whose variables a plan has fixed: slacks, violations, claims."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Sequence
from typing import Any

log = logging.getLogger("sftopt.verify")

REL_TOL = 1e-9  # resource sums may exceed their capacity by this much (relative)


def noise_w_per_hz(noise_dbm_hz: float) -> float:
    return 10.0 ** ((noise_dbm_hz - 30.0) / 10.0)


def gain(dev: Any, channel: Any) -> float:
    """A device's large-scale gain: given, or by the channel's path-loss law."""
    if dev.gain is not None:
        return dev.gain
    pl = channel.pathloss.a_db + 10.0 * channel.pathloss.g * math.log10(dev.distance_m / 1000.0)
    return 10.0 ** (-pl / 10.0)


def read_constraints(model: Any, skip: set[str], ids: Ids | None = None
                     ) -> tuple[dict[str, float], list[str]]:
    """Every active constraint of ``model`` (its variables fixed by a plan) but those named in
    ``skip``: relative slack by name (inequalities) and the violations (beyond REL_TOL).
    ``ids`` names the members of index sets (set name -> ids, a tuple of id lists for a set of
    pairs), so that a user reads `device_memory[phone-5]`, not `device_memory[5]`."""
    import pyomo.environ as pyo
    from pyomo.core.expr.relational_expr import (
        EqualityExpression,
        InequalityExpression,
        RangedExpression,
    )

    slacks: dict[str, float] = {}
    violations: list[str] = []
    for con in model.component_data_objects(pyo.Constraint, active=True):
        if con.name in skip:
            continue
        name = _label(con, ids) if ids else con.name
        # each side evaluated once (lslack and uslack would walk the expression twice more)
        expr = con.expr
        v = [pyo.value(a) for a in expr.args]
        scale = max([*(abs(a) for a in v), 1e-300])
        if isinstance(expr, EqualityExpression):
            slack = -abs(v[0] - v[1])
        elif isinstance(expr, InequalityExpression) and len(v) == 2:
            slack = v[1] - v[0]
        elif isinstance(expr, RangedExpression):
            slack = min(v[1] - v[0], v[2] - v[1])
        else:
            slack = min(con.lslack(), con.uslack())
        rel = slack / scale
        if not con.equality:  # equalities (one choice of several) have no slack worth listing
            slacks[name] = rel
        elif abs(rel) > REL_TOL:
            rel = -abs(rel)
        if rel < -REL_TOL:
            violations.append(f"{name}: violated by {-slack:.6g} ({-rel:.3g} relative)")
    return slacks, violations


Ids = dict[str, Sequence[str] | tuple[Sequence[str], ...]]


def _label(con: Any, ids: Ids) -> str:
    """A constraint's name with its indices replaced by the ids of what they index."""
    parent = con.parent_component()
    if not parent.is_indexed():
        return con.name
    idx = con.index()
    idx = idx if isinstance(idx, tuple) else (idx,)
    parts: list[str] = []
    pos = 0
    for sub in parent.index_set().subsets(expand_all_set_operators=False):
        dims = sub.dimen
        own = idx[pos:pos + dims]
        pos += dims
        spec = ids.get(sub.local_name)
        if spec is None:
            parts += [str(i) for i in own]
        elif dims == 1:
            parts.append(str(spec[own[0]]))  # type: ignore[index]
        else:
            parts += [str(spec[j][i]) for j, i in enumerate(own)]  # type: ignore[index]
    return f"{parent.name}[{','.join(parts)}]"


def claims(result: Any, instance: Any, stated: list[tuple[str, float | None, float]]
           ) -> list[str]:
    """The figures a plan states that disagree with the model (beyond 1e-9 relative; a stated
    NaN or infinity always does), and a plan made for another instance: another sha256, or,
    without one, another name."""
    out = []
    if result.instance_sha256 not in (None, instance.sha256):
        out.append(f"instance: the plan is for {result.instance!r} with sha256 "
                   f"{result.instance_sha256[:12]}..., this instance {instance.name!r} has "
                   f"{instance.sha256[:12]}...")
    elif result.instance_sha256 is None and result.instance != instance.name:
        out.append(f"instance: the plan is for {result.instance!r} (no sha256 to compare), "
                   f"this instance is {instance.name!r}")
    for label, said, actual in stated:
        if said is not None and not abs(said - actual) <= 1e-9 * max(abs(actual), 1e-300):
            out.append(f"{label}: plan says {said:.12g}, model gives {actual:.12g}")
    return out


def instance_notes(result: Any, instance: Any) -> list[str]:
    """Remarks on a plan that names its instance otherwise than the instance is called while
    its sha256 matches (a renamed file: the same numbers)."""
    if result.instance_sha256 == instance.sha256 and result.instance != instance.name:
        return [f"instance: the plan names {result.instance!r}, the instance is called "
                f"{instance.name!r} (the same sha256)"]
    return []


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = " ".join(record.getMessage().split())
        self.messages.append(f"pyomo {record.levelname.lower()}: {text}")
        log.debug("%s", text)


@contextlib.contextmanager
def captured_pyomo() -> Iterator[list[str]]:
    """What Pyomo logs in the block (e.g. W1002, a value outside a variable's bounds), kept in
    the yielded list and passed to sftopt's own logger at debug level instead of printed."""
    logger = logging.getLogger("pyomo")
    saved = logger.handlers[:], logger.propagate, logger.level
    collect = _Collect()
    logger.handlers, logger.propagate = [collect], False
    logger.setLevel(logging.WARNING)
    try:
        yield collect.messages
    finally:
        logger.handlers, logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])


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
    if result.family != instance.family:
        return result, Report(False, None, [f"family: the result is a plan of family "
                                            f"{result.family!r}, the instance of family "
                                            f"{instance.family!r}"], epigraph=epigraph)
    if result.plan is None:
        why = "the result holds no plan" + (f" ({result.message})" if result.message else "")
        return result, Report(False, None, [why], epigraph=epigraph)
    bad = structure_problems(instance, result.plan)
    notes = instance_notes(result, instance)
    return result, (Report(False, None, bad, epigraph=epigraph, notes=notes) if bad else None)


def number_problems(values: list[tuple[str, Any]]) -> list[str]:
    """The (label, value) pairs whose value is not a finite number >= 0 (a plan's bands,
    shares, ...: a string, a bool, nan, inf or a negative number), one problem each."""
    out = []
    for label, v in values:
        if isinstance(v, bool) or not isinstance(v, int | float) or not (
                math.isfinite(v) and v >= 0):
            out.append(f"{label} = {v!r}: not a finite number >= 0")
    return out
