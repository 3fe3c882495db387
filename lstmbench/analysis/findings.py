"""The paper's conclusions as checks on runs: each a verdict with its tests and reasons.

What each run came to is one rule, runs.outcome: it learned (best error at most half its
dataset's chance error), did not learn, or diverged. Every claim reads that rule, and every
evidence line counts the outcomes:
- claims that compare groups (outputs, cell types, architectures, a compared cell) count
  every finished run: a run that learned by its log10 best error, a run that did not learn
  or diverged as a failure, tied with the other failures below every error. A group that
  never learns loses to one that does: at the budget of the sweep, that is the result;
- claims about how the error changes with a setting (smoothness, batch size and momentum at
  equal effective learning rate, the best rate per momentum, late slopes, when the best
  comes) need errors that mean something: they read the runs that learned, and with too few
  of those they stay inconclusive.

Errors are compared on a log10 scale, so a shift is a ratio of errors. A difference is a
two-sided Mann-Whitney test, its direction the side of the same U statistic (Cliff's delta).
A claim about one setting compares runs within the other settings its experiment crosses it
with (cell types within each output layer, outputs within each cell type, architectures
within each hidden size: van Elteren's stratified test, see strata_of), so an output layer
on which nothing learns does not blur a comparison of cell types.
An equivalence is two one-sided shifted Mann-Whitney tests (TOST) within EQUIVALENCE (x1.25
either way); for batch size and momentum, which are drawn from ranges, the slope of the error
along the setting within EQUIVALENCE per tenfold (setting_slope); for the 1/(1-momentum)
scaling, the slope within SLOPE_MARGIN of 1. Each claim
is one family: its p-values, equivalence tests among them, are corrected together by
Holm-Bonferroni, a comparison's difference and margin tests counted once (their null
hypotheses cannot both be true: stats.holm). The claims are the paper's separate
questions, each decided on its own experiment's runs, so a claim's verdict does not depend
on how many other claims a report happens to hold (a `compare` report with one claim and
the full reproduction with thirteen decide the same runs the same way).

A significant test decides for or against its claim (Test.decides). Every finding ends in
one of four verdicts:
- confirmed: in every comparison a test decides for the claim, and none against;
- contradicted: a test decides against it;
- inconclusive: runs finished, but nothing is decided, or too few learned to measure;
- no data: too few finished runs to test.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from lstmbench.analysis.runs import (
    LEARNED,
    MissingData,
    TooFewRuns,
    architecture_label,
    learned,
    missing,
    outcome,
    outcome_text,
    paper_runs,
    parse_compare_sweep,
)
from lstmbench.analysis.stats import (
    Strata,
    best_values_by_group,
    bootstrap_ci,
    censored_kendall,
    compare_groups,
    group_values,
    hodges_lehmann,
    holm,
    jackknife_ci,
    permutation_p,
    stratified_resample,
    tail_share,
)

ALPHA = 0.05
EQUIVALENCE = math.log10(1.25)  # margin of a ratio of errors, on the log10 scale
SLOPE_MARGIN = 0.5  # margin of the log-log slope of best lr on (1 - momentum) around 1
MIN_GROUP = 3
ERROR_FLOOR = 1e-4
FAILED = math.inf  # the score of a run that did not learn or diverged: worse than any error

# The settings claims are compared within (strata_of), in words.
SETTING_WORDS = {"output": "output layer", "cell": "cell type", "hidden": "hidden size"}

CONFIRMED, CONTRADICTED = "confirmed", "contradicted"
INCONCLUSIVE, NO_DATA = "inconclusive", "no data"
VERDICTS = (CONFIRMED, CONTRADICTED, INCONCLUSIVE, NO_DATA)
# A comparison makes no claim (rule COMPARE, `compare --cell X --budget`): it asks which of
# two groups has the lower error, or whether they are alike within the margin.
COMPARE = "compare"
BETTER, WORSE, ALIKE = "better", "worse", "equivalent"
DECIDED = (CONFIRMED, CONTRADICTED, BETTER, WORSE, ALIKE)  # no more runs can change these
DIFFERENCE, EQUIVALENT = "difference", "equivalence"
TWO_SIDED, ONE_SIDED, TOST = "two-sided", "one-sided", "two one-sided tests"


class FewLearned(TooFewRuns):
    """Runs finished, but too few learned to measure what a claim is about."""


@dataclass(frozen=True)
class Projection:
    """A test that is not a comparison of two groups, as analysis/power.py sizes it: how far
    its estimate lies from the bound past which the test would decide, the estimate's
    standard error, and the runs behind it (those that learned, of all finished)."""

    estimate: str  # the estimate in words
    distance: float  # <= 0: the estimate sits at or beyond the bound, more runs do not help
    se: float
    learned: int
    finished: int


@dataclass
class Test:
    """One statistical test inside a finding."""

    label: str
    p: float
    sides: str  # how p was computed (TWO_SIDED, ONE_SIDED, TOST): printed beside every p
    effect: str  # the effect and its size, in words
    shows: str  # what the test shows when significant, in words (a difference: which way)
    kind: str = DIFFERENCE  # or EQUIVALENT: significant means within the margin
    toward: bool = True  # a difference lies the way the claim says (unused for null claims)
    pair: str = ""  # the comparison it belongs to (tests of one pair decide it together)
    p_adjusted: float = float("nan")
    # The two groups' values (log errors, FAILED for failures) where the test compares two
    # groups: analysis/power.py sizes further runs from them.
    values: tuple[np.ndarray, np.ndarray] | None = None
    strata: Strata | None = None  # the strata the values were compared within, if any
    # The two groups of runs compared, where the test compares runs: a budget gives more runs
    # to the groups of the comparisons still open (cli/budget.py).
    runs: tuple[list[dict], list[dict]] | None = None
    projection: Projection | None = None  # where it is not a two-group comparison

    @property
    def comparison(self) -> str:
        """What the test compares: tests of one comparison decide it together, and their null
        hypotheses cannot both be true (see stats.holm)."""
        return self.pair or self.label

    @property
    def significant(self) -> bool:
        """Significant after the family-wise correction."""
        return self.p_adjusted < ALPHA

    def decides(self, rule: str) -> str | None:
        """CONFIRMED or CONTRADICTED: what this test says of a claim under `rule` (see
        paper.Claim), or None while it is not significant."""
        if not self.significant:
            return None
        if self.kind == EQUIVALENT:  # alike within the margin, where a difference is claimed
            return CONTRADICTED if rule == "effect" else CONFIRMED
        if rule == "null":  # any difference, either way
            return CONTRADICTED
        return CONFIRMED if self.toward else CONTRADICTED


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
    rule: str  # "effect", "null", "not_better", or COMPARE (no claim: which way, or alike)
    run: Callable[[list[dict]], list[Test]]


def log_errors(runs: list[dict]) -> np.ndarray:
    """log10 of the runs' best errors (zeros raised to a floor)."""
    return np.log10(np.maximum([r["best_error"] for r in runs], ERROR_FLOOR))


