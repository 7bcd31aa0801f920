"""Forward and backward time per stage for LoRA fine-tuning; median and spread over repeats."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from ..torchrt.models import StagedModel

PhaseContext = Callable[[int, str], AbstractContextManager[Any]]
CLOCKS = ("wall", "cpu")


def clock_fn(clock: str) -> Callable[[], float]:
    """"wall": time.perf_counter; "cpu": CPU time of the calling thread (time.thread_time).

    With one torch thread every op, backward included, runs in the calling thread, so its CPU
    time is the compute time on a dedicated core: on a machine shared with other jobs it leaves
    out the time the thread waits for a core, which the wall clock counts.
    """
    if clock == "wall":
        return time.perf_counter
    if clock == "cpu":
        return time.thread_time
    raise ValueError(f"clock must be one of {CLOCKS}; got {clock!r}")


def default_clock() -> str:
    """"cpu" when torch runs one thread (then thread CPU time is compute time), else "wall"."""
    import torch

    return "cpu" if torch.get_num_threads() == 1 else "wall"


def run_step(sm: StagedModel, ids: Any, labels: Any, *, last: int | None = None,
             grad_out: Any = None, ctx: PhaseContext | None = None,
             trace: dict[str, Any] | None = None) -> Any:
    """One forward + backward pass through stages 0..last, each phase inside ctx(i, phase).

    Every stage gets its input detached, as on a split boundary: a stage's backward is a
    separate autograd call that returns the gradient of its input, which goes down to the
    stage below. Inputs of stages 2.. need a gradient (adapters lie below); the input of
    block 1 (the embedding output) does not, and stage 0 has no backward (nothing trains in
    it). With `last` <= L (a device's part), `grad_out` is the gradient arriving from above.
    Returns the loss (last = L+1) or the last stage's output. With `trace`, trace["inputs"]
    gets each stage's input (stages 2.. with its .grad: the gradient crossing that boundary).
    """
    import torch

    ctx = ctx or (lambda i, ph: nullcontext())
    n_last = len(sm.stages) - 1
    last = n_last if last is None else last
    inputs, outputs = [], []
    x = ids
    for i in range(last + 1):
        if i >= 1:
            x = x.detach().requires_grad_(i >= 2)
        inputs.append(x)
        with ctx(i, "fwd"):
            y = sm.stages[i](x, labels) if i == n_last else sm.stages[i](x)
        outputs.append(y)
        x = y
    g = None if last == n_last else grad_out
    if last < n_last and g is None:
        raise ValueError("a device part (last <= L) needs grad_out from the stage above")
    for i in range(last, 0, -1):
        with ctx(i, "bwd"):
            torch.autograd.backward(outputs[i], g)
        g = inputs[i].grad if i >= 2 else None
    if trace is not None:
        trace["inputs"] = inputs
    for i in range(1, last + 1):
        for p in sm.parameters(i):
            p.grad = None  # fresh gradients each step, like an optimizer's zero_grad
    return outputs[-1]


def summarize(samples: list[float]) -> dict[str, float]:
    """Median, quartiles, min, max and the relative IQR of timing samples (seconds)."""
    s = sorted(samples)
    if len(s) >= 2:
        q1, _, q3 = statistics.quantiles(s, n=4, method="inclusive")
    else:
        q1 = q3 = s[0]
    med = statistics.median(s)
    return {"median": med, "q1": q1, "q3": q3, "min": s[0], "max": s[-1], "n": len(s),
            "iqr_rel": (q3 - q1) / med if med > 0 else 0.0}


def set_threads(threads: int | None) -> int:
    """Apply a thread count (None: torch's default) and return the one in use."""
    import torch

    if threads is not None:
        if threads <= 0:
            raise ValueError(f"threads must be positive; got {threads}")
        torch.set_num_threads(threads)
    return torch.get_num_threads()


@contextmanager
def quiet_gc() -> Iterator[None]:
    """Collect garbage once, then keep the collector off while timing (a collection inside a
    timed step would land on whichever stage happened to allocate at that moment)."""
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def cut_gradient(sm: StagedModel, ids: Any, cut: int, seed: int = 0) -> Any:
    """A seeded random gradient of the shape of stage `cut`'s output (what the server sends)."""
    import torch

    if not 0 <= cut <= sm.n_blocks:
        raise ValueError(f"cut must be in 0..{sm.n_blocks}; got {cut}")
    with torch.no_grad():
        shape = run_step_shape(sm, ids, cut)
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def time_interleaved(sm: StagedModel, ids: Any, labels: Any, *, cuts: Sequence[int] = (),
                     repeats: int = 5, warmup: int = 2, clock: str = "wall", seed: int = 0,
                     stages: bool = True, progress: Callable[[], None] | None = None
                     ) -> dict[str, Any]:
    """The timing protocol: per repeat, one calibration step (every stage's forward and
    backward clocked on its own) and one run of each device part in `cuts` (one clock around
    forward 0..s + backward s..1), the units in an order rotated by one each repeat.

    On a machine shared with other jobs the load drifts over seconds to minutes; interleaving
    puts every unit under the same mix of load, and the rotation gives every unit every
    position in the repeat. `warmup` untimed repeats first; the garbage collector stays off.
    Returns {"fwd", "bwd", "fwd_wall", "bwd_wall": [[s per repeat] per stage] (empty lists
    with stages=False), "parts": {cut: {"cpu": [...], "wall": [...]}}, "order": [[unit, ...]
    per timed repeat]} (unit -1 = the calibration step). Each device part gets its own seeded
    gradient from above (`cut_gradient`).
    """
    import torch

    now = clock_fn(clock)
    n = len(sm.stages)
    out: dict[str, Any] = {k: [[] for _ in range(n)]
                           for k in ("fwd", "bwd", "fwd_wall", "bwd_wall")}
    cuts = list(cuts)
    grads = {s: cut_gradient(sm, ids, s, seed=seed + s) for s in cuts}
    parts: dict[int, dict[str, list[float]]] = {s: {"wall": [], "cpu": []} for s in cuts}
    units = ([-1] if stages else []) + cuts
    if not units:
        raise ValueError("nothing to time: stages=False and no cuts")
    record = False

    @contextmanager
    def timed(i: int, phase: str) -> Iterator[None]:
        t0, w0 = now(), time.perf_counter()
        yield
        if record:
            out[phase][i].append(now() - t0)
            out[f"{phase}_wall"][i].append(time.perf_counter() - w0)

    order = []
    with torch.enable_grad(), quiet_gc():
        for k in range(warmup + repeats):
            record = k >= warmup
            rot = units[k % len(units):] + units[: k % len(units)]
            for u in rot:
                if u < 0:
                    run_step(sm, ids, labels, ctx=timed)
                    continue
                w0, c0 = time.perf_counter(), time.thread_time()
                run_step(sm, ids, labels, last=u, grad_out=grads[u])
                w1, c1 = time.perf_counter(), time.thread_time()
                if record:
                    parts[u]["wall"].append(w1 - w0)
                    parts[u]["cpu"].append(c1 - c0)
            if record:
                order.append(rot)
            if progress is not None:
                progress()
    if stages:
        out["bwd"][0] = [0.0] * repeats
        out["bwd_wall"][0] = [0.0] * repeats
    out["parts"] = parts
    out["order"] = order
    return out


def time_device_part(sm: StagedModel, ids: Any, labels: Any, cut: int, *, repeats: int = 5,
                     warmup: int = 2, seed: int = 0) -> dict[str, list[float]]:
    """Seconds of a device's work for cut s, end to end: forward through stages 0..s, then the
    backward of s..1 from a gradient arriving from the server (seeded random, the shape of the
    cut activation). One clock around the whole part, not a sum of per-stage clocks; both
    clocks: {"wall": [...], "cpu": [...]} (cpu is meaningful with one torch thread)."""
    t = time_interleaved(sm, ids, labels, cuts=[cut], repeats=repeats, warmup=warmup,
                         seed=seed - cut, stages=False)
    return t["parts"][cut]


def run_step_shape(sm: StagedModel, ids: Any, cut: int) -> tuple[int, ...]:
    """Shape of stage `cut`'s output (forward only)."""
    x = ids
    for i in range(cut + 1):
        x = sm.stages[i](x)
    return tuple(x.shape)
