"""`minlp`: the `split` MINLP handed to SCIP (pyscipopt) as a global solver, warm-started from the
best heuristic plan and given the best certified lower bound.

The verifier's formal model (formal.py) writes the comm constraint as tc r_ul r_dl >= ...,
a product of three nonconvex terms that SCIP's spatial branch-and-bound closes very slowly
(on the spec example, a gap of two orders of magnitude after 10 s). So this module builds an
equivalent, solver-friendly variant from the same data directly in pyscipopt (formal.py stays
as it is):
  * one binary per admissible non-dominated (cut, level) option (OptionSpace.table), so the
    bits, compute and server work of a device are linear in the binaries;
  * rates as variables below the concave Shannon curve, r_k <= beta_k log2(1 + x_k / beta_k)
    (band as a fraction beta of B, at least _FLOOR so the log stays defined): a convex set;
  * comm and server times as hyperbolic constraints e_k r_k >= U_k, ts_k phi_k >= S_k;
  * the objective variable z >= (1 + eta Delta(x)) T, binary x continuous products.
Its optimum equals the MINLP's, so SCIP's dual bound is a lower bound (we keep a 1e-6 relative
margin for SCIP's tolerances and the band floor).

SCIP alone finds poor plans on 10+ devices within minutes, so before it runs:
  * the start: the best plan of the ``incumbent`` heuristics (default alm, greedy-delay; a
    given ``warm_start`` replaces them) is handed to SCIP as a complete solution (every
    variable set, checked by SCIP before it is added);
  * the bound: the family's certified ``given_bound`` (default lagrangian) is the objective
    variable's lower bound, so SCIP's dual bound starts there;
  * T's range: every plan has R x T >= bound, and a plan at least as good as the start has
    R x T <= its total, so T in [bound / R_max, total / R_min] keeps the optimum (and the dual
    bound stays valid) while giving SCIP's products finite McCormick boxes.
The result is the better of SCIP's best plan (re-evaluated with the cost model, (b, phi)
re-shared exactly when that is better) and the start: never worse than the start.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import numpy as np

from ....core.options import REALLOCATE, Deadline, OutOfTime, text, work_deadline
from ....core.registry import available, get, register, solve
from ....core.result import Result, Status, Termination
from ..allocation import exact_allocation
from ..bounds import lower_bound
from ..cost import evaluate
from ..options import OptionSpace, OptionTable
from ..plans import infeasible, make_result, no_plan
from ..schema import PARALLEL, SplitInstance
from ..search import Search

_SAFETY = 1e-6  # relative margin on SCIP's dual bound for its tolerances and the band floor
_FLOOR = 1e-9  # least band fraction (log(1 + x/beta) must stay defined)
_LAGRANGE_MIN_S = 15.0  # left for the lagrangian (~1 s at 1,000 devices, 7-8 s at 10,000)
_KILL_GRACE = 0.1  # seconds past the deadline before the SCIP process is killed
_BOUND_PART = 0.5  # of the time left, for the given bound
_HEURISTIC_PART = 0.1  # each incumbent heuristic may use this part of the time left
BOUNDS = ("lagrangian", "relaxation", "none")


@dataclass
class _Start:
    """A complete plan SCIP starts from (parallel schedule, feasible under the cost model)."""

    cuts: np.ndarray
    levels: np.ndarray
    band: np.ndarray
    share: np.ndarray
    total: float
    source: str


@dataclass
class _Scip:
    """The pyscipopt model and its variables (times in units of tau, rates and band of B)."""

    model: object
    x: dict[tuple[int, int], object]
    beta: list
    phi: list
    ru: list
    rd: list
    eu: list
    ed: list
    ts: list
    u: dict[int, object]
    T: object
    z: object
    opts: list[np.ndarray] = field(default_factory=list)


def _build(inst: SplitInstance, table: OptionTable, tau: float, T_lo: float, T_hi: float,
           z_lo: float, deadline: Deadline) -> _Scip:
    """The solver-friendly model of the module docstring (times / tau, T in [T_lo, T_hi],
    z >= z_lo; T_hi may be inf). Past ``deadline``: OutOfTime."""
    from pyscipopt import Model, log, quicksum

    a = inst.arrays
    t = table.terms
    K = inst.n_devices
    B = a.bandwidth
    m = Model(f"split-minlp:{inst.name}")
    m.hideOutput()
    opts = [np.flatnonzero(table.valid[k]) for k in range(K)]
    cu, cd = a.snr_ul / B, a.snr_dl / B
    hi = None if math.isinf(T_hi) else T_hi
    x: dict[tuple[int, int], object] = {}
    beta, phi, ru, rd, eu, ed, ts = [], [], [], [], [], [], []
    for k in range(K):  # SCIP adds variables one by one: seconds at 10,000 devices
        deadline.check(k, 64)
        for o in opts[k]:
            x[k, int(o)] = m.addVar(f"x_{k}_{o}", vtype="B")
        beta.append(m.addVar(f"beta_{k}", lb=_FLOOR, ub=1.0))
        phi.append(m.addVar(f"phi_{k}", lb=0.0, ub=1.0))
        # the rate is largest with the whole band
        ru.append(m.addVar(f"ru_{k}", lb=0.0, ub=math.log2(1.0 + cu[k])))
        rd.append(m.addVar(f"rd_{k}", lb=0.0, ub=math.log2(1.0 + cd[k])))
        eu.append(m.addVar(f"eu_{k}", lb=0.0, ub=hi))
        ed.append(m.addVar(f"ed_{k}", lb=0.0, ub=hi))
        ts.append(m.addVar(f"ts_{k}", lb=0.0, ub=hi))
    T = m.addVar("T", lb=T_lo, ub=hi)
    z = m.addVar("z", lb=z_lo, ub=None)
    ln2 = math.log(2.0)

    def lin(k: int, arr: np.ndarray, scale: float):
        return quicksum(float(arr[k, o]) / scale * x[k, int(o)] for o in opts[k])

    for k in range(K):
        deadline.check(k, 64)
        m.addCons(quicksum(x[k, int(o)] for o in opts[k]) == 1)
        m.addCons(ru[k] <= beta[k] * log(1.0 + float(cu[k]) / beta[k]) / ln2)
        m.addCons(rd[k] <= beta[k] * log(1.0 + float(cd[k]) / beta[k]) / ln2)
        # seconds x rate >= bits, in units of tau and B
        m.addCons(eu[k] * ru[k] >= lin(k, t.up_bits, B * tau))
        m.addCons(ed[k] * rd[k] >= lin(k, t.down_bits, B * tau))
        m.addCons(ts[k] * phi[k] >= lin(k, t.server_work, tau))
        m.addCons(lin(k, t.compute, tau) + eu[k] + ed[k] + ts[k] <= T)
    m.addCons(quicksum(beta) <= 1.0)
    m.addCons(quicksum(phi) <= 1.0)
    # server memory: u_i >= x for options cutting below stage i (stage i held on the server)
    stage_mem = -np.diff(a.srv_static, prepend=a.srv_static[0])
    M = a.server_memory
    u = {i: m.addVar(f"u_{i}", lb=0.0, ub=1.0) for i in range(1, len(stage_mem))
         if stage_mem[i] > 0}
    for k in range(K):
        deadline.check(k, 64)
        for i, ui in u.items():
            below = [x[k, int(o)] for o in opts[k] if table.cut[k, o] < i]
            if below:
                m.addCons(ui >= quicksum(below))
    m.addCons(quicksum(float(stage_mem[i] / M) * ui for i, ui in u.items())
              + quicksum(float(table.srv_act[k, o] / M) * x[k, int(o)]
                         for k in range(K) for o in opts[k]) <= 1.0)
    wd = a.sample_weight[:, None] * table.delta
    m.addCons(z >= T + a.eta * quicksum(float(wd[k, o]) * x[k, int(o)] * T
                                         for k in range(K) for o in opts[k] if wd[k, o] > 0))
    m.setObjective(z, "minimize")
    return _Scip(m, x, beta, phi, ru, rd, eu, ed, ts, u, T, z, opts)


def _table_choice(space: OptionSpace, table: OptionTable, cuts: np.ndarray,
                  levels: np.ndarray) -> np.ndarray | None:
    """Each device's table column for its (cut, level); a dominated option (not in the table)
    becomes the first table option at least as good in every term (same shares: no slower, no
    more memory). None if a device has neither."""
    K = space.K
    a = space.a
    choice = np.zeros(K, dtype=int)
    t = table.terms
    for k in range(K):
        hit = np.flatnonzero(table.valid[k] & (table.cut[k] == cuts[k])
                             & (table.level[k] == levels[k]))
        if len(hit):
            choice[k] = hit[0]
            continue
        o = space.option(int(cuts[k]), int(levels[k]))
        if o < 0:
            return None
        mine = np.array([space.C[k, o], space.U[k, o], space.V[k, o], space.S[k, o],
                         space.delta[o], space.srv_act[k, o], a.srv_static[space.opt_cut[o]]])
        theirs = np.stack([t.compute[k], t.up_bits[k], t.down_bits[k], t.server_work[k],
                           table.delta[k], table.srv_act[k], table.srv_static[k]], axis=1)
        better = np.flatnonzero(table.valid[k] & (theirs <= mine).all(axis=1))
        if not len(better):
            return None
        choice[k] = better[0]
    return choice


def _solution(inst: SplitInstance, table: OptionTable, s: _Scip, choice: np.ndarray,
              band: np.ndarray, share: np.ndarray, tau: float) -> list[tuple[object, float]]:
    """Every variable's value for the plan (table columns ``choice``, ``band`` Hz, ``share``).

    The model keeps every band fraction at least _FLOOR: a device below it is lifted there and
    the others give that band back in proportion (a relative change ~1e-9 of their rates);
    rates are the Shannon curve's, times the least that moves the bits, T their maximum.
    """
    a = inst.arrays
    K = inst.n_devices
    B = a.bandwidth
    t = table.gather(choice)
    beta = np.clip(band / B, 0.0, 1.0)
    low = beta < _FLOOR
    if low.any():
        beta[low] = _FLOOR
        rest = beta[~low].sum()
        if rest > 0 and beta.sum() > 1.0:
            beta[~low] *= (1.0 - _FLOOR * low.sum()) / rest
    phi = np.clip(share, 0.0, 1.0)
    if phi.sum() > 1.0:
        phi /= phi.sum()
    ru = beta * np.log2(1.0 + (a.snr_ul / B) / beta)
    rd = beta * np.log2(1.0 + (a.snr_dl / B) / beta)

    def over(work: np.ndarray, rate: np.ndarray) -> np.ndarray:
        out = np.zeros(K)
        need = work > 0
        out[need] = work[need] / rate[need] * (1.0 + 1e-12)
        return out

    eu = over(t.up_bits / (B * tau), ru)
    ed = over(t.down_bits / (B * tau), rd)
    ts = over(t.server_work / tau, phi)
    T = float((t.compute / tau + eu + ed + ts).max())
    wd = float((a.sample_weight * table.delta[np.arange(K), choice]).sum())
    vals: list[tuple[object, float]] = [(s.T, T), (s.z, (1.0 + a.eta * wd) * T)]
    for k in range(K):
        for o in s.opts[k]:
            vals.append((s.x[k, int(o)], 1.0 if o == choice[k] else 0.0))
        for var, v in ((s.beta, beta), (s.phi, phi), (s.ru, ru), (s.rd, rd), (s.eu, eu),
                       (s.ed, ed), (s.ts, ts)):
            vals.append((var[k], float(v[k])))
    for i, ui in s.u.items():
        vals.append((ui, float((table.cut[np.arange(K), choice] < i).any())))
    return vals


def _start_of(inst: SplitInstance, res: Result, source: str) -> _Start | None:
    """A result's plan as a start, if it is a parallel plan of this instance."""
    p = res.plan
    if not res.success or p is None or p.schedule != PARALLEL \
            or res.instance_sha256 not in (None, inst.sha256):
        return None
    ev = evaluate(inst, p.cuts, p.levels, p.bandwidth, p.share)
    if not ev.feasible or not math.isfinite(ev.total_delay):
        return None
    return _Start(np.asarray(p.cuts), np.asarray(p.levels), np.asarray(p.bandwidth, float),
                  np.asarray(p.share, float), float(ev.total_delay), source)


