"""What this package knows about the paper, in one table: per experiment its spec (and sweep),
the figures it feeds, the claims it tests and the numbers the paper quotes.

Everything else (the report, `reproduce`, `compare`, the findings) reads this table; nothing
else spells out a sweep name. Figure and check functions are named "module.function" (in
lstmbench.analysis) and imported on first use: the command line reads this table to build its
options, and must not pay for matplotlib and scipy on every start.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lstmbench.analysis.runs import (
    compared_sweeps,
    finished_by_sweep,
    learned,
    measured,
    paper_runs,
    pilot_sweep_name,
)


def resolve(name: str) -> Callable:
    """The function "module.function" of lstmbench.analysis."""
    module, _, function = name.rpartition(".")
    return getattr(importlib.import_module(f"lstmbench.analysis.{module}"), function)


@dataclass(frozen=True)
class PaperFigure:
    """A figure of the paper: its id (e.g. "fig2") and the function that draws it.

    The function takes (runs, out_dir): the experiment's finished runs and a folder."""

    key: str
    function: str

    @property
    def name(self) -> str:
        """How the paper names it, e.g. "Fig. 2"."""
        return f"Fig. {self.key.removeprefix('fig')}"

    @property
    def draw(self) -> Callable:
        return resolve(self.function)


@dataclass(frozen=True)
class Claim:
    """A conclusion of the paper and the check that tests it on the experiment's runs.

    `rule` turns the check's tests into a verdict (findings.verdict): "effect" (the paper
    claims a difference, in a direction), "null" (no difference: for the 1/(1-momentum)
    scaling, no difference of the slope from 1), "not_better" (no improvement)."""

    key: str
    claim: str
    rule: str
    function: str


@dataclass(frozen=True)
class PaperNumber:
    """A number the paper quotes, and how ours is computed from the experiment's runs."""

    what: str
    paper: str
    ours: Callable[[list[dict]], str]


@dataclass(frozen=True)
class Experiment:
    """One experiment of the paper: one spec, run as one sweep of the same name."""

    spec: str
    description: str
    figures: tuple[PaperFigure, ...]
    claims: tuple[Claim, ...]
    numbers: tuple[PaperNumber, ...] = ()
    curves: bool = False  # a figure or check reads the runs' training curves
    protocol: bool = False  # `lstmbench compare` can run a user's cell through it
    # Its claims compare groups, each at its best rate (not how the error changes with the
    # rate): a budget's pilot refines each group's band around its best rate.
    at_best: bool = False


def best_error(runs: list[dict]) -> str:
    """The lowest best error, as a percentage."""
    errors = sorted(r["best_error"] for r in measured(runs))
    return f"{errors[0]:.2%}" if errors else "-"


def tenth_best_error(runs: list[dict]) -> str:
    """The tenth lowest best error (the paper quotes its best ten), and how many of the ten
    learned where not all did (a tenth best at chance says little learned, not that the
    tenth run was poor)."""
    ranked = sorted(measured(runs), key=lambda r: r["best_error"])
    if len(ranked) < 10:
        return f"- ({len(ranked)} runs)"
    learned_count = len(learned(ranked[:10]))
    note = f" ({learned_count} of the ten best learned)" if learned_count < 10 else ""
    return f"{ranked[9]['best_error']:.2%}{note}"


def run_count(runs: list[dict]) -> str:
    """How many runs finished."""
    return str(len(runs))


