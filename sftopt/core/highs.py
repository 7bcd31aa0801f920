"""One HiGHS run that ends at its deadline, whatever the model's size.

HiGHS checks its time limit in the simplex and in branch-and-bound, but not inside presolve,
probing or the set-up of the root node: on a model of millions of nonzeros those phases run
seconds past the limit (measured on a 1,000-device `split` outer approximation of 2.3 million
nonzeros: an LP given 1.2 s ran 2.8 s, a MILP given 12 s ran 14.9-16.5 s; interrupt callbacks
are not called there either). So a model at or above ``ISOLATE_NNZ`` nonzeros run under a time
limit is solved in a child process (`python -m sftopt.core.highs_child`) that is killed at the
deadline; smaller models, where HiGHS stops on time, run in process and keep their warm basis.
"""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

ISOLATE_NNZ = 500_000  # below this HiGHS's unchecked phases take well under a second
_KILL_GRACE = 0.1  # seconds past the deadline before the child is killed


@dataclass
class Outcome:
    """What a run gives back: HiGHS's model status, objective, dual bound and primal values.

    ``dual_bound`` is the MIP dual bound (-inf when unknown or for an LP); ``x`` the column
    values when a primal solution exists (``feasible``), else None. ``killed``: the run was
    stopped at the deadline from outside (status then time limit, nothing else known).
    """

    status: Any  # highspy.HighsModelStatus
    objective: float
    dual_bound: float
    feasible: bool
    x: np.ndarray | None
    killed: bool = False
    seconds: float = 0.0


def _model(h: Any) -> dict[str, Any]:
    """The model held by ``h`` as plain arrays (what `Highs.passModel` takes back)."""
    lp = h.getLp()
    a = lp.a_matrix_
    return {"num_col": lp.num_col_, "num_row": lp.num_row_, "format": int(a.format_),
            "sense": int(lp.sense_), "offset": lp.offset_,
            "cost": np.asarray(lp.col_cost_), "col_lower": np.asarray(lp.col_lower_),
            "col_upper": np.asarray(lp.col_upper_), "row_lower": np.asarray(lp.row_lower_),
            "row_upper": np.asarray(lp.row_upper_),
            "start": np.asarray(a.start_, dtype=np.int32),
            "index": np.asarray(a.index_, dtype=np.int32),
            "value": np.asarray(a.value_, dtype=float),
            "integrality": np.array([int(v) for v in lp.integrality_], dtype=np.int32)}


def solve_model(h: Any, options: Mapping[str, Any], start: np.ndarray | None,
                time_limit: float | None) -> dict[str, Any]:
    """Run ``h`` in this process; the outcome as plain data (shared with the child)."""
    import highspy

    for name, value in options.items():
        h.setOptionValue(name, value)
    if time_limit is not None:
        h.setOptionValue("time_limit", float(max(time_limit, 0.0)))
    if start is not None:
        sol = highspy.HighsSolution()
        sol.col_value = list(start)
        h.setSolution(sol)
    h.run()
    info = h.getInfo()
    feasible = info.primal_solution_status == highspy.kSolutionStatusFeasible
    return {"status": int(h.getModelStatus()), "objective": float(info.objective_function_value),
            "dual_bound": float(info.mip_dual_bound) if math.isfinite(info.mip_dual_bound)
            else -math.inf, "feasible": bool(feasible),
            "x": np.asarray(h.getSolution().col_value) if feasible else None}


def run(h: Any, time_limit: float | None, *, options: Mapping[str, Any] | None = None,
        start: np.ndarray | None = None, isolate: bool | None = None) -> Outcome:
    """Solve the model built in ``h`` with ``options`` and ``start`` (a full column vector,
    the MIP start), stopping at ``time_limit`` seconds from now (None: no limit).

    ``isolate`` (default: a time limit is set and the model has at least ``ISOLATE_NNZ``
    nonzeros) runs it in a child process killed at the deadline; ``h`` itself is then left
    unsolved.
    """
    import highspy

    options = dict(options or {})
    t0 = time.monotonic()
    if isolate is None:
        isolate = time_limit is not None and h.getNumNz() >= ISOLATE_NNZ
    if not isolate:
        out = solve_model(h, options, start, time_limit)
        return Outcome(highspy.HighsModelStatus(out.pop("status")), **out,
                       seconds=time.monotonic() - t0)
    deadline = math.inf if time_limit is None else t0 + time_limit
    payload = pickle.dumps({"model": _model(h), "options": options, "start": start,
                            "deadline": deadline}, protocol=pickle.HIGHEST_PROTOCOL)
    # a session of its own: a Ctrl-C at the terminal reaches the parent, which kills the child
    proc = subprocess.Popen([sys.executable, "-m", "sftopt.core.highs_child"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    wait = None if math.isinf(deadline) else max(deadline - time.monotonic(), 0.0) + _KILL_GRACE
    try:
        stdout, stderr = proc.communicate(payload, timeout=wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return Outcome(highspy.HighsModelStatus.kTimeLimit, math.nan, -math.inf, False, None,
                       killed=True, seconds=time.monotonic() - t0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0 or not stdout:
        last = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"HiGHS child process failed (exit {proc.returncode}): {last[0]}")
    out = pickle.loads(stdout)
    return Outcome(highspy.HighsModelStatus(out.pop("status")), **out,
                   seconds=time.monotonic() - t0)