def scores(runs: list[dict]) -> np.ndarray:
    """What groups of runs are ranked by: log10 best error where a run learned, FAILED
    where it did not learn or diverged (all failures tie, below every error)."""
    return np.array([log_errors([r])[0] if outcome(r) == LEARNED else FAILED for r in runs])


def learned_runs(runs: list[dict], need: int = MIN_GROUP) -> list[dict]:
    """The runs that learned, at least `need` of them; else too few runs (no data), or too
    few that learned (inconclusive: nothing to measure in this budget)."""
    if len(runs) < need:
        raise TooFewRuns(f"{len(runs)} finished runs, need {need}")
    ok = learned(runs)
    if len(ok) < need:
        raise FewLearned(f"{outcome_text(runs)}; need {need} that learned")
    return ok


def group_text(label: str, runs: list[dict]) -> str:
    """A group's outcomes, and the median best error of its runs that learned."""
    ok = learned(runs)
    median = f", median best error {np.median([r['best_error'] for r in ok]):.2%}" if ok else ""
    return f"{label}: {outcome_text(runs)}{median}"


def ratio_text(shift: float) -> str:
    """A shift of log10 errors as a ratio of errors."""
    if math.isfinite(shift):
        return f"{10**shift:.3g}"
    return "without bound: most pairs set a run that failed against one that learned"


def _ratio_among_learned(a: np.ndarray, b: np.ndarray, strata: Strata | None) -> str:
    """Where runs failed, the ratio among the runs that learned as well: over all runs, pairs
    of two failures tie, and with many of them the ratio reads 1 whatever the errors."""
    a, b = np.asarray(a), np.asarray(b)
    finite = [np.isfinite(a), np.isfinite(b)]
    if all(keep.all() for keep in finite) or min(keep.sum() for keep in finite) < 2:
        return ""
    if strata is not None:
        strata = (np.asarray(strata[0])[finite[0]], np.asarray(strata[1])[finite[1]])
    shift = hodges_lehmann(a[finite[0]], b[finite[1]], strata)
    return f" ({ratio_text(shift)} among the runs that learned)" if math.isfinite(shift) else ""