def _warm(inst: SplitInstance, space: OptionSpace, warm_start: Result) -> tuple[_Start | None,
                                                                                  str]:
    """The given warm start: its own plan on the same instance; on another instance (devices
    joined or left) its choices mapped by device id (`Search.start`), shares exact."""
    src = f"warm start ({warm_start.solver} plan of {warm_start.instance})"
    if warm_start.instance_sha256 == inst.sha256:
        got = _start_of(inst, warm_start, src)
        return got, "" if got else "; warm start unused (no parallel plan of this instance)"
    search = Search(space)
    plan, note = search.start(warm_start)
    if plan is None or "unused" in note:
        return None, "; warm start unused (nothing of it fits)"
    total, al = search.evaluate(plan)
    if not math.isfinite(total):
        return None, "; warm start unused (its plan has no finite delay)"
    return _Start(space.cuts(plan), space.levels(plan), al.bandwidth, al.share, float(total),
                  src + note.replace("; warm start:", ",")), ""


@register("split", "minlp", exact=True, bound=True, needs=("pyscipopt",),
          description="SCIP global MINLP on a convex-friendly reformulation (pyscipopt), "
                      "warm-started from the best heuristic plan and given the best bound",
          options={"reallocate": REALLOCATE,
                   "incumbent": text("registered split solvers whose best plan starts SCIP, "
                                     "comma-separated (null: none)", none=True),
                   "given_bound": text("certified lower bound handed to SCIP as the "
                                       "objective's lower bound", choices=BOUNDS)})
