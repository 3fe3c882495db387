"""The paper's conclusions as checks on runs: each a verdict with its tests, intervals, reasons.

Errors are compared on a log10 scale, so a difference is a ratio of errors: "equivalent" means
the interval of that ratio lies within EQUIVALENCE (x1.25) either way. All p-values of a report
form one family, corrected by Holm-Bonferroni.

Every finding ends in one of four verdicts:
- confirmed: the tests decide for the claim (a significant effect the way the paper says, or
  for a claim of no difference, an interval within the equivalence margin);
- contradicted: the data decide against it (an effect the other way, a real difference where
  the paper says there is none, or equivalence where it says there is a difference);
- inconclusive: runs learned, but the tests decide neither way;
- no data: too few runs, or too few that learned: runs stuck at chance all score alike and
  are no evidence either way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from lstmbench.analysis.figures_mnist import best_lr_by_momentum
from lstmbench.analysis.runs import (
    MissingData,
    TooFewRuns,
    architecture_label,
    converged,
    learned,
    measured,
    missing,
    paper_runs,
    parse_compare_sweep,
)
from lstmbench.analysis.stats import bootstrap_ci, compare_groups, group_values, holm

ALPHA = 0.05
EQUIVALENCE = math.log10(1.25)
MIN_GROUP = 3
ERROR_FLOOR = 1e-4

CONFIRMED, CONTRADICTED = "confirmed", "contradicted"
INCONCLUSIVE, NO_DATA = "inconclusive", "no data"
VERDICTS = (CONFIRMED, CONTRADICTED, INCONCLUSIVE, NO_DATA)


@dataclass
class Test:
    """One statistical test inside a finding."""

    label: str
    p: float
    effect: str  # the effect size and its interval, in words
    ci: tuple[float, float] = (float("nan"), float("nan"))  # interval of the effect
    p_adjusted: float = float("nan")
    supports: bool = True  # the effect points the way the claim says (for effect claims)
    # The interval decides against an effect claim: it lies wholly on the other side, or (for
    # a claimed difference) within the equivalence margin.
    against: bool = False

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
    rule: str  # how tests become a verdict: see verdict()
    tests: list[Test] = field(default_factory=list)
    verdict: str = NO_DATA
    evidence: str = ""
    note: str = ""


@dataclass(frozen=True)
class Check:
    """A paper claim, the function that tests it on its experiment's runs, and its rule."""

    key: str
    claim: str
    rule: str  # "effect", "null", "not_better" or "scaling"
    run: Callable[[list[dict]], list[Test]]


def log_errors(runs: list[dict]) -> np.ndarray:
    """log10 of the runs' best errors (zeros raised to a floor)."""
    return np.log10(np.maximum([r["best_error"] for r in runs], ERROR_FLOOR))


def need_learned(runs: list[dict]) -> list[dict]:
    """The runs, if at least MIN_GROUP of them learned; else there is no evidence to weigh."""
    count = len(learned(runs))
    if count < MIN_GROUP:
        raise TooFewRuns(
            f"{count} of {len(runs)} runs learned (best error at most half of chance), "
            f"need {MIN_GROUP}"
        )
    return runs


def within_margin(ci: tuple[float, float]) -> bool:
    """The interval of a log10 error ratio lies within x1.25 either way."""
    return -EQUIVALENCE <= ci[0] and ci[1] <= EQUIVALENCE


def compare_error(a: list[dict], b: list[dict], label_a: str, label_b: str, alternative: str):
    """A Test comparing two groups of runs by best error; "less" asks whether a is lower."""
    if len(a) < MIN_GROUP or len(b) < MIN_GROUP:
        raise TooFewRuns(f"{label_a}: {len(a)} runs, {label_b}: {len(b)} (need {MIN_GROUP} each)")
    c = compare_groups(log_errors(a), log_errors(b), label_a, label_b, alternative)
    ratio = 10**c.difference
    low, high = (10**v for v in c.ci)
    effect = (
        f"{label_a} median {10**c.median_a:.2%} (n={c.n_a}) vs {label_b} "
        f"{10**c.median_b:.2%} (n={c.n_b}); error ratio {ratio:.2f} [{low:.2f}, {high:.2f}], "
        f"Cliff's delta {c.cliffs_delta:+.2f}; Welch p={c.p_welch:.2g}"
    )
    supports = c.difference < 0 if alternative == "less" else True
    # Where a is claimed lower: a clearly higher, or both clearly alike, speaks against it.
    against = alternative == "less" and (c.ci[0] > 0 or within_margin(c.ci))
    return Test(
        f"{label_a} vs {label_b} (Mann-Whitney)",
        c.p,
        effect,
        c.ci,
        supports=supports,
        against=against,
    )


