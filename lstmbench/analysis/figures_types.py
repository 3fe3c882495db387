"""Figures 7-10: error by LSTM type and output layer, on MNIST and on text lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lstmbench.analysis.plotting import (
    LR_CMAP,
    Figure,
    caption_counts,
    floor_errors,
    jitter,
    legend_above,
    lr_norm,
    new_figure,
    save,
    scatter_by_error,
)
from lstmbench.analysis.runs import (
    TooFewRuns,
    compared_cells,
    diverged,
    measured,
    not_diverged,
    type_label,
)

OUTPUT_ORDER = {"logistic": 0, "softmax": 1}


def compared_note(runs: list[dict]) -> str:
    """Caption text naming the user cells shown beside the paper's types, if any."""
    names = compared_cells(runs)
    return f" Also your cells, run by `lstmbench compare`: {', '.join(names)}." if names else ""


def type_order(runs: list[dict]) -> list[str]:
    """Type labels in the paper's order: logistic group, then softmax; cells by name."""
    labels = {type_label(r): (OUTPUT_ORDER.get(r["output"], 2), r["cell"]) for r in runs}
    return sorted(labels, key=labels.get)


def _error_by_type(runs, ax, fig, metric: str) -> None:
    """Strip plot: one column per type; dot size = hidden units, colour = learning rate."""
    order = type_order(runs)
    position = {label: k for k, label in enumerate(order)}
    x = np.array([position[type_label(r)] for r in runs], dtype=float) + jitter(len(runs))
    hidden = np.array([r["hidden"] for r in runs], dtype=float)
    sizes = 15 + 120 * hidden / hidden.max()
    rates = [r["lr"] for r in runs]
    points = ax.scatter(
        x,
        floor_errors([r["best_error"] for r in runs]),
        s=sizes,
        c=rates,
        norm=lr_norm(rates),
        cmap=LR_CMAP,
        alpha=0.8,
        edgecolors="k",
        linewidths=0.3,
    )
    ax.set_xticks(range(len(order)), order, rotation=45, ha="right", fontsize=8)
    ax.set(yscale="log", xlabel="output layer and cell type", ylabel=f"best test {metric}")
    fig.colorbar(points, ax=ax, label="learning rate")
    for size in sorted({int(hidden.min()), int(hidden.max())}):
        ax.scatter([], [], s=15 + 120 * size / hidden.max(), c="grey", label=f"{size} hidden")
    ax.legend(fontsize=8, loc="best", title="dot size")


def fig_types_mnist(runs: list[dict], out_dir: Path) -> Figure:
    """Fig. 7: best error of every run by cell type and output layer on MNIST (user cells
    compared on this protocol included)."""
    runs = measured(runs)
    if not runs:
        raise TooFewRuns("no run measured an error")
    fig, (ax,) = new_figure(9, 5)
    _error_by_type(runs, ax, fig, "error (fraction)")
    caption = (
        caption_counts(runs)
        + compared_note(runs)
        + " One dot per run (its best test error, diverged runs included); size: hidden units;"
        " colour: learning rate. Left: logistic outputs (MSE), right: softmax."
    )
    return save(fig, out_dir, "fig7", "Fig. 7: MNIST error by LSTM type", caption)


def fig_types_lr(runs: list[dict], out_dir: Path) -> Figure:
    """Fig. 8: error (colour) by cell type and learning rate on MNIST; crosses diverged."""
    order = type_order(runs)
    position = {label: k for k, label in enumerate(order)}
    ok, bad = not_diverged(runs), diverged(runs)
    fig, (ax,) = new_figure(9, 5)
    scatter_by_error(
        fig,
        ax,
        ok,
        bad,
        lambda group: np.array([position[type_label(r)] for r in group]) + jitter(len(group), 0.15),
        lambda group: [r["lr"] for r in group],
        size=45,
    )
    ax.set_xticks(range(len(order)), order, rotation=45, ha="right", fontsize=8)
    ax.set(yscale="log", xlabel="output layer and cell type", ylabel="learning rate")
    legend_above(ax)
    caption = (
        caption_counts(runs)
        + compared_note(runs)
        + " Each mark is one run at its learning rate; colour: best test error; red crosses:"
        " diverged. Shows whether the learning-rate range covers the convergent region."
    )
    return save(fig, out_dir, "fig8", "Fig. 8: MNIST error by type and learning rate", caption)


def fig_types_lines(runs: list[dict], out_dir: Path) -> Figure:
    """Fig. 9: best character error rate by cell type and output layer on text lines."""
    runs = measured(runs)
    if not runs:
        raise TooFewRuns("no run measured an error")
    fig, (ax,) = new_figure(8, 5)
    _error_by_type(runs, ax, fig, "character error rate")
    caption = (
        caption_counts(runs)
        + compared_note(runs)
        + " One dot per run; size: hidden units; colour: learning rate."
    )
    return save(fig, out_dir, "fig9", "Fig. 9: text-line error by LSTM type", caption)


def fig_curves_output(runs: list[dict], out_dir: Path) -> Figure:
    """Fig. 10: test error curves on text lines, logistic (blue) vs softmax (red) outputs.
    Each run carries its curve (read with the runs)."""
    runs = measured(runs)
    colours = {"logistic": "tab:blue", "softmax": "tab:red"}
    fig, (ax,) = new_figure(7, 4.5)
    drawn = set()
    for run in runs:
        curve = [p for p in run["curve"] if np.isfinite(p["test_error"])]
        if not curve:
            continue
        label = None if run["output"] in drawn else f"{run['output']} output"
        drawn.add(run["output"])
        ax.plot(
            [p["samples"] for p in curve],
            [p["test_error"] for p in curve],
            color=colours.get(run["output"], "grey"),
            alpha=0.5,
            lw=1,
            label=label,
        )
    if not drawn:
        raise TooFewRuns("no run recorded a training curve")
    ax.set(xscale="log", xlabel="training samples seen", ylabel="test character error rate")
    ax.legend(fontsize=8)
    caption = (
        caption_counts(runs)
        + compared_note(runs)
        + " One curve per run: test error as training goes on."
    )
    return save(fig, out_dir, "fig10", "Fig. 10: training curves, logistic vs softmax", caption)