def solve_minlp(instance: SplitInstance, *, time_limit: float | None = 60.0, gap_tol: float = 1e-4,
                seed: int = 0, reallocate: bool = True, incumbent: str | None = "alm,greedy-delay",
                given_bound: str = "lagrangian", warm_start: Result | None = None) -> Result:
    """SCIP on the reformulated MINLP, started from the best heuristic plan, never worse.

    ``time_limit`` seconds (None: none) covers everything: the ``incumbent`` heuristics (each
    at most a tenth of the time left), the bound, then SCIP (``limits/time``: the rest).
    ``incumbent``: registered split solvers run first (comma-separated); the best plan is
    handed to SCIP as a complete solution and returned if SCIP finds nothing better; a
    ``warm_start`` (a previous result) is used instead. ``given_bound``: the family's bound
    (``lagrangian``, ``relaxation`` or ``none``) set as the objective's lower bound; the
    lagrangian needs seconds and runs only with at least 15 s left (else the relaxation).
    ``gap_tol``: relative gap (SCIP's ``limits/gap`` = gap_tol / 2); ``seed``: the heuristics'
    seed and SCIP's ``randomization/randomseedshift``. ``reallocate``: re-share (b, phi)
    exactly for SCIP's (cut, level) when that is better.
    """
    deadline = work_deadline(time_limit, instance.n_devices)
    space = OptionSpace(instance)
    why = space.diagnose()
    if why is not None:
        return infeasible(instance, why)
    table = space.table()
    a = instance.arrays
    t = table.terms
    notes: list[str] = []

    # 1. the start: the given warm start, else the best plan of the incumbent heuristics
    clock = time.perf_counter()
    starts: list[_Start] = []
    seeded: list[str] = []  # who took the seed (the message says what each option did)
    if warm_start is not None:
        got, note = _warm(instance, space, warm_start)
        starts += [got] if got else []
        notes += [note.lstrip("; ")] if note else []
    else:
        for name in [n.strip() for n in (incumbent or "").split(",") if n.strip()]:
            if name == "minlp" or not available("split", name):
                notes.append(f"incumbent {name!r} not available")
                continue
            takes = get("split", name).options
            opts: dict = {"seed": seed} if "seed" in takes else {}
            seeded += [name] if "seed" in takes else []
            if "time_limit" in takes:
                opts["time_limit"] = deadline.part(_HEURISTIC_PART)
            got = _start_of(instance, solve(instance, name, **opts), name)
            if got is None:
                notes.append(f"incumbent {name!r} gave no plan")
            else:
                starts.append(got)
    start = min(starts, key=lambda s: s.total) if starts else None
    if start is not None:
        others = "" if len(starts) == 1 else "of " + ", ".join(
            f"{s.source} {s.total:.10g} s" for s in starts) + "; "
        notes.append(f"start: {start.source} {start.total:.10g} s ({others}"
                     f"{time.perf_counter() - clock:.1f} s)")

    # 2. the bound
    clock = time.perf_counter()
    method = given_bound
    if method == "lagrangian" and deadline.remaining() < _LAGRANGE_MIN_S:
        method = "relaxation"
        notes.append("given bound: relaxation (under 15 s left for the lagrangian)")
    # the lagrangian refines until half the time left is gone (a looser bound, still valid)
    lb_given = 0.0 if method == "none" else lower_bound(
        instance, method=method, deadline=deadline.part(_BOUND_PART))
    if start is not None:
        lb_given = min(lb_given, start.total)
    if method != "none":
        notes.append(f"bound given to SCIP: {method} {lb_given:.10g} s "
                     f"({time.perf_counter() - clock:.1f} s)")

    # 3. SCIP, with T in [bound / R_max, start / R_min] (module docstring)
    # time unit: the slowest device's best time alone (keeps the scaled values near 1)
    alone = np.where(table.valid, t.compute + t.server_work, np.inf).min(axis=1)
    tau = float(max(alone.max(), 1e-9))
    wd = np.where(table.valid, a.sample_weight[:, None] * table.delta, np.nan)
    r_min = 1.0 + a.eta * float(np.nansum(np.nanmin(wd, axis=1)))  # R / rounds
    r_max = 1.0 + a.eta * float(np.nansum(np.nanmax(wd, axis=1)))
    unit = a.rounds * tau  # seconds of total delay per unit of z
    T_lo = lb_given / (r_max * unit) * (1 - _SAFETY)
    T_hi = math.inf if start is None else start.total / (r_min * unit) * (1 + 1e-7)
    scip_plan: _Start | None = None
    lb = lb_given if method != "none" else None
    term = "not run"
    hit = deadline.hit
    s = None
    if deadline.remaining() > 0:
        try:
            s = _build(instance, table, tau, T_lo, max(T_hi, T_lo),
                       lb_given / unit * (1 - _SAFETY), deadline)
        except OutOfTime:
            notes.append("SCIP not run (the time limit passed while its model was built)")
    else:
        notes.append("SCIP not run (no time left)")
    if s is None:
        hit = True
    else:
        m = s.model
        if start is not None:
            choice = _table_choice(space, table, start.cuts, start.levels)
            if choice is None:
                notes.append("the start is not given to SCIP (an option outside its table)")
            else:
                sol = m.createSol()
                for var, v in _solution(instance, table, s, choice, start.band, start.share,
                                        tau):
                    m.setSolVal(sol, var, v)
                ok = m.checkSol(sol, completely=True, original=True)
                if ok and m.addSol(sol, free=True):
                    notes.append("SCIP accepted the start")
                else:
                    notes.append("SCIP rejected the start")
        m.setParam("limits/gap", gap_tol / 2)
        if math.isfinite(deadline.remaining()):
            m.setParam("limits/time", max(deadline.remaining(), 0.01))
        if seed:
            m.setParam("randomization/randomseedshift", int(seed))
            seeded.append("SCIP (randomization/randomseedshift)")
        clock = time.perf_counter()
        run = _optimize(s, deadline)
        term = run.status
        hit = hit or term == "timelimit"
        if math.isfinite(run.dual) and run.dual > 0:
            lb = max(lb or 0.0, run.dual * unit * (1 - _SAFETY))
        if run.killed:
            notes.append(f"SCIP stopped at the time limit after "
                         f"{time.perf_counter() - clock:.1f} s (killed in its set-up)")
        else:
            notes.append(f"SCIP {term} after {time.perf_counter() - clock:.1f} s, "
                         f"{run.nodes} nodes, dual bound {run.dual * unit:.10g} s")
        if term == "infeasible" and start is None:
            return infeasible(instance, "minlp: SCIP proves the model infeasible (server "
                                        "memory with the admissible options)")
        if run.best is not None:
            scip_plan = _plan_of(instance, table, *run.best, reallocate, notes)
    if seeded:
        notes.append(f"seed {seed} to {', '.join(seeded)}")
    if scip_plan is None and start is None:
        return no_plan(instance, Termination.TIME_LIMIT if hit else Termination.ERROR,
                       "minlp: no plan (" + "; ".join(notes) + ")", bound=lb)
    if scip_plan is not None and (start is None or scip_plan.total < start.total):
        best = scip_plan
        if start is not None:
            notes.append(f"plan: SCIP's, {1 - best.total / start.total:.4%} below the start")
    else:
        best = start
        notes.append("plan: the start (SCIP found none better)")
    status = Status.FEASIBLE
    if lb is not None:
        lb = min(lb, best.total)
        if (best.total - lb) / best.total <= gap_tol:
            status = Status.OPTIMAL
    return make_result(instance, best.cuts, best.levels, best.band, best.share, status=status,
                       termination=Termination.TIME_LIMIT if hit else Termination.CONVERGED,
                       message="; ".join(notes), lower_bound=lb)