def comparison_tests(
    a: np.ndarray,
    b: np.ndarray,
    label_a: str,
    label_b: str,
    claim: str,
    effect: str,
    strata: Strata | None = None,
    within: str = "",
) -> list[Test]:
    """Two groups of values (log errors, FAILED for failures) compared: a difference test
    and a margin test. `claim`: "lower" (a below b), "alike", or "not lower" (a not below b
    beyond the margin). With `strata` (named by `within`, e.g. "output"), every value is
    compared only with the other group's values of its own stratum (van Elteren)."""
    c = compare_groups(a, b, EQUIVALENCE, one_sided_margin=claim == "not lower", strata=strata)
    pair = f"{label_a} vs {label_b}"
    way = "lower" if c.cliffs_delta < 0 else "higher"
    test = f"van Elteren: Mann-Whitney within {within}" if strata is not None else "Mann-Whitney"
    difference = Test(
        f"{pair}, difference ({test})",
        c.p,
        TWO_SIDED,
        f"{effect}; error ratio (Hodges-Lehmann) {ratio_text(c.shift)}"
        f"{_ratio_among_learned(a, b, strata)}, Cliff's delta {c.cliffs_delta:+.2f}",
        f"{label_a} {way} error than {label_b}",
        toward=c.cliffs_delta < 0 if claim == "lower" else c.cliffs_delta > 0,
        pair=pair,
        values=(a, b),
        strata=strata,
    )
    shifted = (
        f"shifted van Elteren within {within}" if strata is not None else "shifted Mann-Whitney"
    )
    if claim == "not lower":
        label = f"{pair}, {label_a} not lower beyond x1.25 ({shifted})"
        shows, sides = f"{label_a} not lower than {label_b} beyond x1.25", ONE_SIDED
    else:
        label = f"{pair}, equivalence within x1.25 (TOST, {shifted})"
        shows, sides = f"{label_a} within x1.25 of {label_b}", TOST
    margin = Test(
        label,
        c.p_within,
        sides,
        "",
        shows,
        kind=EQUIVALENT,
        pair=pair,
        values=(a, b),
        strata=strata,
    )
    return [difference, margin]


def strata_of(a: list[dict], b: list[dict], keys: Iterable[str]) -> tuple[Strata | None, str]:
    """The settings among `keys` (in order) that two groups of runs are compared within, as
    strata, and their names in words. A setting is used where it varies and every run still
    has runs of the other group with its settings: stratifying never leaves a run out. A
    setting drawn from a range (hidden sizes drawn log-uniformly) rarely repeats, so it is
    not used; one on a grid is."""
    used: list[str] = []
    for key in keys:
        trial = [*used, key]
        if len({r.get(key) for r in a + b}) < 2:
            continue
        settings = [{tuple(r.get(k) for k in trial) for r in group} for group in (a, b)]
        if settings[0] == settings[1]:
            used = trial
    if not used:
        return None, ""

    def labels(group: list[dict]) -> np.ndarray:
        return np.array(["/".join(str(r.get(k)) for k in used) for r in group])

    return (labels(a), labels(b)), " and ".join(SETTING_WORDS.get(k, k) for k in used)


def compare_error(
    a: list[dict],
    b: list[dict],
    label_a: str,
    label_b: str,
    claim: str,
    within: tuple[str, ...] = (),
) -> list[Test]:
    """Two groups of finished runs compared by best error, failures included (see scores);
    within the settings `within` where they can be (see strata_of)."""
    for label, group in ((label_a, a), (label_b, b)):
        if len(group) < MIN_GROUP:
            raise TooFewRuns(f"{label}: {len(group)} finished runs, need {MIN_GROUP}")
    strata, names = strata_of(a, b, within)
    effect = (
        f"{group_text(label_a, a)}; {group_text(label_b, b)}; runs that did not learn or "
        "diverged ranked worst"
    )
    if strata is not None:
        effect += f"; compared within each {names}"
    tests = comparison_tests(scores(a), scores(b), label_a, label_b, claim, effect, strata, names)
    for test in tests:
        test.runs = (a, b)
    return tests


# -- the checks: each takes the finished runs of its experiment --------------------------


