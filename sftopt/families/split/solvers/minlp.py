"""`minlp`: the `split` MINLP handed to SCIP (pyscipopt, Pyomo's "scip_direct") as a global solver.

The verifier's formal model (formal.py) writes the comm constraint as tc r_ul r_dl >= ...,
a product of three nonconvex terms that SCIP's spatial branch-and-bound closes very slowly
(on the spec example, a gap of two orders of magnitude after 10 s). So this module builds an
equivalent, solver-friendly variant from the same data (formal.py stays as it is):
  * one binary per admissible non-dominated (cut, level) option (OptionSpace.table), so the
    bits, compute and server work of a device are linear in the binaries;
  * rates as variables below the concave Shannon curve, r_k <= beta_k log2(1 + x_k / beta_k)
    (band as a fraction beta of B): a convex constraint;
  * comm and server times as hyperbolic constraints e_k r_k >= U_k, ts_k phi_k >= S_k (rotated
    cones: convex, and SCIP handles the products);
  * the objective R x T with R linear in the binaries: SCIP linearises binary x continuous.
Its optimum equals the MINLP's, so SCIP's dual bound is a lower bound (we keep a 1e-6 relative
margin for SCIP's tolerances and the band floor). The plan is re-evaluated with the cost model,
and the exact allocator re-shares (b, phi) for SCIP's (cut, level) when that is better.
"""

from __future__ import annotations

import math

import numpy as np

from ....core.options import REALLOCATE, Deadline
from ....core.registry import register
from ....core.result import Result, Status, Termination
from ..allocation import exact_allocation
from ..cost import evaluate
from ..options import OptionSpace, OptionTable
from ..plans import infeasible, make_result, no_plan
from ..schema import SplitInstance

_SAFETY = 1e-6
_FLOOR = 1e-9  # least band fraction (log(1 + x/beta) must stay defined)


def build_friendly_model(inst: SplitInstance, table: OptionTable, tau: float):
    """The solver-friendly Pyomo variant described in the module docstring (times / tau)."""
    import pyomo.environ as pyo

    a = inst.arrays
    t = table.terms
    K, _ = table.valid.shape
    B = a.bandwidth
    opts = [list(np.flatnonzero(table.valid[k])) for k in range(K)]
    m = pyo.ConcreteModel(name=f"split-friendly:{inst.name}")
    m.KO = pyo.Set(initialize=[(k, int(o)) for k in range(K) for o in opts[k]], dimen=2)
    m.K = pyo.RangeSet(0, K - 1)
    m.x = pyo.Var(m.KO, domain=pyo.Binary)
    m.beta = pyo.Var(m.K, bounds=(_FLOOR, 1.0))
    m.phi = pyo.Var(m.K, bounds=(0.0, 1.0))
    m.ru = pyo.Var(m.K, domain=pyo.NonNegativeReals)  # uplink rate / B
    m.rd = pyo.Var(m.K, domain=pyo.NonNegativeReals)
    m.eu = pyo.Var(m.K, domain=pyo.NonNegativeReals)  # uplink seconds / tau
    m.ed = pyo.Var(m.K, domain=pyo.NonNegativeReals)
    m.ts = pyo.Var(m.K, domain=pyo.NonNegativeReals)
    m.T = pyo.Var(domain=pyo.NonNegativeReals)

    def lin(k: int, arr: np.ndarray, scale: float):
        return sum(float(arr[k, o]) / scale * m.x[k, o] for o in opts[k])

    m.one = pyo.Constraint(m.K, rule=lambda m, k: sum(m.x[k, o] for o in opts[k]) == 1)
    ln2 = math.log(2.0)
    m.rate_u = pyo.Constraint(m.K, rule=lambda m, k: m.ru[k] <= m.beta[k] * pyo.log(
        1.0 + float(a.snr_ul[k] / B) / m.beta[k]) / ln2)
    m.rate_d = pyo.Constraint(m.K, rule=lambda m, k: m.rd[k] <= m.beta[k] * pyo.log(
        1.0 + float(a.snr_dl[k] / B) / m.beta[k]) / ln2)
    # seconds x rate >= bits, in units of tau and B
    m.up = pyo.Constraint(m.K, rule=lambda m, k: m.eu[k] * m.ru[k] >= lin(k, t.up_bits, B * tau))
    m.down = pyo.Constraint(m.K, rule=lambda m, k: m.ed[k] * m.rd[k]
                            >= lin(k, t.down_bits, B * tau))
    m.server = pyo.Constraint(m.K, rule=lambda m, k: m.ts[k] * m.phi[k]
                              >= lin(k, t.server_work, tau))
    m.delay = pyo.Constraint(m.K, rule=lambda m, k: lin(k, t.compute, tau) + m.eu[k]
                             + m.ed[k] + m.ts[k] <= m.T)
    m.band = pyo.Constraint(expr=sum(m.beta[k] for k in m.K) <= 1.0)
    m.share = pyo.Constraint(expr=sum(m.phi[k] for k in m.K) <= 1.0)
    # server memory: u_i >= x for options cutting below stage i
    stage_mem = -np.diff(a.srv_static, prepend=a.srv_static[0])
    stages = [i for i in range(1, len(stage_mem)) if stage_mem[i] > 0]
    m.I = pyo.Set(initialize=stages)
    m.u = pyo.Var(m.I, bounds=(0.0, 1.0))
    m.holds = pyo.Constraint(m.K, m.I, rule=lambda m, k, i: m.u[i] >= sum(
        m.x[k, o] for o in opts[k] if table.cut[k, o] < i))
    M = a.server_memory
    m.memory = pyo.Constraint(expr=sum(float(stage_mem[i] / M) * m.u[i] for i in stages)
                              + sum(float(table.srv_act[k, o] / M) * m.x[k, o]
                                    for k, o in m.KO) <= 1.0)
    m.dbar = pyo.Expression(expr=sum(float(a.sample_weight[k] * table.delta[k, o]) * m.x[k, o]
                                     for k, o in m.KO))
    m.objective = pyo.Objective(expr=(1.0 + a.eta * m.dbar) * m.T, sense=pyo.minimize)
    return m


