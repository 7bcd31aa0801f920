"""The benchmark suite (`sftopt bench`): solvers x instances x seeds x time limits from a config
file, every plan certified (`core.certify`, as `sftopt solve` does) and verified, one CSV row per
run, a markdown summary; runs on this machine (processes) or as tasks of a Dask or Ray cluster.

A task is one instance at one seed and time limit with every solver of its family: the plans of
one instance are certified together (a solver's dual bound certifies another's gap). A task
never raises: a solver or an instance that fails gives rows that say so. Rows are appended as
tasks finish, a task's rows in one write, so an interrupted suite resumes where it stopped.

Config (JSON, or TOML by the suffix):

    name = "published"
    seeds = [0]                       # the solvers' seed option (default [0])
    time_limits = [30]                # seconds, for solvers that take one (default [null])
    bound = "default"                 # a family bound method, "default" or "none"
    verify_max_parties = 2000         # verify plans of instances up to this many parties
    [solvers]                         # per family: the solvers to run
    split = ["alm", "greedy-delay"]
    [options]                         # per solver: options passed to it
    milp = { gap_tol = 1e-3 }
    [[sets]]                          # instance files (paths relative to the config file)
    name = "bundled"
    files = ["../data/instances/default.json"]
    [[sets]]                          # or a family's generator; lists are grid axes
    name = "scaling"
    family = "split"
    generate = { n_devices = [10, 100], seed = [1, 2], scaled = true }
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .core.certify import certify
from .core.family import FAMILIES, get_family
from .core.files import write_text
from .core.loading import load_instance
from .core.registry import get, solve
from .core.result import Result, versions

ENGINES = ("local", "dask", "ray")
ROW_FIELDS = ("task", "set", "instance", "family", "parties", "solver", "seed", "time_limit",
              "status", "termination", "objective", "bound", "gap", "bytes", "peak_memory",
              "wall_s", "verified", "error", "ignored_options", "instance_sha256", "versions")
_CONFIG_KEYS = {"name", "seeds", "time_limits", "bound", "verify_max_parties", "solvers",
                "options", "sets"}


class ConfigError(ValueError):
    """A config that cannot be run; the message names the field and the problem."""


@dataclass(frozen=True)
class InstanceSpec:
    """Where a task's instance comes from: a file, or a family's generator with parameters."""

    set: str
    family: str | None = None
    path: str | None = None
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        if self.path is not None:
            return Path(self.path).stem
        return ",".join(f"{k}={v}" for k, v in self.params)

    def load(self) -> Any:
        if self.path is not None:
            return load_instance(self.path)
        return load_instance(get_family(self.family).generate(**dict(self.params)))


@dataclass(frozen=True)
class Task:
    spec: InstanceSpec
    seed: int
    time_limit: float | None
    solvers: dict[str, tuple[str, ...]]  # family -> solvers
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    bound: str = "default"
    verify_max_parties: int = 2000

    @property
    def key(self) -> str:
        return f"{self.spec.set}|{self.spec.label}|seed={self.seed}|limit={self.time_limit}"


@dataclass
class Config:
    name: str
    sets: list[InstanceSpec]
    solvers: dict[str, tuple[str, ...]]
    seeds: list[int] = field(default_factory=lambda: [0])
    time_limits: list[float | None] = field(default_factory=lambda: [None])
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    bound: str = "default"
    verify_max_parties: int = 2000
    source: dict[str, Any] = field(default_factory=dict)

    def tasks(self) -> list[Task]:
        return [Task(spec, seed, limit, self.solvers, self.options, self.bound,
                     self.verify_max_parties)
                for spec in self.sets for seed in self.seeds for limit in self.time_limits]


# --------------------------------------------------------------------------- config
def load_config(path: str | Path) -> Config:
    """Read and check a config (JSON or TOML); ConfigError naming the field otherwise."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc.strerror or exc})") from None
    try:
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: "
                          f"{exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config is an object (a table)")
    return parse_config(data, base=path.parent, where=str(path))


