"""The paper's conclusions as checks: each a verdict with its comparisons, intervals and tests.

Errors are compared on a log10 scale, so a difference is a ratio of errors: "equivalent" means
the interval of that ratio lies within EQUIVALENCE (x1.25) either way. All p-values of a report
form one family, corrected by Holm-Bonferroni.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from lstmbench.analysis.figures_mnist import best_lr_by_momentum
from lstmbench.analysis.runs import (
    MissingData,
    architecture_label,
    converged,
    learned,
    measured,
    parse_compare_sweep,
    sweep_runs,
)
from lstmbench.analysis.stats import bootstrap_ci, compare_groups, group_values, holm

ALPHA = 0.05
EQUIVALENCE = math.log10(1.25)
MIN_GROUP = 3
ERROR_FLOOR = 1e-4

CONFIRMED, PARTLY, NOT_CONFIRMED = "confirmed", "partly confirmed", "not confirmed"
CONTRADICTED, INCONCLUSIVE, NO_DATA = "contradicted", "inconclusive", "no data"


@dataclass
class Test:
    """One statistical test inside a finding."""

    label: str
    p: float
    effect: str  # the effect size and its interval, in words
    ci: tuple[float, float] = (float("nan"), float("nan"))  # interval of the effect
    p_adjusted: float = float("nan")
    supports: bool = True  # the effect points the way the claim says (for effect claims)

    @property
    def significant(self) -> bool:
        """Significant after the family-wise correction."""
        return self.p_adjusted < ALPHA


@dataclass
class Finding:
    """A claim of the paper, the sweep that tests it, the tests and the verdict."""

    key: str
    claim: str
    sweep: str
    rule: str  # "effect" (the claim says there is one) or "null" (says there is none)
    tests: list[Test] = field(default_factory=list)
    verdict: str = NO_DATA
    evidence: str = ""
    note: str = ""


def log_errors(runs: list[dict]) -> np.ndarray:
    """log10 of the runs' best errors (zeros raised to a floor)."""
    return np.log10(np.maximum([r["best_error"] for r in runs], ERROR_FLOOR))


def compare_error(a: list[dict], b: list[dict], label_a: str, label_b: str, alternative: str):
    """A Test comparing two groups of runs by best error; "less" asks whether a is lower."""
    if len(a) < MIN_GROUP or len(b) < MIN_GROUP:
        raise ValueError(f"{label_a}: {len(a)} runs, {label_b}: {len(b)} (need {MIN_GROUP} each)")
    c = compare_groups(log_errors(a), log_errors(b), label_a, label_b, alternative)
    ratio = 10**c.difference
    low, high = (10**v for v in c.ci)
    effect = (
        f"{label_a} median {10**c.median_a:.2%} (n={c.n_a}) vs {label_b} "
        f"{10**c.median_b:.2%} (n={c.n_b}); error ratio {ratio:.2f} [{low:.2f}, {high:.2f}], "
        f"Cliff's delta {c.cliffs_delta:+.2f}; Welch p={c.p_welch:.2g}"
    )
    supports = c.difference < 0 if alternative == "less" else True
    return Test(f"{label_a} vs {label_b} (Mann-Whitney)", c.p, effect, c.ci, supports=supports)


# -- the checks ---------------------------------------------------------------------------


def check_smoothness(store) -> list[Test]:
    """Error changes little between neighbouring learning rates (vs a random order)."""
    runs = converged(sweep_runs(store, "lr_hidden", "the smoothness finding"))
    if len(runs) < 6:
        raise ValueError(f"{len(runs)} converged runs, need 6")
    tests = []
    for key, name in (("lr", "learning rate"), ("hidden", "hidden size")):
        others = "hidden" if key == "lr" else "lr"
        ratio, ci, p = smoothness(runs, key, others)
        if not math.isfinite(ratio):
            continue  # no two runs share the other setting, even after binning
        tests.append(
            Test(
                f"error vs {name}: neighbour differences vs random order (permutation test)",
                p,
                f"neighbour/random difference ratio {ratio:.2f} [{ci[0]:.2f}, {ci[1]:.2f}] "
                "(1 = no structure, 0 = perfectly smooth)",
                ci,
                supports=ratio < 1,
            )
        )
    if not tests:
        raise ValueError("no runs share a hidden size or learning rate")
    return tests


