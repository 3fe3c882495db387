"""Budgeted reproduction: durations, the plan against measured speeds, the pilot's band, the
power calculation against simulation, resuming, and rounds that skip decided experiments."""

import dataclasses
import json
import math
import os
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from lstmbench.analysis.findings import (
    DECIDED,
    Check,
    Finding,
    Projection,
    check_eventual_divergence,
    check_output_alike,
    check_peepholes,
    check_smoothness,
    comparison_tests,
    evaluate_findings,
)
from lstmbench.analysis.findings import Test as StatTest
from lstmbench.analysis.pilot import NEVER_LEARNED, choose_band, refine_lrs, refined_band
from lstmbench.analysis.power import (
    Need,
    claim_core_seconds,
    difference_growth,
    margin_n,
    mean_difference,
    projected_runs,
    runs_needed,
)
from lstmbench.analysis.stats import (
    INFORMATIVE,
    equivalence_p,
    mann_whitney,
    rank_sums,
    van_elteren,
)
from lstmbench.cli.budget import (
    REACH,
    Work,
    extension_text,
    mark_wanted,
    open_experiments,
    paper_work,
    report_sections,
    stop_note,
)
from lstmbench.cli.main import main
from lstmbench.errors import UserError
from lstmbench.sweep.budget import (
    DEFAULT_SPECS,
    LADDER,
    MEASURED_USABLE,
    MIN_RUNS,
    MIN_UPDATES,
    PILOT_POINTS,
    ROUND_SHARES,
    STOPPED,
    USABLE,
    Cost,
    ExperimentPlan,
    GroupPlan,
    Plan,
    admit_deferred,
    allocate_round,
    budget_for,
    choose_lengths,
    cost_ratio,
    effective_run_seconds,
    extend_plan,
    format_duration,
    format_plan,
    group_label,
    least_samples,
    load_plan,
    lr_groups,
    main_configs,
    parse_duration,
    planned_core_seconds,
    round_core_seconds,
    round_runs,
    run_cost,
    speed_ratio,
)
from lstmbench.sweep.spec import load_spec, parse_spec
from lstmbench.training.config import RunConfig

# -- durations --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, seconds",
    [("15m", 900), ("2h", 7200), ("90s", 90), ("1h30m", 5400), ("1.5h", 5400), (" 20S ", 20)],
)
def test_durations_parse(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text, says",
    [
        ("", "not a duration"),
        ("15", "not a duration"),
        ("15x", "not a duration"),
        ("m", "not a duration"),
        ("-5m", "not a duration"),
        ("1h1h", "unit twice"),
        ("0m", "no time at all"),
    ],
)
def test_bad_durations_say_what_and_how(text, says):
    with pytest.raises(UserError) as error:
        parse_duration(text)
    assert says in str(error.value)
    assert "e.g." in str(error.value)  # how to fix it


def test_bad_budget_on_the_command_line_is_one_message(tmp_path, capsys):
    db = tmp_path / "results.db"
    assert main(["reproduce", "--budget", "soon", "--db", str(db)]) != 0
    err = capsys.readouterr().err
    assert "--budget 'soon' is not a duration" in err
    assert "Traceback" not in err
    assert main(["reproduce", "--budget", "5m", "--scale", "tiny", "--db", str(db)]) != 0
    assert "not both" in capsys.readouterr().err
    assert not db.exists()  # refused before anything was made


# -- the plan against speeds ----------------------------------------------------------


def constructed_plan() -> Plan:
    """Three experiments with made-up speeds (core-seconds per sample and per evaluated sample)."""
    plan = Plan(budget=900, workers=2, threads=1, specs=["cheap", "dear", "impossible"])
    speeds = {"cheap": (1e-5, 1e-6), "dear": (2e-4, 1e-5), "impossible": (5e-3, 1e-4)}
    groups = {"cheap": 1, "dear": 6, "impossible": 12}
    for name, (train, evaluate) in speeds.items():
        plan.experiments.append(
            ExperimentPlan(
                name,
                cost=Cost(train, evaluate),
                groups=[GroupPlan({"g": i}, f"g={i}") for i in range(groups[name])],
            )
        )
    return plan


def least_cost(e: ExperimentPlan, samples: int) -> float:
    return (
        (PILOT_POINTS + len(ROUND_SHARES) * MIN_RUNS) * len(e.groups) * e.cost.run_seconds(samples)
    )


def test_plan_fits_the_budget_and_runs_as_long_as_it_can():
    plan = constructed_plan()
    core_seconds = 1000.0
    choose_lengths(plan, core_seconds)
    planned = [e for e in plan.experiments if e.planned]
    assert [e.spec for e in planned] == ["cheap", "dear"]
    total = sum(least_cost(e, e.samples) for e in planned)
    assert total <= core_seconds
    for e in planned:
        assert e.samples >= e.least  # long enough to learn
        longer = [s for s in LADDER if s > e.samples]  # and no rung longer would still fit
        assert not longer or total - least_cost(e, e.samples) + least_cost(e, longer[0]) > 1000
    impossible = plan.experiment("impossible")
    assert "deferred" in impossible.note and "--budget" in impossible.note


def test_the_budget_goes_to_the_cheapest_claims_first():
    plan = constructed_plan()
    plan.experiments = plan.experiments[1:]  # dear (one claim), impossible (three)
    dear, many = plan.experiments
    many.cost = Cost(dear.cost.train_sample, dear.cost.eval_sample)
    many.groups = many.groups[:9]  # 1.5 times dear's runs, three times its claims
    many.claims = 3
    choose_lengths(plan, 1.6 * least_cost(dear, dear.least))
    assert many.planned and not dear.planned


def test_a_lone_experiment_runs_short_rather_than_not_at_all():
    plan = constructed_plan()
    plan.experiments = [plan.experiment("impossible")]
    choose_lengths(plan, 2000.0)
    [only] = plan.experiments
    assert 0 < only.samples < only.least
    assert least_cost(only, only.samples) <= 2000.0
    choose_lengths(plan, 100.0)  # not even the shortest runs fit: said so, nothing planned
    assert only.samples == 0 and "deferred" in only.note and "--budget" in only.note