def parse_config(data: dict[str, Any], base: Path = Path("."), where: str = "config") -> Config:
    def bad(fieldname: str, expected: str, got: Any) -> ConfigError:
        return ConfigError(f"{where}: {fieldname}: expected {expected}, got {got!r}")

    unknown = sorted(set(data) - _CONFIG_KEYS)
    if unknown:
        raise bad(unknown[0], f"one of the fields {sorted(_CONFIG_KEYS)}", unknown[0])
    name = data.get("name", "bench")
    if not isinstance(name, str) or not name:
        raise bad("name", "a non-empty string", name)
    seeds = data.get("seeds", [0])
    if not (isinstance(seeds, list) and seeds and all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
        raise bad("seeds", "a list of whole numbers >= 0", seeds)
    limits = data.get("time_limits", [None])
    if not (isinstance(limits, list) and limits and all(
            t is None or (isinstance(t, int | float) and not isinstance(t, bool)
                          and math.isfinite(t) and t > 0) for t in limits)):
        raise bad("time_limits", "a list of seconds > 0 (or null: the solver's own)", limits)
    vmax = data.get("verify_max_parties", 2000)
    if not isinstance(vmax, int) or isinstance(vmax, bool) or vmax < 0:
        raise bad("verify_max_parties", "a whole number >= 0", vmax)
    solvers_in = data.get("solvers")
    if not isinstance(solvers_in, dict) or not solvers_in:
        raise bad("solvers", "a table of family -> list of solver names", solvers_in)
    solvers: dict[str, tuple[str, ...]] = {}
    for fam, names in solvers_in.items():
        if fam not in FAMILIES:
            raise bad(f"solvers.{fam}", f"a family, one of {sorted(FAMILIES)}", fam)
        if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
            raise bad(f"solvers.{fam}", "a non-empty list of solver names", names)
        for n in names:
            try:
                get(fam, n)
            except (KeyError, ValueError) as exc:
                raise bad(f"solvers.{fam}", "registered solvers", f"{n} ({exc})") from None
        solvers[fam] = tuple(names)
    options = data.get("options", {})
    if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
        raise bad("options", "a table of solver -> table of options", options)
    bound = data.get("bound", "default")
    if not isinstance(bound, str):
        raise bad("bound", "a bound method name, 'default' or 'none'", bound)
    sets_in = data.get("sets")
    if not isinstance(sets_in, list) or not sets_in:
        raise bad("sets", "a non-empty list of instance sets", sets_in)
    sets: list[InstanceSpec] = []
    for i, s in enumerate(sets_in):
        at = f"sets[{i}]"
        if not isinstance(s, dict) or not isinstance(s.get("name"), str):
            raise bad(at, "a table with a 'name' and 'files' or 'family' + 'generate'", s)
        extra = sorted(set(s) - {"name", "files", "family", "generate"})
        if extra:
            raise bad(f"{at}.{extra[0]}", "name, files, family or generate", extra[0])
        if "files" in s:
            files = s["files"]
            if not (isinstance(files, list) and files and all(isinstance(f, str)
                                                               for f in files)):
                raise bad(f"{at}.files", "a non-empty list of paths", files)
            for f in files:
                p = (base / f) if not Path(f).is_absolute() else Path(f)
                if not p.is_file():
                    raise bad(f"{at}.files", "existing instance files", str(p))
                sets.append(InstanceSpec(s["name"], path=str(p.resolve())))
        elif "family" in s and "generate" in s:
            fam, gen = s["family"], s["generate"]
            if fam not in FAMILIES:
                raise bad(f"{at}.family", f"one of {sorted(FAMILIES)}", fam)
            if fam not in solvers:
                raise bad(f"{at}.family", f"a family with solvers in 'solvers' "
                          f"({sorted(solvers)})", fam)
            if not isinstance(gen, dict):
                raise bad(f"{at}.generate", "a table of generator parameters", gen)
            keys = list(gen)
            axes = [v if isinstance(v, list) else [v] for v in gen.values()]
            for n, combo in enumerate(itertools.product(*axes)):
                params = tuple(zip(keys, combo, strict=True))
                if n == 0:  # the first instance made here: a misspelt parameter is a config
                    try:  # error, not a row per instance (a bad value later is a failed row)
                        get_family(fam).generate(**dict(params))
                    except (TypeError, ValueError) as exc:
                        raise bad(f"{at}.generate", "parameters of the family's generator",
                                  f"{dict(params)} ({exc})") from None
                sets.append(InstanceSpec(s["name"], family=fam, params=params))
        else:
            raise bad(at, "'files', or 'family' and 'generate'", sorted(s))
    return Config(name, sets, solvers, list(seeds), list(limits), options, bound, vmax,
                  source=data)


# --------------------------------------------------------------------------- one task
def run_task(task: Task) -> list[dict[str, Any]]:
    """Every solver of the instance's family on it, certified and verified: one row per run.
    Never raises: failures are rows with ``error``."""
    base = {"task": task.key, "set": task.spec.set, "seed": task.seed,
            "time_limit": task.time_limit, "versions": json.dumps(versions(), sort_keys=True)}
    try:
        inst = task.spec.load()
    except Exception as exc:  # an instance that cannot be made: one row says why
        return [{**base, "instance": task.spec.label, "family": task.spec.family,
                 "status": "error", "error": _short(exc)}]
    base.update(instance=inst.name, family=inst.family, instance_sha256=inst.sha256,
                parties=_parties(inst))
    names = task.solvers.get(inst.family, ())
    if not names:
        return [{**base, "status": "error",
                 "error": f"no solvers configured for family {inst.family!r}"}]
    results: list[Result | None] = []
    rows: list[dict[str, Any]] = []
    for name in names:
        opts = dict(task.options.get(name, {}))
        opts.setdefault("seed", task.seed)
        if task.time_limit is not None:
            opts.setdefault("time_limit", task.time_limit)
        row = {**base, "solver": name}
        try:
            res = solve(inst, name, certify=False, **opts)  # certified below, timed apart
        except Exception as exc:  # a failing run is a row, never a crashed suite
            results.append(None)
            rows.append({**row, "status": "error", "error": _short(exc)})
            continue
        results.append(res)
        rows.append(row)
    done = [i for i, r in enumerate(results) if r is not None]
    if done:
        try:
            method = None if task.bound == "default" else task.bound
            certified = certify(inst, [results[i] for i in done], method)
            for i, res in zip(done, certified, strict=True):
                results[i] = res
        except Exception as exc:  # the plans stand; their gaps stay uncertified
            for i in done:
                rows[i]["error"] = f"certify: {_short(exc)}"
    for row, res in zip(rows, results, strict=True):
        if res is not None:
            row.update(_figures(inst, res, task.verify_max_parties))
    return rows


def _figures(inst: Any, res: Result, verify_max: int) -> dict[str, Any]:
    plan = res.plan
    out: dict[str, Any] = {
        "status": res.status.value, "termination": res.termination.value,
        "objective": res.objective, "bound": res.bound, "gap": res.gap, "wall_s": res.wall_s,
        "ignored_options": ",".join(res.ignored_options)}
    if res.message and plan is None:
        out["error"] = res.message
    if plan is not None:
        out["bytes"] = next((getattr(plan, k) for k in ("bytes_per_round", "bytes_per_epoch")
                             if getattr(plan, k, None) is not None), None)
        peak = getattr(plan, "peak_memory_bytes", None)
        out["peak_memory"] = next((getattr(peak, k) for k in ("server", "cloud")
                                   if getattr(peak, k, None) is not None), None)
        if _parties(inst) <= verify_max:
            from . import verify

            try:
                out["verified"] = bool(verify(inst, res).ok)
            except Exception as exc:
                out["verified"] = False
                out["error"] = f"verify: {_short(exc)}"
    return out


def _parties(inst: Any) -> int:
    return int(getattr(inst, "n_devices", None) or getattr(inst, "n_users", 0))


def _short(exc: BaseException) -> str:
    """An exception in one line, with where it came from (the last frame)."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}".replace("\n", " ")


# --------------------------------------------------------------------------- engines
def _local(tasks: Sequence[Task], workers: int, address: str | None
           ) -> Iterator[list[dict[str, Any]]]:
    if address is not None:
        raise ConfigError("--address is for the dask and ray engines")
    if workers <= 1:
        for t in tasks:
            yield run_task(t)
        return
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run_task, t) for t in tasks]
        for f in as_completed(futures):
            yield f.result()


def _dask(tasks: Sequence[Task], workers: int, address: str | None
          ) -> Iterator[list[dict[str, Any]]]:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ConfigError("engine dask needs dask[distributed] (pip install "
                          "'sftopt[bench]')") from None
    cluster = None
    if address is None:
        cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1,
                               processes=True, dashboard_address=None)
    client = Client(address or cluster)
    try:
        futures = [client.submit(run_task, t, pure=False) for t in tasks]
        for f in as_completed(futures):
            yield f.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _ray(tasks: Sequence[Task], workers: int, address: str | None
         ) -> Iterator[list[dict[str, Any]]]:
    try:
        import ray
    except ImportError:
        raise ConfigError("engine ray needs ray (pip install 'sftopt[bench]')") from None
    started = not ray.is_initialized()
    if started:
        if address is None:
            ray.init(num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=1)(run_task)
        pending = [remote.remote(t) for t in tasks]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            yield ray.get(ready[0])
    finally:
        if started:
            ray.shutdown()


_ENGINES: dict[str, Callable[..., Iterator[list[dict[str, Any]]]]] = {
    "local": _local, "dask": _dask, "ray": _ray}


# --------------------------------------------------------------------------- the suite
def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a runs file (the columns of ROW_FIELDS, values as text); a torn line (too
    few or too many fields) is left out."""
    with path.open(newline="") as f:
        return [r for r in csv.DictReader(f)
                if None not in r and all(v is not None for v in r.values())]


def _append(path: Path, rows: list[dict[str, Any]], header: bool) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=ROW_FIELDS, lineterminator="\n", extrasaction="ignore")
    if header:
        w.writeheader()
    w.writerows(rows)
    # one write() of the task's whole rows, appended: an interrupt (SIGINT, SIGTERM) lands
    # before or after it, never inside a line; a torn line (disk full) is dropped on --resume
    data = buf.getvalue().encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)