def smoothness(
    runs: list[dict], key: str, within: str, permutations: int = 2000, seed: int = 0
) -> tuple[float, tuple[float, float], float]:
    """Mean |log error difference| between runs adjacent in `key` (same `within`), as a ratio
    to the mean over random pairs; its bootstrap interval; a permutation p-value."""
    y = log_errors(runs)
    x = np.log10([r[key] for r in runs])
    groups = group_values(np.log10([r[within] for r in runs]), 4)

    def ratio_of(indices: np.ndarray, shuffle: np.random.Generator | None = None) -> float:
        ys, xs, gs = y[indices], x[indices], groups[indices]
        if shuffle is not None:
            ys = ys.copy()
            for g in np.unique(gs):  # shuffle errors within a group: keeps the other setting
                members = np.flatnonzero(gs == g)
                ys[members] = shuffle.permutation(ys[members])
        order = np.lexsort((xs, gs))
        same = gs[order][1:] == gs[order][:-1]
        if not same.any():
            return float("nan")
        neighbour = np.abs(np.diff(ys[order]))[same].mean()
        pairs = np.abs(ys[:, None] - ys[None, :])
        together = gs[:, None] == gs[None, :]
        np.fill_diagonal(together, False)
        baseline = pairs[together].mean()
        return float(neighbour / baseline) if baseline > 0 else 1.0

    everything = np.arange(len(y))
    observed = ratio_of(everything)
    if not math.isfinite(observed):
        return observed, (float("nan"), float("nan")), 1.0
    rng = np.random.default_rng(seed)
    shuffled = np.array([ratio_of(everything, rng) for _ in range(permutations)])
    p = float((1 + np.sum(shuffled <= observed)) / (permutations + 1))
    ci = bootstrap_ci(lambda i: ratio_of(i.astype(int)), [everything], samples=500, seed=seed)
    return observed, ci, p


def adjusted_residuals(runs: list[dict]) -> np.ndarray:
    """log10 error minus a quadratic fit in log10 effective learning rate lr/(1-momentum)."""
    x = np.log10([r["lr"] / (1 - r["momentum"]) for r in runs])
    y = log_errors(runs)
    degree = min(2, len(np.unique(x)) - 1)
    return y - np.polyval(np.polyfit(x, y, degree), x) if degree > 0 else y - y.mean()


def check_no_effect(store, key: str, name: str) -> list[Test]:
    """Errors, adjusted for the effective learning rate, do not differ between low and high
    values of a setting."""
    runs = learned(converged(sweep_runs(store, "batch_momentum", f"the {name} finding")))
    values = np.array([r[key] for r in runs], dtype=float)
    if len(np.unique(values)) < 2:
        raise ValueError(f"{name} does not vary")
    cut = np.median(values)
    low = values <= cut if np.any(values > cut) else values < cut
    residual = adjusted_residuals(runs)
    a, b = residual[low], residual[~low]
    if len(a) < MIN_GROUP or len(b) < MIN_GROUP:
        raise ValueError(f"low {name}: {len(a)} runs, high: {len(b)} (need {MIN_GROUP} each)")
    c = compare_groups(b, a, f"high {name}", f"low {name}")
    low_ci, high_ci = (10**v for v in c.ci)
    effect = (
        f"{name} > {cut:g} (n={c.n_a}) vs <= {cut:g} (n={c.n_b}): error ratio at equal "
        f"effective learning rate {10**c.difference:.2f} [{low_ci:.2f}, {high_ci:.2f}], "
        f"Cliff's delta {c.cliffs_delta:+.2f}; Welch p={c.p_welch:.2g}"
    )
    return [
        Test(f"high vs low {name}, adjusted for lr/(1-momentum) (Mann-Whitney)", c.p, effect, c.ci)
    ]


def momentum_scaling(runs: list[dict], seed: int = 0) -> tuple[float, tuple[float, float], float]:
    """Slope of log best-lr on log(1-momentum), bootstrap interval over runs, permutation p."""
    ok = learned(converged(runs))

    def slope(sample: list[dict]) -> float:
        best = best_lr_by_momentum(sample)
        if len(best) < 2:
            return float("nan")
        m = np.array(sorted(best))
        return float(np.polyfit(np.log10(1 - m), np.log10([best[v] for v in m]), 1)[0])

    observed = slope(ok)
    rng = np.random.default_rng(seed)
    momenta = [r["momentum"] for r in ok]
    shuffled = []
    for _ in range(1000):
        relabelled = [
            dict(r, momentum=m) for r, m in zip(ok, rng.permutation(momenta), strict=True)
        ]
        shuffled.append(slope(relabelled))
    shuffled = np.array(shuffled)
    p = float((1 + np.sum(shuffled >= observed)) / (len(shuffled) + 1))
    boot = []
    for _ in range(500):
        boot.append(slope([ok[i] for i in rng.integers(0, len(ok), len(ok))]))
    boot = np.array(boot)
    boot = boot[np.isfinite(boot)]
    ci = tuple(float(v) for v in np.percentile(boot, [2.5, 97.5])) if len(boot) else (np.nan,) * 2
    return observed, ci, p