def test_a_round_costs_no_more_than_it_was_given():
    plan = constructed_plan()
    choose_lengths(plan, 1000.0)
    round_ = allocate_round(plan, 1, 400.0, {"cheap": 1, "dear": 1, "impossible": 1})
    assert set(round_.added) == {"cheap", "dear"}  # nothing for an experiment not planned
    assert 0 < planned_core_seconds(plan, round_) <= 400.0
    for spec, runs in round_.added.items():
        assert all(g.runs == runs for g in plan.experiment(spec).groups)


def test_decided_experiments_get_no_further_rounds():
    plan = constructed_plan()
    choose_lengths(plan, 1000.0)
    cheap, dear = plan.experiment("cheap"), plan.experiment("dear")
    cheap.cost, cheap.samples = dear.cost, dear.samples  # as dear as the other, for the share
    cheap.groups = [GroupPlan({"g": i}, f"g={i}") for i in range(len(dear.groups))]
    first = allocate_round(plan, 1, 400.0, {"cheap": 1, "dear": 1})
    before = {e.spec: [g.runs for g in e.groups] for e in plan.experiments}
    second = allocate_round(plan, 2, 400.0, {"dear": 1})  # every claim of "cheap" decided
    assert "cheap" not in second.added and second.open_before == ["dear"]
    assert [g.runs for g in plan.experiment("cheap").groups] == before["cheap"]
    # the decided experiment's share went to the open one
    assert second.added["dear"] >= 1.5 * first.added["dear"]


def twin_plan(runs_a: int, runs_b: int) -> tuple[Plan, float]:
    """Two planned experiments of two groups each, alike in cost, with main runs so far;
    returns the plan and the core-seconds of one run in each group of either."""
    plan = Plan(budget=900, workers=2, threads=1, specs=["a", "b"])
    for name, runs in (("a", runs_a), ("b", runs_b)):
        groups = [GroupPlan({"g": i}, f"g={i}", runs=runs) for i in range(2)]
        plan.experiments.append(ExperimentPlan(name, 1000, cost=Cost(1e-3, 0.0), groups=groups))
    return plan, 2 * plan.experiment("a").run_seconds


def test_what_is_left_after_the_least_runs_goes_equally_to_each_open_claim():
    plan, each = twin_plan(8, 8)
    # a top-up: the least runs are there; 8 runs' worth, 2 a claim: "a" leaves 3 open
    round_ = allocate_round(plan, 3, 8 * each, {"a": 3, "b": 1})
    assert round_.added == {"a": 6, "b": 2}
    assert [g.runs for g in plan.experiment("a").groups] == [14, 14]
    # a shared round first gives each open experiment what it lacks of its least runs
    plan, each = twin_plan(0, MIN_RUNS)
    round_ = allocate_round(plan, 1, 2 * MIN_RUNS * each, {"a": 1, "b": 1})
    # "a": its least MIN_RUNS and 2 of the 4 runs' worth left; "b" had its least: 2
    assert round_.added == {"a": MIN_RUNS + 2, "b": 2}
    assert planned_core_seconds(plan, round_) <= 2 * MIN_RUNS * each


def test_no_experiment_more_than_doubles_in_a_round_and_its_rest_goes_to_the_others():
    plan, each = twin_plan(8, 100)
    round_ = allocate_round(plan, 3, 40 * each, {"a": 1, "b": 1})
    assert round_.added == {"a": 8, "b": 32}  # "a" stops at 16; the others get its rest
    plan, each = twin_plan(8, 8)
    round_ = allocate_round(plan, 3, 40 * each, {"a": 1, "b": 1})
    assert round_.added == {"a": 8, "b": 8}  # the rest waits for the verdicts
    # a share too small for a run in each group of its (dear) experiment goes to the others
    plan, each = twin_plan(8, 8)
    # ten times the cost of a run in each group
    plan.experiment("b").groups = [GroupPlan({"g": i}, f"g={i}", runs=8) for i in range(20)]
    round_ = allocate_round(plan, 3, 6 * each, {"a": 1, "b": 1})
    assert round_.added == {"a": 6}
    # the least runs not affordable: the same few runs in every group, as the time pays
    plan, each = twin_plan(0, 0)
    round_ = allocate_round(plan, 1, 3 * each, {"a": 1, "b": 1})
    assert round_.added == {"a": 1, "b": 1}


def test_a_top_up_pays_first_the_runs_that_decide_a_claim_cheapest_first():
    plan, each = twin_plan(8, 8)
    plan.experiment("a").asks = {"x": 3}  # its power calculation: 3 more runs a group
    plan.experiment("b").asks = {"y": 20}  # more than the round has
    round_ = allocate_round(plan, 3, 10 * each, {"a": 1, "b": 1})
    # "a" gets its 3; the 7 runs' worth left go equally to both claims, 3 each
    assert round_.added == {"a": 6, "b": 3} and round_.paid_first == ["a x +3"]
    assert "paid first: a x +3" in format_plan(Plan(**{**vars(plan), "rounds": [round_]}))
    # without asks the same time is shared equally
    plan, each = twin_plan(8, 8)
    assert allocate_round(plan, 3, 10 * each, {"a": 1, "b": 1}).added == {"a": 5, "b": 5}
    # the cheapest first: only one of two asks fits, and it is the cheaper to pay
    plan, each = twin_plan(8, 8)
    plan.experiment("a").asks = {"x": 6}
    plan.experiment("b").asks = {"y": 4}
    round_ = allocate_round(plan, 3, 8 * each, {"a": 1, "b": 1})
    assert round_.paid_first == ["b y +4"] and round_.added == {"a": 2, "b": 6}
    # an ask past doubling pays what doubling leaves; two asks of one experiment: the
    # dearer pays what the cheaper has not
    plan, each = twin_plan(8, 8)
    plan.experiment("a").asks = {"x": 3, "z": 12}
    round_ = allocate_round(plan, 3, 40 * each, {"a": 2, "b": 1})
    assert round_.paid_first == ["a x +3", "a z +5"] and round_.added["a"] == 8