def run(config: Config, out: str | Path, *, engine: str = "local", workers: int = 1,
        address: str | None = None, resume: bool = False, progress: bool | None = None
        ) -> Path:
    """Run the suite into ``out`` (runs.csv, summary.md, config.json); returns the folder.

    ``resume``: tasks whose rows are already in ``out/runs.csv`` are skipped; without it an
    existing runs.csv is an error (never overwritten)."""
    if engine not in _ENGINES:
        raise ConfigError(f"engine: one of {list(ENGINES)}, got {engine!r}")
    out = Path(out)
    runs = out / "runs.csv"
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    done: set[str] = set()
    if runs.exists():
        if not resume:
            raise ConfigError(f"{runs} exists: --resume to continue it, or another --out")
        kept = read_rows(runs)
        done = {r["task"] for r in kept}
        buf = io.StringIO()  # rewrite whole: a torn last line of an interrupted run goes
        w = csv.DictWriter(buf, fieldnames=ROW_FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(kept)
        write_text(runs, buf.getvalue())
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "config.json", json.dumps(config.source, indent=1, default=str) + "\n")
    todo = [t for t in config.tasks() if t.key not in done]
    header = not runs.exists()
    if progress is None:
        progress = sys.stderr.isatty()
    from tqdm import tqdm

    with tqdm(total=len(todo), desc=f"bench {config.name}", unit="task",
              disable=not progress) as bar:
        for rows in _ENGINES[engine](todo, workers, address):
            _append(runs, rows, header)
            header = False
            bar.update(1)
    rows = read_rows(runs)
    write_text(out / "summary.md", summary(rows, config.name))
    return out


