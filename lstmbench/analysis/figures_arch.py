"""Figures 13-16: architecture and target mode by size and learning rate; uni vs bidi; curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

from lstmbench.analysis.plotting import (
    LR_CMAP,
    Figure,
    caption_counts,
    floor_errors,
    lr_norm,
    new_figure,
    plain_ticks,
    save,
)
from lstmbench.analysis.runs import TooFewRuns, architecture_label, measured


def _by_condition(runs, ax, key: str, metric: str) -> None:
    """Every run as a dot, and per condition the best error at each value of `key` as a line."""
    labels = sorted({architecture_label(r) for r in runs})
    for k, label in enumerate(labels):
        group = [r for r in runs if architecture_label(r) == label]
        colour = f"C{k}"
        ax.scatter(
            [r[key] for r in group],
            floor_errors([r["best_error"] for r in group]),
            color=colour,
            s=14,
            alpha=0.45,
        )
        values = sorted({r[key] for r in group})
        best = [min(r["best_error"] for r in group if r[key] == v) for v in values]
        ax.plot(values, floor_errors(best), "-o", color=colour, ms=4, label=f"{label} (best)")
    ax.set(xscale="log", yscale="log", ylabel=f"best test {metric}")
    if key == "hidden":
        plain_ticks(ax.xaxis, [r[key] for r in runs])
    ax.legend(fontsize=8, loc="best")


def fig_arch_hidden(runs: list[dict], out_dir: Path) -> Figure:
    """Fig. 13: MNIST error by architecture/target mode and hidden size."""
    runs = measured(runs)
    if not runs:
        raise TooFewRuns("no run measured an error")
    fig, (ax,) = new_figure(7.5, 4.8)
    _by_condition(runs, ax, "hidden", "error (fraction)")
    ax.set_xlabel("hidden units (states per direction)")
    caption = (
        caption_counts(runs)
        + " Dots: runs; lines: the best run per hidden size for each condition."
    )
    return save(fig, out_dir, "fig13", "Fig. 13: MNIST error by network type and size", caption)


def fig_arch_lr(runs: list[dict], out_dir: Path) -> Figure:
    """Fig. 14: MNIST error by learning rate for each architecture/target mode."""
    runs = measured(runs)
    if not runs:
        raise TooFewRuns("no run measured an error")
    fig, (ax,) = new_figure(7.5, 4.8)
    _by_condition(runs, ax, "lr", "error (fraction)")
    ax.set_xlabel("learning rate")
    caption = (
        caption_counts(runs)
        + " Dots: runs; lines: the best run per learning rate for each condition."
    )
    return save(fig, out_dir, "fig14", "Fig. 14: MNIST error by learning rate and type", caption)


def fig_uni_bidi_lines(runs: list[dict], out_dir: Path) -> Figure:
    """Fig. 15: LSTM1 vs BIDI character error rate on text lines, by hidden size."""
    runs = measured(runs)
    if not runs:
        raise TooFewRuns("no run measured an error")
    fig, (ax,) = new_figure(7, 4.5)
    _by_condition(runs, ax, "hidden", "character error rate")
    ax.set_xlabel("hidden units (states per direction)")
    caption = caption_counts(runs) + " Dots: runs; lines: the best run per hidden size."
    return save(fig, out_dir, "fig15", "Fig. 15: LSTM1 vs BIDI on text lines", caption)


def fig_long_curves(runs: list[dict], out_dir: Path) -> Figure:
    """Fig. 16: test error against training samples on log axes, coloured by learning rate.
    Each run carries its curve (read with the runs)."""
    curves = []
    for run in runs:
        curve = [p for p in run["curve"] if p["samples"] > 0 and p["test_error"] > 0]
        if len(curve) >= 2:
            curves.append((run, curve))
    if not curves:
        raise TooFewRuns("no run recorded a curve of two points or more")
    norm = lr_norm([run["lr"] for run, _ in curves])
    fig, (ax,) = new_figure(7, 4.8)
    cmap = matplotlib.colormaps[LR_CMAP]
    for run, curve in curves:
        ax.plot(
            [p["samples"] for p in curve],
            [p["test_error"] for p in curve],
            color=cmap(norm(run["lr"])),
            lw=1,
            alpha=0.7,
        )
    mappable = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(mappable, ax=ax, label="learning rate")
    ax.plot([], [], color="grey", label="one run's test error")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="training samples seen",
        ylabel="test error (character error rate)",
    )
    ax.legend(fontsize=8)
    caption = (
        caption_counts(runs)
        + f" {len(curves)} curves; colour: learning rate, blue (low) to red (high)."
    )
    return save(fig, out_dir, "fig16", "Fig. 16: test error vs training samples", caption)


def rise_after_best(curve: list[dict]) -> float:
    """How far the error climbs from its minimum to the end of the curve (0: no rise)."""
    errors = np.array([p["test_error"] for p in curve], dtype=float)
    errors = errors[np.isfinite(errors)]
    return float(errors[-1] - errors.min()) if len(errors) else float("nan")
