"""The child process of `core.highs.run`: one HiGHS run, model and outcome pickled over pipes.

Reads {"model", "options", "start", "deadline"} from standard input, solves until the deadline
(a `time.monotonic` instant, shared by the processes of one machine) and writes the outcome to
standard output. HiGHS's own output goes to standard error, so nothing mixes with the result.
"""

from __future__ import annotations

import os
import pickle
import sys
import time


def main() -> None:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything HiGHS prints lands on stderr, not in the pickled result
    job = pickle.load(sys.stdin.buffer)
    import highspy

    from .highs import solve_model

    m = job["model"]
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_, lp.offset_ = m["num_col"], m["num_row"], m["offset"]
    lp.sense_ = highspy.ObjSense(m["sense"])
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = m["cost"], m["col_lower"], m["col_upper"]
    lp.row_lower_, lp.row_upper_ = m["row_lower"], m["row_upper"]
    lp.a_matrix_.format_ = highspy.MatrixFormat(m["format"])
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = m["num_col"], m["num_row"]
    lp.a_matrix_.start_, lp.a_matrix_.index_ = m["start"], m["index"]
    lp.a_matrix_.value_ = m["value"]
    if len(m["integrality"]):  # an LP has none
        lp.integrality_ = [highspy.HighsVarType(v) for v in m["integrality"]]
    if h.passModel(lp) != highspy.HighsStatus.kOk:
        raise SystemExit("HiGHS refused the model passed to the child process")
    left = job["deadline"] - time.monotonic()
    result = solve_model(h, job["options"], job["start"], None if left == float("inf") else left)
    pickle.dump(result, out, protocol=pickle.HIGHEST_PROTOCOL)
    out.close()


if __name__ == "__main__":
    main()
