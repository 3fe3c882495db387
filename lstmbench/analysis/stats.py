"""Statistics across runs: rank comparisons and equivalence, resampling intervals, Holm
correction, censored rank correlation."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

BOOTSTRAP_SAMPLES = 2000
LEVEL = 0.95


def bootstrap_ci(
    statistic: Callable[..., float],
    groups: Sequence[Sequence[float]],
    samples: int = BOOTSTRAP_SAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of statistic(*groups), resampling runs within each group."""
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(g, dtype=float) for g in groups]
    values = np.empty(samples)
    for k in range(samples):
        values[k] = statistic(*(a[rng.integers(0, len(a), len(a))] for a in arrays))
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


# Strata: for each of the two groups, the label of the stratum each of its values belongs to
# (e.g. the output layer of each run). Stratified statistics compare values only with values
# of the other group in the same stratum, so a setting that moves every value of a stratum
# (an output layer on which no run learns) does not blur the comparison.
Strata = tuple[Sequence, Sequence]


def shared_strata(a: np.ndarray, b: np.ndarray, strata: Strata | None):
    """(mask of a, mask of b) for each stratum that can tell the groups apart: both have
    values in it, and they do not all tie. A stratum where every value ties (no run of
    either group learned) gives van Elteren's statistic nothing and its variance nothing, so
    the effect sizes and the power calculation leave it out too, rather than read its pairs
    as "no difference". One stratum holding everything when `strata` is None."""
    if strata is None:
        yield np.ones(len(a), bool), np.ones(len(b), bool)
        return
    labels_a, labels_b = (np.asarray(s) for s in strata)
    for label in sorted(set(labels_a.tolist()) & set(labels_b.tolist()), key=str):
        in_a, in_b = labels_a == label, labels_b == label
        if len(np.unique(np.concatenate([a[in_a], b[in_b]]))) > 1:
            yield in_a, in_b


@dataclass(frozen=True)
class RankSums:
    """One stratum of a rank-sum test of a against b (van Elteren's, or Mann-Whitney's where
    there is one stratum): a's rank sum less its expectation, and its variance, each weighted
    by 1 / (stratum size + 1)."""

    in_a: np.ndarray  # the values of a in the stratum
    in_b: np.ndarray
    excess: float
    variance: float  # under no difference, with the stratum's ties
    # How far the stratum's values vary within the group that varies more: 1 - sum(t^3 - t)
    # / (n^3 - n) over its groups of t tied values (what a group's ties leave of a rank
    # test's variance). Near 0 where nearly every run of both groups failed alike, 1 where
    # no two values of a group tie.
    untied: float


def rank_sums(a, b, strata: Strata | None) -> list[RankSums]:
    """The rank sums of a within each stratum that can tell the groups apart (shared_strata)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    parts = []
    for in_a, in_b in shared_strata(a, b, strata):
        x, y = a[in_a], b[in_b]
        pooled = np.concatenate([x, y])
        n = len(pooled)
        w = 1.0 / (n + 1)
        excess = w * (stats.rankdata(pooled)[: len(x)].sum() - len(x) * (n + 1) / 2)
        variance = w**2 * len(x) * len(y) / 12 * (n + 1) * untied_share(pooled)
        untied = max(untied_share(x), untied_share(y))
        parts.append(RankSums(in_a, in_b, float(excess), float(variance), untied))
    return parts


def untied_share(values: np.ndarray) -> float:
    """1 - sum(t^3 - t) / (n^3 - n) over the groups of t tied values: the share of a rank
    sum's variance that ties leave (1 with no ties, 0 where every value ties)."""
    n = len(values)
    if n < 2:
        return 1.0
    _, ties = np.unique(values, return_counts=True)
    return float(1 - (ties**3 - ties).sum() / (n**3 - n))


# A stratum where each group's ties leave less than this share (in both groups about four
# runs in five or more failed alike) is given no more runs: runs of that length there would
# mostly fail too and tie, adding next to nothing to the test.
INFORMATIVE = 0.5


def informative(a, b, strata: Strata | None) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the values of a and b in the strata where further runs inform a rank test of
    them (RankSums.untied at least INFORMATIVE)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep_a, keep_b = np.zeros(len(a), bool), np.zeros(len(b), bool)
    for part in rank_sums(a, b, strata):
        if part.untied >= INFORMATIVE:
            keep_a |= part.in_a
            keep_b |= part.in_b
    return keep_a, keep_b