def _plan_of(inst: SplitInstance, table: OptionTable, choice: np.ndarray, beta: np.ndarray,
             phi: np.ndarray, reallocate: bool, notes: list[str]) -> _Start | None:
    """SCIP's solution (table columns, band fractions, shares) as a plan under the cost model
    ((b, phi) re-shared exactly when that is better and ``reallocate``); None if it is not
    feasible there."""
    a = inst.arrays
    k = np.arange(inst.n_devices)
    cuts, levels = table.cut[k, choice], table.level[k, choice]
    band = beta * a.bandwidth
    share = phi.copy()
    # SCIP's values may sit a tolerance outside the resource sums: scale them back in
    band *= min(1.0, a.bandwidth / band.sum())
    share *= min(1.0, 1.0 / max(share.sum(), 1e-300))
    ev = evaluate(inst, cuts, levels, band, share)
    total = ev.total_delay if ev.feasible else math.inf
    if reallocate:
        alloc = exact_allocation(table.gather(choice), a.bandwidth)
        exact = ev.rounds * alloc.round_delay
        if exact < total:
            notes.append(f"(b, phi) from the exact allocator for SCIP's cuts/levels "
                         f"({total:.10g} -> {exact:.10g} s)")
            band, share, total = alloc.bandwidth, alloc.share, exact
    if not math.isfinite(total):
        return None
    return _Start(cuts, levels, band, share, float(total), "SCIP")


