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
from lstmbench.analysis.runs import architecture_label, measured, missing, sweep_runs, sweep_scale


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


def fig_arch_hidden(store, out_dir: Path) -> Figure:
    """Fig. 13: MNIST error by architecture/target mode and hidden size."""
    runs = measured(sweep_runs(store, "bidi_ctc_mnist", "Fig. 13"))
    if not runs:
        raise missing("bidi_ctc_mnist", "Fig. 13", "no run measured an error")
    fig, (ax,) = new_figure(7.5, 4.8)
    _by_condition(runs, ax, "hidden", "error (fraction)")
    ax.set_xlabel("hidden units (states per direction)")
    caption = (
        caption_counts(runs, "bidi_ctc_mnist", sweep_scale(store, "bidi_ctc_mnist"))
        + " Dots: runs; lines: the best run per hidden size for each condition."
    )
    return save(fig, out_dir, "fig13", "Fig. 13: MNIST error by network type and size", caption)


def fig_arch_lr(store, out_dir: Path) -> Figure:
    """Fig. 14: MNIST error by learning rate for each architecture/target mode."""
    runs = measured(sweep_runs(store, "bidi_ctc_mnist", "Fig. 14"))
    if not runs:
        raise missing("bidi_ctc_mnist", "Fig. 14", "no run measured an error")
    fig, (ax,) = new_figure(7.5, 4.8)
    _by_condition(runs, ax, "lr", "error (fraction)")
    ax.set_xlabel("learning rate")
    caption = (
        caption_counts(runs, "bidi_ctc_mnist", sweep_scale(store, "bidi_ctc_mnist"))
        + " Dots: runs; lines: the best run per learning rate for each condition."
    )
    return save(fig, out_dir, "fig14", "Fig. 14: MNIST error by learning rate and type", caption)


def fig_uni_bidi_lines(store, out_dir: Path) -> Figure:
    """Fig. 15: LSTM1 vs BIDI character error rate on text lines, by hidden size."""
    runs = measured(sweep_runs(store, "bidi_lines", "Fig. 15"))
    if not runs:
        raise missing("bidi_lines", "Fig. 15", "no run measured an error")
    fig, (ax,) = new_figure(7, 4.5)
    _by_condition(runs, ax, "hidden", "character error rate")
    ax.set_xlabel("hidden units (states per direction)")
    caption = (
        caption_counts(runs, "bidi_lines", sweep_scale(store, "bidi_lines"))
        + " Dots: runs; lines: the best run per hidden size."
    )
    return save(fig, out_dir, "fig15", "Fig. 15: LSTM1 vs BIDI on text lines", caption)


def fig_long_curves(store, out_dir: Path) -> Figure:
    """Fig. 16: test error against training samples on log axes, coloured by learning rate."""
    runs = sweep_runs(store, "long_lines", "Fig. 16")
    curves = []
    for run in runs:
        curve = [p for p in store.curve(run["run_id"]) if p["samples"] > 0 and p["test_error"] > 0]
        if len(curve) >= 2:
            curves.append((run, curve))
    if not curves:
        raise missing("long_lines", "Fig. 16", "no run recorded a curve of two points or more")
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
        caption_counts(runs, "long_lines", sweep_scale(store, "long_lines"))
        + f" {len(curves)} curves; colour: learning rate, blue (low) to red (high)."
    )
    return save(fig, out_dir, "fig16", "Fig. 16: test error vs training samples", caption)


def rise_after_best(curve: list[dict]) -> float:
    """How far the error climbs from its minimum to the end of the curve (0: no rise)."""
    errors = np.array([p["test_error"] for p in curve], dtype=float)
    errors = errors[np.isfinite(errors)]
    return float(errors[-1] - errors.min()) if len(errors) else float("nan")
