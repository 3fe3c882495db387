"""Learning-rate schedules: the cosine factor against its formula, a run's progress by
samples or by time, the stacked update at a scheduled rate, and a cosine run trained on the
fast path against the same run on the reference path (torch's optimizers)."""

import dataclasses
import math

import pytest
import torch
from test_optimizer import assert_trained_alike

from lstmbench.errors import UserError
from lstmbench.training.config import RunConfig
from lstmbench.training.fused import FusedOptimizer
from lstmbench.training.loop import train_run
from lstmbench.training.schedule import rate_factor, run_progress


def test_the_cosine_factor_falls_from_one_to_zero_along_half_a_cosine():
    points = [i / 20 for i in range(21)]
    factors = [rate_factor("cosine", p) for p in points]
    assert factors[0] == 1.0 and factors[-1] == pytest.approx(0.0, abs=1e-15)
    assert factors[10] == pytest.approx(0.5)
    assert factors[5] == pytest.approx((1 + math.sqrt(0.5)) / 2)
    assert all(a > b for a, b in zip(factors, factors[1:], strict=False))
    # outside the run it holds its end values
    assert rate_factor("cosine", -0.5) == 1.0 and rate_factor("cosine", 1.5) == factors[-1]


def test_the_constant_schedule_keeps_the_rate():
    assert {rate_factor("constant", p) for p in (0.0, 0.3, 1.0, 2.0)} == {1.0}


def test_progress_is_by_samples_or_by_time_whichever_is_further():
    assert run_progress(250, 1000, 5.0, 0.0) == 0.25  # no time limit: samples alone
    assert run_progress(250, 1000, 30.0, 60.0) == 0.5  # the time limit ends it sooner
    assert run_progress(900, 1000, 30.0, 60.0) == 0.9
    assert run_progress(2000, 1000, 90.0, 60.0) == 1.0


def test_a_stacked_update_takes_every_runs_rate_times_the_schedules_factor():
    configs = [RunConfig(lr=0.4, momentum=0.0), RunConfig(lr=0.1, momentum=0.0)]
    param = torch.ones(2, 3)
    optimizer = FusedOptimizer([param], configs)
    optimizer.halve_rate(0)
    optimizer.schedule_factor = 0.5
    param.grad = torch.ones(2, 3)
    optimizer.step()
    torch.testing.assert_close(param, torch.tensor([[0.9] * 3, [0.95] * 3]))


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_cosine_run_on_the_fast_path_equals_it_on_torchs_optimizers(small_mnist, optimizer):
    """Both paths apply the same factor at the same steps; and the schedule changes the run."""
    cosine = RunConfig(
        optimizer=optimizer,
        lr=0.003 if optimizer == "adam" else 0.05,
        lr_schedule="cosine",
        halve_lr_after=1,  # halvings and the schedule together
        cell="NPLSTM",
        direction="uni",
        target="end",
        hidden=16,
        batch_size=20,
        samples=600,
        eval_every=100,
        eval_samples=100,
    )
    reference = dataclasses.replace(cosine, impl="reference")  # a SingleNet: torch's optimizer
    constant = dataclasses.replace(cosine, lr_schedule="constant")
    runs = [train_run(c, progress=False, datasets=small_mnist) for c in (cosine, reference)]
    assert_trained_alike(*runs)
    plain = train_run(constant, progress=False, datasets=small_mnist)
    assert [p["train_loss"] for p in plain.curve[1:]] != pytest.approx(
        [p["train_loss"] for p in runs[0].curve[1:]], rel=1e-3
    )


def test_the_constant_schedule_keeps_the_ids_of_recorded_runs():
    assert "lr_schedule" not in RunConfig().to_dict()
    assert RunConfig(lr_schedule="cosine").run_id != RunConfig().run_id


def test_an_unknown_schedule_is_refused_by_name():
    with pytest.raises(UserError, match="unknown learning-rate schedule 'linear'; valid"):
        RunConfig(lr_schedule="linear")