def test_rounds_give_runs_only_to_the_groups_an_open_claim_still_reads():
    plan, each = twin_plan(8, 8)
    b = plan.experiment("b")
    b.groups = [GroupPlan({"g": i}, f"g={i}", runs=8, wanted=i < 2) for i in range(4)]
    # "b" has four groups, two of which an open claim reads: a run in each of those costs
    # what a run in each of "a"'s two groups costs, so the share buys the same runs
    round_ = allocate_round(plan, 3, 8 * each, {"a": 1, "b": 1})
    assert round_.added == {"a": 4, "b": 4} and round_.given == {"a": 2, "b": 2}
    assert [g.runs for g in b.groups] == [12, 12, 8, 8]
    assert planned_core_seconds(plan, round_) == pytest.approx(8 * each)
    assert (
        round_runs(round_, b) == "4 (2 of 4 groups)"
        and round_runs(round_, plan.experiment("a")) == "4"
    )
    # none marked: every group (a plan written before groups were marked)
    for group in b.groups:
        group.wanted = False
    round_ = allocate_round(plan, 4, 8 * each, {"b": 1})
    assert round_.given == {"b": 4}


def test_the_groups_an_open_claim_still_reads_are_those_of_its_open_comparisons():
    spec = load_spec("cell_types_mnist")
    experiment = ExperimentPlan(
        spec.name, groups=[GroupPlan(key, group_label(key)) for key in lr_groups(spec)]
    )
    runs = []
    # every type alike, logistic outputs at chance: outputs decided, peepholes open
    for cell in ("LINLSTM", "LSTM", "NPLSTM", "RELU2LSTM", "RELULSTM", "RELUTANHLSTM"):
        for output, errors in (("softmax", (0.02, 0.05, 0.1, 0.3)), ("logistic", (0.9,) * 4)):
            for k, error in enumerate(errors):
                runs.append(
                    {"cell": cell, "output": output, "best_error": error}
                    | {"lr": 10.0 ** (k - 4), "hidden": 50 + 10 * k, "momentum": 0.9}
                    | {"status": "done", "dataset": "mnist", "sweep": spec.name, "reason": ""}
                )
    peepholes = Check("peepholes_mnist", "peepholes", "not_better", check_peepholes)
    outputs = Check("output_mnist", "outputs alike", "null", check_output_alike)
    found = evaluate_findings([(c, spec.name, runs) for c in (peepholes, outputs)])
    assert [f.verdict for f in found] == ["inconclusive", "contradicted"]
    mark_wanted(experiment, found)
    wanted = sorted(g.label for g in experiment.groups if g.wanted)
    # peepholes are compared within each output layer; on logistic outputs every run of both
    # failed, so more runs there would not move the test (stats.INFORMATIVE)
    assert wanted == ["cell=LSTM output=softmax", "cell=NPLSTM output=softmax"]
    # once a quarter of NPLSTM's logistic runs learn, that layer tells LSTM and NPLSTM apart
    for run in runs:
        if run["cell"] == "NPLSTM" and run["output"] == "logistic" and run["lr"] == 1e-4:
            run["best_error"] = 0.05
    found = evaluate_findings([(c, spec.name, runs) for c in (peepholes, outputs)])
    mark_wanted(experiment, found)
    assert sorted(g.label for g in experiment.groups if g.wanted) == [
        "cell=LSTM output=logistic",
        "cell=LSTM output=softmax",
        "cell=NPLSTM output=logistic",
        "cell=NPLSTM output=softmax",
    ]
    # a claim about how the error changes with a setting reads every group, while it is open
    # (here: the errors in an order unrelated to learning rate and hidden size)
    errors = np.random.default_rng(0).permutation([r["best_error"] for r in runs])
    shuffled = [dict(r, best_error=e) for r, e in zip(runs, errors, strict=True)]
    smooth = Check("smooth", "smooth", "effect", check_smoothness)
    [smoothness] = evaluate_findings([(smooth, spec.name, shuffled)])
    assert smoothness.verdict == "inconclusive", smoothness.evidence
    mark_wanted(experiment, found + [smoothness])
    assert all(g.wanted for g in experiment.groups)


def test_a_run_costs_what_calibration_timed_for_its_own_settings():
    experiment = ExperimentPlan("lr_hidden", 1000, cost=Cost(5e-3, 1e-4))  # the average
    base = {"cell": "NPLSTM", "direction": "bidi", "dataset": "mnist"}
    experiment.timings = [
        {"settings": {**base, "hidden": 25}, "train_sample": 1e-3, "eval_sample": 1e-5},
        {"settings": {**base, "hidden": 200}, "train_sample": 2e-2, "eval_sample": 1e-4},
        {"settings": {**base, "hidden": 25, "cell": "GRU"}, "train_sample": 9.0, "eval_sample": 1},
    ]
    small, large = (
        RunConfig(**{**base, "hidden": hidden, "samples": 1000, "lr": 1e-3}) for hidden in (30, 150)
    )
    # nearest in hidden size, and never another cell however near its numbers
    assert run_cost(experiment, small) == pytest.approx(
        Cost(1e-3, 1e-5).run_seconds(1000), rel=1e-9
    )
    assert run_cost(experiment, large) == pytest.approx(Cost(2e-2, 1e-4).run_seconds(1000))
    experiment.timings = []  # a plan calibrated before groups were kept: the average
    assert run_cost(experiment, small) == pytest.approx(Cost(5e-3, 1e-4).run_seconds(1000))


def test_each_experiment_is_costed_at_its_own_measured_speed():
    plan = constructed_plan()
    choose_lengths(plan, 1000.0)
    cheap, dear, impossible = plan.experiments
    assert speed_ratio(plan) is None
    assert round_core_seconds(plan, 100.0) == pytest.approx(100.0 * plan.cores * USABLE)
    assert effective_run_seconds(plan, cheap) == cheap.run_seconds  # calibration's word
    cheap.measured_seconds, cheap.predicted_seconds = 10.0, 40.0  # four times as fast
    assert cost_ratio(plan, cheap) == pytest.approx(0.25)
    assert round_core_seconds(plan, 100.0) == pytest.approx(100.0 * plan.cores * MEASURED_USABLE)
    # not run yet: calibration's word, however fast another experiment ran
    assert cost_ratio(plan, dear) == 1.0
    dear.measured_seconds, dear.predicted_seconds = 300.0, 100.0  # three times as slow
    assert speed_ratio(plan) == pytest.approx(310.0 / 140.0)
    # all that ran was slower on the whole: so, for an experiment not run yet, is its cost
    assert cost_ratio(plan, impossible) == pytest.approx(310.0 / 140.0)
    round_ = allocate_round(plan, 3, 1000.0, {"cheap": 1, "dear": 1})  # a top-up, least had
    assert planned_core_seconds(plan, round_) <= 1000.0
    assert planned_core_seconds(plan, round_) == pytest.approx(
        sum(
            runs * len(plan.experiment(spec).groups) * plan.experiment(spec).run_seconds * ratio
            for (spec, runs), ratio in zip(sorted(round_.added.items()), [0.25, 3.0], strict=True)
        )
    )