# -- the checks: each takes the finished runs of its experiment --------------------------


def check_smoothness(runs: list[dict]) -> list[Test]:
    """Error changes little between neighbouring learning rates (vs a random order)."""
    runs = need_learned(converged(paper_runs(runs)))
    if len(runs) < 6:
        raise TooFewRuns(f"{len(runs)} converged runs, need 6")
    tests = []
    for key, name in (("lr", "learning rate"), ("hidden", "hidden size")):
        others = "hidden" if key == "lr" else "lr"
        ratio, ci, p, p_rough = smoothness(runs, key, others)
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
                # Neighbours differ more than random pairs: rough. (The bootstrap interval
                # cannot say so: resampled duplicates sit side by side and look smooth.)
                against=p_rough < ALPHA,
            )
        )
    if not tests:
        raise TooFewRuns("no runs share a hidden size or learning rate")
    return tests


def smoothness(
    runs: list[dict], key: str, within: str, permutations: int = 2000, seed: int = 0
) -> tuple[float, tuple[float, float], float, float]:
    """Mean |log error difference| between runs adjacent in `key` (same `within`), as a ratio
    to the mean over random pairs; its bootstrap interval; permutation p-values for smooth
    (ratio below a random order's) and for rough (above)."""
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
        return observed, (float("nan"), float("nan")), 1.0, 1.0
    rng = np.random.default_rng(seed)
    shuffled = np.array([ratio_of(everything, rng) for _ in range(permutations)])
    p = float((1 + np.sum(shuffled <= observed)) / (permutations + 1))
    p_rough = float((1 + np.sum(shuffled >= observed)) / (permutations + 1))
    ci = bootstrap_ci(lambda i: ratio_of(i.astype(int)), [everything], samples=500, seed=seed)
    return observed, ci, p, p_rough


def adjusted_residuals(runs: list[dict]) -> np.ndarray:
    """log10 error minus a quadratic fit in log10 effective learning rate lr/(1-momentum)."""
    x = np.log10([r["lr"] / (1 - r["momentum"]) for r in runs])
    y = log_errors(runs)
    degree = min(2, len(np.unique(x)) - 1)
    return y - np.polyval(np.polyfit(x, y, degree), x) if degree > 0 else y - y.mean()


def check_no_effect(runs: list[dict], key: str, name: str) -> list[Test]:
    """Errors, adjusted for the effective learning rate, do not differ between low and high
    values of a setting."""
    runs = learned(converged(paper_runs(runs)))
    values = np.array([r[key] for r in runs], dtype=float)
    if len(np.unique(values)) < 2:
        raise TooFewRuns(f"{name} does not vary among {len(runs)} converged runs that learned")
    cut = np.median(values)
    low = values <= cut if np.any(values > cut) else values < cut
    residual = adjusted_residuals(runs)
    a, b = residual[low], residual[~low]
    if len(a) < MIN_GROUP or len(b) < MIN_GROUP:
        raise TooFewRuns(
            f"low {name}: {len(a)} runs that learned, high: {len(b)} (need {MIN_GROUP} each)"
        )
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
    ok = learned(runs)

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


def check_momentum_scaling(runs: list[dict]) -> list[Test]:
    """The best learning rate falls in proportion to (1 - momentum): log-log slope 1."""
    runs = paper_runs(runs)
    if len(best_lr_by_momentum(runs)) < 3:
        raise TooFewRuns("needs runs that learned at three momenta (or momentum bins) or more")
    slope, ci, p = momentum_scaling(runs)
    test = Test(
        "slope of log best lr on log(1 - momentum) > 0 (permutation test)",
        p,
        f"slope {slope:.2f} [{ci[0]:.2f}, {ci[1]:.2f}] (1/(1-momentum) scaling: slope 1)",
        ci,
        supports=slope > 0,
        against=math.isfinite(ci[0]) and not ci[0] <= 1 <= ci[1],  # slope 1 ruled out
    )
    return [test]


