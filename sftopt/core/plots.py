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


# Series styles: colour, marker and dash all vary, so that no two series of one figure look
# alike even in grey or where lines overlap. tab20's dark halves first (tab10's hues), then its
# light halves: up to 10 series get 10 clearly different hues, up to 20 never share a colour.
MARKERS = "osD^vP<>Xph*d8H"
DASHES = ("-", "--", "-.", ":")
_TAB20_ORDER = [*range(0, 20, 2), *range(1, 20, 2)]


def series_style(i: int) -> dict[str, Any]:
    """Keyword arguments (color, marker, linestyle) of the i-th series of a figure."""
    from matplotlib import colormaps

    return {"color": colormaps["tab20"](_TAB20_ORDER[i % 20]),
            "marker": MARKERS[i % len(MARKERS)],
            "linestyle": DASHES[(i // 2) % len(DASHES)] if i >= 10 else DASHES[i % 2]}


def _plain(v: float) -> str:
    """A tick value as people write it: 0.5, 20, 3,000, 1e7."""
    if v == 0:
        return "0"
    return f"{v:,.7g}" if 1e-3 <= abs(v) < 1e7 else f"{v:.0e}".replace("e+0", "e").replace(
        "e-0", "e-")


def plain_log_ticks(ax: Any, which: str = "y") -> None:
    """Label a log axis with plain numbers (2, 5, 10, 20, not 2 x 10^0): every decade, and in
    between 2 and 5 (3 and 4 too when the axis spans less than one decade) when it spans few."""
    import math

    from matplotlib.ticker import FuncFormatter

    for name in which:
        axis = ax.yaxis if name == "y" else ax.xaxis

        def minor(v: float, _pos: Any, axis: Any = axis) -> str:
            lo, hi = sorted(axis.get_view_interval())
            if v <= 0 or lo <= 0:
                return ""
            decades = math.log10(hi / lo)
            lead = round(v / 10 ** math.floor(math.log10(v) + 1e-9))
            keep = {2, 3, 4, 5, 6, 8} if decades < 1 else {2, 5} if decades < 2.5 else set()
            return _plain(v) if lead in keep else ""

        axis.set_major_formatter(FuncFormatter(lambda v, _pos: _plain(v)))
        axis.set_minor_formatter(FuncFormatter(minor))