def test_a_deferred_experiment_joins_when_the_measured_speed_leaves_room():
    plan = constructed_plan()
    choose_lengths(plan, 1000.0)
    impossible = plan.experiment("impossible")
    assert not impossible.planned
    committed = sum(
        len(ROUND_SHARES) * MIN_RUNS * len(e.groups) * e.run_seconds
        for e in plan.experiments
        if e.planned
    )
    need = least_cost(impossible, impossible.least)
    open_specs = [e.spec for e in plan.experiments if e.planned]
    assert admit_deferred(plan, committed + need * 0.99, open_specs) == []  # stays deferred
    assert not impossible.planned
    # the planned experiments ran twice as fast as calibration said: half as much held back
    for experiment in plan.experiments:
        if experiment.planned:
            experiment.measured_seconds, experiment.predicted_seconds = 1.0, 2.0
    assert admit_deferred(plan, committed / 2 + need * 0.99, open_specs) == []
    assert admit_deferred(plan, committed / 2 + need, open_specs) == ["impossible"]
    assert impossible.samples >= impossible.least and "admitted" in impossible.note


def test_decided_experiments_free_their_time_for_deferred_ones():
    plan = constructed_plan()
    choose_lengths(plan, 1000.0)
    impossible = plan.experiment("impossible")
    need = least_cost(impossible, impossible.least)
    open_specs = [e.spec for e in plan.experiments if e.planned]
    lacking = sum(
        len(ROUND_SHARES) * MIN_RUNS * len(e.groups) * e.run_seconds
        for e in plan.experiments
        if e.planned
    )
    assert admit_deferred(plan, need + lacking * 0.99, open_specs) == []  # the open come first
    # once the open experiments have had their least rounds, they hold nothing back
    for experiment in plan.experiments:
        for group in experiment.groups if experiment.planned else []:
            group.runs = len(ROUND_SHARES) * MIN_RUNS
    assert admit_deferred(plan, need * 0.99, open_specs) == []
    assert admit_deferred(plan, need, open_specs) == ["impossible"]


def test_runs_of_larger_batches_must_be_longer_to_learn():
    assert least_samples(load_spec("lr_hidden")) == MIN_UPDATES  # batch 1
    batch_momentum = load_spec("batch_momentum")  # batches drawn from 5 to 200: about 32
    assert least_samples(batch_momentum) == pytest.approx(MIN_UPDATES * 31.6, rel=0.01)


def test_more_runs_later_keep_the_first_ones():
    spec = load_spec("bidi_ctc_mnist")
    key = {"direction": "bidi", "target": "ctc"}
    few = main_configs(spec, 5, key, (1e-3, 1e-2), 4, 5000)
    more = main_configs(spec, 5, key, (1e-3, 1e-2), 9, 5000)
    assert [c.run_id for c in more[:4]] == [c.run_id for c in few]
    assert len({c.run_id for c in more}) == 9
    assert all(1e-3 <= c.lr <= 1e-2 and c.direction == "bidi" for c in more)


def test_an_experiment_with_a_budget_protocol_runs_it_and_the_report_says_so():
    budget = {
        "fixed": {"dataset": "uw3like:tiny", "hidden": 50, "eval_samples": 60},
        "evaluations": 20,
        "deviation": "a smaller set, so the late phase comes sooner",
    }
    spec = parse_spec({**load_spec("long_lines").source, "budget": budget})
    [config] = main_configs(spec, 0, {}, (1e-3, 1e-2), 1, 20_000)
    assert config.dataset == "uw3like:tiny" and config.hidden == 50
    assert config.eval_every == 20_000 // spec.budget.evaluations
    assert config.eval_samples == spec.budget.eval_samples
    experiment = ExperimentPlan(
        "long_lines",
        samples=20_000,
        cost=Cost(1e-3, 1e-3, spec.budget.evaluations, spec.budget.eval_samples),
        deviation=spec.budget.deviation,
        paper_cost={"runs": 942, "core_hours": 5000.0, "ray_workers": 100, "ray_wall_hours": 50},
    )
    # evaluations of the whole (small) test set are costed as such, not at EVAL_SAMPLES
    assert experiment.run_seconds == pytest.approx(20 + 21 * 60 * 1e-3)
    plan = Plan(budget=900, workers=2, threads=1, specs=["long_lines"])
    plan.experiments.append(experiment)
    sections = dict(report_sections(plan, []))
    [text] = [v for k, v in sections.items() if "departs from the paper" in k]
    assert spec.budget.deviation in text
    assert "942 runs" in text and "5,000 core-hours" in text and "100 Ray workers" in text


# -- the pilot's band -------------------------------------------------------------------


def pilot_run(lr: float, best_error: float | None, status: str = "done") -> dict:
    return {"lr": lr, "best_error": best_error, "status": status, "dataset": "mnist"}


LRS = [float(v) for v in np.geomspace(1e-6, 1e-1, 5)]
STEP = math.sqrt(LRS[1] / LRS[0])


def test_band_spans_the_rates_that_learned_half_a_step_out():
    runs = [
        pilot_run(LRS[0], 0.9),
        pilot_run(LRS[1], 0.88),
        pilot_run(LRS[2], 0.30),  # learned: at most half of chance (0.45)
        pilot_run(LRS[3], 0.05),
        pilot_run(LRS[4], None, "diverged"),
    ]
    band, tried, why = choose_band(runs, (1e-6, 1e-1))
    assert band == pytest.approx((LRS[2] / STEP, LRS[3] * STEP))
    assert [t["outcome"] for t in tried] == [
        "did not learn",
        "did not learn",
        "learned",
        "learned",
        "diverged",
    ]
    assert "2 of 5 rates learned" in why and "below" in why and "above" in why


