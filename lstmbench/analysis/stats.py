"""Statistics across runs: group comparisons, bootstrap intervals, Holm correction, trends."""

from __future__ import annotations

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


def median_difference(a: np.ndarray, b: np.ndarray) -> float:
    """median(a) - median(b)."""
    return float(np.median(a) - np.median(b))


@dataclass
class Comparison:
    """Two groups of runs compared: sizes, medians, effect sizes, interval and p-values.

    `alternative` is as in scipy: "less" asks whether group a is lower than group b.
    """

    label_a: str
    label_b: str
    n_a: int
    n_b: int
    median_a: float
    median_b: float
    difference: float  # median(a) - median(b)
    ci: tuple[float, float]  # bootstrap interval of the difference
    cliffs_delta: float
    p_mannwhitney: float
    p_welch: float
    alternative: str

    @property
    def p(self) -> float:
        """The primary p-value (Mann-Whitney: no normality assumed)."""
        return self.p_mannwhitney

    def summary(self) -> str:
        """One line: medians, difference with its interval, effect size and p-values."""
        low, high = self.ci
        return (
            f"{self.label_a} median {self.median_a:.4g} (n={self.n_a}) vs {self.label_b} "
            f"{self.median_b:.4g} (n={self.n_b}); difference {self.difference:+.4g} "
            f"[{low:+.4g}, {high:+.4g}]; Cliff's delta {self.cliffs_delta:+.2f}; "
            f"Mann-Whitney p={self.p_mannwhitney:.3g}, Welch p={self.p_welch:.3g}"
        )


def compare_groups(
    a: Sequence[float],
    b: Sequence[float],
    label_a: str = "a",
    label_b: str = "b",
    alternative: str = "two-sided",
    seed: int = 0,
) -> Comparison:
    """Compare two groups of per-run values (e.g. best errors) across runs."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"need at least two runs per group, got {len(a)} and {len(b)}")
    p_mw = stats.mannwhitneyu(a, b, alternative=alternative).pvalue
    if np.ptp(np.concatenate([a, b])) == 0:
        p_welch = 1.0
    else:
        p_welch = stats.ttest_ind(a, b, equal_var=False, alternative=alternative).pvalue
    return Comparison(
        label_a=label_a,
        label_b=label_b,
        n_a=len(a),
        n_b=len(b),
        median_a=float(np.median(a)),
        median_b=float(np.median(b)),
        difference=median_difference(a, b),
        ci=bootstrap_ci(median_difference, [a, b], seed=seed),
        cliffs_delta=cliffs_delta(a, b),
        p_mannwhitney=float(p_mw),
        p_welch=float(np.nan_to_num(p_welch, nan=1.0)),
        alternative=alternative,
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