def cliffs_delta(a: Sequence[float], b: Sequence[float], strata: Strata | None = None) -> float:
    """P(a > b) - P(a < b) over all pairs: -1 (a always smaller) to +1 (a always larger).

    Stratified: over pairs within a stratum that can tell the groups apart, each stratum
    weighted as van Elteren's test weights it (n_a n_b / (n + 1)), so the sign is the side
    of that test's statistic; 0 where no stratum can."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    total = weight = 0.0
    for in_a, in_b in shared_strata(a, b, strata):
        x, y = a[in_a], b[in_b]
        pairs = len(x) * len(y)
        w = pairs / (len(x) + len(y) + 1) if strata is not None else 1.0
        delta = ((x[:, None] > y[None, :]).sum() - (x[:, None] < y[None, :]).sum()) / pairs
        total, weight = total + w * delta, weight + w
    return float(total / weight) if weight else 0.0


def hodges_lehmann(a: np.ndarray, b: np.ndarray, strata: Strata | None = None) -> float:
    """The shift of a from b that Mann-Whitney tests: the median of all differences a - b
    (stratified: of the differences within the strata that can tell the groups apart; 0
    where none can, as every value ties).

    Values may be +inf (a run that failed ranks above every error); two failures tie."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    parts = []
    for in_a, in_b in shared_strata(a, b, strata):
        with np.errstate(invalid="ignore"):
            differences = a[in_a][:, None] - b[in_b][None, :]
        differences[np.isnan(differences)] = 0.0  # inf - inf: two failures tie
        parts.append(differences.ravel())
    return float(np.median(np.concatenate(parts))) if parts else 0.0


def mann_whitney(a, b, alternative: str = "two-sided", shift: float = 0.0) -> float:
    """The Mann-Whitney p-value of a - shift against b (1 where every value ties)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    p = stats.mannwhitneyu(a - shift, b, alternative=alternative).pvalue
    return float(np.nan_to_num(p, nan=1.0))


def rank_z(parts: list[RankSums]) -> float:
    """The rank test's z: the summed excess of a's rank sums over the root of their summed
    variance (0 where every value ties)."""
    variance = sum(part.variance for part in parts)
    return sum(part.excess for part in parts) / math.sqrt(variance) if variance > 0 else 0.0


def van_elteren(a, b, strata: Strata, alternative: str = "two-sided", shift: float = 0.0) -> float:
    """Van Elteren's stratified Mann-Whitney test of a - shift against b: the rank sums of a
    within each stratum, weighted by 1 / (stratum size + 1), summed (rank_sums); normal
    approximation with the tie correction of each stratum. Strata where only one group has
    values, or every value ties, carry no information and are left out; with none left, p
    is 1."""
    parts = rank_sums(np.asarray(a, dtype=float) - shift, b, strata)
    if sum(part.variance for part in parts) <= 0:
        return 1.0
    z = rank_z(parts)
    if alternative == "greater":
        return float(stats.norm.sf(z))
    if alternative == "less":
        return float(stats.norm.cdf(z))
    return float(min(1.0, 2 * stats.norm.sf(abs(z))))


def rank_p(a, b, alternative: str = "two-sided", shift: float = 0.0, strata=None) -> float:
    """Mann-Whitney's p-value of a - shift against b, or van Elteren's within strata."""
    if strata is None:
        return mann_whitney(a, b, alternative, shift)
    return van_elteren(a, b, strata, alternative, shift)


def equivalence_p(a, b, margin: float, strata: Strata | None = None) -> float:
    """Two one-sided tests (TOST) that a lies within +-margin of b: the larger p-value of
    "a - b is above -margin" and "a - b is below +margin", each a shifted rank test."""
    return max(rank_p(a, b, "greater", -margin, strata), rank_p(a, b, "less", margin, strata))


def not_lower_p(a, b, margin: float, strata: Strata | None = None) -> float:
    """One-sided test that a is not below b by more than margin (non-inferiority)."""
    return rank_p(a, b, "greater", -margin, strata)


@dataclass
class Comparison:
    """Two groups of per-run values compared by ranks: one statistic (Mann-Whitney U, or van
    Elteren's within strata, as Cliff's delta) gives both the p-value and the direction."""

    n_a: int
    n_b: int
    shift: float  # Hodges-Lehmann estimate of a - b
    cliffs_delta: float  # (U - its mean without a difference) / its range: < 0 when a is lower
    p: float  # Mann-Whitney (van Elteren within strata), two-sided
    p_within: float  # a within +-margin of b (TOST), or a not below b - margin (one-sided)


def compare_groups(
    a, b, margin: float, one_sided_margin: bool = False, strata: Strata | None = None
) -> Comparison:
    """Compare two groups of per-run values (e.g. log errors, +inf for failed runs), within
    strata where given."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep_a, keep_b = ~np.isnan(a), ~np.isnan(b)
    a, b = a[keep_a], b[keep_b]
    if strata is not None:
        strata = (np.asarray(strata[0])[keep_a], np.asarray(strata[1])[keep_b])
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"need at least two runs per group, got {len(a)} and {len(b)}")
    within = not_lower_p if one_sided_margin else equivalence_p
    return Comparison(
        n_a=len(a),
        n_b=len(b),
        shift=hodges_lehmann(a, b, strata),
        cliffs_delta=cliffs_delta(a, b, strata),
        p=rank_p(a, b, strata=strata),
        p_within=within(a, b, margin, strata),
    )