def check_momentum_scaling(store) -> list[Test]:
    """The best learning rate falls in proportion to (1 - momentum): log-log slope 1."""
    runs = sweep_runs(store, "batch_momentum", "the 1/(1-momentum) finding")
    if len(best_lr_by_momentum(runs)) < 3:
        raise ValueError("needs runs that learned at three momenta (or momentum bins) or more")
    slope, ci, p = momentum_scaling(runs)
    test = Test(
        "slope of log best lr on log(1 - momentum) > 0 (permutation test)",
        p,
        f"slope {slope:.2f} [{ci[0]:.2f}, {ci[1]:.2f}] (1/(1-momentum) scaling: slope 1)",
        ci,
        supports=slope > 0,
    )
    return [test]


def by_field(runs: list[dict], **values) -> list[dict]:
    """The runs whose fields have all the given values (a value may be a tuple of options)."""
    chosen = []
    for run in runs:
        if all(run[k] in (v if isinstance(v, tuple) else (v,)) for k, v in values.items()):
            chosen.append(run)
    return chosen


def check_output(store, sweep: str, alternative: str) -> list[Test]:
    """Softmax vs logistic outputs, over every type and learning rate of a sweep.

    The two-sided (no difference) form looks only at runs that learned."""
    runs = measured(sweep_runs(store, sweep, "the output-layer finding"))
    if alternative == "two-sided":
        runs = learned(runs)
    return [
        compare_error(
            by_field(runs, output="softmax"),
            by_field(runs, output="logistic"),
            "softmax",
            "logistic",
            alternative,
        )
    ]


def check_peepholes(store, sweep: str) -> list[Test]:
    """LSTM (peepholes) vs NPLSTM, among runs that learned: do peepholes lower the error?"""
    runs = learned(sweep_runs(store, sweep, "the peephole finding"))
    return [
        compare_error(
            by_field(runs, cell="LSTM"), by_field(runs, cell="NPLSTM"), "LSTM", "NPLSTM", "less"
        )
    ]


def check_standard_nonlinearities(store) -> list[Test]:
    """Standard tanh types (LSTM, NPLSTM) against each linear or ReLU type."""
    runs = measured(sweep_runs(store, "cell_types_mnist", "the nonlinearity finding"))
    standard = by_field(runs, cell=("LSTM", "NPLSTM"))
    others = sorted({r["cell"] for r in runs} - {"LSTM", "NPLSTM"})
    if not others:
        raise ValueError("no linear or ReLU types in the sweep")
    return [
        compare_error(standard, by_field(runs, cell=cell), "LSTM/NPLSTM", cell, "less")
        for cell in others
        if len(by_field(runs, cell=cell)) >= MIN_GROUP
    ]


def check_bidi_ctc(store) -> list[Test]:
    """BIDI with CTC against every other architecture/target condition on MNIST."""
    runs = measured(sweep_runs(store, "bidi_ctc_mnist", "the BIDI+CTC finding"))
    best = [r for r in runs if architecture_label(r) == "BIDI ctc"]
    labels = sorted({architecture_label(r) for r in runs} - {"BIDI ctc"})
    return [
        compare_error(
            best, [r for r in runs if architecture_label(r) == label], "BIDI ctc", label, "less"
        )
        for label in labels
    ]


def check_bidi_lines(store) -> list[Test]:
    """BIDI against LSTM1 on text lines."""
    runs = measured(sweep_runs(store, "bidi_lines", "the BIDI-on-lines finding"))
    return [
        compare_error(
            by_field(runs, direction="bidi"),
            by_field(runs, direction="uni"),
            "BIDI",
            "LSTM1",
            "less",
        )
    ]


