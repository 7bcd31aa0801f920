"""Figures the library draws (matplotlib, no screen needed), written whole or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any


def new_figure(rows: int, *, width: float = 9.0, height: float = 3.6) -> tuple[Any, list[Any]]:
    """A figure with ``rows`` axes stacked (the Agg backend: files, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, 1, figsize=(width, height * rows), squeeze=False)
    return fig, list(axes[:, 0])


def save_figure(fig: Any, path: str | Path) -> Path:
    """Save ``fig`` (format from the suffix: png, pdf, svg) through a temporary file, close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        fig.tight_layout()
        fig.savefig(tmp, dpi=120)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        plt.close(fig)
    return path
