"""Labelled data for the executor: a classification task as token ids, split over devices.

The bundled task is topic classification of Debian's fortunes (data/text/topics.json: 8 topics,
120 training and 30 test fortunes each). Each fortune becomes one sequence of `seq_len` tokens:
[CLS] fortune [SEP], repeated until the sequence is full (no padding, so no attention mask
crosses a cut). Devices get shards of the training set, IID or by a Dirichlet draw over labels,
and each round every device draws its batch from its own shard (seeded, without replacement
within a pass).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InstanceError, Problem
from ..core.files import read_json

TOPICS = Path(__file__).resolve().parents[2] / "data" / "text" / "topics.json"


@dataclass(frozen=True)
class TaskData:
    """A classification task as token ids: (N, seq_len) int64 arrays and int labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def load_texts(path: str | Path = TOPICS) -> dict[str, Any]:
    """The labelled texts of a task file (`data/text/topics.json` format); InstanceError naming
    the field if the file is not one."""
    path = Path(path)
    data = read_json(path)
    problems = []
    if not isinstance(data, dict):
        raise InstanceError([Problem("$", "a JSON object", type(data).__name__)], str(path))
    classes = data.get("classes")
    if not (isinstance(classes, list) and len(classes) >= 2
            and all(isinstance(c, str) for c in classes)):
        problems.append(Problem("$.classes", "a list of at least 2 class names",
                                json.dumps(classes)[:60]))
    n = len(classes) if isinstance(classes, list) else 0
    for part in ("train", "test"):
        rows = data.get(part)
        if not isinstance(rows, list) or not rows:
            problems.append(Problem(f"$.{part}", "a non-empty list of [text, label]",
                                    json.dumps(rows)[:60]))
            continue
        for i, row in enumerate(rows):
            if not (isinstance(row, list) and len(row) == 2 and isinstance(row[0], str)
                    and row[0].strip() and isinstance(row[1], int)
                    and not isinstance(row[1], bool) and 0 <= row[1] < n):
                problems.append(Problem(f"$.{part}[{i}]", f"[text, label in 0..{n - 1}]",
                                        json.dumps(row)[:60]))
                break
    if problems:
        raise InstanceError(problems, str(path))
    return data


def tokenize(tokenizer: Any, texts: list[str], seq_len: int) -> np.ndarray:
    """(len(texts), seq_len) token ids: [CLS] text [SEP] repeated to fill the sequence."""
    out = np.empty((len(texts), seq_len), dtype=np.int64)
    for i, text in enumerate(texts):
        body = tokenizer(text, add_special_tokens=False)["input_ids"][: seq_len - 2]
        unit = [tokenizer.cls_token_id, *body, tokenizer.sep_token_id]
        reps = -(-seq_len // len(unit))
        out[i] = (unit * reps)[:seq_len]
    return out


def topic_task(tokenizer: Any, seq_len: int, path: str | Path = TOPICS) -> TaskData:
    """The topic task of ``path`` tokenized for a model."""
    data = load_texts(path)
    return TaskData(
        x_train=tokenize(tokenizer, [t for t, _ in data["train"]], seq_len),
        y_train=np.array([y for _, y in data["train"]], dtype=np.int64),
        x_test=tokenize(tokenizer, [t for t, _ in data["test"]], seq_len),
        y_test=np.array([y for _, y in data["test"]], dtype=np.int64),
        classes=list(data["classes"]),
        source={"file": _shown(path), **{k: data[k] for k in ("about", "source", "selection")
                                      if k in data}})


def _shown(path: str | Path) -> str:
    """A data file as results record it: relative to the repository when inside it (results
    are committed; an absolute path names one machine), else as given."""
    p = Path(path).resolve()
    root = Path(__file__).resolve().parents[2]
    return str(p.relative_to(root)) if p.is_relative_to(root) else str(path)


def shards(labels: np.ndarray, n_devices: int, *, seed: int,
           dirichlet: float | None = None) -> list[np.ndarray]:
    """Indices of the training set per device: IID (a seeded shuffle dealt round-robin) or, with
    ``dirichlet`` = alpha, each class spread over the devices in Dirichlet(alpha) proportions
    (small alpha: each device sees few classes). Every device gets at least one sample."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    if n < n_devices:
        raise ValueError(f"{n} training samples cannot be shared by {n_devices} devices")
    if dirichlet is None:
        order = rng.permutation(n)
        return [np.sort(order[k::n_devices]) for k in range(n_devices)]
    if not dirichlet > 0:
        raise ValueError(f"the Dirichlet alpha must be > 0, got {dirichlet}")
    parts: list[list[int]] = [[] for _ in range(n_devices)]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        p = rng.dirichlet(np.full(n_devices, dirichlet))
        bounds = (np.cumsum(p)[:-1] * len(idx)).round().astype(int)
        for k, chunk in enumerate(np.split(idx, bounds)):
            parts[k] += chunk.tolist()
    for k in range(n_devices):  # a device left empty takes one sample of the largest shard
        if not parts[k]:
            donor = max(range(n_devices), key=lambda j: len(parts[j]))
            parts[k].append(parts[donor].pop())
    return [np.sort(np.array(p, dtype=np.int64)) for p in parts]


class Sampler:
    """A device's batches: its shard in a seeded random order, pass after pass (``seed`` as
    numpy takes it: an int, or a sequence such as (run seed, device index))."""

    def __init__(self, shard: np.ndarray, batch: int, seed: int | tuple[int, ...]):
        self.shard, self.batch = shard, batch
        self.rng = np.random.default_rng(seed)
        self.order = np.zeros(0, dtype=np.int64)

    def next(self) -> np.ndarray:
        while len(self.order) < self.batch:
            self.order = np.concatenate([self.order, self.rng.permutation(self.shard)])
        out, self.order = self.order[: self.batch], self.order[self.batch:]
        return out
