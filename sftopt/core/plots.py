"""Figures the library draws: matplotlib's object interface on the Agg canvas (no screen, and the
caller's pyplot backend left alone), written whole or not at all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .files import atomic_write

FORMATS = ("png", "pdf", "svg")


def figure_format(path: str | Path) -> str:
    """The format a figure file's suffix asks for; ValueError naming the path if unsupported."""
    fmt = Path(path).suffix.lower().removeprefix(".")
    if fmt not in FORMATS:
        raise ValueError(f"figure file {str(path)!r}: expected a name ending in "
                         f"{', '.join('.' + f for f in FORMATS)}")
    return fmt


def new_figure(rows: int, *, width: float = 9.0, height: float = 3.6) -> tuple[Any, list[Any]]:
    """A figure with ``rows`` axes stacked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height * rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, squeeze=False)
    return fig, list(axes[:, 0])


def save_figure(fig: Any, path: str | Path) -> Path:
    """Save ``fig`` in the format of the file's suffix (png, pdf, svg)."""
    fmt = figure_format(path)
    fig.tight_layout()
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=120))
