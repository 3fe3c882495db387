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


def cliffs_delta(a: Sequence[float], b: Sequence[float]) -> float:
    """P(a > b) - P(a < b) over all pairs: -1 (a always smaller) to +1 (a always larger)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    greater = (a[:, None] > b[None, :]).sum()
    less = (a[:, None] < b[None, :]).sum()
    return float((greater - less) / (len(a) * len(b)))


def hodges_lehmann(a: np.ndarray, b: np.ndarray) -> float:
    """The shift of a from b that Mann-Whitney tests: the median of all differences a - b.

    Values may be +inf (a run that failed ranks above every error); two failures tie."""
    with np.errstate(invalid="ignore"):
        differences = a[:, None] - b[None, :]
    differences[np.isnan(differences)] = 0.0  # inf - inf: two failures tie
    return float(np.median(differences))


def mann_whitney(a, b, alternative: str = "two-sided", shift: float = 0.0) -> float:
    """The Mann-Whitney p-value of a - shift against b (1 where every value ties)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    p = stats.mannwhitneyu(a - shift, b, alternative=alternative).pvalue
    return float(np.nan_to_num(p, nan=1.0))


def equivalence_p(a, b, margin: float) -> float:
    """Two one-sided tests (TOST) that a lies within +-margin of b: the larger p-value of
    "a - b is above -margin" and "a - b is below +margin", each a shifted Mann-Whitney test."""
    return max(mann_whitney(a, b, "greater", -margin), mann_whitney(a, b, "less", margin))


def not_lower_p(a, b, margin: float) -> float:
    """One-sided test that a is not below b by more than margin (non-inferiority)."""
    return mann_whitney(a, b, "greater", -margin)


@dataclass
class Comparison:
    """Two groups of per-run values compared by ranks: one statistic (Mann-Whitney U, as
    Cliff's delta) gives both the p-value and the direction."""

    n_a: int
    n_b: int
    shift: float  # Hodges-Lehmann estimate of a - b
    cliffs_delta: float  # (U - its mean without a difference) / its range: < 0 when a is lower
    p: float  # Mann-Whitney, two-sided
    p_within: float  # a within +-margin of b (TOST), or a not below b - margin (one-sided)


def compare_groups(a, b, margin: float, one_sided_margin: bool = False) -> Comparison:
    """Compare two groups of per-run values (e.g. log errors, +inf for failed runs)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"need at least two runs per group, got {len(a)} and {len(b)}")
    within = not_lower_p if one_sided_margin else equivalence_p
    return Comparison(
        n_a=len(a),
        n_b=len(b),
        shift=hodges_lehmann(a, b),
        cliffs_delta=cliffs_delta(a, b),
        p=mann_whitney(a, b),
        p_within=within(a, b, margin),
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
) -> tuple[float, float]:
    """statistic(values) and its two-sided permutation p-value over shuffles of values."""
    values = np.asarray(values)
    observed = statistic(values)
    rng = np.random.default_rng(seed)
    shuffled = np.array([statistic(rng.permutation(values)) for _ in range(permutations)])
    extreme = np.sum(np.abs(shuffled) >= abs(observed) - 1e-12)
    return observed, float((1 + extreme) / (permutations + 1))


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


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (family-wise error control), in the input order."""
    p = np.asarray(pvalues, dtype=float)
    m = len(p)
    order = np.argsort(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
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