def check_smoothness(runs: list[dict]) -> list[Test]:
    """Similar learning rates and hidden sizes give similar errors (Fig. 2): each run's
    nearest neighbour in the plane of both settings against a random order (smoothness)."""
    everything = paper_runs(runs)
    ok = learned_runs(everything, need=6)
    ratio, ci, p = smoothness(ok)
    lrs, sizes = ([r[key] for r in ok] for key in ("lr", "hidden"))
    spread = (
        f"learning rates {min(lrs):.2g} to {max(lrs):.2g}, hidden sizes {min(sizes)} to "
        f"{max(sizes)} ({len(set(sizes))} sizes)"
    )
    return [
        Test(
            "error vs learning rate and hidden size: nearest-neighbour differences vs a random "
            "order (permutation test)",
            p,
            TWO_SIDED,
            f"neighbour/random difference ratio {ratio:.2f} [{ci[0]:.2f}, {ci[1]:.2f}] "
            "(1 = no structure, 0 = perfectly smooth; interval: delete-one jackknife) over the "
            f"{len(ok)} runs that learned, {spread}; {outcome_text(everything)}",
            f"error {'smoother' if ratio < 1 else 'rougher'} than a random order",
            toward=ratio < 1,
            projection=projection(
                f"ratio {ratio:.2f}", abs(1 - ratio), ci, len(ok), len(everything)
            ),
        )
    ]


def projection(
    estimate: str, distance: float, ci: tuple[float, float], learned: int, finished: int
) -> Projection:
    """A Projection whose standard error is read from a normal 95% interval's width."""
    se = (ci[1] - ci[0]) / (2 * stats.norm.ppf(0.975))
    return Projection(estimate, distance, se, learned, finished)


def smoothness(
    runs: list[dict], permutations: int = 2000, seed: int = 0
) -> tuple[float, tuple[float, float], float]:
    """Mean |log error difference| between each run and its nearest other run in the plane
    of log learning rate and log hidden size (each scaled to the span the runs cover), as a
    ratio to the mean over all pairs; its jackknife interval; the two-sided permutation
    p-value (errors shuffled over the runs' places).

    The paper's own reading of Fig. 2: similar learning rates and hidden sizes give similar
    errors. One test over both settings, not one per setting: a setting the error hardly
    depends on (hidden size, over much of the paper's range) is as smooth as can be, yet its
    neighbours differ no less than random pairs, so a test along it alone could never see
    its smoothness. Roughness along either setting still shows: neighbours across a rough
    step differ more than random pairs."""
    y = log_errors(runs)
    places = np.log10([[r["lr"], r["hidden"]] for r in runs])
    span = np.ptp(places, axis=0)
    places = places[:, span > 0] / span[span > 0]  # a setting all runs share says nothing
    distance = np.linalg.norm(places[:, None, :] - places[None, :, :], axis=-1)
    np.fill_diagonal(distance, np.inf)

    def ratio_of(indices: np.ndarray, shuffle: np.random.Generator | None = None) -> float:
        ys = y[indices] if shuffle is None else shuffle.permutation(y[indices])
        nearest = distance[np.ix_(indices, indices)].argmin(axis=1)
        pairs = np.abs(ys[:, None] - ys[None, :])
        baseline = pairs.sum() / (len(ys) * (len(ys) - 1))
        return float(np.abs(ys - ys[nearest]).mean() / baseline) if baseline > 0 else 1.0

    everything = np.arange(len(y))
    observed = ratio_of(everything)
    rng = np.random.default_rng(seed)
    shuffled = np.array([ratio_of(everything, rng) for _ in range(permutations)])
    smooth, rough = tail_share(shuffled <= observed), tail_share(shuffled >= observed)
    # The interval leaves runs out rather than drawing them twice: a bootstrap's doubled run
    # sits beside its copy with no difference at all, and would read as smoothness.
    ci = jackknife_ci(ratio_of, len(y))
    return observed, ci, min(1.0, 2 * min(smooth, rough))


# How the no-effect claims read a setting: the axis its effect is measured along, and that
# axis's unit in words. Batch sizes are drawn log-uniformly; momentum acts through
# 1/(1 - momentum), the number of steps a gradient is averaged over (Fig. 5).
SETTING_AXES = {
    "batch_size": (np.log10, "tenfold batch size"),
    "momentum": (lambda m: -np.log10(1 - np.asarray(m)), "tenfold 1/(1-momentum)"),
}