def by_field(runs: list[dict], **values) -> list[dict]:
    """The runs whose fields have all the given values (a value may be a tuple of options)."""
    chosen = []
    for run in runs:
        if all(run[k] in (v if isinstance(v, tuple) else (v,)) for k, v in values.items()):
            chosen.append(run)
    return chosen


def check_output(runs: list[dict], alternative: str) -> list[Test]:
    """Softmax vs logistic outputs, over every type and learning rate of a sweep.

    The two-sided (no difference) form looks only at runs that learned."""
    runs = need_learned(measured(paper_runs(runs)))
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


def check_batch_effect(runs: list[dict]) -> list[Test]:
    """Batch size, at equal effective learning rate, does not change the error."""
    return check_no_effect(runs, "batch_size", "batch size")


def check_momentum_effect(runs: list[dict]) -> list[Test]:
    """Momentum, at equal effective learning rate, does not change the error."""
    return check_no_effect(runs, "momentum", "momentum")


def check_output_alike(runs: list[dict]) -> list[Test]:
    """Softmax and logistic outputs reach the same error (two-sided, runs that learned)."""
    return check_output(runs, "two-sided")


def check_softmax_better(runs: list[dict]) -> list[Test]:
    """Softmax outputs reach a lower error than logistic ones."""
    return check_output(runs, "less")


def check_peepholes(runs: list[dict]) -> list[Test]:
    """LSTM (peepholes) vs NPLSTM, among runs that learned: do peepholes lower the error?"""
    runs = learned(need_learned(paper_runs(runs)))
    return [
        compare_error(
            by_field(runs, cell="LSTM"), by_field(runs, cell="NPLSTM"), "LSTM", "NPLSTM", "less"
        )
    ]


def check_standard_nonlinearities(runs: list[dict]) -> list[Test]:
    """Standard tanh types (LSTM, NPLSTM) against each linear or ReLU type."""
    runs = need_learned(measured(paper_runs(runs)))
    standard = by_field(runs, cell=("LSTM", "NPLSTM"))
    others = sorted({r["cell"] for r in runs} - {"LSTM", "NPLSTM"})
    if not others:
        raise TooFewRuns("no linear or ReLU types in the sweep")
    return [
        compare_error(standard, by_field(runs, cell=cell), "LSTM/NPLSTM", cell, "less")
        for cell in others
        if len(by_field(runs, cell=cell)) >= MIN_GROUP
    ]


def check_bidi_ctc(runs: list[dict]) -> list[Test]:
    """BIDI with CTC against every other architecture/target condition on MNIST."""
    runs = need_learned(measured(paper_runs(runs)))
    best = [r for r in runs if architecture_label(r) == "BIDI ctc"]
    labels = sorted({architecture_label(r) for r in runs} - {"BIDI ctc"})
    return [
        compare_error(
            best, [r for r in runs if architecture_label(r) == label], "BIDI ctc", label, "less"
        )
        for label in labels
    ]


def check_bidi_lines(runs: list[dict]) -> list[Test]:
    """BIDI against LSTM1 on text lines."""
    runs = need_learned(measured(paper_runs(runs)))
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


def check_eventual_divergence(runs: list[dict]) -> list[Test]:
    """Late in long runs the test error rises: late log-log slope > 0 across runs.

    Curves still falling at the end do not contradict the claim: "eventually" lies beyond
    any run that stopped while it was still improving."""
    runs = need_learned(converged(paper_runs(runs)))
    slopes = np.array([late_slope(r["curve"]) for r in runs])
    slopes = slopes[np.isfinite(slopes)]
    if len(slopes) < MIN_GROUP:
        raise TooFewRuns(f"{len(slopes)} runs with curves of four points or more")
    p = float(stats.wilcoxon(slopes, alternative="greater").pvalue) if np.any(slopes) else 1.0
    ci = bootstrap_ci(np.median, [slopes])
    rising = float(np.mean(slopes > 0))
    effect = (
        f"median late slope {np.median(slopes):+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}] "
        f"(log error per log sample), {rising:.0%} of {len(slopes)} runs rising"
    )
    return [Test("late slope > 0 (Wilcoxon signed-rank)", p, effect, ci, np.median(slopes) > 0)]


def check_lr_divergence_time(runs: list[dict]) -> list[Test]:
    """Lower learning rates reach their best (and start to diverge) later."""
    runs = need_learned(converged(paper_runs(runs)))
    if len(runs) < 4 or len({r["lr"] for r in runs}) < 2:
        raise TooFewRuns("needs four converged runs at two learning rates or more")
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
            "lower lr, later best (Spearman)",
            float(np.nan_to_num(p, nan=1.0)),
            effect,
            ci,
            rho < 0,
            against=ci[0] > 0,  # higher rates clearly reach their best later
        )
    ]


