"""Statistics and the findings logic on constructed data where the answer is known."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest
from scipy import stats

from lstmbench.analysis import findings as F
from lstmbench.analysis import paper
from lstmbench.analysis.importance import importance
from lstmbench.analysis.report import write_report
from lstmbench.analysis.runs import (
    DIVERGED,
    LEARNED,
    NOT_LEARNED,
    outcome,
    outcome_counts,
    pilot_sweep_name,
)
from lstmbench.analysis.stats import (
    bootstrap_ci,
    censored_kendall,
    cliffs_delta,
    compare_groups,
    equivalence_p,
    hodges_lehmann,
    holm,
    informative,
    jackknife_ci,
    mann_whitney,
    not_lower_p,
    permutation_p,
    stratified_resample,
    untied_share,
    van_elteren,
)
from lstmbench.sweep.store import ResultsStore
from lstmbench.training.config import RunConfig
from lstmbench.training.record import RunResult

# -- statistics against slow, obvious references ------------------------------------------


def test_holm_matches_the_textbook_procedure():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone: 0.06
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def closed_testing_p(p: list[float], pairs: list) -> list[float]:
    """Adjusted p-values by closed testing with Bonferroni local tests, over every
    intersection of null hypotheses that can be true together (at most one per pair): a test
    is rejected at level a when every such intersection holding it has min p <= a / size."""
    adjusted = [0.0] * len(p)
    for size in range(1, len(p) + 1):
        for chosen in itertools.combinations(range(len(p)), size):
            if len({pairs[k] for k in chosen}) < size:
                continue  # two nulls of one pair cannot both be true
            local = min(1.0, size * min(p[k] for k in chosen))
            for k in chosen:
                adjusted[k] = max(adjusted[k], local)
    return adjusted


def test_holm_over_pairs_is_closed_testing_of_the_nulls_that_can_be_true_together():
    rng = np.random.default_rng(25)
    for _ in range(300):
        pairs = [k for k in range(int(rng.integers(1, 5))) for _ in range(int(rng.integers(1, 3)))]
        p = rng.uniform(0, 0.2, len(pairs)).tolist()
        assert holm(p, pairs) == pytest.approx(closed_testing_p(p, pairs))
        assert holm(p, list(range(len(p)))) == pytest.approx(holm(p))
    # one comparison's difference and equivalence tests: each at the full level
    assert holm([0.03, 0.4], ["A vs B", "A vs B"]) == pytest.approx([0.03, 0.4])
    assert holm([0.03, 0.4]) == pytest.approx([0.06, 0.4])


def test_cliffs_delta_counts_pairs():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=7), rng.normal(0.5, size=9)
    slow = sum(int(x > y) - int(x < y) for x in a.tolist() for y in b.tolist()) / (len(a) * len(b))
    assert cliffs_delta(a, b) == pytest.approx(slow)
    assert cliffs_delta([2, 3], [0, 1]) == 1.0


def test_bootstrap_interval_covers_the_true_difference_and_narrows_with_data():
    rng = np.random.default_rng(2)
    widths = []
    for n in (20, 400):
        a, b = rng.normal(1.0, 1, n), rng.normal(0.0, 1, n)
        low, high = bootstrap_ci(lambda x, y: np.median(x) - np.median(y), [a, b])
        assert low < 1.0 < high
        widths.append(high - low)
    assert widths[1] < widths[0] / 2


def test_compare_groups_finds_a_shift_and_not_a_null():
    rng = np.random.default_rng(3)
    shifted = compare_groups(rng.normal(0, 1, 40), rng.normal(1.5, 1, 40), 0.1)
    assert shifted.p < 1e-4 and shifted.cliffs_delta < -0.5 and shifted.p_within > 0.5
    assert shifted.shift == pytest.approx(-1.5, abs=0.5)
    same = compare_groups(rng.normal(0, 0.1, 60), rng.normal(0, 0.1, 60), 0.1)
    assert same.p > 0.05 and same.p_within < 0.01


def exact_u_p(a, b, alternative: str) -> float:
    """The permutation p-value of the Mann-Whitney U of a against b, by enumerating every
    split of the pooled values (ties counted half, as in U)."""
    pooled, n = np.concatenate([a, b]), len(a)

    def u(x, y):
        return float(np.sum(x[:, None] > y[None, :]) + 0.5 * np.sum(x[:, None] == y[None, :]))

    observed = u(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    splits = []
    for chosen in itertools.combinations(range(len(pooled)), n):
        mask = np.zeros(len(pooled), bool)
        mask[list(chosen)] = True
        splits.append(u(pooled[mask], pooled[~mask]))
    splits = np.array(splits)
    if alternative == "greater":
        return float(np.mean(splits >= observed - 1e-9))
    return float(np.mean(splits <= observed + 1e-9))


def test_shifted_mann_whitney_and_tost_match_an_exact_permutation_count():
    rng = np.random.default_rng(20)
    a, b = rng.normal(0.05, 0.1, 6), rng.normal(0, 0.1, 7)
    margin = 0.1
    lower = exact_u_p(a + margin, b, "greater")  # a - b above -margin
    upper = exact_u_p(a - margin, b, "less")  # a - b below +margin
    assert not_lower_p(a, b, margin) == pytest.approx(lower, abs=1e-9)
    assert equivalence_p(a, b, margin) == pytest.approx(max(lower, upper), abs=1e-9)
    # with failures (+inf, tied among themselves) scipy's tie-corrected normal approximation
    # stays near the exact count
    a[:2], b[:3] = np.inf, np.inf
    for alternative in ("greater", "less"):
        exact = exact_u_p(a, b, alternative)
        assert mann_whitney(a, b, alternative) == pytest.approx(exact, abs=0.03)


def test_hodges_lehmann_is_the_median_of_pairwise_differences_failures_tying():
    a = np.array([1.0, 2.0, np.inf, np.inf])
    b = np.array([0.5, np.inf, 3.0])
    slow = []
    for x in a:
        for y in b:
            slow.append(0.0 if x == y == np.inf else x - y)
    assert hodges_lehmann(a, b) == float(np.median(slow))
    assert hodges_lehmann(np.array([1.0, 2.0]), np.array([0.0, 0.5])) == 1.25


def exact_van_elteren_p(a, b, strata_a, strata_b, alternative: str) -> float:
    """The permutation p-value of van Elteren's statistic (rank sums of a, each stratum's
    weighted 1 / (n + 1)), by enumerating every split within every stratum at once."""
    splits_by_stratum = []
    for label in sorted(set(strata_a)):
        x, y = a[strata_a == label], b[strata_b == label]
        pooled = np.concatenate([x, y])
        ranks = stats.rankdata(pooled) / (len(pooled) + 1)
        observed_part = ranks[: len(x)].sum()
        parts = [ranks[list(c)].sum() for c in itertools.combinations(range(len(pooled)), len(x))]
        splits_by_stratum.append((observed_part, parts))
    observed = sum(o for o, _ in splits_by_stratum)
    totals = np.array([sum(c) for c in itertools.product(*(p for _, p in splits_by_stratum))])
    if alternative == "greater":
        return float(np.mean(totals >= observed - 1e-9))
    return float(np.mean(totals <= observed + 1e-9))


def test_van_elteren_matches_an_exact_count_of_splits_within_strata():
    rng = np.random.default_rng(21)
    a = np.concatenate([rng.normal(0.4, 1, 6), rng.normal(3.4, 1, 5)])
    b = np.concatenate([rng.normal(0, 1, 6), rng.normal(3, 1, 6)])
    a[[0, 7]], b[[1, 2, 8]] = np.inf, np.inf  # failures, tied among themselves
    strata_a, strata_b = np.repeat(["x", "y"], [6, 5]), np.repeat(["x", "y"], [6, 6])
    for alternative in ("greater", "less"):
        exact = exact_van_elteren_p(a, b, strata_a, strata_b, alternative)
        assert van_elteren(a, b, (strata_a, strata_b), alternative) == pytest.approx(
            exact, abs=0.03
        )


def test_van_elteren_in_one_stratum_is_mann_whitney_and_strata_of_one_group_are_left_out():
    rng = np.random.default_rng(22)
    a, b = rng.normal(0.5, 1, 9), rng.normal(0, 1, 12)
    a[:3], b[:2] = np.inf, np.inf
    one = (np.zeros(9), np.zeros(12))
    for alternative in ("two-sided", "greater", "less"):
        plain = stats.mannwhitneyu(
            a, b, alternative=alternative, method="asymptotic", use_continuity=False
        ).pvalue
        assert van_elteren(a, b, one, alternative) == pytest.approx(plain, rel=1e-9)
    # a stratum only group a has values in holds nothing to compare with
    extra = (np.concatenate([np.zeros(9), np.ones(4)]), np.zeros(12))
    with_extra = np.concatenate([a, rng.normal(-5, 1, 4)])
    assert van_elteren(with_extra, b, extra) == pytest.approx(van_elteren(a, b, one), rel=1e-9)
    assert van_elteren(np.ones(4), np.ones(4), (np.zeros(4), np.zeros(4))) == 1.0  # all tied


def test_stratified_cliffs_delta_and_shift_weigh_pairs_within_strata():
    rng = np.random.default_rng(23)
    # z: a only, w: b only, t: every run of both failed (all tied): left out of both
    a = np.concatenate([rng.normal(0, 1, 12), np.full(3, np.inf)])
    b = np.concatenate([rng.normal(0.3, 1, 9), np.full(4, np.inf)])
    strata_a = np.array(list("xxxxxyyyzzzzttt"))
    strata_b = np.array(list("xxxyyyyywtttt"))
    slow_total = slow_weight = 0.0
    differences = []
    for label in "xy":
        x, y = a[strata_a == label], b[strata_b == label]
        pairs = [(u, v) for u in x for v in y]
        weight = len(pairs) / (len(x) + len(y) + 1)
        slow_total += weight * sum(int(u > v) - int(u < v) for u, v in pairs) / len(pairs)
        slow_weight += weight
        differences += [u - v for u, v in pairs]
    delta = cliffs_delta(a, b, (strata_a, strata_b))
    assert delta == pytest.approx(slow_total / slow_weight)
    assert hodges_lehmann(a, b, (strata_a, strata_b)) == pytest.approx(np.median(differences))
    # the direction is the side of van Elteren's statistic
    below = van_elteren(a, b, (strata_a, strata_b), "less") < 0.5
    assert below == (delta < 0)
    # the tied stratum gives the test nothing either
    informative_only = (strata_a != "t", strata_b != "t")
    assert van_elteren(a, b, (strata_a, strata_b)) == pytest.approx(
        van_elteren(a[informative_only[0]], b[informative_only[1]], (strata_a[:12], strata_b[:9]))
    )
    assert [m.tolist() for m in informative(a, b, (strata_a, strata_b))] == [
        (np.isin(strata_a, ["x", "y"])).tolist(),
        (np.isin(strata_b, ["x", "y"])).tolist(),
    ]


def test_more_runs_go_only_to_strata_where_a_group_s_runs_do_not_nearly_all_fail_alike():
    rng = np.random.default_rng(25)
    inf = np.inf

    def stratum(label: str, learned_a: int, learned_b: int, n: int = 10):
        a = np.concatenate([rng.normal(-1, 0.1, learned_a), np.full(n - learned_a, inf)])
        b = np.concatenate([rng.normal(-1, 0.1, learned_b), np.full(n - learned_b, inf)])
        return a, b, np.full(n, label)

    parts = [
        stratum("all learned", 10, 10),
        stratum("one in ten learned", 1, 1),  # both nearly all failed alike
        stratum("one side learns", 4, 0),  # a's runs vary: more of them would tell
        stratum("none learned", 0, 0),  # every value ties: not even a stratum
    ]
    a, b, labels = (np.concatenate(p) for p in zip(*parts, strict=True))
    keep_a, keep_b = informative(a, b, (labels, labels))
    wanted = np.isin(labels, ["all learned", "one side learns"])
    assert keep_a.tolist() == wanted.tolist() and keep_b.tolist() == wanted.tolist()
    assert untied_share(np.array([inf] * 9 + [0.1])) == pytest.approx(1 - (9**3 - 9) / (10**3 - 10))
    assert untied_share(np.arange(5.0)) == 1.0 and untied_share(np.full(5, inf)) == 0.0


def test_comparing_within_strata_decides_what_pooling_blurs():
    """Half of each group's runs sit in a stratum where every run fails (an output layer that
    never learns): pooled, those ties and the cross-stratum pairs drown a clear difference in
    the other stratum; compared within strata, it is decided."""
    rng = np.random.default_rng(24)
    n = 8
    a = np.concatenate([rng.normal(-1.3, 0.1, n), np.full(n, np.inf)])
    b = np.concatenate([rng.normal(-1.1, 0.1, n), np.full(n, np.inf)])
    strata = (np.repeat(["softmax", "logistic"], n), np.repeat(["softmax", "logistic"], n))
    pooled = compare_groups(a, b, 0.1)
    within = compare_groups(a, b, 0.1, strata=strata)
    assert pooled.p > 0.05 > within.p
    assert within.cliffs_delta < 0 and within.cliffs_delta < pooled.cliffs_delta
    # the stratum where every run failed tells the groups apart no more than it weighs in
    # the test: the effect sizes read the other stratum alone
    alone = compare_groups(a[:n], b[:n], 0.1)
    assert within.cliffs_delta == pytest.approx(alone.cliffs_delta)
    assert within.shift == pytest.approx(alone.shift) and within.shift < 0


def test_runs_are_compared_within_a_setting_only_where_none_is_left_out():
    def runs(cell: str, outputs: list[str], hiddens: list[int]) -> list[dict]:
        return [
            {"cell": cell, "output": o, "hidden": h} for o, h in zip(outputs, hiddens, strict=True)
        ]

    grid = runs("A", ["s", "l"] * 3, [25, 25, 100, 100, 25, 100])
    other = runs("B", ["l", "s"] * 3, [100, 25, 25, 100, 100, 25])
    strata, names = F.strata_of(grid, other, ("output", "hidden"))
    assert names == "output layer and hidden size"
    assert list(strata[0]) == ["s/25", "l/25", "s/100", "l/100", "s/25", "l/100"]
    # drawn hidden sizes never meet the other group's: hidden is not used, output still is
    drawn = runs("B", ["l", "s"] * 3, [31, 47, 58, 77, 90, 41])
    assert F.strata_of(grid, drawn, ("output", "hidden"))[1] == "output layer"
    # an output only one group has, or one value for everybody: no strata at all
    one_sided = runs("B", ["s"] * 6, [25] * 6)
    assert F.strata_of(grid, one_sided, ("output",)) == (None, "")
    assert F.strata_of(one_sided, one_sided, ("output", "hidden")) == (None, "")


def test_with_many_failures_the_ratio_among_runs_that_learned_is_given_too():
    # most runs of both groups failed: over all pairs the ties make the ratio 1, whatever the
    # errors of the runs that learned (a tenth of b's here)
    a = np.array([-2.0, -2.0, np.inf, np.inf, np.inf, np.inf, np.inf, np.inf])
    b = np.array([-1.0, -1.0, np.inf, np.inf, np.inf, np.inf, np.inf, np.inf])
    [difference, _] = F.comparison_tests(a, b, "A", "B", "alike", "effect")
    assert "error ratio (Hodges-Lehmann) 1 (0.1 among the runs that learned)" in difference.effect
    [difference, _] = F.comparison_tests(a[:2], b[:2], "A", "B", "alike", "effect")
    assert "among" not in difference.effect  # no failures: one ratio says it all


def slow_censored_kendall(x, t, event) -> float:
    """Pair by pair: the order of two times is known when the earlier one is an event."""
    total, n = 0, len(x)
    for i in range(n):
        for j in range(n):
            if i == j or t[i] == t[j]:
                continue
            first, second = (i, j) if t[i] < t[j] else (j, i)
            if not event[first]:
                continue  # the earlier time is censored: its true time may come later
            later = 1 if second == i else -1  # +1: i is known later than j
            total += np.sign(x[i] - x[j]) * later
    return total / (n * (n - 1))


def test_censored_kendall_matches_the_pair_by_pair_definition_and_plain_tau():
    rng = np.random.default_rng(21)
    x, t = rng.normal(size=9), rng.normal(size=9)
    event = rng.uniform(size=9) < 0.6
    assert censored_kendall(x, t, event) == pytest.approx(slow_censored_kendall(x, t, event))
    everything = np.ones(9, bool)
    assert censored_kendall(x, t, everything) == pytest.approx(stats.kendalltau(x, t)[0])
    # censored from the start, no order is known
    assert censored_kendall(x, np.full(9, 1.0), np.zeros(9, bool)) == 0.0


def test_permutation_p_matches_every_permutation_counted():
    x, t = np.array([1.0, 2, 3, 4, 5, 6]), np.array([3.0, 1, 2, 6, 4, 5])
    event = np.array([True, True, False, True, True, False])

    def statistic(values):
        return censored_kendall(values, t, event)

    observed = statistic(x)
    every = [
        abs(statistic(np.array(p))) >= abs(observed) - 1e-12 for p in itertools.permutations(x)
    ]
    tau, p, spread = permutation_p(statistic, x, permutations=4000)
    assert tau == observed and p == pytest.approx(np.mean(every), abs=0.02)
    exact_spread = np.std([statistic(np.array(p)) for p in itertools.permutations(x)])
    assert spread == pytest.approx(exact_spread, rel=0.05)


def test_jackknife_interval_of_a_mean_is_the_textbook_interval():
    values = np.random.default_rng(22).normal(3, 2, 25)
    low, high = jackknife_ci(lambda i: float(values[i].mean()), len(values))
    half = 1.959964 * values.std(ddof=1) / np.sqrt(len(values))
    assert (low, high) == pytest.approx((values.mean() - half, values.mean() + half))


def test_stratified_resample_keeps_each_group_and_its_size():
    groups = np.array([0.0, 0.0, 0.5, 0.5, 0.5, 0.9])
    for seed in range(20):
        drawn = stratified_resample(groups, np.random.default_rng(seed))
        assert sorted(groups[drawn]) == sorted(groups)


# -- findings on constructed results --------------------------------------------------------


def add_runs(store: ResultsStore, sweep: str, rows: list[dict]) -> None:
    """Record constructed finished runs: config fields plus best_error (and a curve, a
    status and a reason)."""
    store.ensure_sweep(sweep, {"name": sweep}, "constructed")
    for seed, row in enumerate(rows):
        row = dict(row)
        error = row.pop("best_error")
        curve = row.pop("curve", [{"samples": 100, "test_error": error}])
        status, reason = row.pop("status", "done"), row.pop("reason", "")
        config = RunConfig(seed=seed, **row)
        points = [{"train_loss": 1.0, "wall_time": 1.0, **p} for p in curve]
        result = RunResult(config, status=status, reason=reason, best_error=error)
        result.final_error = error
        result.best_samples = min(points, key=lambda p: p["test_error"])["samples"]
        result.curve, result.samples_seen, result.wall_time = points, curve[-1]["samples"], 1.0
        store.record_result(sweep, result)


def test_each_claim_is_its_own_holm_family():
    """A claim is corrected over its own tests only: another claim's tests in the same
    report do not change its verdict, and two tests of one claim are corrected together."""

    def fixed(*ps: float):
        def run(runs: list[dict]) -> list[F.Test]:
            return [
                F.Test(f"test {i}", p, F.TWO_SIDED, "", "lower", pair=f"pair {i}")
                for i, p in enumerate(ps)
            ]

        return run

    runs = [{"status": "done"}]
    alone = F.Check("alone", "one test", "effect", fixed(0.03))
    pair = F.Check("pair", "two tests", "effect", fixed(0.03, 0.04))
    many = F.Check("many", "three tests", "effect", fixed(0.5, 0.6, 0.7))
    found = F.evaluate_findings([(alone, "s", runs), (pair, "s", runs), (many, "s", runs)])
    by_key = {f.key: f for f in found}
    assert by_key["alone"].tests[0].p_adjusted == pytest.approx(0.03)
    assert by_key["alone"].verdict == F.CONFIRMED  # over all six tests it would be 0.18
    assert [t.p_adjusted for t in by_key["pair"].tests] == pytest.approx([0.06, 0.06])
    assert by_key["pair"].verdict == F.INCONCLUSIVE
    assert [t.p_adjusted for t in by_key["many"].tests] == pytest.approx([1.0, 1.0, 1.0])


def verdict_of(store, key: str) -> F.Finding:
    """The finding of one claim (or compared cell), from the store's runs read as the report
    reads them, tested alone (a Holm family of its own tests)."""
    (finding,) = paper.evaluate(paper.read_experiments(store), [key])
    return finding


@pytest.fixture
def store(tmp_path):
    return ResultsStore(tmp_path / "constructed.db")


def lognormal(rng, median: float, n: int, spread: float = 0.15) -> np.ndarray:
    return median * np.exp(rng.normal(0, spread, n))


def p_values_say_their_sides(evidence: str) -> bool:
    """Every p-value in the evidence is followed by how it was computed."""
    sides = re.findall(r"p=[0-9.e+-]+ \(([a-z -]+);", evidence)
    return len(sides) == evidence.count("p=") > 0 and set(sides) <= {
        F.TWO_SIDED,
        F.ONE_SIDED,
        F.TOST,
    }


# -- what each run came to -------------------------------------------------------------------


def run(error: float, dataset: str = "mnist", status: str = "done", reason: str = "") -> dict:
    return {"best_error": error, "dataset": dataset, "status": status, "reason": reason}


def test_one_rule_says_what_each_run_came_to():
    assert outcome(run(0.44)) == LEARNED  # MNIST: chance 90%, learned at 45% or below
    assert outcome(run(0.46)) == NOT_LEARNED
    assert outcome(run(0.49, "uw3like:tiny")) == LEARNED  # lines: chance 100%
    assert outcome(run(0.51, "uw3like:tiny")) == NOT_LEARNED
    assert outcome(run(float("nan"), status="diverged")) == DIVERGED  # before any evaluation
    assert outcome(run(None, status="diverged")) == DIVERGED
    assert outcome(run(0.9, status="diverged", reason="loss became nan at 300 samples")) == (
        DIVERGED
    )
    stuck = run(0.88, status="diverged", reason="error at chance since 4000 samples")
    assert outcome(stuck) == NOT_LEARNED
    assert outcome(run(0.05, status="diverged", reason="loss became inf")) == LEARNED
    counts = outcome_counts([run(0.1), run(0.8), run(float("nan"), status="diverged")])
    assert counts == {LEARNED: 1, NOT_LEARNED: 1, DIVERGED: 1}


# -- two groups of runs: every claim that compares one group with another -----------------

LINES = {"dataset": "uw3like:tiny"}
# claim key -> (sweep, group A, label A, group B, label B): the paper says A is lower than B
# (effect claims), or that A and B are alike (null claims), or that A is not lower than B
# (not_better).
GROUPS = {
    "softmax_lines": (
        "cell_types_lines",
        ({**LINES, "output": "softmax"}, "softmax"),
        ({**LINES, "output": "logistic"}, "logistic"),
    ),
    "bidi_lines": (
        "bidi_lines",
        ({**LINES, "direction": "bidi"}, "BIDI"),
        ({**LINES, "direction": "uni"}, "LSTM1"),
    ),
    "nonlinearities": (
        "cell_types_mnist",
        ({"cell": "LSTM"}, "LSTM/NPLSTM"),
        ({"cell": "LINLSTM"}, "LINLSTM"),
    ),
    "bidi_ctc": (
        "bidi_ctc_mnist",
        ({"direction": "bidi", "target": "ctc"}, "BIDI ctc"),
        ({"direction": "uni", "target": "ctc"}, "LSTM1 ctc"),
    ),
    "output_mnist": (
        "cell_types_mnist",
        ({"output": "softmax"}, "softmax"),
        ({"output": "logistic"}, "logistic"),
    ),
    "peepholes_mnist": (
        "cell_types_mnist",
        ({"cell": "LSTM"}, "LSTM"),
        ({"cell": "NPLSTM"}, "NPLSTM"),
    ),
    "peepholes_lines": (
        "cell_types_lines",
        ({**LINES, "cell": "LSTM"}, "LSTM"),
        ({**LINES, "cell": "NPLSTM"}, "NPLSTM"),
    ),
}
NEVER = {"best_error": 1.0}  # at chance on either dataset
BLEW_UP = {"best_error": float("nan"), "status": "diverged", "reason": "loss became nan"}
# scenario -> (group A, group B, runs per group): a group is (median, spread), or the fields
# of a run that failed
SCENARIOS = {
    "A lower": ((0.05, 0.3), (0.2, 0.3), 20),
    "A higher": ((0.2, 0.3), (0.05, 0.3), 20),
    "alike": ((0.05, 0.05), (0.05, 0.05), 60),  # alike, and enough runs to show it
    "unclear": ((0.05, 0.6), (0.06, 0.6), 4),  # few noisy runs: nothing decided
    "at chance": (NEVER, NEVER, 20),  # no run learned: a result, but it decides nothing
    "B never learned": ((0.05, 0.3), NEVER, 12),
    "A never learned": (NEVER, (0.05, 0.3), 12),
    "B diverged": ((0.05, 0.3), BLEW_UP, 12),  # no error measured: kept, ranked as failed
    "too few": ((0.05, 0.3), (0.2, 0.3), 2),
}
C, X, I, N = F.CONFIRMED, F.CONTRADICTED, F.INCONCLUSIVE, F.NO_DATA
EXPECTED = {  # per rule, the verdict of each scenario, in the order of SCENARIOS
    "effect": (C, X, X, I, I, C, X, C, N),  # equivalence where a difference is claimed: X
    "null": (X, X, C, I, I, X, X, X, N),
    "not_better": (X, C, C, I, I, X, C, X, N),
}
# scenario -> which way group A lies, where a difference decides
WAY = {
    "A lower": "lower",
    "A higher": "higher",
    "B never learned": "lower",
    "A never learned": "higher",
    "B diverged": "lower",
}


def group_rows(rng, fields: dict, group, n: int) -> list[dict]:
    if isinstance(group, dict):
        return [{**fields, **group} for _ in range(n)]
    median, spread = group
    return [{**fields, "best_error": min(e, 1.0)} for e in lognormal(rng, median, n, spread)]


def two_groups(rng, a: dict, b: dict, scenario: str) -> list[dict]:
    group_a, group_b, n = SCENARIOS[scenario]
    return group_rows(rng, a, group_a, n) + group_rows(rng, b, group_b, n)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("key", list(GROUPS))
def test_two_group_claims_give_each_verdict(store, key, scenario):
    sweep, (a, label_a), (b, label_b) = GROUPS[key]
    add_runs(store, sweep, two_groups(np.random.default_rng(4), a, b, scenario))
    (claim,) = [c for e in paper.EXPERIMENTS for c in e.claims if c.key == key]
    finding = verdict_of(store, key)
    expected = EXPECTED[claim.rule][list(SCENARIOS).index(scenario)]
    assert finding.verdict == expected, finding.evidence
    if expected == F.NO_DATA:
        assert "too few runs" in finding.evidence and "Holm" not in finding.evidence
        return
    assert p_values_say_their_sides(finding.evidence), finding.evidence
    assert "learned" in finding.evidence and "diverged" in finding.evidence  # the outcomes
    if scenario in WAY and expected != F.INCONCLUSIVE:
        assert f"{label_a} {WAY[scenario]} error than {label_b}" in finding.evidence


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_a_compared_cell_is_judged_like_a_claim_of_no_difference(store, scenario):
    rows = two_groups(np.random.default_rng(4), {"cell": "GRU"}, {"cell": "NPLSTM"}, scenario)
    add_runs(store, "cell_types_mnist", [r for r in rows if r["cell"] == "NPLSTM"])
    add_runs(store, "compare-cell_types_mnist-GRU", [r for r in rows if r["cell"] == "GRU"])
    finding = verdict_of(store, "user_GRU")
    assert finding.sweep == "compare-cell_types_mnist-GRU"
    assert finding.verdict == EXPECTED["null"][list(SCENARIOS).index(scenario)], finding.evidence
    if scenario in WAY:
        assert f"GRU {WAY[scenario]} error than NPLSTM" in finding.evidence


def equal_medians() -> tuple[list[float], list[float]]:
    """Two groups with one median (5%) whose ranks differ: the first lies mostly above the
    second (Cliff's delta +0.45), though its median and the second's are the same."""
    above = [0.04 + 0.0009 * k for k in range(10)] + [0.05] + [0.2 + 0.01 * k for k in range(10)]
    below = (
        [0.005 + 0.0005 * k for k in range(10)] + [0.05] + [0.051 + 0.0009 * k for k in range(10)]
    )
    return above, below


@pytest.mark.parametrize("worse", [True, False])
def test_a_compared_cell_takes_its_direction_from_the_test_statistic(store, worse):
    above, below = equal_medians()
    theirs, ours = (above, below) if worse else (below, above)
    add_runs(store, "cell_types_mnist", [{"cell": "NPLSTM", "best_error": e} for e in ours])
    compared = [{"cell": "GRU", "best_error": e} for e in theirs]
    add_runs(store, "compare-cell_types_mnist-GRU", compared)
    finding = verdict_of(store, "user_GRU")
    assert finding.verdict == F.CONTRADICTED, finding.evidence
    way = "higher" if worse else "lower"
    assert finding.evidence.startswith(f"decided against the claim: GRU {way} error than NPLSTM")
    assert f"Cliff's delta {'+' if worse else '-'}0.45" in finding.evidence
    assert finding.evidence.count("median best error 5.00%") == 2


def test_a_type_with_too_few_runs_leaves_the_nonlinearity_claim_untested(store):
    rng = np.random.default_rng(5)
    rows = [{"cell": "LSTM", "best_error": e} for e in lognormal(rng, 0.05, 20)]
    rows += [{"cell": "LINLSTM", "best_error": e} for e in lognormal(rng, 0.3, 20)]
    rows += [{"cell": "RELU2LSTM", "best_error": e} for e in lognormal(rng, 0.3, 2)]
    add_runs(store, "cell_types_mnist", rows)
    finding = verdict_of(store, "nonlinearities")
    assert finding.verdict == F.NO_DATA and "RELU2LSTM: 2 finished runs" in finding.evidence


def test_nonlinearities_one_type_better_one_worse_is_contradicted(store):
    rng = np.random.default_rng(5)
    rows = [{"cell": "NPLSTM", "best_error": e} for e in lognormal(rng, 0.05, 20)]
    rows += [{"cell": "LINLSTM", "best_error": e} for e in lognormal(rng, 0.3, 20)]
    rows += [{"cell": "RELU2LSTM", "best_error": e} for e in lognormal(rng, 0.01, 20)]
    add_runs(store, "cell_types_mnist", rows)
    finding = verdict_of(store, "nonlinearities")
    assert finding.verdict == F.CONTRADICTED, finding.evidence
    assert "decided against the claim: LSTM/NPLSTM higher error than RELU2LSTM" in finding.evidence


def test_peepholes_are_compared_within_each_output_layer(store):
    """Logistic runs never learn (as at short budgets on MNIST): compared within each output
    layer, LSTM's lower error among the softmax runs decides the claim against; pooled over
    both layers, the tied failures and the pairs across layers leave it open."""
    rng = np.random.default_rng(6)
    rows = []
    for cell, median in (("LSTM", 0.03), ("NPLSTM", 0.045)):
        rows += [
            {"cell": cell, "output": "softmax", "best_error": e}
            for e in lognormal(rng, median, 8, 0.2)
        ]
        rows += [{"cell": cell, "output": "logistic", **NEVER} for _ in range(8)]
    add_runs(store, "cell_types_mnist", rows)
    finding = verdict_of(store, "peepholes_mnist")
    assert finding.verdict == F.CONTRADICTED, finding.evidence
    assert "LSTM lower error than NPLSTM" in finding.evidence
    assert "compared within each output layer" in finding.evidence
    assert "(van Elteren: Mann-Whitney within output layer)" in finding.evidence
    runs = paper.read_experiments(store)["cell_types_mnist"]
    lstm, nplstm = F.by_field(runs, cell="LSTM"), F.by_field(runs, cell="NPLSTM")
    pooled = compare_groups(F.scores(lstm), F.scores(nplstm), F.EQUIVALENCE)
    assert pooled.p > 0.05


def test_a_pilot_is_data_only_for_claims_about_how_the_error_changes_with_the_rate(store):
    """lr_hidden's claim reads how the error changes with the rate, and its pilot trains the
    same runs at rates across the range: they count. cell_types_mnist compares types each at
    its best rate: pilot rates far from a type's best would count as its failures."""
    rows = [{"lr": lr, "best_error": 0.05} for lr in (1e-3, 3e-3, 1e-2)]
    add_runs(store, "lr_hidden", rows)
    add_runs(store, pilot_sweep_name("lr_hidden"), rows[:2])
    add_runs(store, "cell_types_mnist", [{"cell": "LSTM", "best_error": 0.05}])
    add_runs(store, pilot_sweep_name("cell_types_mnist"), [{"cell": "LSTM", **NEVER}] * 5)
    data = paper.read_experiments(store)
    assert len(data["lr_hidden"]) == 5
    assert [r["sweep"] for r in data["cell_types_mnist"]] == ["cell_types_mnist"]


def test_verdicts_are_the_four_words():
    assert F.VERDICTS == ("confirmed", "contradicted", "inconclusive", "no data")


# -- batch size, momentum and the 1/(1-momentum) scaling -----------------------------------


def batch_momentum_rows(rng, batch_effect: float, noise: float = 0.05, lrs: int = 8) -> list[dict]:
    """Error depends on log effective lr (a U) and, if batch_effect != 1, on batch size."""
    rows = []
    grid = itertools.product([10, 20, 50, 100], [0.0, 0.5, 0.9], np.logspace(-4, -1, lrs))
    for batch, momentum, lr in grid:
        effective = np.log10(lr / (1 - momentum))
        error = 0.01 * 10 ** (0.3 * (effective + 2) ** 2) * np.exp(rng.normal(0, noise))
        error *= batch_effect if batch >= 50 else 1.0
        rows.append({"batch_size": batch, "momentum": momentum, "lr": lr, "best_error": error})
    return rows


@pytest.mark.parametrize("batch_effect", [1.0, 2.0, 0.5])
def test_no_batch_effect_is_confirmed_only_without_one(store, batch_effect):
    add_runs(store, "batch_momentum", batch_momentum_rows(np.random.default_rng(6), batch_effect))
    batch = verdict_of(store, "batch")
    momentum = verdict_of(store, "momentum")
    assert batch.verdict == (F.CONFIRMED if batch_effect == 1.0 else F.CONTRADICTED)
    if batch_effect != 1.0:
        way = "rises" if batch_effect > 1 else "falls"
        assert f"decided against the claim: error {way} with batch size" in batch.evidence
    assert p_values_say_their_sides(batch.evidence)
    # momentum acts only through lr/(1-m) here; a batch effect only widens its interval
    assert momentum.verdict in (
        (F.CONFIRMED,) if batch_effect == 1.0 else (F.CONFIRMED, F.INCONCLUSIVE)
    )


def graded_rows(rng, per_tenfold: dict, count: int = 80) -> list[dict]:
    """Runs whose log10 error is a U in log10 lr/(1-m) plus `per_tenfold[key]` for each tenfold
    of the setting's axis (batch size; 1/(1-momentum)). Learning rates are drawn without regard
    to momentum, so the effective rate rises with momentum, as in a sweep."""
    rows = []
    for _ in range(count):
        batch = float(10 ** rng.uniform(0.7, 2.3))
        momentum, lr = float(rng.uniform(0, 0.99)), float(10 ** rng.uniform(-4, -2))
        effective = np.log10(lr / (1 - momentum))
        log_error = -2 + 0.3 * (effective + 3) ** 2 + rng.normal(0, 0.02)
        log_error += per_tenfold.get("batch_size", 0) * np.log10(batch)
        log_error -= per_tenfold.get("momentum", 0) * np.log10(1 - momentum)
        rows.append(
            {"batch_size": batch, "momentum": momentum, "lr": lr, "best_error": 10**log_error}
        )
    return rows


def slow_partial_slope(rows: list[dict], key: str) -> float:
    """The setting's coefficient the obvious way: the normal equations of the full fit
    (1, e, e^2, axis) solved by Cramer's rule, one determinant at a time."""
    axis, _ = F.SETTING_AXES[key]
    design, target = [], []
    for r in rows:
        e = math.log10(r["lr"] / (1 - r["momentum"]))
        design.append([1.0, e, e * e, float(axis(r[key]))])
        target.append(math.log10(r["best_error"]))
    gram = [[sum(a[i] * a[j] for a in design) for j in range(4)] for i in range(4)]
    moment = [sum(a[i] * t for a, t in zip(design, target, strict=True)) for i in range(4)]
    replaced = [row[:3] + [m] for row, m in zip(gram, moment, strict=True)]
    return float(np.linalg.det(np.array(replaced)) / np.linalg.det(np.array(gram)))


@pytest.mark.parametrize("key", ["batch_size", "momentum"])
@pytest.mark.parametrize("per_tenfold", [0.0, 0.2, -0.3])
def test_setting_slope_is_the_settings_coefficient_at_equal_effective_rate(key, per_tenfold):
    rows = graded_rows(np.random.default_rng(3), {key: per_tenfold})
    slope, (low, high), differs, within = F.setting_slope(rows, key, samples=400)
    assert slope == pytest.approx(slow_partial_slope(rows, key), abs=1e-9)
    assert slope == pytest.approx(per_tenfold, abs=0.03)
    assert low < slope < high
    if per_tenfold == 0.0:
        assert differs > 0.05 and within < 0.05
    else:
        assert differs < 0.05 and within > 0.05


def test_momentum_acting_only_through_the_effective_rate_is_no_effect(store):
    """The effective rate lr/(1-m) rises with momentum here; read without it (or split at the
    median and compared without adjusting for it), momentum would seem to matter."""
    rows = graded_rows(np.random.default_rng(4), {})
    momentum = np.array([r["momentum"] for r in rows])
    errors = np.log10([r["best_error"] for r in rows])
    assert abs(np.corrcoef(momentum, errors)[0, 1]) > 0.3  # unadjusted, momentum "matters"
    add_runs(store, "batch_momentum", rows)
    finding = verdict_of(store, "momentum")
    assert finding.verdict == F.CONFIRMED, finding.evidence
    assert "per tenfold 1/(1-momentum)" in finding.evidence


def test_a_momentum_effect_contradicts_the_claim(store):
    add_runs(store, "batch_momentum", graded_rows(np.random.default_rng(5), {"momentum": 0.3}))
    finding = verdict_of(store, "momentum")
    assert finding.verdict == F.CONTRADICTED, finding.evidence
    assert "error rises with momentum" in finding.evidence


@pytest.mark.parametrize("key", ["batch", "momentum"])
def test_no_effect_claims_on_noisy_runs_are_inconclusive(store, key):
    rows = batch_momentum_rows(np.random.default_rng(13), 1.0, noise=0.8, lrs=2)
    add_runs(store, "batch_momentum", rows)
    finding = verdict_of(store, key)
    assert finding.verdict == F.INCONCLUSIVE, finding.evidence


@pytest.mark.parametrize("key", ["batch", "momentum", "lr_momentum"])
def test_batch_momentum_claims_without_runs_that_learned_are_inconclusive(store, key):
    rows = [dict(r, best_error=0.9) for r in batch_momentum_rows(np.random.default_rng(6), 1.0)]
    add_runs(store, "batch_momentum", rows)
    finding = verdict_of(store, key)
    assert finding.verdict == F.INCONCLUSIVE and not finding.tests
    assert "too few runs learned: 0 of 96 learned, 96 did not learn" in finding.evidence


@pytest.mark.parametrize("key", ["batch", "momentum", "lr_momentum"])
def test_batch_momentum_claims_with_too_few_runs_have_no_data(store, key):
    add_runs(store, "batch_momentum", batch_momentum_rows(np.random.default_rng(6), 1.0)[:2])
    finding = verdict_of(store, key)
    assert finding.verdict == F.NO_DATA and "too few runs to test" in finding.evidence


def slope_of(finding: F.Finding) -> tuple[float, float, float]:
    """The slope and its interval, read from the evidence."""
    found = re.search(r"slope (-?[0-9.]+) \[(-?[0-9.]+), (-?[0-9.]+)\]", finding.evidence)
    return tuple(float(v) for v in found.groups())


def test_best_lr_scaling_with_momentum(store):
    add_runs(store, "batch_momentum", batch_momentum_rows(np.random.default_rng(7), 1.0))
    finding = verdict_of(store, "lr_momentum")
    assert finding.verdict == F.CONFIRMED, finding.evidence
    assert finding.evidence.startswith("decided for the claim: slope within 1 +- 0.5")
    slope, low, high = slope_of(finding)
    assert slope == pytest.approx(1.0, abs=0.35)
    assert 1 - F.SLOPE_MARGIN < low < high < 1 + F.SLOPE_MARGIN
    assert "resampled: the runs that learned, within each bin" in finding.evidence
    assert p_values_say_their_sides(finding.evidence)


@pytest.mark.parametrize("power, way", [(0.0, "below"), (2.0, "above")])
def test_best_lr_off_the_scaling_contradicts_it(store, power, way):
    """The best rate independent of momentum (slope 0), or falling with its square (2)."""
    rng = np.random.default_rng(8)
    rows = []
    for momentum, lr in itertools.product([0.0, 0.5, 0.9], np.logspace(-5, 0, 16)):
        best = -2 + power * np.log10(1 - momentum)
        for batch in (10, 100):
            error = 0.01 * 10 ** (0.3 * (np.log10(lr) - best) ** 2) * np.exp(rng.normal(0, 0.05))
            rows.append(
                {"batch_size": batch, "momentum": momentum, "lr": lr, "best_error": min(error, 1)}
            )
    add_runs(store, "batch_momentum", rows)
    finding = verdict_of(store, "lr_momentum")
    assert finding.verdict == F.CONTRADICTED, finding.evidence
    assert finding.evidence.startswith(f"decided against the claim: slope {way} 1")
    assert slope_of(finding)[0] == pytest.approx(power, abs=0.35)


def test_best_lr_scaling_on_noisy_runs_is_inconclusive(store):
    """An interval that holds 1 but is wider than the margin decides nothing."""
    rows = batch_momentum_rows(np.random.default_rng(14), 1.0, noise=1.0, lrs=3)
    add_runs(store, "batch_momentum", [r for r in rows if r["batch_size"] == 10])
    finding = verdict_of(store, "lr_momentum")
    assert finding.verdict == F.INCONCLUSIVE, finding.evidence
    _, low, high = slope_of(finding)
    assert low < 1 < high and high - low > 2 * F.SLOPE_MARGIN


# -- smoothness ------------------------------------------------------------------------------


def lr_hidden_rows(rng, shape: str) -> list[dict]:
    """Error over a grid of learning rate x hidden size: smooth in lr (and, for "smooth in
    both", in hidden size), alternating between neighbours ("rough"), random, or at chance."""
    rows = []
    for hidden, (k, lr) in itertools.product([25, 50, 100], enumerate(np.logspace(-4, -1, 12))):
        smooth = 0.01 * 10 ** (0.2 * (np.log10(lr) + 2.5) ** 2)
        error = {
            "smooth in lr": smooth,
            "smooth in both": smooth * (100 / hidden),
            "rough": 0.01 if (k + hidden // 25) % 2 else 0.3,
            "random": rng.uniform(0.01, 0.4),
            "at chance": 0.9,
        }[shape]
        noise = 0.0 if shape == "at chance" else 0.05
        rows.append(
            {"hidden": hidden, "lr": lr, "best_error": error * np.exp(rng.normal(0, noise))}
        )
    return rows


@pytest.mark.parametrize(
    "shape, expected",
    [
        ("smooth in both", F.CONFIRMED),
        ("smooth in lr", F.CONFIRMED),  # no effect of hidden size: flat is smooth too
        ("random", F.INCONCLUSIVE),
        ("rough", F.CONTRADICTED),
        ("at chance", F.INCONCLUSIVE),  # nothing learned: no errors to be smooth or rough
    ],
)
def test_smoothness_verdicts(store, shape, expected):
    add_runs(store, "lr_hidden", lr_hidden_rows(np.random.default_rng(9), shape))
    finding = verdict_of(store, "smooth")
    assert finding.verdict == expected, finding.evidence
    if shape == "rough":
        assert "decided against the claim: error rougher than a random order" in finding.evidence
    if finding.tests:
        assert p_values_say_their_sides(finding.evidence)


def test_a_rough_hidden_size_contradicts_smoothness_beside_a_smooth_learning_rate(store):
    """Error alternating between neighbouring hidden sizes, the same at every learning rate:
    one test over both settings still sees the roughness along one of them."""
    rng = np.random.default_rng(11)
    rows = []
    for k, hidden in enumerate(np.geomspace(25, 400, 12).round().astype(int)):
        for lr in (1e-4, 1e-3, 1e-2):
            error = (0.2 if k % 2 else 0.05) * np.exp(rng.normal(0, 0.05))
            rows.append({"hidden": int(hidden), "lr": lr, "best_error": error})
    ratio, _, p = F.smoothness(rows)
    assert ratio > 1.5 and p < 0.05
    add_runs(store, "lr_hidden", rows)
    finding = verdict_of(store, "smooth")
    assert finding.verdict == F.CONTRADICTED, finding.evidence


def slow_smoothness_ratio(rows: list[dict]) -> float:
    """The neighbour/random ratio the obvious way: loops, each setting scaled to its span."""
    spans = {}
    for key in ("lr", "hidden"):
        logs = [math.log10(r[key]) for r in rows]
        spans[key] = max(logs) - min(logs)
    y = [math.log10(r["best_error"]) for r in rows]
    near = []
    for i, a in enumerate(rows):
        best, nearest = math.inf, None
        for j, b in enumerate(rows):
            if i != j:
                d = math.hypot(
                    *(math.log10(a[k] / b[k]) / spans[k] for k in ("lr", "hidden") if spans[k])
                )
                if d < best:
                    best, nearest = d, j
        near.append(abs(y[i] - y[nearest]))
    pairs = [abs(y[i] - y[j]) for i in range(len(y)) for j in range(len(y)) if i != j]
    return (sum(near) / len(near)) / (sum(pairs) / len(pairs))


@pytest.mark.parametrize("shape", ["smooth in both", "smooth in lr", "random"])
def test_smoothness_ratio_equals_the_slow_reference(shape):
    rng = np.random.default_rng(12)
    rows = lr_hidden_rows(rng, shape)
    rng.shuffle(rows)
    rows = rows[:20]
    ratio, _, _ = F.smoothness(rows, permutations=10)
    assert ratio == pytest.approx(slow_smoothness_ratio(rows), rel=1e-12)


def test_smoothness_on_random_errors_keeps_its_false_alarm_rate():
    """Errors in random order, 200 times: the permutation test says "smoother" or "rougher"
    about 5% of the time, and the interval of the neighbour/random ratio holds 1 (as it holds
    the ratio). A bootstrap drawing runs twice put the interval near [0.5, 0.9]: copies side
    by side differ by nothing, and read as smoothness."""
    alarms, covered = 0, 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        rows = [
            {"hidden": hidden, "lr": lr, "best_error": rng.uniform(0.01, 0.4)}
            for hidden, lr in itertools.product([25, 50, 100], np.logspace(-4, -1, 12))
        ]
        ratio, (low, high), p = F.smoothness(rows, permutations=200)
        assert low < ratio < high
        alarms += p < 0.05
        covered += low < 1 < high
    assert alarms <= 20  # about 10 expected at 5%; 20 is over 3 sd above that
    assert covered >= 180


# -- long runs: the late rise and when it comes -----------------------------------------------


def long_rows(rng, shape: str) -> list[dict]:
    """Curves of ten runs: falling then rising late ("rising"), still falling, or at chance;
    the best comes later for lower rates ("rising"), for higher rates ("later for higher"),
    or anywhere ("random"). "cut short": as "rising", but the five lowest rates stop after
    four evaluations, still improving."""
    rows = []
    samples = np.logspace(2, 6, 12).astype(int)
    for k, lr in enumerate(np.logspace(-4, -2, 10)):
        if shape == "at chance":
            errors = np.ones(len(samples))
        else:
            errors = 0.5 * (samples / 100.0) ** -0.5
            if shape in ("rising", "cut short"):
                errors = errors + 1e-7 * samples * (1e-2 / lr) ** -0.5
            if shape == "later for higher":
                errors = errors + 1e-7 * samples * (1e-2 / lr) ** 0.5
            if shape == "random":
                errors = errors + 1e-7 * samples * rng.uniform(0.1, 10)
            errors = errors * np.exp(rng.normal(0, 0.02, len(samples)))
        points = list(zip(samples, errors, strict=True))
        if shape == "cut short" and k < 5:
            points = points[:4]
        curve = [{"samples": int(s), "test_error": float(e)} for s, e in points]
        rows.append({**LINES, "lr": lr, "best_error": min(e for _, e in points), "curve": curve})
    return rows


@pytest.mark.parametrize(
    "shape, expected",
    [
        ("rising", F.CONFIRMED),
        ("falling", F.INCONCLUSIVE),  # "eventually" lies beyond a run that still improves
        ("at chance", F.INCONCLUSIVE),
    ],
)
def test_eventual_divergence_verdicts(store, shape, expected):
    add_runs(store, "long_lines", long_rows(np.random.default_rng(10), shape))
    finding = verdict_of(store, "divergence")
    assert finding.verdict == expected, finding.evidence
    if finding.tests:
        assert "(one-sided;" in finding.evidence and p_values_say_their_sides(finding.evidence)


@pytest.mark.parametrize(
    "shape, expected",
    [
        ("rising", F.CONFIRMED),
        ("later for higher", F.CONTRADICTED),
        ("random", F.INCONCLUSIVE),
        ("at chance", F.INCONCLUSIVE),
    ],
)
def test_divergence_time_verdicts(store, shape, expected):
    add_runs(store, "long_lines", long_rows(np.random.default_rng(10), shape))
    finding = verdict_of(store, "divergence_lr")
    assert finding.verdict == expected, finding.evidence
    if shape == "later for higher":
        reason = "decided against the claim: higher learning rates reach their best later"
        assert finding.evidence.startswith(reason)
    if finding.tests:
        assert p_values_say_their_sides(finding.evidence)


def test_divergence_time_counts_runs_still_improving_as_censored(store):
    """Low rates cut short while still improving: their last evaluation is not when they
    turn. Ranking those times as they are reverses the trend; counted as censored, they
    cannot."""
    rows = long_rows(np.random.default_rng(10), "cut short")
    naive = stats.spearmanr([r["lr"] for r in rows], [r["curve"][-1]["samples"] for r in rows])
    best = [min(r["curve"], key=lambda p: p["test_error"])["samples"] for r in rows]
    assert stats.spearmanr([r["lr"] for r in rows], best)[0] > 0.5 and naive[0] > 0.5
    add_runs(store, "long_lines", rows)
    finding = verdict_of(store, "divergence_lr")
    assert finding.verdict != F.CONTRADICTED, finding.evidence
    assert "5 of 10 runs that learned were still improving" in finding.evidence


def test_divergence_time_with_too_few_runs_has_no_data(store):
    add_runs(store, "long_lines", long_rows(np.random.default_rng(10), "rising")[:3])
    finding = verdict_of(store, "divergence_lr")
    assert finding.verdict == F.NO_DATA and "too few runs to test" in finding.evidence


def test_the_report_counts_outcomes_per_group_and_labels_every_p_value(store, tmp_path):
    rows = two_groups(
        np.random.default_rng(4), {"output": "softmax"}, {"output": "logistic"}, "B never learned"
    )
    rows += [{"output": "logistic", **BLEW_UP}]
    add_runs(store, "cell_types_mnist", rows)
    written = write_report(store, tmp_path / "report", ["lstmbench", "report"])
    markdown = written.markdown.read_text()
    assert "| cell_types_mnist | logistic | 0 | 12 | 1 | none learned |" in markdown
    assert "| cell_types_mnist | softmax | 12 | 0 | 0 |  |" in markdown
    assert "within a margin of x1.25" in markdown and "1 +- 0.5" in markdown
    for finding in written.findings:
        if finding.tests:
            assert p_values_say_their_sides(finding.evidence), finding.evidence
    (output,) = [f for f in written.findings if f.key == "output_mnist"]
    assert output.verdict == F.CONTRADICTED and "softmax lower error than logistic" in (
        output.evidence
    )


def test_a_finding_without_data_says_which_spec_to_run(store):
    finding = verdict_of(store, "bidi_ctc")
    assert finding.verdict == F.NO_DATA
    assert "lstmbench sweep run bidi_ctc_mnist" in finding.evidence


def test_importance_ranks_the_setting_that_matters(store):
    rng = np.random.default_rng(11)
    rows = []
    for lr, hidden in itertools.product(np.logspace(-4, -1, 8), [20, 40, 80]):
        error = 0.01 * 10 ** ((np.log10(lr) + 2.5) ** 2 / 2) * np.exp(rng.normal(0, 0.02))
        rows.append({"lr": lr, "hidden": hidden, "best_error": error})
    add_runs(store, "lr_hidden", rows)
    found = importance(store.runs("lr_hidden"))
    assert set(found) == {"lr", "hidden"}
    assert found["lr"] > 0.8 > found["hidden"]


def test_best_lr_scaling_with_momentum_drawn_at_random(store):
    rng = np.random.default_rng(12)
    rows = []
    for _ in range(150):
        momentum, lr = rng.uniform(0, 0.95), 10 ** rng.uniform(-4, -1)
        effective = np.log10(lr / (1 - momentum))
        error = 0.01 * 10 ** (0.3 * (effective + 2) ** 2) * np.exp(rng.normal(0, 0.05))
        rows.append({"momentum": momentum, "lr": lr, "best_error": min(error, 1.0)})
    add_runs(store, "batch_momentum", rows)
    finding = verdict_of(store, "lr_momentum")
    assert finding.verdict == F.CONFIRMED, finding.evidence
