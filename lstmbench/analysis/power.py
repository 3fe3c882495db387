"""How many more runs would decide a claim that is still open: a power calculation per test.

For each comparison that is not decided yet, each of its tests (a difference and a margin
test: either decides, one for the claim and one against), from the effect observed so far
(normal approximations, power POWER at a two-sided or one-sided level ALPHA / m, where m is
the number of comparisons in the claim's family: Bonferroni, a bound on what its Holm
correction asks, which counts a comparison's difference and margin tests once):
- a difference (two-sided Mann-Whitney, or van Elteren's within strata): the test's own
  statistic, z = (rank sum - its expectation) / its standard deviation, both summed over the
  strata (stats.rank_sums: failures included, ranked worst, and tied as the test ties them),
  grows as sqrt(k) when each group's runs grow k-fold; k is where it reaches z_a/2 + z_b
  (for two groups without ties or strata, Noether's size 2 (z_a/2 + z_b)^2 / (3 delta^2) per
  group, delta Cliff's). Only strata where a group's values vary (stats.INFORMATIVE) grow:
  where nearly every run of both groups failed, more runs of that length fail too;
- an equivalence (TOST) or "not lower" (one-sided) within the margin: the t-test sizes for
  the observed mean difference d and pooled standard deviation s of the log errors of runs
  that learned, n = 2 s^2 (z_a + z_b')^2 / (margin - |d|)^2 (z_b' = z_b/2 for TOST), divided
  by 3/pi, the efficiency of Mann-Whitney against the t-test for normal errors;
- a test of one estimate (smoothness ratio, slope, median late slope, Kendall's tau: a
  findings.Projection): its distance from the bound past which it decides, over its standard
  error (a 95% interval's width / 3.92, or tau's spread over shuffles), the error falling as
  1 / sqrt(runs): n = n_now (z se / distance)^2 runs that learned, in all at the share of
  runs that learned so far.
An effect of zero (or, for a margin, a difference at or beyond it) cannot be decided by more
runs of the same kind: its count is infinite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from lstmbench.analysis.findings import (
    ALPHA,
    DECIDED,
    EQUIVALENCE,
    EQUIVALENT,
    ONE_SIDED,
    TWO_SIDED,
    Finding,
    Projection,
    undecided_tests,
)
from lstmbench.analysis.stats import (
    INFORMATIVE,
    RankSums,
    Strata,
    cliffs_delta,
    informative,
    rank_sums,
    rank_z,
    shared_strata,
)

POWER = 0.8
MW_EFFICIENCY = 3 / math.pi  # Mann-Whitney's asymptotic relative efficiency, normal data
METHOD = (
    f"power {POWER:.0%} at level {ALPHA:g}/m (m: comparisons in the claim, Bonferroni); "
    "differences: the rank test's z from the runs so far, growing as the square root of "
    "the runs in the strata not nearly all failed; margins: normal-theory "
    "TOST / one-sided size from the mean and spread of the log errors of runs that learned, "
    "divided by 3/pi for Mann-Whitney; one estimate (smoothness, slopes, tau): its distance "
    "from deciding over its standard error, which falls as 1/sqrt(runs)"
)


def difference_growth(parts: list[RankSums], z: float) -> float:
    """The factor k by which the runs of the informative strata (stats.INFORMATIVE) must grow,
    the others' staying as they are, for a rank test's |sum of excesses| / sqrt(sum of
    variances) to reach z: each stratum's excess and variance grow k-fold, so with E, V the
    growing strata's and e, v the others', the larger root of (e + kE)^2 = z^2 (v + kV).
    1 where z is reached already; infinite where the growing strata show no difference."""
    grows = [p.untied >= INFORMATIVE for p in parts]
    e = sum(p.excess for p, g in zip(parts, grows, strict=True) if not g)
    v = sum(p.variance for p, g in zip(parts, grows, strict=True) if not g)
    big_e = sum(p.excess for p, g in zip(parts, grows, strict=True) if g)
    big_v = sum(p.variance for p, g in zip(parts, grows, strict=True) if g)
    if abs(e + big_e) >= z * math.sqrt(v + big_v) and v + big_v > 0:
        return 1.0
    if big_e == 0:
        return math.inf
    # big_e^2 k^2 + (2 e big_e - z^2 big_v) k + (e^2 - z^2 v) = 0
    b = 2 * e * big_e - z**2 * big_v
    c = e**2 - z**2 * v
    root = (-b + math.sqrt(max(b * b - 4 * big_e**2 * c, 0.0))) / (2 * big_e**2)
    return max(root, 1.0)


def margin_n(
    difference: float, sd: float, margin: float, alpha: float, tost: bool, power: float = POWER
) -> float:
    """Runs per group for an equivalence (tost) or one-sided non-inferiority test within
    `margin`, at a true mean difference and standard deviation (Mann-Whitney's, by 3/pi).
    One-sided: the claim is a - b > -margin, so `difference` is a - b."""
    room = margin - abs(difference) if tost else margin + difference
    if room <= 0 or not math.isfinite(sd):
        return math.inf
    beta = (1 - power) / 2 if tost else 1 - power
    z = stats.norm.ppf(1 - alpha) + stats.norm.ppf(1 - beta)
    return 2 * sd**2 * z**2 / room**2 / MW_EFFICIENCY


@dataclass
class Need:
    """What one open comparison needs."""

    claim: str
    sweep: str
    test: str
    comparison: str  # tests of one comparison: either decides it
    effect: str
    # finished runs per group compared (in the strata further runs would go to), or in all
    # (a projection), and the runs there the power asked needs
    have: tuple[int, ...]
    needed: tuple[float, ...]
    further: float  # runs still to train (both groups)
    core_hours: float


def runs_needed(findings: list[Finding], seconds_per_run: dict[str, float]) -> list[Need]:
    """For every finding still open (inconclusive, no data), each test of its undecided
    comparisons sized by its observed effect: both ways, since either decides (a difference
    test decides an effect claim for it and a null claim against it, a margin test the other
    way round); core-hours at the sweep's seconds per run (nan where unknown)."""
    needs = []
    for finding in findings:
        if finding.verdict in DECIDED:
            continue
        # each claim is its own Holm family, multiplied by its comparisons (stats.holm)
        alpha = ALPHA / max(len({t.comparison for t in finding.tests}), 1)
        seconds = seconds_per_run.get(finding.sweep, math.nan)
        for test in undecided_tests(finding):
            if test.values is None and test.projection is None:
                continue
            needs.append(_need(finding, test, alpha, seconds))
    return needs


def claim_core_seconds(needs: list[Need]) -> dict[str, float]:
    """Core-seconds of further runs each sized claim needs: the dearest of its open
    comparisons, each at its cheapest test (either of a comparison's tests decides it).
    Infinite where a comparison no count of runs decides; 0 where the time per run is
    unknown (nothing to weigh it by)."""
    cheapest: dict[tuple[str, str], float] = {}
    for need in needs:
        if math.isinf(need.further):
            seconds = math.inf
        else:
            seconds = 0.0 if math.isnan(need.core_hours) else need.core_hours * 3600
        key = (need.claim, need.comparison)
        cheapest[key] = min(cheapest.get(key, math.inf), seconds)
    dearest: dict[str, float] = {}
    for (claim, _), seconds in cheapest.items():
        dearest[claim] = max(dearest.get(claim, 0.0), seconds)
    return dearest


def unsized(findings: list[Finding], needs: list[Need]) -> list[str]:
    """The open findings no power calculation covers, each with why it is open."""
    sized = {need.claim for need in needs}
    return [
        f"{f.key} ({f.verdict}): {f.note or f.evidence}; no test yet to size runs on"
        for f in findings
        if f.verdict not in DECIDED and f.key not in sized
    ]


def mean_difference(a: np.ndarray, b: np.ndarray, strata: Strata | None) -> tuple[float, float]:
    """The mean difference a - b of finite values and their pooled standard deviation; within
    strata where given (each stratum's difference weighted n_a n_b / (n_a + n_b), the spread
    pooled about each stratum's and group's own mean)."""
    difference = weight = squares = freedom = 0.0
    for in_a, in_b in shared_strata(a, b, strata):
        x, y = a[in_a & np.isfinite(a)], b[in_b & np.isfinite(b)]
        if len(x) == 0 or len(y) == 0:
            continue
        w = len(x) * len(y) / (len(x) + len(y))
        difference, weight = difference + w * (x.mean() - y.mean()), weight + w
        squares += ((x - x.mean()) ** 2).sum() + ((y - y.mean()) ** 2).sum()
        freedom += len(x) + len(y) - 2
    if weight == 0 or freedom < 2:
        return math.nan, math.inf
    return float(difference / weight), float(np.sqrt(squares / freedom))


def projected_runs(projection: Projection, alpha: float, sides: str, power: float = POWER) -> float:
    """Runs that learn for a test of an estimate (not a two-group comparison) to decide with
    the power asked, its standard error falling as 1 / sqrt(runs): n (z se / distance)^2,
    z = z_alpha (z_alpha/2 two-sided) + z_power. At or beyond its bound: infinite."""
    if projection.distance <= 0 or not projection.se > 0 or not math.isfinite(projection.se):
        return math.inf
    z = stats.norm.ppf(1 - alpha / 2 if sides == TWO_SIDED else 1 - alpha) + stats.norm.ppf(power)
    return projection.learned * (z * projection.se / projection.distance) ** 2


def _projected_need(finding: Finding, test, alpha: float, seconds: float) -> Need:
    """A projection's runs in all: the runs that learn it needs, at the share of finished
    runs that learned so far."""
    p = test.projection
    learned = projected_runs(p, alpha, test.sides)
    total = learned * p.finished / p.learned if p.learned else math.inf
    further = max(0, math.ceil(total) - p.finished) if math.isfinite(total) else math.inf
    effect = (
        f"{p.estimate}, {p.distance:.3g} from deciding, standard error {p.se:.3g} over "
        f"{p.learned} runs that learned of {p.finished}"
    )
    return Need(
        finding.key,
        finding.sweep,
        test.label,
        test.comparison,
        effect,
        (p.finished,),
        (total,),
        further,
        further * seconds / 3600,
    )


def _need(finding: Finding, test, alpha: float, seconds: float) -> Need:
    if test.values is None:
        return _projected_need(finding, test, alpha, seconds)
    a, b = (np.asarray(v, dtype=float) for v in test.values)
    # Runs in strata where nearly every run failed neither count toward the size nor get
    # more runs (cli/budget.py: compared_groups).
    have = tuple(int(keep.sum()) for keep in informative(a, b, test.strata))
    if test.kind == EQUIVALENT:
        d, sd = mean_difference(a, b, test.strata)
        if math.isfinite(sd):
            effect = f"mean log10 error difference {d:+.3f}, sd {sd:.3f} (margin {EQUIVALENCE:.3f})"
        else:
            effect = (
                f"{np.isfinite(a).sum()} and {np.isfinite(b).sum()} runs learned: too few to "
                "measure an equivalence on; more runs of this length rarely change that, "
                "longer ones may"
            )
        n = margin_n(d, sd, EQUIVALENCE, alpha, tost=test.sides != ONE_SIDED)
        needed = (n, n)
    else:
        parts = rank_sums(a, b, test.strata)
        z_now = rank_z(parts)
        z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(POWER)
        k = difference_growth(parts, z)
        needed = tuple(k * h if math.isfinite(k) else math.inf for h in have)
        effect = f"Cliff's delta {cliffs_delta(a, b, test.strata):+.2f}, z {z_now:+.2f} of {z:.2f}"
    further = sum(
        max(0, math.ceil(n) - h) if math.isfinite(n) else math.inf
        for n, h in zip(needed, have, strict=True)
    )
    return Need(
        finding.key,
        finding.sweep,
        test.label,
        test.comparison,
        effect,
        have,
        needed,
        further,
        further * seconds / 3600,
    )


def format_needs(findings: list[Finding], needs: list[Need]) -> str:
    """What each open claim needs (`needs`: runs_needed of the findings), as lines of text."""
    lines = [f"method: {METHOD}"]
    for need in needs:
        per = (
            "+".join(f"{math.ceil(n)}" for n in need.needed)
            if all(math.isfinite(n) for n in need.needed)
            else "unbounded"
        )
        further = f"{need.further:,.0f}" if math.isfinite(need.further) else "-"
        hours = f"{need.core_hours:.2g}" if math.isfinite(need.core_hours) else "-"
        now = "+".join(str(n) for n in need.have)
        where = "per group" if len(need.have) == 2 else "in all"
        lines.append(
            f"{need.claim}: {need.test}: {need.effect}; runs now {now}, "
            f"needed {per} {where}: {further} more runs, {hours} core-hours"
        )
    lines += unsized(findings, needs)
    if len(lines) == 1:  # no experiment run at all is not every claim decided
        lines.append("every claim is decided" if findings else "no claim was tested")
    return "\n".join(lines)