def late_slope(curve: list[dict], tail: float = 1 / 3) -> float:
    """Slope of log10 test error on log10 samples over the last part of a curve."""
    points = [p for p in curve if p["samples"] > 0 and np.isfinite(p["test_error"])]
    if len(points) < 4:
        return float("nan")
    x = np.log10([p["samples"] for p in points])
    y = np.log10(np.maximum([p["test_error"] for p in points], ERROR_FLOOR))
    keep = x >= x[0] + (1 - tail) * (x[-1] - x[0])
    if keep.sum() < 2:
        keep[-2:] = True
    return float(np.polyfit(x[keep], y[keep], 1)[0])


def check_eventual_divergence(store) -> list[Test]:
    """Late in long runs the test error rises: late log-log slope > 0 across runs."""
    runs = converged(sweep_runs(store, "long_lines", "the eventual-divergence finding"))
    slopes = np.array([late_slope(store.curve(r["run_id"])) for r in runs])
    slopes = slopes[np.isfinite(slopes)]
    if len(slopes) < MIN_GROUP:
        raise ValueError(f"{len(slopes)} runs with curves of four points or more")
    p = float(stats.wilcoxon(slopes, alternative="greater").pvalue) if np.any(slopes) else 1.0
    ci = bootstrap_ci(np.median, [slopes])
    rising = float(np.mean(slopes > 0))
    effect = (
        f"median late slope {np.median(slopes):+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}] "
        f"(log error per log sample), {rising:.0%} of {len(slopes)} runs rising"
    )
    return [Test("late slope > 0 (Wilcoxon signed-rank)", p, effect, ci, np.median(slopes) > 0)]


def check_lr_divergence_time(store) -> list[Test]:
    """Lower learning rates reach their best (and start to diverge) later."""
    runs = converged(sweep_runs(store, "long_lines", "the divergence-time finding"))
    if len(runs) < 4 or len({r["lr"] for r in runs}) < 2:
        raise ValueError("needs four converged runs at two learning rates or more")
    lr = np.log10([r["lr"] for r in runs])
    when = np.log10([max(r["best_samples"], 1) for r in runs])
    rho, p = stats.spearmanr(lr, when, alternative="less")
    ci = bootstrap_ci(
        lambda i: stats.spearmanr(lr[i.astype(int)], when[i.astype(int)])[0],
        [np.arange(len(runs))],
        samples=500,
    )
    effect = f"Spearman rho(lr, samples at best error) {rho:+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}]"
    return [
        Test(
            "lower lr, later best (Spearman)", float(np.nan_to_num(p, nan=1.0)), effect, ci, rho < 0
        )
    ]


def check_user_cell(store, sweep: str, cell: str) -> list[Test]:
    """A compared cell against NPLSTM, on the protocol's runs."""
    protocol, _ = parse_compare_sweep(sweep)
    theirs = measured(sweep_runs(store, sweep, f"the {cell} comparison"))
    reference = measured(sweep_runs(store, protocol, f"the {cell} comparison"))
    outputs = {r["output"] for r in theirs}
    reference = [r for r in reference if r["cell"] == "NPLSTM" and r["output"] in outputs]
    return [compare_error(theirs, reference, cell, "NPLSTM", "two-sided")]


# -- the table ----------------------------------------------------------------------------


@dataclass
class Check:
    """A paper claim, how it is tested, and the rule that turns tests into a verdict."""

    key: str
    claim: str
    sweep: str
    rule: str
    run: Callable[[object], list[Test]]