@dataclass
class _Run:
    """What one SCIP run gives back: its status, dual bound (in model units), node count and
    best solution (table columns, band fractions, shares) if any. ``killed``: stopped at the
    deadline from outside (nothing else known)."""

    status: str
    dual: float
    nodes: int
    best: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    killed: bool = False


def _scip_run(s: _Scip) -> _Run:
    """Optimise ``s`` in this process."""
    m = s.model
    m.optimize()
    best = None
    if m.getNSols() > 0:
        sol = m.getBestSol()
        choice = np.array([max(opts, key=lambda o: m.getSolVal(sol, s.x[k, int(o)]))
                           for k, opts in enumerate(s.opts)], dtype=int)
        best = (choice, np.array([m.getSolVal(sol, v) for v in s.beta]),
                np.array([m.getSolVal(sol, v) for v in s.phi]))
    return _Run(m.getStatus(), m.getDualbound(), m.getNNodes(), best)


def _child(s: _Scip, conn: Connection) -> None:
    conn.send(_scip_run(s))
    conn.close()


def _optimize(s: _Scip, deadline: Deadline) -> _Run:
    """Optimise ``s`` and stop at ``deadline`` whatever SCIP does.

    SCIP checks ``limits/time`` in its search but not all through presolve and the set-up of
    the root node: on a 1,000-device model given 2.3 s it ran 3.8 s. Under a time limit SCIP
    therefore runs in a forked child process (the built model is inherited, nothing is
    serialised) that is killed at the deadline; without one, in this process.
    """
    left = deadline.remaining()
    if math.isinf(left) or "fork" not in multiprocessing.get_all_start_methods():
        return _scip_run(s)
    ctx = multiprocessing.get_context("fork")
    mine, theirs = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(s, theirs), daemon=True)
    proc.start()
    theirs.close()
    try:
        if mine.poll(max(deadline.remaining(), 0.0) + _KILL_GRACE):
            return mine.recv()
        return _Run("timelimit", -math.inf, 0, None, killed=True)
    except EOFError:  # the child died without an answer
        raise RuntimeError(f"SCIP's process ended without a result "
                           f"(exit {proc.exitcode})") from None
    finally:
        mine.close()
        if proc.is_alive():
            proc.kill()
        proc.join()