def censored_kendall(x, t, event) -> float:
    """Kendall's tau between x and times t, some of them censored (event False: the true
    time is t or later). A pair counts only where the order of its times is known: t_j < t_i
    is known when j's time is an event. +1 concordant, -1 discordant, over all pairs."""
    x, t, event = (np.asarray(v) for v in (x, t, event))
    n = len(x)
    if n < 2:
        return float("nan")
    later = (t[:, None] > t[None, :]) & event[None, :].astype(bool)  # i known later than j
    order = later.astype(int) - later.T.astype(int)
    return float((np.sign(x[:, None] - x[None, :]) * order).sum() / (n * (n - 1)))


def permutation_p(
    statistic: Callable[[np.ndarray], float],
    values: Sequence[float],
    permutations: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """statistic(values), its two-sided permutation p-value over shuffles of values, and the
    standard deviation of the statistic over the shuffles (its spread where nothing holds)."""
    values = np.asarray(values)
    observed = statistic(values)
    rng = np.random.default_rng(seed)
    shuffled = np.array([statistic(rng.permutation(values)) for _ in range(permutations)])
    extreme = np.sum(np.abs(shuffled) >= abs(observed) - 1e-12)
    return observed, float((1 + extreme) / (permutations + 1)), float(np.std(shuffled))


def tail_share(beyond: np.ndarray) -> float:
    """A resampling p-value, (1 + count) / (1 + n), from which of n resamples lie beyond a
    bound (a boolean array)."""
    return float((1 + np.sum(beyond)) / (1 + len(beyond)))


def jackknife_ci(
    statistic: Callable[[np.ndarray], float], n: int, level: float = LEVEL
) -> tuple[float, float]:
    """Normal interval of statistic(indices) from the delete-one jackknife: every subsample
    of n - 1 of the n items, drawn without replacement, so no item is ever doubled."""
    full = statistic(np.arange(n))
    values = np.array([statistic(np.delete(np.arange(n), i)) for i in range(n)])
    values = values[np.isfinite(values)]
    if len(values) < 2 or not math.isfinite(full):
        return float("nan"), float("nan")
    spread = math.sqrt((len(values) - 1) / len(values) * np.sum((values - values.mean()) ** 2))
    z = float(stats.norm.ppf(0.5 + level / 2))
    return full - z * spread, full + z * spread


def stratified_resample(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of a bootstrap resample drawn within each group: each keeps its size."""
    return np.concatenate(
        [rng.choice(np.flatnonzero(groups == g), np.sum(groups == g)) for g in np.unique(groups)]
    )


def holm(pvalues: Sequence[float], pairs: Sequence | None = None) -> list[float]:
    """Holm-Bonferroni adjusted p-values (family-wise error control), in the input order.

    `pairs` (one label per p-value) marks tests whose null hypotheses cannot both be true,
    such as a difference test of two groups (no shift) and their equivalence test (a shift of
    at least the margin): at most one null of a pair is true, so each step multiplies by the
    number of pairs still holding an unrejected test, not of tests (Shaffer's sequentially
    rejective procedure; for this constraint it rejects exactly what closed testing with
    Bonferroni's local tests rejects). Without `pairs`, every test is its own: plain Holm."""
    p = np.asarray(pvalues, dtype=float)
    labels = list(range(len(p))) if pairs is None else list(pairs)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(len(p))
    running = 0.0
    for rank, index in enumerate(order):
        left = len({labels[k] for k in order[rank:]})
        running = max(running, min(1.0, left * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


def best_values_by_group(
    groups: Sequence[float], values: Sequence[float], scores: Sequence[float], top: float = 0.2
) -> dict[float, float]:
    """For each group, the mean of `values` over its best-scoring runs (the top fraction)."""
    groups, values, scores = (np.asarray(v, dtype=float) for v in (groups, values, scores))
    best = {}
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        keep = max(1, int(round(top * len(members))))
        chosen = members[np.argsort(scores[members], kind="stable")[:keep]]
        best[float(group)] = float(np.mean(values[chosen]))
    return best


def group_values(values: Sequence[float], count: int = 5) -> np.ndarray:
    """Values to group runs by: the values themselves when they repeat (a grid), else the
    median of each value's quantile bin (drawn values never repeat)."""
    values = np.asarray(values, dtype=float)
    if len(np.unique(values)) <= len(values) / 3:
        return values
    edges = np.quantile(values, np.linspace(0, 1, count + 1)[1:-1])
    labels = np.digitize(values, edges)
    grouped = np.empty_like(values)
    for label in np.unique(labels):
        grouped[labels == label] = np.median(values[labels == label])
    return grouped