@register("split", "minlp", exact=True, bound=True, needs=("pyscipopt",),
          description="SCIP global MINLP on a convex-friendly reformulation (pyscipopt)",
          options={"reallocate": REALLOCATE})
def solve_minlp(instance: SplitInstance, *, time_limit: float | None = 60.0, gap_tol: float = 1e-4,
                seed: int = 0, reallocate: bool = True) -> Result:
    """SCIP on the reformulated MINLP, ``time_limit`` seconds (None: none), relative gap
    ``gap_tol``, ``seed`` shifting SCIP's random seeds (randomization/randomseedshift).

    ``reallocate``: re-share (b, phi) exactly for SCIP's (cut, level) when that is better.
    """
    import pyomo.environ as pyo

    deadline = Deadline(time_limit)
    space = OptionSpace(instance)
    why = space.diagnose()
    if why is not None:
        return infeasible(instance, why)
    solver = pyo.SolverFactory("scip_direct")
    if not solver.available(exception_flag=False):
        return no_plan(instance, Termination.ERROR, "minlp: SCIP (pyscipopt) is not available")
    table = space.table()
    a = instance.arrays
    t = table.terms
    # time unit: the slowest device's best time alone (keeps the scaled values near 1)
    alone = np.where(table.valid, t.compute + t.server_work, np.inf).min(axis=1)
    tau = float(max(alone.max(), 1e-9))
    model = build_friendly_model(instance, table, tau)
    options: dict[str, float] = {"limits/gap": gap_tol / 2}
    if math.isfinite(deadline.remaining()):
        options["limits/time"] = max(deadline.remaining(), 0.1)
    if seed:
        options["randomization/randomseedshift"] = int(seed)
    res = solver.solve(model, load_solutions=False, options=options)
    term = str(res.solver.termination_condition)
    limit = Termination.TIME_LIMIT if "Limit" in term else Termination.CONVERGED
    lb_raw = res.problem.lower_bound
    lb = None
    if lb_raw is not None and math.isfinite(float(lb_raw)) and float(lb_raw) > 0:
        lb = float(lb_raw) * a.rounds * tau * (1 - _SAFETY)
    if len(res.solution) == 0:
        if term == "infeasible":
            return infeasible(instance, "minlp: SCIP proves the model infeasible (server "
                                        "memory with the admissible options)")
        return no_plan(instance, Termination.TIME_LIMIT if "Limit" in term else Termination.ERROR,
                       f"minlp: SCIP found no plan ({term})", bound=lb)
    model.solutions.load_from(res)
    K = instance.n_devices
    choice = np.zeros(K, dtype=int)
    for k in range(K):
        vals = {o: pyo.value(model.x[k, o]) for o in np.flatnonzero(table.valid[k])}
        choice[k] = max(vals, key=vals.get)
    k = np.arange(K)
    cuts, levels = table.cut[k, choice], table.level[k, choice]
    band = np.array([pyo.value(model.beta[i]) for i in range(K)]) * a.bandwidth
    share = np.array([pyo.value(model.phi[i]) for i in range(K)])
    # SCIP's values may sit a tolerance outside the resource sums: scale them back in
    band *= min(1.0, a.bandwidth / band.sum())
    share *= min(1.0, 1.0 / max(share.sum(), 1e-300))
    ev = evaluate(instance, cuts, levels, band, share)
    scip_total = ev.total_delay if ev.feasible else math.inf
    note = f"SCIP {term}"
    if reallocate:
        alloc = exact_allocation(table.gather(choice), a.bandwidth)
        total = ev.rounds * alloc.round_delay
        if total < scip_total:
            note += (f"; (b, phi) from the exact allocator for SCIP's cuts/levels "
                     f"({scip_total:.10g} -> {total:.10g} s)")
            band, share, scip_total = alloc.bandwidth, alloc.share, total
    status = Status.FEASIBLE
    if lb is not None:
        lb = min(lb, scip_total)
        if (scip_total - lb) / scip_total <= gap_tol:
            status = Status.OPTIMAL
    return make_result(instance, cuts, levels, band, share, status=status, termination=limit,
                       message=note, lower_bound=lb)