def test_band_stays_inside_the_paper_range_and_spans_a_gap():
    runs = [pilot_run(lr, e) for lr, e in zip(LRS, [0.9, 0.2, 0.6, 0.9, 0.1], strict=True)]
    band, _, why = choose_band(runs, (1e-6, 1e-1))
    assert band == pytest.approx((LRS[1] / STEP, 1e-1))  # the top learned: clipped, not widened
    assert "above" not in why


def test_a_group_that_never_learned_keeps_the_paper_range():
    runs = [pilot_run(lr, 0.9) for lr in LRS]
    band, _, why = choose_band(runs, (1e-6, 1e-1))
    assert band == (1e-6, 1e-1)
    assert why.startswith(NEVER_LEARNED)


def test_a_refining_pilot_tries_half_a_step_either_side_of_the_best():
    errors = [0.9, 0.30, 0.05, 0.20, None]  # LRS[2] learned best; LRS[4] diverged
    runs = [
        pilot_run(lr, e, "diverged" if e is None else "done")
        for lr, e in zip(LRS, errors, strict=True)
    ]
    assert refine_lrs(runs, (1e-6, 1e-1)) == pytest.approx([LRS[2] / STEP, LRS[2] * STEP])
    top = [pilot_run(lr, e) for lr, e in zip(LRS, [0.9, 0.9, 0.9, 0.3, 0.1], strict=True)]
    assert refine_lrs(top, (1e-6, 1e-1)) == pytest.approx([LRS[4] / STEP])  # not above 1e-1
    assert refine_lrs([pilot_run(lr, 0.9) for lr in LRS], (1e-6, 1e-1)) == []


def test_a_refined_band_is_a_quarter_step_either_side_of_the_best_of_both_stages():
    first = [pilot_run(lr, e) for lr, e in zip(LRS, [0.9, 0.30, 0.05, 0.20, 0.9], strict=True)]
    second = [pilot_run(LRS[2] / STEP, 0.08), pilot_run(LRS[2] * STEP, 0.03)]  # above: best
    band, tried, why = refined_band(first + second, LRS, (1e-6, 1e-1))
    best = LRS[2] * STEP
    assert band == pytest.approx((best / math.sqrt(STEP), best * math.sqrt(STEP)))
    assert len(tried) == 7 and [t["lr"] for t in tried] == sorted(t["lr"] for t in tried)
    assert "5 of 7 rates learned" in why and "refined" in why
    wide, _, _ = choose_band(first, (1e-6, 1e-1))
    assert wide[0] < band[0] < band[1] < wide[1]  # narrower than the first stage's band
    never = [pilot_run(lr, 0.9) for lr in LRS]
    band, _, why = refined_band(never, LRS, (1e-6, 1e-1))
    assert band == (1e-6, 1e-1) and why.startswith(NEVER_LEARNED)


def test_only_experiments_that_compare_groups_at_their_best_refine():
    work = paper_work(list(DEFAULT_SPECS))
    assert work.refined == {"cell_types_mnist", "cell_types_lines", "bidi_ctc_mnist", "bidi_lines"}
    plain = ExperimentPlan("lr_hidden", groups=[GroupPlan({}, "all runs")])
    refining = dataclasses.replace(plain, refine=True)
    assert (plain.pilot_points, refining.pilot_points) == (PILOT_POINTS, PILOT_POINTS + 2)


# -- the power calculation against simulation ----------------------------------------------