def setting_slope(
    runs: list[dict], key: str, samples: int = 2000, seed: int = 0
) -> tuple[float, tuple[float, float], float, float]:
    """How log10 error changes along a setting's axis (SETTING_AXES) at equal effective
    learning rate: the coefficient of the axis in one least-squares fit of log10 error on
    it and a quadratic in log10 lr/(1-momentum) (the error's U over the effective rate).
    Returns the slope (log10 error per unit of the axis), its percentile-bootstrap interval,
    and two p-values from the same resamples: the slope differs from 0 (two-sided), and it
    lies within +-EQUIVALENCE (TOST).

    The setting is read as the number it is, not split at its median: a split throws away
    where in each half a run lies, and with it much of the power to see an effect or rule
    one out. Resampled: the runs, with replacement, the whole fit done again on each
    resample (so the effective-rate adjustment's own uncertainty is in the interval)."""
    axis, _ = SETTING_AXES[key]
    x = np.asarray(axis(np.array([r[key] for r in runs], dtype=float)), dtype=float)
    effective = np.log10([r["lr"] / (1 - r["momentum"]) for r in runs])
    y = log_errors(runs)
    degree = min(2, len(np.unique(effective)) - 1)

    def slope(indices: np.ndarray) -> float:
        if np.ptp(x[indices]) == 0:
            return float("nan")  # a resample with one value of the setting says nothing
        design = np.column_stack([effective[indices] ** k for k in range(degree + 1)])
        design = np.column_stack([design, x[indices]])
        return float(np.linalg.lstsq(design, y[indices], rcond=None)[0][-1])

    rng = np.random.default_rng(seed)
    boot = np.array([slope(rng.integers(0, len(y), len(y))) for _ in range(samples)])
    boot = boot[np.isfinite(boot)]
    ci = tuple(float(v) for v in np.percentile(boot, [2.5, 97.5]))
    differs = min(1.0, 2 * min(tail_share(boot <= 0), tail_share(boot >= 0)))
    within = max(tail_share(boot <= -EQUIVALENCE), tail_share(boot >= EQUIVALENCE))
    return slope(np.arange(len(y))), ci, differs, within


def check_no_effect(runs: list[dict], key: str, name: str) -> list[Test]:
    """Errors, at equal effective learning rate, do not change with a setting (setting_slope).
    Only a measured error can be adjusted, so the slope is read from the runs that learned;
    the outcomes of the runs below and above the setting's median are reported beside."""
    everything = paper_runs(runs)
    ok = learned_runs(everything)
    values = [r[key] for r in everything]
    cut = float(np.median(values))
    below = [r for r in everything if r[key] <= cut]
    above = [r for r in everything if r[key] > cut]
    outcomes = (
        f"{group_text(f'{name} <= {cut:.3g}', below)}; {group_text(f'{name} > {cut:.3g}', above)}"
    )
    if len(ok) < 2 * MIN_GROUP or len({r[key] for r in ok}) < 2:
        raise FewLearned(
            f"{outcomes}; need {2 * MIN_GROUP} runs that learned, at more than one {name}"
        )
    slope, ci, differs, within = setting_slope(ok, key)
    _, unit = SETTING_AXES[key]
    ratio = f"x{10**slope:.2f} [{10 ** ci[0]:.2f}, {10 ** ci[1]:.2f}]"
    effect = (
        f"error {ratio} per {unit} at equal lr/(1-momentum), over the {len(ok)} runs that "
        f"learned (log10 slope {slope:+.3f}; resampled: those runs); {outcomes}"
    )
    estimate, counts = f"x{10**slope:.2f} per {unit}", (len(ok), len(everything))
    return [
        Test(
            f"error vs {name}, slope at equal lr/(1-momentum) (bootstrap)",
            differs,
            TWO_SIDED,
            effect,
            f"error {'rises' if slope > 0 else 'falls'} with {name}",
            pair=name,
            projection=projection(estimate, abs(slope), ci, *counts),
        ),
        Test(
            f"error vs {name}, within x{10**EQUIVALENCE:.2f} per {unit} (TOST, bootstrap)",
            within,
            TOST,
            "",
            f"error within x{10**EQUIVALENCE:.2f} per {unit}",
            kind=EQUIVALENT,
            pair=name,
            projection=projection(estimate, EQUIVALENCE - abs(slope), ci, *counts),
        ),
    ]


def momentum_scaling(
    runs: list[dict], samples: int = 2000, seed: int = 0
) -> tuple[float, tuple[float, float], float, float]:
    """Slope of log10 best lr on log10(1 - momentum) over momentum bins, its bootstrap
    interval, and two p-values: the slope differs from 1 (two-sided), and it lies within
    1 +- SLOPE_MARGIN (TOST).

    Resampled: the runs, with replacement, within each momentum bin, so each bin keeps its
    size; bins are fixed once, from all the runs. Each resample's best rates come from its
    own best fifth per bin. The p-values are percentile-bootstrap ones: the share of
    resampled slopes beyond each bound."""
    bins = group_values([r["momentum"] for r in runs])
    log_lr = np.log10([r["lr"] for r in runs])
    errors = np.array([r["best_error"] for r in runs])

    def slope(indices: np.ndarray) -> float:
        best = best_values_by_group(bins[indices], log_lr[indices], errors[indices])
        momenta = np.array(sorted(best))
        return float(np.polyfit(np.log10(1 - momenta), [best[m] for m in momenta], 1)[0])

    rng = np.random.default_rng(seed)
    boot = np.array([slope(stratified_resample(bins, rng)) for _ in range(samples)])
    ci = tuple(float(v) for v in np.percentile(boot, [2.5, 97.5]))
    differs = min(1.0, 2 * min(tail_share(boot <= 1), tail_share(boot >= 1)))
    within = max(tail_share(boot <= 1 - SLOPE_MARGIN), tail_share(boot >= 1 + SLOPE_MARGIN))
    return slope(np.arange(len(runs))), ci, differs, within


