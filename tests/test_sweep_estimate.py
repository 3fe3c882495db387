"""`sweep estimate`: real timings of a tiny spec on real MNIST, and the arithmetic built on them."""

import json
import re

import pytest
import torch
from conftest import shared_data

from lstmbench.cli.main import main
from lstmbench.errors import UserError
from lstmbench.sweep.estimate import EstimateOptions, estimate_spec, schedule, slope_per_sample
from lstmbench.sweep.spec import load_spec
from lstmbench.training.fused import make_tasks

# Two configuration groups (hidden 4 and 8) of five runs each; packs of three split each
# group into tasks of three and two runs, so the two-run tasks are costed by interpolation.
SPEC = """
name = "estimate_test"
runs = 10
[fixed]
dataset = "mnist"
cell = "LSTM"
direction = "bidi"
target = "ctc"
batch_size = 10
samples = 3000
eval_every = 1000
eval_samples = 200
[sweep]
hidden = { values = [4, 8] }
lr = { log_uniform = [1e-3, 1e-1] }
"""
OPTIONS = dict(pack=3, workers=2, ray_workers=7, steps=3, repeats=1)


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("estimate") / "estimate_test.toml"
    path.write_text(SPEC)
    return path


@pytest.fixture(scope="module")
def estimate(spec_file):
    options = EstimateOptions(data_path=str(shared_data("mnist")), **OPTIONS)
    return estimate_spec(load_spec(spec_file), options)


def test_groups_are_timed(estimate):
    assert [g.label for g in estimate.groups] == ["hidden=4", "hidden=8"]
    for group in estimate.groups:
        assert len(group.runs) == 5
        assert group.pack == 3
        assert group.alone > 0 and group.fused_task > 0 and group.eval_sample > 0
        assert group.fused == pytest.approx(group.fused_task / 3)


def test_totals_are_the_sum_over_groups(estimate):
    for mode, column in (("alone", 0), ("fused", 1)):
        by_group = [hours[column] for hours in estimate.group_core_hours]
        assert all(hours > 0 for hours in by_group)
        assert estimate.core_hours(mode) == pytest.approx(sum(by_group))
        tasks = estimate.tasks_fused if mode == "fused" else estimate.tasks_alone
        assert estimate.core_hours(mode) == pytest.approx(sum(tasks) / 3600)


def test_costs_come_from_the_timings_and_the_grouping(estimate):
    # Each run: 3000 samples and 3 evaluations of 200 test samples.
    assert [estimate.samples(c) for c in estimate.configs] == [3000] * 10
    assert {estimate.evaluations(c) for c in estimate.configs} == {3}
    for group, (alone, fused) in zip(estimate.groups, estimate.group_core_hours, strict=True):
        evaluating = 3 * 200 * group.eval_sample
        assert alone == pytest.approx(5 * (group.alone * 3000 + evaluating) / 3600)
        sizes = sorted(len(task) for task in make_tasks(group.runs, 3))
        assert sizes == [2, 3]
        two = (group.alone + (group.fused_task - group.alone) / 2) * 3000  # halfway to K=3
        three = group.fused_task * 3000
        assert fused == pytest.approx((two + three + 5 * evaluating) / 3600)


def test_seconds_per_sample_leave_out_the_fixed_start():
    # a start of 30 ms and 1 ms a sample: the average of a 30-sample timing is twice the rate
    start, rate = 0.030, 0.001
    short, long = start + 30 * rate, start + 120 * rate
    assert slope_per_sample(short, 30, long, 120) == pytest.approx(rate)
    assert long / 120 > 1.2 * rate
    # timing noise that leaves no positive difference: the long timing's average, a bound
    assert slope_per_sample(0.2, 30, 0.19, 120) == pytest.approx(0.19 / 120)


def test_wall_time_schedules_whole_tasks_in_order():
    assert schedule([3, 3, 3], 2) == 6  # the third task waits for a free worker
    assert schedule([5, 1, 1, 1], 2) == 5  # the short tasks share the other worker
    assert schedule([1, 1, 1, 5], 2) == 6  # started in order, not longest first
    assert schedule([2, 4], 100) == 4  # no faster than the longest task
    assert schedule([], 3) == 0


def test_wall_time_of_the_estimate(estimate):
    # packs of at most 3; on 7 workers a share of the work (5 runs of 8 units and 5 of 4,
    # about 2.25 times the weights) is 1.03 runs of 8 units or 2.3 of 4, rounded up
    assert [len(t) for t in estimate.fused_tasks(2)] == [3, 2, 3, 2]
    assert [len(t) for t in estimate.fused_tasks(7)] == [2, 2, 3, 1, 2]
    for mode in ("alone", "fused"):
        for workers in (1, 2, 7):
            tasks = estimate.tasks_alone
            if mode == "fused":
                tasks = [estimate.task_seconds(t) for t in estimate.fused_tasks(workers)]
            wall = estimate.wall_hours(mode, workers)
            assert wall == pytest.approx(schedule(tasks, workers) / 3600)
            assert wall >= estimate.core_hours(mode) / workers * (1 - 1e-9)
        assert estimate.wall_hours(mode, 1) == pytest.approx(estimate.core_hours(mode))
    assert len(estimate.tasks_alone) == 10 and len(estimate.tasks_fused) == 4
    # in the order the runner hands tasks out: the 8-unit runs (the dearer) first
    hidden_8 = {c.run_id for c in estimate.groups[1].runs}
    assert estimate.tasks_alone == [
        estimate.run_seconds[i]
        for i in sorted(estimate.run_seconds, key=lambda i: i not in hidden_8)
    ]


def test_command_prints_the_table_and_writes_json(spec_file, tmp_path, capsys):
    out = tmp_path / "estimate.json"
    args = ["sweep", "estimate", str(spec_file), "--data", str(shared_data("mnist"))]
    args += ["--pack", "3", "--workers", "2", "--ray-workers", "7", "--steps", "2"]
    assert main([*args, "--repeats", "1", "--quiet", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "estimate_test at scale tiny: 10 runs in 2 configuration groups" in printed
    assert re.search(r"^hidden=4 +5 +3,000", printed, re.MULTILINE), printed
    assert "on 2 local workers of one core" in printed
    assert "on 7 Ray workers of one core" in printed
    record = json.loads(out.read_text())
    assert [g["runs"] for g in record["groups"]] == [5, 5]
    total = sum(g["core_hours_fused"] for g in record["groups"])
    assert record["core_hours"]["fused"] == pytest.approx(total)
    assert record["wall"]["ray"]["workers"] == 7


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--workers", "0"], "--workers must be at least 1, got 0"),
        (["--pack", "0"], "--pack must be at least 1, got 0"),
        (["--steps", "-1"], "--steps must be at least 1, got -1"),
        (["--device", "tpu"], "--device 'tpu' is not cpu, cuda or cuda:N"),
        *(
            []
            if torch.cuda.is_available()
            else [(["--device", "cuda"], "--device cuda: torch sees no GPU on this machine")]
        ),
    ],
)
def test_bad_options_end_in_one_message(spec_file, extra, message, capsys):
    assert main(["sweep", "estimate", str(spec_file), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lstmbench: error:") and message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_unknown_spec_ends_in_one_message(capsys):
    assert main(["sweep", "estimate", "no_such_spec"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lstmbench: error: no spec file no_such_spec")
    assert "lr_hidden" in err and "Traceback" not in err


def test_options_are_checked_before_timing(spec_file):
    with pytest.raises(UserError, match="--ray-workers must be at least 1"):
        estimate_spec(load_spec(spec_file), EstimateOptions(ray_workers=0))