EXPERIMENTS = (
    Experiment(
        "lr_hidden",
        "Figs. 2-3: learning rate x hidden size, LSTM on MNIST",
        (
            PaperFigure("fig2", "figures_mnist.fig_lr_hidden"),
            PaperFigure("fig3", "figures_mnist.fig_best_runs"),
        ),
        (
            Claim(
                "smooth",
                "Test error depends smoothly on learning rate and hidden size (Fig. 2)",
                "effect",
                "findings.check_smoothness",
            ),
        ),
        (
            PaperNumber("MNIST 10th best test error (Fig. 3)", "0.8%-0.9%", tenth_best_error),
            PaperNumber("MNIST best test error, lr x hidden (Fig. 3)", "about 0.8%", best_error),
            PaperNumber("LSTMs trained, lr x hidden (Sec. 3)", "660", run_count),
        ),
    ),
    Experiment(
        "batch_momentum",
        "Figs. 4-5: batch size and momentum, LSTM on MNIST",
        (
            PaperFigure("fig4", "figures_mnist.fig_batch_momentum"),
            PaperFigure("fig5", "figures_mnist.fig_lr_momentum"),
        ),
        (
            Claim(
                "batch",
                "Batch size has no significant effect on error (Fig. 4)",
                "null",
                "findings.check_batch_effect",
            ),
            Claim(
                "momentum",
                "Momentum has no significant effect on error (Fig. 4)",
                "null",
                "findings.check_momentum_effect",
            ),
            Claim(
                "lr_momentum",
                "The best learning rate scales with 1/(1-momentum): lr/(1-m) stays constant "
                "(Fig. 5)",
                "null",
                "findings.check_momentum_scaling",
            ),
        ),
        (
            PaperNumber("MNIST best test error (Sec. 4)", "0.73%", best_error),
            PaperNumber("LSTMs trained, batch x momentum (Sec. 4)", "427", run_count),
        ),
    ),
    Experiment(
        "cell_types_mnist",
        "Figs. 7-8: six LSTM types x two output layers on MNIST",
        (
            PaperFigure("fig7", "figures_types.fig_types_mnist"),
            PaperFigure("fig8", "figures_types.fig_types_lr"),
        ),
        (
            Claim(
                "output_mnist",
                "Logistic vs softmax output makes no significant difference on MNIST (Fig. 7)",
                "null",
                "findings.check_output_alike",
            ),
            Claim(
                "peepholes_mnist",
                "Peepholes do not improve the error on MNIST (Fig. 7)",
                "not_better",
                "findings.check_peepholes",
            ),
            Claim(
                "nonlinearities",
                "Standard nonlinearities (tanh) beat linear and ReLU variants (Fig. 7)",
                "effect",
                "findings.check_standard_nonlinearities",
            ),
        ),
        (PaperNumber("LSTMs trained, 12 types (Sec. 5)", "2101", run_count),),
        protocol=True,
        at_best=True,
    ),
    Experiment(
        "cell_types_lines",
        "Figs. 9-10: LINLSTM, LSTM, NPLSTM x two output layers on text lines",
        (
            PaperFigure("fig9", "figures_types.fig_types_lines"),
            PaperFigure("fig10", "figures_types.fig_curves_output"),
        ),
        (
            Claim(
                "softmax_lines",
                "Softmax outputs beat logistic outputs on text lines (Fig. 9)",
                "effect",
                "findings.check_softmax_better",
            ),
            Claim(
                "peepholes_lines",
                "Peepholes do not improve the error on text lines (Fig. 9)",
                "not_better",
                "findings.check_peepholes",
            ),
        ),
        curves=True,
        protocol=True,
        at_best=True,
    ),
    Experiment(
        "bidi_ctc_mnist",
        "Figs. 13-14: LSTM1/BIDI x center/end/ctc targets on MNIST",
        (
            PaperFigure("fig13", "figures_arch.fig_arch_hidden"),
            PaperFigure("fig14", "figures_arch.fig_arch_lr"),
        ),
        (
            Claim(
                "bidi_ctc",
                "BIDI with CTC is the best architecture/target mode on MNIST (Fig. 13)",
                "effect",
                "findings.check_bidi_ctc",
            ),
        ),
        at_best=True,
    ),
    Experiment(
        "bidi_lines",
        "Fig. 15: LSTM1 vs BIDI on text lines",
        (PaperFigure("fig15", "figures_arch.fig_uni_bidi_lines"),),
        (
            Claim(
                "bidi_lines",
                "BIDI beats LSTM1 on text lines (Fig. 15)",
                "effect",
                "findings.check_bidi_lines",
            ),
        ),
        at_best=True,
    ),
    Experiment(
        "long_lines",
        "Fig. 16: long LSTM1 training on text lines",
        (PaperFigure("fig16", "figures_arch.fig_long_curves"),),
        (
            Claim(
                "divergence",
                "Test error eventually rises in long training (Fig. 16)",
                "effect",
                "findings.check_eventual_divergence",
            ),
            Claim(
                "divergence_lr",
                "Lower learning rates take longest to diverge (Fig. 16)",
                "effect",
                "findings.check_lr_divergence_time",
            ),
        ),
        (PaperNumber("Long runs on text lines (Fig. 16)", "942", run_count),),
        curves=True,
    ),
)