def check_momentum_scaling(runs: list[dict]) -> list[Test]:
    """The best learning rate falls in proportion to (1 - momentum): log-log slope 1."""
    everything = paper_runs(runs)
    ok = learned_runs(everything)
    bins = len(np.unique(group_values([r["momentum"] for r in ok])))
    if bins < 3:
        raise FewLearned(
            f"runs that learned at {bins} momenta (or momentum bins), need 3; "
            f"{outcome_text(everything)}"
        )
    slope, ci, differs, within = momentum_scaling(ok)
    effect = (
        f"slope {slope:.2f} [{ci[0]:.2f}, {ci[1]:.2f}] over {bins} momentum bins "
        "(1/(1-momentum) scaling: slope 1; resampled: the runs that learned, within each bin); "
        f"{outcome_text(everything)}"
    )
    estimate, counts = f"slope {slope:.2f}", (len(ok), len(everything))
    return [
        Test(
            "slope of log best lr on log(1 - momentum) differs from 1 (bootstrap)",
            differs,
            TWO_SIDED,
            effect,
            f"slope {'below' if slope < 1 else 'above'} 1",
            pair="slope",
            projection=projection(estimate, abs(slope - 1), ci, *counts),
        ),
        Test(
            f"slope within 1 +- {SLOPE_MARGIN:g} (TOST, bootstrap)",
            within,
            TOST,
            "",
            f"slope within 1 +- {SLOPE_MARGIN:g}",
            kind=EQUIVALENT,
            pair="slope",
            projection=projection(estimate, SLOPE_MARGIN - abs(slope - 1), ci, *counts),
        ),
    ]


def by_field(runs: list[dict], **values) -> list[dict]:
    """The runs whose fields have all the given values (a value may be a tuple of options)."""
    chosen = []
    for run in runs:
        if all(run[k] in (v if isinstance(v, tuple) else (v,)) for k, v in values.items()):
            chosen.append(run)
    return chosen


def compare_values(
    runs: list[dict],
    setting: str,
    values: tuple[str, str],
    claim: str,
    within: tuple[str, ...],
    labels: tuple[str, str] | None = None,
) -> list[Test]:
    """The paper's runs with one value of a setting against those with another (compare_error),
    labelled by the values or by `labels`."""
    runs = paper_runs(runs)
    a, b = (by_field(runs, **{setting: value}) for value in values)
    return compare_error(a, b, *(labels or values), claim, within=within)


def check_output(runs: list[dict], claim: str) -> list[Test]:
    """Softmax vs logistic outputs, over every learning rate of a sweep, within each type."""
    return compare_values(runs, "output", ("softmax", "logistic"), claim, within=("cell",))


def check_batch_effect(runs: list[dict]) -> list[Test]:
    """Batch size, at equal effective learning rate, does not change the error."""
    return check_no_effect(runs, "batch_size", "batch size")


def check_momentum_effect(runs: list[dict]) -> list[Test]:
    """Momentum, at equal effective learning rate, does not change the error."""
    return check_no_effect(runs, "momentum", "momentum")


def check_output_alike(runs: list[dict]) -> list[Test]:
    """Softmax and logistic outputs reach the same error."""
    return check_output(runs, "alike")


def check_softmax_better(runs: list[dict]) -> list[Test]:
    """Softmax outputs reach a lower error than logistic ones."""
    return check_output(runs, "lower")


def check_peepholes(runs: list[dict]) -> list[Test]:
    """LSTM (peepholes) vs NPLSTM: peepholes do not lower the error beyond x1.25."""
    return compare_values(runs, "cell", ("LSTM", "NPLSTM"), "not lower", within=("output",))


