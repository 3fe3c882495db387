"""Shared figure plumbing: Agg backend, PNG + SVG output, captions, learning-rate colours."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.ticker import NullFormatter, ScalarFormatter  # noqa: E402

from lstmbench.analysis.runs import COMPARE_PREFIX, outcome_text  # noqa: E402


@dataclass
class Figure:
    """A written figure: its key (e.g. "fig2"), title, caption and files."""

    key: str
    title: str
    caption: str
    png: Path
    svg: Path
    table: list[dict] = field(default_factory=list)  # rows, for figures that are tables


def new_figure(width: float = 7.0, height: float = 4.5, columns: int = 1):
    """A figure and its axes at a readable size."""
    fig, axes = plt.subplots(
        1, columns, figsize=(width, height), squeeze=False, layout="constrained"
    )
    return fig, list(axes[0])


def save(fig, out_dir: Path, key: str, title: str, caption: str, table=None) -> Figure:
    """Write PNG and SVG with the title on top; close the figure."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.suptitle(title, fontsize=11)
    for ax in fig.axes:
        _tidy_log_ticks(ax)
    png, svg = out_dir / f"{key}.png", out_dir / f"{key}.svg"
    fig.savefig(png, dpi=110)
    fig.set_layout_engine("none")  # laid out once for the PNG; the SVG reuses that layout
    fig.savefig(svg)
    plt.close(fig)
    return Figure(key, title, caption, png, svg, table or [])


def _tidy_log_ticks(ax) -> None:
    """Drop minor tick labels on log axes spanning a decade or more (they collide)."""
    for axis, (low, high) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        if axis.get_scale() == "log" and low > 0 and high / low >= 10:
            axis.set_minor_formatter(NullFormatter())


def plain_ticks(axis, values) -> None:
    """Ticks at exactly these values, written as plain numbers (e.g. hidden sizes)."""
    axis.set_ticks(sorted(set(values)))
    axis.set_major_formatter(ScalarFormatter())
    axis.set_minor_formatter(NullFormatter())


def lr_norm(rates) -> LogNorm:
    """A log colour scale spanning the learning rates given."""
    rates = np.asarray(list(rates), dtype=float)
    low, high = float(rates.min()), float(rates.max())
    if low == high:
        low, high = low / 2, high * 2
    return LogNorm(low, high)


def error_norm(errors) -> LogNorm:
    """A log colour scale spanning the (positive) errors given."""
    errors = np.asarray(list(errors), dtype=float)
    positive = errors[errors > 0]
    low = float(positive.min()) if len(positive) else 1e-3
    high = max(float(errors.max()), low * 2)
    return LogNorm(low, high)


LR_CMAP = "coolwarm"  # blue (low) to red (high), as in the paper
ERROR_CMAP = "viridis_r"


def floor_errors(errors, floor: float = 1e-4) -> np.ndarray:
    """Errors with zeros raised to a floor, so they can sit on a log axis."""
    return np.maximum(np.asarray(errors, dtype=float), floor)


def scatter_by_error(fig, ax, ok: list[dict], bad: list[dict], x, y, size: float) -> None:
    """Runs as dots at (x(run), y(run)): those that did not diverge coloured by best test
    error (runs at chance included), with a colour bar; diverged ones as red crosses. x and
    y map a list of runs to coordinates."""
    if ok:
        errors = floor_errors([r["best_error"] for r in ok])
        points = ax.scatter(
            x(ok),
            y(ok),
            c=errors,
            norm=error_norm(errors),
            cmap=ERROR_CMAP,
            s=size,
            edgecolors="k",
            linewidths=0.3,
            label="run (colour: best test error)",
        )
        fig.colorbar(points, ax=ax, label="best test error (fraction)")
    if bad:
        ax.scatter(x(bad), y(bad), marker="x", c="red", s=0.8 * size, label="diverged")


def legend_above(ax) -> None:
    """The legend in one row above the plot, where it cannot cover any point."""
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.01), ncols=3, fontsize=8, frameon=False)


def caption_counts(runs: list[dict]) -> str:
    """'Sweep X (scale S): N runs: L learned, ... D diverged', the sweep and scale read from
    the runs (runs of cells added by `compare` count, but the sweep named is the paper's)."""
    own = [r for r in runs if not r["sweep"].startswith(COMPARE_PREFIX)] or runs
    sweep = ", ".join(sorted({r["sweep"] for r in own}))
    scale = ", ".join(sorted({r.get("scale", "?") for r in own}))
    return f"Sweep {sweep} (scale {scale}): {len(runs)} runs: {outcome_text(runs)}."


def jitter(count: int, width: float = 0.25, seed: int = 0) -> np.ndarray:
    """Small horizontal offsets so dots in one column do not hide each other."""
    return np.random.default_rng(seed).uniform(-width, width, count)