def simulated_power(test, n: int, repeats: int = 600, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    return float(np.mean([test(rng, n) for _ in range(repeats)]))


def quantiles(n: int, shift: float = 0.0) -> np.ndarray:
    """n values spread as a unit normal is: a sample of it without sampling noise."""
    return stats.norm.ppf((np.arange(n) + 0.5) / n) + shift


def test_difference_size_gives_the_power_asked():
    shift = 0.8  # normal groups one 0.8 sd apart: Cliff's delta 2 Phi(shift / sqrt 2) - 1
    z = stats.norm.ppf(1 - 0.05 / 2) + stats.norm.ppf(0.8)
    k = difference_growth(rank_sums(quantiles(20), quantiles(20, shift), None), z)
    n = math.ceil(20 * k)
    assert n > 20
    # Noether's size from the population's Cliff's delta, without ties or strata
    delta = 2 * stats.norm.cdf(shift / math.sqrt(2)) - 1
    assert n == pytest.approx(2 * z**2 / (3 * delta**2), rel=0.15)

    def significant(rng, n):
        a, b = rng.normal(0, 1, n), rng.normal(shift, 1, n)
        return mann_whitney(a, b) < 0.05

    assert simulated_power(significant, n) == pytest.approx(0.8, abs=0.06)
    assert simulated_power(significant, n // 3) < 0.6  # the size matters: fewer runs fall short
    assert difference_growth(rank_sums(quantiles(10), quantiles(10), None), z) == math.inf
    assert difference_growth(rank_sums(quantiles(40), quantiles(40, 1.5), None), z) == 1.0


def test_equivalence_size_gives_the_power_asked():
    margin, sd = math.log10(1.25), 0.1
    n = math.ceil(margin_n(0.0, sd, margin, alpha=0.05, tost=True, power=0.8))

    def within(rng, n):
        a, b = rng.normal(0, sd, n), rng.normal(0, sd, n)
        return equivalence_p(a, b, margin) < 0.05

    assert simulated_power(within, n, repeats=400) == pytest.approx(0.8, abs=0.08)
    assert margin_n(margin, sd, margin, 0.05, tost=True) == math.inf  # at the margin: never


def test_difference_size_within_strata_gives_the_power_asked():
    """Two strata far apart (an output layer that moves every error) and one where all runs
    but one a group failed: the growth of the first two that the runs so far ask for gives
    van Elteren's test the power asked, the third left as it is."""
    shift, offset, n0 = 0.8, 3.0, 6
    failed = np.full(9, np.inf)
    z = stats.norm.ppf(1 - 0.05 / 2) + stats.norm.ppf(0.8)

    def groups(x: np.ndarray, y: np.ndarray, last_a: float, last_b: float):
        a = np.concatenate([x, x + offset, failed, [last_a]])
        b = np.concatenate([y, y + offset, failed, [last_b]])
        labels = np.repeat(["x", "y", "failed"], [len(x), len(x), 10])
        return a, b, labels

    a, b, labels = groups(quantiles(n0), quantiles(n0, shift), 0.0, shift)
    parts = rank_sums(a, b, (labels, labels))
    assert [p.untied >= INFORMATIVE for p in parts] == [False, True, True]
    n = math.ceil(n0 * difference_growth(parts, z))
    assert n > n0

    def significant(rng, n):
        a, b, labels = groups(rng.normal(0, 1, n), rng.normal(shift, 1, n), *rng.normal(0, 1, 2))
        return van_elteren(a, b, (labels, labels)) < 0.05

    assert simulated_power(significant, n) == pytest.approx(0.8, abs=0.06)


def test_runs_in_a_stratum_where_every_run_failed_count_toward_no_size():
    """Half of each group's runs on an output layer where all of them failed: those pairs
    tie and van Elteren's test gives them no weight, so the runs needed are those of the
    other layer alone, not four times as many (a Cliff's delta halved by the ties) in all."""
    rng = np.random.default_rng(31)
    n = 12
    a = np.concatenate([rng.normal(-1.3, 0.2, n), np.full(n, np.inf)])
    b = np.concatenate([rng.normal(-1.2, 0.2, n), np.full(n, np.inf)])
    layers = np.repeat(["softmax", "logistic"], n)

    def needs(a, b, strata) -> list[Need]:
        tests = comparison_tests(a, b, "A", "B", "lower", "", strata, "output")
        finding = Finding("k", "A lower", "s", "effect", tests=tests, verdict="inconclusive")
        return runs_needed([finding], {"s": 10.0})

    within, alone = needs(a, b, (layers, layers)), needs(a[:n], b[:n], None)
    for this, that in zip(within, alone, strict=True):
        assert this.have == that.have == (n, n)
        assert this.needed == pytest.approx(that.needed)
        assert this.further == that.further > 0


def test_margin_sizes_read_the_difference_and_spread_within_strata():
    rng = np.random.default_rng(7)
    a = np.concatenate([rng.normal(0, 0.1, 5), rng.normal(1, 0.2, 4), [np.inf]])
    b = np.concatenate([rng.normal(0.05, 0.1, 6), rng.normal(1.05, 0.2, 3)])
    strata = (np.repeat(["x", "y", "y"], [5, 4, 1]), np.repeat(["x", "y"], [6, 3]))
    d, sd = mean_difference(a, b, strata)
    # slow: each stratum's mean difference weighted n_a n_b / (n_a + n_b); the spread pooled
    # about each stratum's and group's own mean
    parts = [(a[:5], b[:6]), (a[5:9], b[6:])]
    weights = [len(x) * len(y) / (len(x) + len(y)) for x, y in parts]
    slow_d = sum(w * (x.mean() - y.mean()) for w, (x, y) in zip(weights, parts, strict=True))
    assert d == pytest.approx(slow_d / sum(weights))
    squares = sum(((v - v.mean()) ** 2).sum() for pair in parts for v in pair)
    assert sd == pytest.approx(math.sqrt(squares / ((5 - 1) + (6 - 1) + (4 - 1) + (3 - 1))))
    _, pooled_sd = mean_difference(a, b, None)  # across strata: the offset inflates it
    assert pooled_sd > 2 * sd


def test_a_projected_count_gives_a_one_estimate_test_at_least_the_power_asked():
    """Late slopes normal around a small rise, the Wilcoxon test one-sided: the count
    projected from the median's true distance and standard error at ten runs gives at least
    the power asked (the median's error is wider than what Wilcoxon's test reads, so the
    count errs high, by about pi/2 x 0.955 for normal slopes)."""
    rise, spread, now = 0.02, 0.05, 10
    se = math.sqrt(math.pi / 2) * spread / math.sqrt(now)  # of the median of `now` slopes
    n = math.ceil(projected_runs(Projection("median", rise, se, now, now), 0.05, "one-sided"))

    def significant(rng, n):
        slopes = rise + spread * rng.normal(size=n)
        return stats.wilcoxon(slopes, alternative="greater").pvalue < 0.05

    assert 0.75 < simulated_power(significant, n, repeats=400) < 0.97
    assert simulated_power(significant, n // 3, repeats=400) < 0.6


def test_open_one_estimate_claims_get_runs_needed_at_the_share_that_learned():
    rng = np.random.default_rng(9)
    runs = []
    for _ in range(10):
        slope = 0.02 + 0.05 * rng.normal()
        curve = [{"samples": s, "test_error": 0.05 * s**slope} for s in (1e3, 1e4, 1e5, 1e6)]
        runs.append({"best_error": 0.05, "status": "done", "curve": curve})
    runs += [{"best_error": 0.9, "status": "done", "curve": []}] * 5  # did not learn
    runs = [r | {"dataset": "mnist", "sweep": "long_lines", "reason": ""} for r in runs]
    check = Check("divergence", "rises", "effect", check_eventual_divergence)
    [finding] = evaluate_findings([(check, "long_lines", runs)])
    [test] = finding.tests
    assert (test.projection.learned, test.projection.finished) == (10, 15)
    learned = projected_runs(test.projection, alpha=0.05, sides=test.sides)
    [need] = runs_needed([finding], {"long_lines": 100.0})
    assert need.have == (15,) and need.needed == pytest.approx((learned * 15 / 10,))
    assert need.further == max(0, math.ceil(need.needed[0]) - 15)
    assert need.core_hours == pytest.approx(need.further * 100.0 / 3600)


def test_an_estimate_at_its_bound_cannot_be_decided_by_more_runs():
    at_bound = Projection("slope 1.50", 0.0, 0.1, 10, 10)
    assert projected_runs(at_bound, 0.05, "two one-sided tests") == math.inf


def need(claim: str, comparison: str, further: float, core_hours: float) -> Need:
    return Need(claim, "s", "t", comparison, "", (4, 4), (8.0, 8.0), further, core_hours)


def test_a_claim_needs_its_dearest_open_comparison_at_that_comparison_s_cheapest_test():
    needs = [
        need("a", "x", 10, 1.0),  # comparison x: its margin test is the cheaper
        need("a", "x", 4, 0.5),
        need("a", "y", 8, 2.0),  # y is the dearer comparison: the claim waits on it
        need("b", "z", math.inf, math.inf),  # no count decides it
        need("b", "w", 2, 0.1),
        need("c", "v", 6, math.nan),  # time per run unknown: nothing to weigh it by
    ]
    assert claim_core_seconds(needs) == {"a": 2.0 * 3600, "b": math.inf, "c": 0.0}


def one_estimate_finding(sweep: str, distance: float) -> Finding:
    """An open claim of one estimate, standard error 0.1 over 10 runs that all learned."""
    projection = Projection("ratio", distance, 0.1, 10, 10)
    test = StatTest("smoothness", 0.3, "two-sided", "", "", projection=projection)
    return Finding(sweep, "a claim", sweep, "effect", tests=[test], verdict="inconclusive")


def test_top_ups_leave_out_claims_whose_runs_needed_cost_far_more_than_is_left():
    plan, _ = twin_plan(8, 8)
    near = one_estimate_finding("a", 0.2)  # about 20 runs that learn would decide it
    far = one_estimate_finding("b", 0.005)  # tens of thousands would
    work = Work(specs={}, claims={}, findings=lambda store: [near, far])
    run_seconds = effective_run_seconds(plan, plan.experiment("a"))
    need_near = claim_core_seconds(runs_needed([near], {"a": run_seconds}))["a"]
    need_far = claim_core_seconds(runs_needed([far], {"b": run_seconds}))["b"]
    assert 0 < need_near < need_far / 100
    # within the shared rounds every open claim gets runs
    assert open_experiments(plan, work, None) == {"a": 1, "b": 1}
    # a top-up that can spend a tenth of the far claim's need leaves it out
    reach = REACH * need_far / 10
    still = open_experiments(plan, work, None, reach)
    assert still == {"a": 1} and list(plan.experiment("b").beyond_reach) == ["b"]
    # within reach: it asks for the runs a group (of both, which its estimate reads) that its
    # runs needed come to
    assert plan.experiment("a").asks == {"a": math.ceil(need_near / (2 * run_seconds))}
    assert plan.experiment("b").asks == {}
    round_ = allocate_round(plan, 3, reach / REACH, still)
    assert set(round_.added) == {"a"} and round_.open_before == ["a"]
    round_.beyond_reach = ["b b (its runs needed: ...)"]
    plan.rounds.append(round_)
    assert "beyond reach: b b" in format_plan(plan)
    # with the time to pay for it, it is back
    assert open_experiments(plan, work, None, 2 * need_far) == {"a": 1, "b": 1}
    assert plan.experiment("b").beyond_reach == {}


def test_the_stop_note_says_why_only_while_time_was_left():
    far = ["b b (its runs needed: 16 core-hours)"]
    note = stop_note(125.0, 3600.0, far)
    assert note == (
        "the top-ups stopped with 2m5s left: the open claims need far more runs than that pays "
        "for (1 core-hours): b b (its runs needed: 16 core-hours)"
    )
    # a budget overspent leaves every claim out of reach, and not for its cost
    assert stop_note(-14.0, 0.0, far) is None and stop_note(125.0, 3600.0, []) is None
    assert format_duration(-14.0) == "-14s" and format_duration(-3725) == "-1h2m5s"


def test_a_longer_budget_extends_a_plan_and_a_shorter_one_is_refused(tmp_path):
    plan, _ = twin_plan(8, 8)
    plan.notes = [f"{STOPPED} with 2m left: ...", "another note"]
    path = tmp_path / "results.plan.json"
    plan.save(path)
    assert load_plan(path, 900.0, ["a", "b"]).budget == 900  # the same: resumed
    for budget, specs in ((600.0, ["a", "b"]), (900.0, ["a"]), (1800.0, ["a", "c"])):
        with pytest.raises(UserError, match="was made for --budget 15m and a, b.*extends it"):
            load_plan(path, budget, specs)
    longer = load_plan(path, 1800.0, ["a", "b"])
    runs = [g.runs for e in longer.experiments for g in e.groups]
    extend_plan(longer, 1800.0)
    # lengths and runs as they were; the note that the top-ups had stopped no longer holds
    assert (longer.budget, longer.planned_for, longer.notes) == (1800, 900, ["another note"])
    assert [g.runs for e in longer.experiments for g in e.groups] == runs
    assert [e.samples for e in longer.experiments] == [e.samples for e in plan.experiments]
    assert "budget 30m (extended from 15m, the budget its run lengths were chosen for)" in (
        format_plan(longer)
    )
    extend_plan(longer, 3600.0)  # again: still the budget its lengths were chosen for
    assert (longer.budget, longer.planned_for) == (3600, 900)
    longer.save(path)
    assert load_plan(path, 3600.0, ["a", "b"]).planned_for == 900


def test_the_report_gives_the_budget_that_pays_for_the_runs_needed():
    plan, _ = twin_plan(8, 8)
    near, also = one_estimate_finding("a", 0.2), one_estimate_finding("b", 0.15)
    seconds = {e.spec: effective_run_seconds(plan, e) for e in plan.experiments}
    needs = claim_core_seconds(runs_needed([near, also], seconds))
    # what 2 cores at the measured share of their time train in the time added
    wall = (needs["a"] + needs["b"]) / (plan.cores * MEASURED_USABLE)
    budget = budget_for(plan, needs["a"] + needs["b"])
    assert budget % 300 == 0 and plan.budget + wall <= budget < plan.budget + wall + 300
    text = extension_text(plan, runs_needed([near, also], seconds))
    assert f"--budget {format_duration(budget)} (now 15m)" in text and "(a, b;" in text
    # a claim no count of runs decides is not paid for; nothing sized, nothing said
    unbounded = one_estimate_finding("b", 0.0)
    assert f"--budget {format_duration(budget_for(plan, needs['a']))} " in (
        extension_text(plan, runs_needed([near, unbounded], seconds))
    )
    assert extension_text(plan, runs_needed([unbounded], seconds)) is None


# -- resuming, on real MNIST ----------------------------------------------------------------


LSTMBENCH = "import sys; from lstmbench.cli.main import main; sys.exit(main(sys.argv[1:]))"


def test_the_same_command_resumes_and_trains_nothing_twice(tmp_path, mnist_dir, capsys):
    db = tmp_path / "results.db"
    command = [
        "reproduce",
        "--budget",
        "90s",  # enough that a loaded machine still plans the pilot
        "--only",
        "lr_hidden",
        "--data",
        str(mnist_dir),
        "--db",
        str(db),
        "--out",
        str(tmp_path / "report"),
        "--quiet",
    ]
    # The first invocation builds the C++ kernels afresh, as on a new installation: the
    # build (a minute or more) is set-up, and must not eat the budget before it plans runs.
    fresh_kernels = {**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path / "kernels")}
    done = subprocess.run(
        [sys.executable, "-c", LSTMBENCH, *command],
        env=fresh_kernels,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "plan written to" in done.stdout
    assert any((tmp_path / "kernels").glob("lstmbench/lstmbench_spec_lstm_*/*.so"))  # built here
    plan = json.loads((tmp_path / "results.plan.json").read_text())
    # a real budget on this machine: on failure, show the plan it made
    shown = format_plan(Plan.from_dict(plan))
    assert len(plan["rounds"]) >= len(ROUND_SHARES), shown  # and top-ups while time was left
    assert all(r["done"] and r["wall_seconds"] > 0 for r in plan["rounds"] if r["added"])
    with sqlite3.connect(db) as connection:
        first = connection.execute("SELECT run_id, finished FROM runs ORDER BY run_id").fetchall()
    assert len(first) >= PILOT_POINTS
    [experiment] = plan["experiments"]
    # its own speed measured: what its runs took against calibration's timing of them
    assert experiment["measured_seconds"] > 0 and experiment["predicted_seconds"] > 0
    # lr_hidden's claims are about how the error changes with the rate: no second stage
    assert not experiment["refine"] and all(
        len(g["pilot"]) == PILOT_POINTS for g in experiment["groups"]
    )
    report = (tmp_path / "report" / "report.md").read_text()
    assert "## Learning-rate pilot" in report and "## Runs needed" in report
    [row] = [line for line in report.splitlines() if line.startswith("lr_hidden  ")]
    ratio = experiment["measured_seconds"] / experiment["predicted_seconds"]
    assert f"x{ratio:.2f}" in row  # the plan table's measured column

    assert main(command) == 0
    assert "resuming the plan" in capsys.readouterr().out
    with sqlite3.connect(db) as connection:
        again = connection.execute("SELECT run_id, finished FROM runs ORDER BY run_id").fetchall()
    resumed = format_plan(load_plan(tmp_path / "results.plan.json", 90.0, ["lr_hidden"]))
    assert again == first, f"first plan:\n{shown}\nafter resuming:\n{resumed}"  # none again

    # a longer budget extends the plan: what it trained is kept, and the time added goes to
    # top-ups of the same run length while a claim is open
    command[command.index("90s")] = "150s"
    assert main(command) == 0
    assert "extending the plan" in capsys.readouterr().out
    extended = json.loads((tmp_path / "results.plan.json").read_text())
    assert (extended["budget"], extended["planned_for"]) == (150, 90)
    assert extended["rounds"][: len(plan["rounds"])] == plan["rounds"]
    assert extended["experiments"][0]["samples"] == experiment["samples"]
    added = extended["rounds"][len(plan["rounds"]) :]
    if not added:  # no claim open within the time added: all decided, or a note says why
        decided = all(v in DECIDED for v in extended["experiments"][0]["verdicts"].values())
        assert decided or any(n.startswith(STOPPED) for n in extended["notes"]), extended
    assert all(r["number"] > len(ROUND_SHARES) and r["done"] for r in added)
    with sqlite3.connect(db) as connection:
        after = connection.execute("SELECT run_id, finished FROM runs ORDER BY run_id").fetchall()
    assert set(first) <= set(after) and (len(after) > len(first)) == bool(added)

    with pytest.raises(UserError, match="same --budget"):
        load_plan(tmp_path / "results.plan.json", 90.0, ["lr_hidden"])
    (tmp_path / "results.plan.json").write_text('{"budget": 90')  # cut off mid-write
    with pytest.raises(UserError, match="cannot be read .*remove it and its database"):
        load_plan(tmp_path / "results.plan.json", 90.0, ["lr_hidden"])


def test_an_equivalence_with_too_few_runs_that_learned_says_so_and_asks_no_count():
    def runs(output: str, errors: list[float]) -> list[dict]:
        return [
            {"best_error": e, "status": "done", "dataset": "mnist", "output": output}
            | {"sweep": "cell_types_mnist", "reason": ""}
            for e in errors
        ]

    # softmax runs learned, logistic ones sat at chance: nothing to measure a margin on
    group = runs("softmax", [0.05, 0.06, 0.04]) + runs("logistic", [0.9, 0.9, 0.9])
    check = Check("output_mnist", "outputs alike", "null", check_output_alike)
    [finding] = evaluate_findings([(check, "cell_types_mnist", group)])
    [need] = [n for n in runs_needed([finding], {"cell_types_mnist": 36.0}) if "TOST" in n.test]
    assert "3 and 0 runs learned: too few to measure" in need.effect
    assert need.needed == (math.inf, math.inf) and "nan" not in need.effect


def test_open_claims_get_runs_needed_from_their_observed_effect():
    rng = np.random.default_rng(3)

    def runs(output: str, count: int) -> list[dict]:
        errors = 10 ** rng.normal(-1.3, 0.15, count)  # every run learned, errors near 5%
        return [
            {"best_error": float(e), "status": "done", "dataset": "mnist", "output": output}
            | {"sweep": "cell_types_mnist", "reason": ""}
            for e in errors
        ]

    group = runs("softmax", 5) + runs("logistic", 5)
    check = Check("output_mnist", "outputs alike", "null", check_output_alike)
    [finding] = evaluate_findings([(check, "cell_types_mnist", group)])
    assert finding.verdict == "inconclusive"  # five runs a group cannot show x1.25
    # sized both ways: the difference would contradict the claim, the margin confirm it
    difference, need = runs_needed([finding], {"cell_types_mnist": 36.0})
    assert "difference" in difference.test and difference.have == (5, 5)
    assert need.have == (5, 5) and "TOST" in need.test
    assert 5 < need.needed[0] == need.needed[1] < math.inf
    assert need.further == 2 * (math.ceil(need.needed[0]) - 5)
    assert need.core_hours == pytest.approx(need.further * 36.0 / 3600)
