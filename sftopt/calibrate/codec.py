"""Codec calibration: real cut activations and gradients through the real codec, every level."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..codec.levels import DEFAULT_LEVELS
from ..torchrt.models import StagedModel
from .timing import run_step


def boundary_tensors(sm: StagedModel, batches: Sequence[tuple[Any, Any]]
                     ) -> list[tuple[str, int, Any]]:
    """(kind, boundary, tensor) for every batch: the hidden state leaving stage s (s = 0..L,
    "activation") and the loss gradient arriving at it (s = 1..L, "gradient"; nothing trains
    below the embedding, so no gradient crosses boundary 0). Tensors are (batch, seq, hidden)
    fp32, what one device would send or receive in one round at that cut."""
    import torch

    out = []
    with torch.enable_grad():
        for ids, labels in batches:
            trace: dict[str, Any] = {}
            run_step(sm, ids, labels, trace=trace)
            inputs = trace["inputs"]
            for s in range(sm.n_blocks + 1):
                x = inputs[s + 1]  # input of stage s+1 = output of stage s
                out.append(("activation", s, x.detach().clone()))
                if x.grad is not None:
                    out.append(("gradient", s, x.grad.detach().clone()))
    return out


def calibrate_levels(tensors: Sequence[tuple[str, int, Any]],
                     levels: Sequence[tuple[float, int]] = DEFAULT_LEVELS, *, seed: int = 0,
                     scale: str = "row", progress: Callable[[], None] | None = None
                     ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Encode every tensor at every level with sftopt.codec.encode; returns (levels, details).

    A level's bits_per_elem is the measured stream size over all tensors (header, scales,
    tables and checksum included) per element; its distortion is the mean relative MSE over
    the tensors (activations and gradients alike, as the cost model uses one delta for both).
    details holds the per-kind means, the worst tensor and the analytic beta beside them.
    """
    from ..codec import encode

    rows, details = [], []
    for keep, bits in levels:
        bits_sum = elems = 0.0
        dist: dict[str, list[float]] = {"activation": [], "gradient": []}
        kbits: dict[str, float] = {"activation": 0.0, "gradient": 0.0}
        kelems: dict[str, float] = {"activation": 0.0, "gradient": 0.0}
        analytic = entropy = 0.0
        for j, (kind, _, t) in enumerate(tensors):
            _, info = encode(t, keep, bits, scale=scale, seed=seed + j, return_info=True)
            nbits = 8.0 * info.n_bytes
            bits_sum += nbits
            elems += info.n_elements
            kbits[kind] += nbits
            kelems[kind] += info.n_elements
            dist[kind].append(info.distortion)
            analytic = info.analytic_beta
            entropy += info.entropy_bound * info.n_elements
            if progress is not None:
                progress()
        all_d = dist["activation"] + dist["gradient"]
        rows.append({"keep_ratio": float(keep), "bits": int(bits),
                     "bits_per_elem": bits_sum / elems,
                     "distortion": sum(all_d) / len(all_d)})
        details.append({
            "keep_ratio": float(keep), "bits": int(bits), "analytic_beta": analytic,
            "entropy_bound": entropy / elems, "max_distortion": max(all_d),
            **{f"{k}_bits_per_elem": kbits[k] / kelems[k] for k in kbits if kelems[k]},
            **{f"{k}_distortion": sum(v) / len(v) for k, v in dist.items() if v},
        })
    return rows, details


def calibrate_codec(sm: StagedModel, *, batch: int, seq_len: int, n_batches: int = 4,
                    seed: int = 0, text: str | Path | None = None,
                    levels: Sequence[tuple[float, int]] = DEFAULT_LEVELS,
                    progress: Callable[[], None] | None = None) -> dict[str, Any]:
    """The `codec` object of an instance, measured on `sm`'s cut tensors (real text for the
    pretrained model): {"levels": [...], "provenance": {...}}."""
    from .. import codec as codec_pkg
    from ..torchrt.models import DEFAULT_TEXT

    batches = [sm.make_batch(batch, seq_len, seed=seed + b, text=text) for b in range(n_batches)]
    tensors = boundary_tensors(sm, batches)
    rows, details = calibrate_levels(tensors, levels, seed=seed, progress=progress)
    text_path = Path(text) if text is not None else DEFAULT_TEXT
    n_act = sum(1 for k, _, _ in tensors if k == "activation")
    return {
        "levels": rows,
        "provenance": {
            "source": "measured",
            "model": sm.name,
            "weights": sm.weights,
            "text": (text_path.name if sm.tokenizer is not None
                     else "none (random token ids: the model has random weights)"),
            "n_tensors": len(tensors),
            "n_activations": n_act,
            "n_gradients": len(tensors) - n_act,
            "tensor_shape": list(tensors[0][2].shape),
            "batches": n_batches,
            "batch": batch,
            "seq_len": seq_len,
            "seed": seed,
            "scale": "row",
            "codec_format_version": codec_pkg.FORMAT_VERSION,
            "bits_per_elem": "measured stream bytes x 8 / elements, all tensors, everything in "
                             "the stream",
            "distortion": "mean relative MSE over tensors (activations and gradients)",
            "gradients": "of the mean MLM (or next-token) cross-entropy over the batch",
            "levels_detail": details,
        },
    }
