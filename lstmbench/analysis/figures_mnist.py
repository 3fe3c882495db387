"""Figures 2-5: learning rate x hidden size, the best runs, batch size and momentum."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lstmbench.analysis.plotting import (
    LR_CMAP,
    Figure,
    caption_counts,
    floor_errors,
    legend_above,
    lr_norm,
    new_figure,
    plain_ticks,
    save,
    scatter_by_error,
)
from lstmbench.analysis.runs import TooFewRuns, diverged, learned, measured, not_diverged
from lstmbench.analysis.stats import best_values_by_group, group_values

BEST_ROWS = 10


def fig_lr_hidden(runs: list[dict], out_dir: Path) -> Figure:
    """Fig. 2: best test error (colour) over learning rate x hidden size."""
    ok, bad = not_diverged(runs), diverged(runs)
    if not ok:
        raise TooFewRuns("every run diverged")
    fig, (ax,) = new_figure(7, 4.8)
    scatter_by_error(
        fig,
        ax,
        ok,
        bad,
        lambda group: [r["lr"] for r in group],
        lambda group: [r["hidden"] for r in group],
        size=70,
    )
    ax.set(xscale="log", yscale="log", xlabel="learning rate", ylabel="hidden units (states)")
    plain_ticks(ax.yaxis, [r["hidden"] for r in runs])
    legend_above(ax)
    caption = (
        caption_counts(runs)
        + " Each dot is one run; colour is the best test error reached during training."
    )
    return save(
        fig, out_dir, "fig2", "Fig. 2: MNIST error by learning rate and hidden size", caption
    )


def best_runs_table(runs: list[dict], count: int = BEST_ROWS) -> list[dict]:
    """The `count` runs with the lowest best error, as table rows."""
    ranked = sorted(measured(runs), key=lambda r: r["best_error"])[:count]
    return [
        {
            "rank": rank,
            "best error": f"{r['best_error']:.2%}",
            "cell": r["cell"],
            "hidden": r["hidden"],
            "lr": f"{r['lr']:.3g}",
            "momentum": r["momentum"],
            "batch": r["batch_size"],
            "at samples": r["best_samples"],
            "run": r["run_id"],
        }
        for rank, r in enumerate(ranked, 1)
    ]


def fig_best_runs(runs: list[dict], out_dir: Path) -> Figure:
    """Fig. 3: the best runs of the learning-rate x hidden-size sweep, as a table."""
    rows = best_runs_table(runs)
    if not rows:
        raise TooFewRuns("no run measured an error")
    columns = [c for c in rows[0] if c != "run"]  # the ids are in the report's own table
    fig, (ax,) = new_figure(9, 0.6 + 0.32 * (len(rows) + 1))
    ax.axis("off")
    table = ax.table(
        cellText=[[str(row[c]) for c in columns] for row in rows],
        colLabels=columns,
        loc="center",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1, 1.25)
    caption = (
        caption_counts(runs)
        + f" The {len(rows)} lowest best test errors (the paper's best ten: 0.8% to 0.9%)."
    )
    return save(fig, out_dir, "fig3", "Fig. 3: best runs on MNIST", caption, table=rows)


def fig_batch_momentum(runs: list[dict], out_dir: Path) -> Figure:
    """Fig. 4: best test error against batch size and against momentum (colour: learning rate)."""
    ok = not_diverged(runs)
    if not ok:
        raise TooFewRuns("every run diverged")
    fig, axes = new_figure(10, 4.3, columns=2)
    rates = [r["lr"] for r in ok]
    norm = lr_norm(rates)
    errors = floor_errors([r["best_error"] for r in ok])
    for ax, key, label, scale in (
        (axes[0], "batch_size", "batch size (samples per update)", "log"),
        (axes[1], "momentum", "momentum", "linear"),
    ):
        points = ax.scatter(
            [r[key] for r in ok], errors, c=rates, norm=norm, cmap=LR_CMAP, s=30, label="run"
        )
        ax.set(xscale=scale, yscale="log", xlabel=label, ylabel="best test error (fraction)")
        ax.legend(loc="upper right", fontsize=8)
    fig.colorbar(points, ax=axes, label="learning rate")
    caption = caption_counts(runs) + " Runs that did not diverge; colour is the learning rate."
    return save(fig, out_dir, "fig4", "Fig. 4: MNIST error vs batch size and momentum", caption)


def best_lr_by_momentum(runs: list[dict], only_learned: bool = True) -> dict[float, float]:
    """Momentum (or, when drawn at random, its bin's median) -> best learning rate: the
    geometric mean over the best fifth of that momentum's runs that learned (or did not
    diverge)."""
    ok = learned(runs) if only_learned else not_diverged(runs)
    if not ok:
        return {}
    best = best_values_by_group(
        group_values([r["momentum"] for r in ok]),
        np.log([r["lr"] for r in ok]),
        [r["best_error"] for r in ok],
    )
    return {m: float(np.exp(v)) for m, v in best.items()}


def fig_lr_momentum(runs: list[dict], out_dir: Path) -> Figure:
    """Fig. 5: best learning rate against momentum, with the lr proportional to (1 - m) line."""
    best, note = best_lr_by_momentum(runs), ""
    if len(best) < 2:  # nothing learned yet: show where the least bad runs were, and say so
        best = best_lr_by_momentum(runs, only_learned=False)
        note = " No run learned, so these best rates say little."
    if len(best) < 2:
        raise TooFewRuns("needs runs that did not diverge at two momenta or more")
    momenta = np.array(sorted(best))
    rates = np.array([best[m] for m in momenta])
    # lr/(1-m) constant: the geometric-mean constant through the measured points.
    constant = float(np.exp(np.mean(np.log(rates / (1 - momenta)))))
    line = np.linspace(momenta.min(), momenta.max(), 100)
    fig, (ax,) = new_figure(6.5, 4.5)
    ok = not_diverged(runs)
    ax.scatter(
        [r["momentum"] for r in ok],
        [r["lr"] for r in ok],
        c="lightgrey",
        s=12,
        label="runs that did not diverge",
    )
    ax.plot(momenta, rates, "o", color="C3", ms=8, label="best learning rate per momentum")
    ax.plot(line, constant * (1 - line), "--", color="k", label=f"{constant:.3g} x (1 - momentum)")
    ax.set(yscale="log", xlabel="momentum", ylabel="learning rate")
    ax.legend(fontsize=8)
    caption = (
        caption_counts(runs)
        + " Best rate per momentum (per momentum quintile when momentum is drawn at random):"
        " geometric mean over the best fifth of its runs that learned. The dashed line"
        " keeps lr/(1-momentum) constant, the paper's 1/(1-momentum) scaling." + note
    )
    return save(fig, out_dir, "fig5", "Fig. 5: best learning rate vs momentum", caption)