PAPER_CHECKS = [
    Check(
        "smooth",
        "Test error depends smoothly on learning rate and hidden size (Fig. 2)",
        "lr_hidden",
        "effect",
        check_smoothness,
    ),
    Check(
        "batch",
        "Batch size has no significant effect on error (Fig. 4)",
        "batch_momentum",
        "null",
        lambda s: check_no_effect(s, "batch_size", "batch size"),
    ),
    Check(
        "momentum",
        "Momentum has no significant effect on error (Fig. 4)",
        "batch_momentum",
        "null",
        lambda s: check_no_effect(s, "momentum", "momentum"),
    ),
    Check(
        "lr_momentum",
        "The best learning rate scales with 1/(1-momentum): lr/(1-m) stays constant (Fig. 5)",
        "batch_momentum",
        "scaling",
        check_momentum_scaling,
    ),
    Check(
        "output_mnist",
        "Logistic vs softmax output makes no significant difference on MNIST (Fig. 7)",
        "cell_types_mnist",
        "null",
        lambda s: check_output(s, "cell_types_mnist", "two-sided"),
    ),
    Check(
        "peepholes_mnist",
        "Peepholes do not improve the error on MNIST (Fig. 7)",
        "cell_types_mnist",
        "not_better",
        lambda s: check_peepholes(s, "cell_types_mnist"),
    ),
    Check(
        "nonlinearities",
        "Standard nonlinearities (tanh) beat linear and ReLU variants (Fig. 7)",
        "cell_types_mnist",
        "effect",
        check_standard_nonlinearities,
    ),
    Check(
        "softmax_lines",
        "Softmax outputs beat logistic outputs on text lines (Fig. 9)",
        "cell_types_lines",
        "effect",
        lambda s: check_output(s, "cell_types_lines", "less"),
    ),
    Check(
        "peepholes_lines",
        "Peepholes do not improve the error on text lines (Fig. 9)",
        "cell_types_lines",
        "not_better",
        lambda s: check_peepholes(s, "cell_types_lines"),
    ),
    Check(
        "bidi_ctc",
        "BIDI with CTC is the best architecture/target mode on MNIST (Fig. 13)",
        "bidi_ctc_mnist",
        "effect",
        check_bidi_ctc,
    ),
    Check(
        "bidi_lines",
        "BIDI beats LSTM1 on text lines (Fig. 15)",
        "bidi_lines",
        "effect",
        check_bidi_lines,
    ),
    Check(
        "divergence",
        "Test error eventually rises in long training (Fig. 16)",
        "long_lines",
        "effect",
        check_eventual_divergence,
    ),
    Check(
        "divergence_lr",
        "Lower learning rates take longest to diverge (Fig. 16)",
        "long_lines",
        "effect",
        check_lr_divergence_time,
    ),
]


def user_checks(store) -> list[Check]:
    """One check per cell compared with `lstmbench compare`."""
    checks = []
    for entry in store.sweeps():
        name = entry["name"]
        parsed = parse_compare_sweep(name)
        if parsed is not None:
            protocol, cell = parsed
            checks.append(
                Check(
                    f"user_{cell}",
                    f"(your cell) {cell} vs NPLSTM on the {protocol} protocol",
                    name,
                    "compare",
                    lambda s, n=name, c=cell: check_user_cell(s, n, c),
                )
            )
    return checks


def verdict(rule: str, tests: list[Test]) -> str:
    """The verdict a rule gives once every test has its corrected p-value."""
    if not tests:
        return NO_DATA
    significant = [t.significant and t.supports for t in tests]
    if rule == "effect":
        if all(significant):
            return CONFIRMED
        return PARTLY if any(significant) else NOT_CONFIRMED
    if rule == "scaling":
        (test,) = tests
        if not test.significant or not test.supports:
            return NOT_CONFIRMED
        return CONFIRMED if test.ci[0] <= 1 <= test.ci[1] else PARTLY
    if rule == "compare":
        (test,) = tests
        if not test.significant:
            return "no significant difference"
        return "worse than NPLSTM" if test.ci[0] > 0 else "better than NPLSTM"
    inside = all(-EQUIVALENCE <= t.ci[0] and t.ci[1] <= EQUIVALENCE for t in tests)
    if rule == "not_better":  # contradicted only by a significant improvement
        if any(significant):
            return CONTRADICTED
        return CONFIRMED if all(t.ci[0] >= -EQUIVALENCE for t in tests) else INCONCLUSIVE
    if any(t.significant for t in tests):  # "null": any real difference contradicts it
        return CONTRADICTED
    return CONFIRMED if inside else INCONCLUSIVE


def evaluate_findings(store, checks: list[Check] | None = None) -> list[Finding]:
    """Run every check on the store, correct all p-values together (Holm), give verdicts."""
    checks = checks if checks is not None else PAPER_CHECKS + user_checks(store)
    findings = []
    for check in checks:
        finding = Finding(check.key, check.claim, check.sweep, check.rule)
        try:
            finding.tests = check.run(store)
        except MissingData as error:
            finding.note = str(error)
        except ValueError as error:
            finding.note = f"too few runs to test: {error}"
        findings.append(finding)
    every = [t for f in findings for t in f.tests]
    for test, adjusted in zip(every, holm([t.p for t in every]) if every else [], strict=True):
        test.p_adjusted = adjusted
    for finding in findings:
        finding.verdict = verdict(finding.rule, finding.tests)
        finding.evidence = (
            "; ".join(
                f"{t.label}: {t.effect}; p={t.p:.2g}, Holm-adjusted p={t.p_adjusted:.2g}"
                for t in finding.tests
            )
            or finding.note
        )
    return findings