def check_standard_nonlinearities(runs: list[dict]) -> list[Test]:
    """Standard tanh types (LSTM, NPLSTM) against each linear or ReLU type: a type with too
    few runs leaves the claim untested (no data), it is not left out."""
    runs = paper_runs(runs)
    standard = by_field(runs, cell=("LSTM", "NPLSTM"))
    others = sorted({r["cell"] for r in runs} - {"LSTM", "NPLSTM"})
    if not others:
        raise TooFewRuns("no linear or ReLU types in the sweep")
    return [
        test
        for cell in others
        for test in compare_error(
            standard, by_field(runs, cell=cell), "LSTM/NPLSTM", cell, "lower", within=("output",)
        )
    ]


def check_bidi_ctc(runs: list[dict]) -> list[Test]:
    """BIDI with CTC against every other architecture/target condition on MNIST."""
    runs = paper_runs(runs)
    best = [r for r in runs if architecture_label(r) == "BIDI ctc"]
    labels = sorted({architecture_label(r) for r in runs} - {"BIDI ctc"})
    if not labels:
        raise TooFewRuns("no architecture/target condition besides BIDI ctc")
    return [
        test
        for label in labels
        for test in compare_error(
            best,
            [r for r in runs if architecture_label(r) == label],
            "BIDI ctc",
            label,
            "lower",
            within=("hidden",),
        )
    ]


def check_bidi_lines(runs: list[dict]) -> list[Test]:
    """BIDI against LSTM1 on text lines, within each hidden size."""
    return compare_values(
        runs, "direction", ("bidi", "uni"), "lower", within=("hidden",), labels=("BIDI", "LSTM1")
    )


def finite_points(curve: list[dict]) -> list[dict]:
    """The evaluations of a curve that measured an error."""
    return [p for p in curve if p["test_error"] is not None and math.isfinite(p["test_error"])]


def late_slope(curve: list[dict], tail: float = 1 / 3) -> float:
    """Slope of log10 test error on log10 samples over the last part of a curve."""
    points = [p for p in finite_points(curve) if p["samples"] > 0]
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

    One-sided: curves still falling at the end do not contradict the claim, as "eventually"
    lies beyond any run that stopped while it was still improving."""
    everything = paper_runs(runs)
    slopes = np.array([late_slope(r["curve"]) for r in learned_runs(everything)])
    slopes = slopes[np.isfinite(slopes)]
    if len(slopes) < MIN_GROUP:
        raise TooFewRuns(f"{len(slopes)} runs with curves of four points or more")
    p = float(stats.wilcoxon(slopes, alternative="greater").pvalue) if np.any(slopes) else 1.0
    ci = bootstrap_ci(np.median, [slopes])
    rising = float(np.mean(slopes > 0))
    effect = (
        f"median late slope {np.median(slopes):+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}] "
        f"(log error per log sample), {rising:.0%} of {len(slopes)} runs that learned rising; "
        f"{outcome_text(everything)}"
    )
    median = float(np.median(slopes))
    return [
        Test(
            "late slope > 0 (Wilcoxon signed-rank)",
            p,
            ONE_SIDED,
            effect,
            "late error rising",
            projection=projection(
                f"median slope {median:+.3f}", median, ci, len(slopes), len(everything)
            ),
        )
    ]


def still_improving(run: dict) -> bool:
    """Whether a run's best error came at its last evaluation: when it would have turned is
    censored, at its last evaluation or later."""
    points = finite_points(run.get("curve") or [])
    last = max(p["samples"] for p in points) if points else run["samples_seen"]
    return run["best_samples"] >= last


def check_lr_divergence_time(runs: list[dict]) -> list[Test]:
    """Lower learning rates reach their best (and start to diverge) later.

    A run still improving at its last evaluation has not turned yet: its time is censored.
    Kendall's tau counts a pair of runs only where the order of their turns is known."""
    everything = paper_runs(runs)
    ok = learned_runs(everything, need=4)
    if len({r["lr"] for r in ok}) < 2:
        raise FewLearned(f"runs that learned at one learning rate; {outcome_text(everything)}")
    lr = np.log10([r["lr"] for r in ok])
    when = np.log10([max(r["best_samples"], 1) for r in ok])
    turned = np.array([not still_improving(r) for r in ok])
    tau, p, spread = permutation_p(lambda x: censored_kendall(x, when, turned), lr)
    effect = (
        f"Kendall's tau(lr, samples at best error) {tau:+.2f}; {int(np.sum(~turned))} of "
        f"{len(ok)} runs that learned were still improving at their last evaluation "
        f"(censored); {outcome_text(everything)}"
    )
    way = "lower" if tau < 0 else "higher"
    return [
        Test(
            "lower lr, later best (Kendall's tau for censored times, permutation test)",
            p,
            TWO_SIDED,
            effect,
            f"{way} learning rates reach their best later",
            toward=tau < 0,
            # the spread over shuffles: tau's standard error where the rate does not matter
            projection=Projection(f"tau {tau:+.2f}", abs(tau), spread, len(ok), len(everything)),
        )
    ]


