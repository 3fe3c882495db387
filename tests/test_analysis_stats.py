"""Statistics and the findings logic on constructed data where the answer is known."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from scipy import stats

from lstmbench.analysis import findings as F
from lstmbench.analysis import paper
from lstmbench.analysis.importance import importance
from lstmbench.analysis.runs import DIVERGED, LEARNED, NOT_LEARNED, outcome, outcome_counts
from lstmbench.analysis.stats import (
    bootstrap_ci,
    censored_kendall,
    cliffs_delta,
    compare_groups,
    equivalence_p,
    hodges_lehmann,
    holm,
    jackknife_ci,
    mann_whitney,
    not_lower_p,
    permutation_p,
    stratified_resample,
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
    shifted = compare_groups(rng.normal(0, 1, 40), rng.normal(1.5, 1, 40), alternative="less")
    assert shifted.p < 1e-4 and shifted.p_welch < 1e-4 and shifted.cliffs_delta < -0.5
    assert shifted.ci[1] < 0
    same = compare_groups(rng.normal(0, 1, 40), rng.normal(0, 1, 40))
    assert same.p > 0.05 and same.ci[0] < 0 < same.ci[1]


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
    tau, p = permutation_p(statistic, x, permutations=4000)
    assert tau == observed and p == pytest.approx(np.mean(every), abs=0.02)


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
    """Record constructed finished runs: config fields plus best_error (and a curve)."""
    store.ensure_sweep(sweep, {"name": sweep}, "constructed")
    for seed, row in enumerate(rows):
        row = dict(row)
        error = row.pop("best_error")
        curve = row.pop("curve", [{"samples": 100, "test_error": error}])
        status = row.pop("status", "done")
        config = RunConfig(seed=seed, **row)
        points = [{"train_loss": 1.0, "wall_time": 1.0, **p} for p in curve]
        result = RunResult(config, status=status, best_error=error, final_error=error)
        result.best_samples = min(points, key=lambda p: p["test_error"])["samples"]
        result.curve, result.samples_seen, result.wall_time = points, curve[-1]["samples"], 1.0
        store.record_result(sweep, result)


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


# -- what each run came to -----------------------------------------------------------------


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
# claim key -> (sweep, group A, group B): the paper says A is lower than B (effect claims),
# or that A and B are alike (null claims), or that A is not lower than B (not_better).
GROUPS = {
    "softmax_lines": (
        "cell_types_lines",
        {**LINES, "output": "softmax"},
        {**LINES, "output": "logistic"},
    ),
    "bidi_lines": ("bidi_lines", {**LINES, "direction": "bidi"}, {**LINES, "direction": "uni"}),
    "nonlinearities": ("cell_types_mnist", {"cell": "LSTM"}, {"cell": "LINLSTM"}),
    "bidi_ctc": (
        "bidi_ctc_mnist",
        {"direction": "bidi", "target": "ctc"},
        {"direction": "uni", "target": "ctc"},
    ),
    "output_mnist": ("cell_types_mnist", {"output": "softmax"}, {"output": "logistic"}),
    "peepholes_mnist": ("cell_types_mnist", {"cell": "LSTM"}, {"cell": "NPLSTM"}),
    "peepholes_lines": ("cell_types_lines", {**LINES, "cell": "LSTM"}, {**LINES, "cell": "NPLSTM"}),
}
# scenario -> (median of A, median of B, runs per group, spread)
SCENARIOS = {
    "A lower": (0.05, 0.2, 20, 0.3),
    "A higher": (0.2, 0.05, 20, 0.3),
    "alike": (0.05, 0.05, 60, 0.05),  # alike, and enough runs to show it
    "unclear": (0.05, 0.06, 4, 0.6),  # few noisy runs: nothing decided
    "at chance": (1.0, 1.0, 20, 0.0),  # no run learned
}
C, X, I, N = F.CONFIRMED, F.CONTRADICTED, F.INCONCLUSIVE, F.NO_DATA
EXPECTED = {  # per rule, the verdict of each scenario, in the order of SCENARIOS
    "effect": (C, X, X, I, N),  # equivalence where a difference is claimed contradicts
    "null": (X, X, C, I, N),
    "not_better": (X, C, C, I, N),
}


def two_groups(rng, a: dict, b: dict, scenario: str) -> list[dict]:
    median_a, median_b, n, spread = SCENARIOS[scenario]
    rows = [{**a, "best_error": min(e, 1.0)} for e in lognormal(rng, median_a, n, spread)]
    return rows + [{**b, "best_error": min(e, 1.0)} for e in lognormal(rng, median_b, n, spread)]


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("key", list(GROUPS))
def test_two_group_claims_give_each_verdict(store, key, scenario):
    sweep, a, b = GROUPS[key]
    add_runs(store, sweep, two_groups(np.random.default_rng(4), a, b, scenario))
    (claim,) = [c for e in paper.EXPERIMENTS for c in e.claims if c.key == key]
    finding = verdict_of(store, key)
    expected = EXPECTED[claim.rule][list(SCENARIOS).index(scenario)]
    assert finding.verdict == expected, finding.evidence
    if expected == F.NO_DATA:
        assert "learned" in finding.evidence and "Holm" not in finding.evidence
    else:
        assert "Holm-adjusted p=" in finding.evidence


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_a_compared_cell_is_judged_like_a_claim_of_no_difference(store, scenario):
    rows = two_groups(np.random.default_rng(4), {"cell": "GRU"}, {"cell": "NPLSTM"}, scenario)
    add_runs(store, "cell_types_mnist", [r for r in rows if r["cell"] == "NPLSTM"])
    add_runs(store, "compare-cell_types_mnist-GRU", [r for r in rows if r["cell"] == "GRU"])
    finding = verdict_of(store, "user_GRU")
    assert finding.sweep == "compare-cell_types_mnist-GRU"
    assert finding.verdict == EXPECTED["null"][list(SCENARIOS).index(scenario)], finding.evidence


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


@pytest.mark.parametrize("batch_effect", [1.0, 2.0])
def test_no_batch_effect_is_confirmed_only_without_one(store, batch_effect):
    add_runs(store, "batch_momentum", batch_momentum_rows(np.random.default_rng(6), batch_effect))
    batch = verdict_of(store, "batch")
    momentum = verdict_of(store, "momentum")
    assert batch.verdict == (F.CONFIRMED if batch_effect == 1.0 else F.CONTRADICTED)
    # momentum acts only through lr/(1-m) here; a batch effect only widens its interval
    assert momentum.verdict in (
        (F.CONFIRMED,) if batch_effect == 1.0 else (F.CONFIRMED, F.INCONCLUSIVE)
    )


@pytest.mark.parametrize("key", ["batch", "momentum"])
def test_no_effect_claims_on_noisy_runs_are_inconclusive(store, key):
    rows = batch_momentum_rows(np.random.default_rng(13), 1.0, noise=0.8, lrs=2)
    add_runs(store, "batch_momentum", rows)
    finding = verdict_of(store, key)
    assert finding.verdict == F.INCONCLUSIVE, finding.evidence


@pytest.mark.parametrize("key", ["batch", "momentum", "lr_momentum"])
def test_batch_momentum_claims_without_runs_that_learned_have_no_data(store, key):
    rows = [dict(r, best_error=1.0) for r in batch_momentum_rows(np.random.default_rng(6), 1.0)]
    add_runs(store, "batch_momentum", rows)
    finding = verdict_of(store, key)
    assert finding.verdict == F.NO_DATA and "too few runs" in finding.evidence


def test_best_lr_scaling_with_momentum(store):
    add_runs(store, "batch_momentum", batch_momentum_rows(np.random.default_rng(7), 1.0))
    finding = verdict_of(store, "lr_momentum")
    assert finding.verdict == F.CONFIRMED, finding.evidence
    slope = float(re.search(r"slope (-?[0-9.]+) \[", finding.evidence).group(1))
    assert slope == pytest.approx(1.0, abs=0.35)


def test_best_lr_independent_of_momentum_contradicts_the_scaling(store):
    rng = np.random.default_rng(8)
    rows = []
    for momentum, lr in itertools.product([0.0, 0.5, 0.9], np.logspace(-4, -1, 8)):
        for batch in (10, 100):
            error = 0.01 * 10 ** (0.3 * (np.log10(lr) + 2) ** 2) * np.exp(rng.normal(0, 0.05))
            rows.append({"batch_size": batch, "momentum": momentum, "lr": lr, "best_error": error})
    add_runs(store, "batch_momentum", rows)
    finding = verdict_of(store, "lr_momentum")
    assert finding.verdict == F.CONTRADICTED, finding.evidence
    assert finding.evidence.startswith("the interval decides against the claim")


def test_best_lr_scaling_on_noisy_runs_is_inconclusive(store):
    rows = batch_momentum_rows(np.random.default_rng(14), 1.0, noise=1.0, lrs=3)
    add_runs(store, "batch_momentum", [r for r in rows if r["batch_size"] == 10])
    finding = verdict_of(store, "lr_momentum")
    assert finding.verdict == F.INCONCLUSIVE, finding.evidence


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
            "random": rng.uniform(0.01, 1),
            "at chance": 1.0,
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
        ("smooth in lr", F.INCONCLUSIVE),  # hidden size has no effect: no structure to see
        ("random", F.INCONCLUSIVE),
        ("rough", F.CONTRADICTED),
        ("at chance", F.NO_DATA),
    ],
)
def test_smoothness_verdicts(store, shape, expected):
    add_runs(store, "lr_hidden", lr_hidden_rows(np.random.default_rng(9), shape))
    finding = verdict_of(store, "smooth")
    assert finding.verdict == expected, finding.evidence


# -- long runs: the late rise and when it comes -----------------------------------------------


def long_rows(rng, shape: str) -> list[dict]:
    """Curves of ten runs: falling then rising late ("rising"), still falling, or at chance;
    the best comes later for lower rates ("rising"), for higher rates ("later for higher"),
    or anywhere ("random")."""
    rows = []
    samples = np.logspace(2, 6, 12).astype(int)
    for lr in np.logspace(-4, -2, 10):
        if shape == "at chance":
            errors = np.ones(len(samples))
        else:
            errors = 0.5 * (samples / 100.0) ** -0.5
            if shape == "rising":
                errors = errors + 1e-7 * samples * (1e-2 / lr) ** -0.5
            if shape == "later for higher":
                errors = errors + 1e-7 * samples * (1e-2 / lr) ** 0.5
            if shape == "random":
                errors = errors + 1e-7 * samples * rng.uniform(0.1, 10)
            errors = errors * np.exp(rng.normal(0, 0.02, len(samples)))
        curve = [
            {"samples": int(s), "test_error": float(e)}
            for s, e in zip(samples, errors, strict=True)
        ]
        rows.append({**LINES, "lr": lr, "best_error": errors.min(), "curve": curve})
    return rows


@pytest.mark.parametrize(
    "shape, expected",
    [
        ("rising", F.CONFIRMED),
        ("falling", F.INCONCLUSIVE),  # "eventually" lies beyond a run that still improves
        ("at chance", F.NO_DATA),
    ],
)
def test_eventual_divergence_verdicts(store, shape, expected):
    add_runs(store, "long_lines", long_rows(np.random.default_rng(10), shape))
    finding = verdict_of(store, "divergence")
    assert finding.verdict == expected, finding.evidence


@pytest.mark.parametrize(
    "shape, expected",
    [
        ("rising", F.CONFIRMED),
        ("later for higher", F.CONTRADICTED),
        ("random", F.INCONCLUSIVE),
        ("at chance", F.NO_DATA),
    ],
)
def test_divergence_time_verdicts(store, shape, expected):
    add_runs(store, "long_lines", long_rows(np.random.default_rng(10), shape))
    finding = verdict_of(store, "divergence_lr")
    assert finding.verdict == expected, finding.evidence


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