def summary(rows: list[dict[str, Any]], name: str = "bench") -> str:
    """Per (set, family, solver): runs, plans, verified, median and largest certified gap,
    median wall time; then the runs that failed."""
    def num(v: Any) -> float | None:
        try:
            x = float(v)
        except (TypeError, ValueError):
            return None
        return x if math.isfinite(x) else None

    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("solver"):
            groups.setdefault((r["set"], r["family"], r["solver"]), []).append(r)
    lines = [f"# Benchmark `{name}`", "",
             "| set | family | solver | runs | plans | verified | median gap | max gap | "
             "median wall (s) |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for (s, fam, solver), part in sorted(groups.items()):
        plans = [r for r in part if num(r.get("objective")) is not None]
        gaps = sorted(g for g in (num(r.get("gap")) for r in plans) if g is not None)
        walls = sorted(w for w in (num(r.get("wall_s")) for r in part) if w is not None)
        ver = sum(str(r.get("verified")) == "True" for r in plans)
        med = (lambda xs: xs[len(xs) // 2] if xs else None)  # noqa: E731
        lines.append(f"| {s} | {fam} | {solver} | {len(part)} | {len(plans)} | {ver} | "
                     f"{_pct(med(gaps))} | {_pct(gaps[-1] if gaps else None)} | "
                     f"{'-' if not walls else f'{med(walls):.3g}'} |")
    failed = [r for r in rows if r.get("status") == "error"]
    if failed:
        lines += ["", f"{len(failed)} runs failed:", ""]
        lines += [f"- {r.get('instance')} / {r.get('solver') or '-'}: {r.get('error')}"
                  for r in failed]
    return "\n".join(lines) + "\n"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2%}"


__all__ = ["ENGINES", "Config", "ConfigError", "InstanceSpec", "Task", "load_config",
           "parse_config", "read_rows", "run", "run_task", "summary"]