SPECS = tuple(e.spec for e in EXPERIMENTS)
PROTOCOLS = tuple(e.spec for e in EXPERIMENTS if e.protocol)
FIGURE_KEYS = tuple(f.key for e in EXPERIMENTS for f in e.figures)  # in the paper's order


def experiment_runs(store, by_sweep: dict[str, list[dict]], experiment: Experiment) -> list[dict]:
    """The finished runs of an experiment's sweep, and for a protocol those of the cells
    compared on it; with curves where the experiment needs them (read from the store)."""
    runs = list(by_sweep.get(experiment.spec, []))
    if not experiment.at_best:
        # A budget's pilot trains the experiment's own runs at rates across the paper's range:
        # more data for claims about how the error changes with the rate. Where claims compare
        # groups each at its best, pilot rates far from a group's best would count as its
        # failures, so those pilots stay out.
        runs += by_sweep.get(pilot_sweep_name(experiment.spec), [])
    if experiment.protocol:
        for name in compared_sweeps(by_sweep, experiment.spec):
            runs += by_sweep[name]
    return with_curves(store, runs) if experiment.curves else runs


def with_curves(store, runs: list[dict]) -> list[dict]:
    """The runs, each with its training curve under "curve"."""
    return [{**run, "curve": store.curve(run["run_id"])} for run in runs]


def read_experiments(store, all_runs: list[dict] | None = None) -> dict[str, list[dict]]:
    """Every experiment's runs (spec -> runs), from one listing of the store's runs."""
    all_runs = store.runs() if all_runs is None else all_runs
    by_sweep = finished_by_sweep(all_runs, store.sweeps())
    return {e.spec: experiment_runs(store, by_sweep, e) for e in EXPERIMENTS}


def finding_jobs(data: dict[str, list[dict]], keys: list[str] | None = None) -> list[tuple]:
    """(check, sweep, runs) for every claim of the table, then every cell compared with
    `compare`; only those whose key is in `keys`, if given."""
    from lstmbench.analysis.findings import Check, user_checks

    jobs = [
        (Check(c.key, c.claim, c.rule, resolve(c.function)), e.spec, data[e.spec])
        for e in EXPERIMENTS
        for c in e.claims
    ]
    for spec in PROTOCOLS:
        jobs += [(check, sweep, data[spec]) for check, sweep in user_checks(data[spec], spec)]
    return [job for job in jobs if keys is None or job[0].key in keys]


def evaluate(
    data: dict[str, list[dict]],
    keys: list[str] | None = None,
    unrun: Mapping[str, str] | None = None,
) -> list:
    """The findings (all, or those of the claims named in `keys`) from the experiments' runs;
    `unrun`: why no runs were made of some specs (see findings.evaluate_findings)."""
    from lstmbench.analysis.findings import evaluate_findings

    return evaluate_findings(finding_jobs(data, keys), unrun)


def our_numbers(data: dict[str, list[dict]]) -> list[tuple[str, str, str, str]]:
    """(quantity, sweep, paper's value, ours) for every number the paper quotes; ours from
    the paper's own runs (not cells added by `compare`)."""
    return [
        (n.what, e.spec, n.paper, n.ours(paper_runs(data[e.spec])))
        for e in EXPERIMENTS
        for n in e.numbers
    ]
