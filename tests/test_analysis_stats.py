"""Statistics and the findings logic on constructed data where the answer is known."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lstmbench.analysis import findings as F
from lstmbench.analysis.importance import importance
from lstmbench.analysis.stats import bootstrap_ci, cliffs_delta, compare_groups, holm
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
    (check,) = [c for c in F.PAPER_CHECKS if c.key == key]
    (finding,) = F.evaluate_findings(store, [check])
    return finding


@pytest.fixture
def store(tmp_path):
    return ResultsStore(tmp_path / "constructed.db")


def lognormal(rng, median: float, n: int, spread: float = 0.15) -> np.ndarray:
    return median * np.exp(rng.normal(0, spread, n))


@pytest.mark.parametrize("effect", [True, False])
def test_softmax_beats_logistic_is_found_only_when_real(store, effect):
    rng = np.random.default_rng(4)
    rows = []
    for output in ("softmax", "logistic"):
        median = 0.05 if output == "softmax" or not effect else 0.2
        for e in lognormal(rng, median, 20, 0.3):
            rows.append({"dataset": "uw3like:tiny", "output": output, "best_error": e})
    add_runs(store, "cell_types_lines", rows)
    finding = verdict_of(store, "softmax_lines")
    assert finding.verdict == (F.CONFIRMED if effect else F.NOT_CONFIRMED)
    assert "Holm-adjusted p=" in finding.evidence


@pytest.mark.parametrize("peephole_gain", [1.0, 0.5])
def test_peepholes_claim_is_contradicted_by_a_real_gain(store, peephole_gain):
    rng = np.random.default_rng(5)
    rows = []
    for cell in ("LSTM", "NPLSTM"):
        median = 0.02 * (peephole_gain if cell == "LSTM" else 1.0)
        rows += [{"cell": cell, "best_error": e} for e in lognormal(rng, median, 60, 0.1)]
    add_runs(store, "cell_types_mnist", rows)
    finding = verdict_of(store, "peepholes_mnist")
    assert finding.verdict == (F.CONFIRMED if peephole_gain == 1.0 else F.CONTRADICTED)


def batch_momentum_rows(rng, batch_effect: float) -> list[dict]:
    """Error depends on log effective lr (a U) and, if batch_effect != 1, on batch size."""
    rows = []
    grid = itertools.product([10, 20, 50, 100], [0.0, 0.5, 0.9], np.logspace(-4, -1, 8))
    for batch, momentum, lr in grid:
        effective = np.log10(lr / (1 - momentum))
        error = 0.01 * 10 ** (0.3 * (effective + 2) ** 2) * np.exp(rng.normal(0, 0.05))
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


def test_best_lr_scaling_with_momentum(store):
    add_runs(store, "batch_momentum", batch_momentum_rows(np.random.default_rng(7), 1.0))
    finding = verdict_of(store, "lr_momentum")
    assert finding.verdict == F.CONFIRMED, finding.evidence
    slope = float(finding.evidence.split("slope ")[2].split()[0])
    assert slope == pytest.approx(1.0, abs=0.35)


def test_best_lr_independent_of_momentum_is_not_confirmed(store):
    rng = np.random.default_rng(8)
    rows = []
    for momentum, lr in itertools.product([0.0, 0.5, 0.9], np.logspace(-4, -1, 8)):
        for batch in (10, 100):
            error = 0.01 * 10 ** (0.3 * (np.log10(lr) + 2) ** 2) * np.exp(rng.normal(0, 0.05))
            rows.append({"batch_size": batch, "momentum": momentum, "lr": lr, "best_error": error})
    add_runs(store, "batch_momentum", rows)
    assert verdict_of(store, "lr_momentum").verdict == F.NOT_CONFIRMED


@pytest.mark.parametrize("smooth", [True, False])
def test_smoothness_is_found_only_in_smooth_data(store, smooth):
    rng = np.random.default_rng(9)
    rows = []
    for hidden, lr in itertools.product([25, 50, 100], np.logspace(-4, -1, 12)):
        error = 0.01 * 10 ** (0.2 * (np.log10(lr) + 2.5) ** 2) if smooth else rng.uniform(0.01, 1)
        rows.append({"hidden": hidden, "lr": lr, "best_error": error * np.exp(rng.normal(0, 0.05))})
    add_runs(store, "lr_hidden", rows)
    finding = verdict_of(store, "smooth")
    # hidden size has no effect in either case, so at most "partly" when smooth in lr
    assert finding.verdict == (F.PARTLY if smooth else F.NOT_CONFIRMED), finding.evidence


@pytest.mark.parametrize("rising", [True, False])
def test_eventual_divergence_needs_rising_curves(store, rising):
    rng = np.random.default_rng(10)
    rows = []
    samples = np.logspace(2, 6, 12).astype(int)
    for lr in np.logspace(-4, -2, 10):
        errors = 0.5 * (samples / 100.0) ** -0.5 + (1e-7 * samples if rising else 0)
        errors = errors * np.exp(rng.normal(0, 0.02, len(samples)))
        curve = [
            {"samples": int(s), "test_error": float(e)}
            for s, e in zip(samples, errors, strict=True)
        ]
        rows.append(
            {"dataset": "uw3like:tiny", "lr": lr, "best_error": errors.min(), "curve": curve}
        )
    add_runs(store, "long_lines", rows)
    assert verdict_of(store, "divergence").verdict == (F.CONFIRMED if rising else F.NOT_CONFIRMED)


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