def check_user_cell(runs: list[dict], cell: str) -> list[Test]:
    """A compared cell against NPLSTM (same output layers), among the protocol's runs that
    learned: a claim of no difference, like the paper's other ones."""
    need_learned(runs)
    theirs = [r for r in learned(runs) if (parse_compare_sweep(r["sweep"]) or ("", ""))[1] == cell]
    outputs = {r["output"] for r in theirs}
    reference = [
        r for r in learned(paper_runs(runs)) if r["cell"] == "NPLSTM" and r["output"] in outputs
    ]
    return [compare_error(theirs, reference, f"{cell} (learned)", "NPLSTM", "two-sided")]


def user_checks(runs: list[dict], protocol: str) -> list[tuple[Check, str]]:
    """One check (and the sweep it reads) per cell compared on a protocol with `compare`."""
    checks = []
    for name in dict.fromkeys(r["sweep"] for r in runs):
        parsed = parse_compare_sweep(name)
        if parsed is not None and parsed[0] == protocol:
            cell = parsed[1]
            check = Check(
                f"user_{cell}",
                f"(your cell) {cell} matches NPLSTM on the {protocol} protocol "
                "(error ratio within x1.25)",
                "null",
                lambda rs, c=cell: check_user_cell(rs, c),
            )
            checks.append((check, name))
    return checks


# -- from tests to verdicts ---------------------------------------------------------------


def verdict(rule: str, tests: list[Test]) -> tuple[str, str]:
    """The verdict a rule gives once every test has its corrected p-value, and why."""
    if not tests:
        return NO_DATA, "no test could be made"
    decided = [t for t in tests if t.significant and t.supports]
    if rule in ("effect", "scaling"):
        against = [t.label for t in tests if t.against]
        if against:
            return CONTRADICTED, "the interval decides against the claim: " + "; ".join(against)
        if len(decided) == len(tests):
            if rule == "scaling":
                return CONFIRMED, "significant slope, and its interval holds 1"
            return CONFIRMED, f"all {len(tests)} tests significant in the claimed direction"
        return INCONCLUSIVE, (
            f"{len(decided)} of {len(tests)} tests significant in the claimed direction, "
            "none decided against"
        )
    if rule == "not_better":  # contradicted only by a significant improvement
        if decided:
            return CONTRADICTED, "a significant improvement"
        if all(t.ci[0] >= -EQUIVALENCE for t in tests):
            return CONFIRMED, "an improvement beyond x1.25 is ruled out"
        return INCONCLUSIVE, "no significant improvement, but one beyond x1.25 is not ruled out"
    # "null": any real difference contradicts it; equivalence confirms it
    if any(t.significant for t in tests):
        return CONTRADICTED, "a significant difference"
    if all(within_margin(t.ci) for t in tests):
        return CONFIRMED, "no significant difference, and the interval lies within x1.25"
    return INCONCLUSIVE, "no significant difference, but the interval is wider than x1.25"


def evaluate_findings(jobs: Iterable[tuple[Check, str, list[dict]]]) -> list[Finding]:
    """Run each check on its runs (check, sweep, runs), correct all p-values together
    (Holm), give verdicts. A check without runs names the spec to run."""
    findings = []
    for check, sweep, runs in jobs:
        finding = Finding(check.key, check.claim, sweep, check.rule)
        try:
            if not runs:
                raise missing(sweep, f"the finding {check.key!r}", "found 0 finished")
            finding.tests = check.run(runs)
        except MissingData as error:
            finding.note = str(error)
        except TooFewRuns as error:
            finding.note = f"too few runs to test: {error}"
        findings.append(finding)
    every = [t for f in findings for t in f.tests]
    for test, adjusted in zip(every, holm([t.p for t in every]) if every else [], strict=True):
        test.p_adjusted = adjusted
    for finding in findings:
        finding.verdict, reason = verdict(finding.rule, finding.tests)
        details = "; ".join(
            f"{t.label}: {t.effect}; p={t.p:.2g}, Holm-adjusted p={t.p_adjusted:.2g}"
            for t in finding.tests
        )
        finding.evidence = f"{reason}. {details}" if finding.tests else finding.note
    return findings
