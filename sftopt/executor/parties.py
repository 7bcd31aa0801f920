"""A party of a run: its own copy of the model, the stages it holds, their trainable parameters
(adapters, and the classifier where it holds the output stage) and its optimizer."""

from __future__ import annotations

import time
from typing import Any

from ..core.placement import Segment
from ..torchrt.models import StagedModel


class Party:
    """A device, the server or any party of a placement, running segments of the model."""

    def __init__(self, name: str, model: StagedModel, stages: set[int], lr: float,
                 trains: set[int] | None = None):
        """``stages`` it runs; ``trains`` those whose adapters it trains (default: all of
        them). The others are frozen, so back-propagation stops at the shallowest it trains."""
        import torch

        self.name, self.model = name, model
        self.stages = sorted(stages)
        trained = set(self.stages) if trains is None else set(trains)
        for i in self.stages:
            for p in model.trainable(i):
                p.requires_grad_(i in trained)
        self.params = [p for i in sorted(trained) for p in model.trainable(i)]
        self.opt = torch.optim.Adam(self.params, lr=lr) if self.params else None
        self.compute_s = 0.0  # thread CPU time of this party's forward, backward and steps

    def _timed(self, fn: Any, *args: Any) -> Any:
        start = time.thread_time()
        try:
            return fn(*args)
        finally:
            self.compute_s += time.thread_time() - start

    def forward(self, seg: Segment, x: Any, labels: Any) -> Any:
        """Stages seg.first..seg.last on ``x`` (the output stage takes ``labels``: the loss)."""
        def run() -> Any:
            h, last = x, len(self.model.stages) - 1
            for i in seg.stages:
                h = self.model.stages[i](h, labels) if i == last else self.model.stages[i](h)
            return h

        return self._timed(run)

    def backward(self, out: Any, grad: Any = None) -> None:
        """Back-propagate from a segment's output (a loss, or a tensor and its gradient)."""
        import torch

        self._timed(lambda: torch.autograd.backward(out, grad))

    def zero_grad(self) -> None:
        if self.opt is not None:
            self.opt.zero_grad(set_to_none=True)

    def step(self) -> None:
        if self.opt is not None:
            self._timed(self.opt.step)

    def gradients(self, stages: tuple[int, ...]) -> list[Any]:
        """The gradients of the trainable tensors of ``stages`` (zeros where none arrived)."""
        import torch

        return [torch.zeros_like(p) if p.grad is None else p.grad
                for s in stages for p in self.model.trainable(s)]

    def set_gradients(self, stages: tuple[int, ...], grads: list[Any]) -> None:
        """Take ``grads`` as the gradients of the trainable tensors of ``stages``."""
        for p, g in zip((p for s in stages for p in self.model.trainable(s)), grads,
                        strict=True):
            p.grad = g.reshape(p.shape).to(p.dtype)

    def adapters(self, stage: int) -> list[Any]:
        """The trainable tensors of ``stage`` this party holds (their values, detached)."""
        return [p.detach() for p in self.model.trainable(stage)]

    def set_adapters(self, stage: int, tensors: list[Any]) -> None:
        import torch

        with torch.no_grad():
            for p, t in zip(self.model.trainable(stage), tensors, strict=True):
                p.copy_(t)