def check_user_cell(runs: list[dict], cell: str) -> list[Test]:
    """A compared cell against NPLSTM (same output layers), every finished run counted: a
    claim of no difference, like the paper's other ones."""
    theirs = [r for r in runs if (parse_compare_sweep(r["sweep"]) or ("", ""))[1] == cell]
    outputs = {r["output"] for r in theirs}
    reference = [r for r in paper_runs(runs) if r["cell"] == "NPLSTM" and r["output"] in outputs]
    return compare_error(theirs, reference, cell, "NPLSTM", "alike", within=("output",))


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
    """The verdict once every test has its corrected p-value, and why: contradicted when a
    test decides against the claim, confirmed when every comparison has one deciding for it."""
    if not tests:
        return NO_DATA, "no test could be made"
    if rule == COMPARE:
        return comparison_verdict(tests)
    said = [(t, t.decides(rule)) for t in tests]
    against = [t.shows for t, d in said if d == CONTRADICTED]
    if against:
        return CONTRADICTED, "decided against the claim: " + "; ".join(against)
    pairs = {t.comparison for t in tests}
    decided = [t for t, d in said if d == CONFIRMED]
    if {t.comparison for t in decided} == pairs:
        return CONFIRMED, "decided for the claim: " + "; ".join(t.shows for t in decided)
    count = len({t.comparison for t in decided})
    return INCONCLUSIVE, f"{count} of {len(pairs)} comparisons decided for the claim, none against"


def comparison_verdict(tests: list[Test]) -> tuple[str, str]:
    """BETTER or WORSE when the difference test of a comparison (compare_error with claim
    "lower": `toward` means the first group is lower) is significant, ALIKE when its
    equivalence test is, else INCONCLUSIVE; and why. Both significant: a difference smaller
    than the margin, reported as the difference with the equivalence beside it."""
    difference = next(t for t in tests if t.kind == DIFFERENCE)
    margin = next(t for t in tests if t.kind == EQUIVALENT)
    if difference.significant:
        within = f", though {margin.shows}" if margin.significant else ""
        return (BETTER if difference.toward else WORSE), difference.shows + within
    if margin.significant:
        return ALIKE, margin.shows
    return INCONCLUSIVE, "neither a difference nor equivalence within x1.25 is significant yet"


def undecided_tests(finding: Finding) -> list[Test]:
    """The tests of a finding's comparisons that no test has decided yet."""
    decided = {t.comparison for t in finding.tests if t.decides(finding.rule)}
    return [t for t in finding.tests if t.comparison not in decided]


def evidence_line(test: Test) -> str:
    """A test in words: its label, effect, p-value with its sides, and Holm-adjusted p."""
    effect = f"{test.effect}; " if test.effect else ""
    return (
        f"{test.label}: {effect}p={test.p:.2g} ({test.sides}; Holm-adjusted {test.p_adjusted:.2g})"
    )


def evaluate_findings(
    jobs: Iterable[tuple[Check, str, list[dict]]], unrun: Mapping[str, str] | None = None
) -> list[Finding]:
    """Run each check on its runs (check, sweep, runs), correct each claim's p-values
    together (Holm), give verdicts. A check without runs names the spec to run, or why none
    were made where `unrun` (spec -> why) says."""
    findings = []
    unrun = unrun or {}
    for check, sweep, runs in jobs:
        finding = Finding(check.key, check.claim, sweep, check.rule)
        try:
            if not runs:
                why = unrun.get(sweep, "")
                raise missing(sweep, f"the finding {check.key!r}", "found 0 finished", why)
            finding.tests = check.run(runs)
        except MissingData as error:
            finding.note = str(error)
        except FewLearned as error:
            finding.verdict, finding.note = INCONCLUSIVE, f"too few runs learned: {error}"
        except TooFewRuns as error:
            finding.note = f"too few runs to test: {error}"
        findings.append(finding)
    for finding in findings:
        if not finding.tests:
            finding.evidence = finding.note
            continue
        tests = finding.tests
        adjusted_p = holm([t.p for t in tests], [t.comparison for t in tests])
        for test, adjusted in zip(tests, adjusted_p, strict=True):
            test.p_adjusted = adjusted
        finding.verdict, reason = verdict(finding.rule, finding.tests)
        finding.evidence = f"{reason}. " + "; ".join(evidence_line(t) for t in finding.tests)
    return findings
