"""The optimizer settings: Adam for stacked runs against torch.optim.Adam run by run, a run's
id, an Adam run trained by the fast path against the same run on the reference path (torch's
own Adam), fused against alone; and halving the learning rate when the error stops falling.
The C++ update is held to the torch-operations one in tests/test_network_step.py."""

import dataclasses

import pytest
import torch

from lstmbench.errors import UserError
from lstmbench.training.config import ADAM_BETA2, ADAM_EPS, RunConfig
from lstmbench.training.fused import FusedOptimizer
from lstmbench.training.loop import train_run, train_runs


def assert_trained_alike(mine, theirs):
    """Two runs' training losses at every evaluation and final weights, to float rounding."""
    assert [p["train_loss"] for p in mine.curve] == pytest.approx(
        [p["train_loss"] for p in theirs.curve], rel=1e-4
    )
    for a, b in zip(mine.model.parameters(), theirs.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_stacked_adam_is_torchs_adam_run_by_run():
    torch.manual_seed(0)
    configs = [
        RunConfig(optimizer="adam", lr=0.01, momentum=0.9),
        RunConfig(optimizer="adam", lr=0.003, momentum=0.5),
        RunConfig(optimizer="adam", lr=0.02, momentum=0.0),
    ]
    start = torch.randn(3, 4, 5, dtype=torch.float64)
    stacked = start.clone()
    fused = FusedOptimizer([stacked], configs)
    alone = [start[k].clone().requires_grad_() for k in range(3)]
    references = [
        torch.optim.Adam([p], lr=c.lr, betas=(c.momentum, ADAM_BETA2), eps=ADAM_EPS)
        for p, c in zip(alone, configs, strict=True)
    ]
    for _ in range(5):
        grad = torch.randn(3, 4, 5, dtype=torch.float64)
        stacked.grad = grad.clone()
        fused.step()
        for k, (param, optimizer) in enumerate(zip(alone, references, strict=True)):
            param.grad = grad[k].clone()
            optimizer.step()
    assert fused.updates == 5
    for k in range(3):
        torch.testing.assert_close(stacked[k], alone[k].detach(), rtol=1e-12, atol=1e-14)


def test_sgd_keeps_the_ids_of_recorded_runs_and_adam_gets_its_own():
    assert "optimizer" not in RunConfig().to_dict()
    assert RunConfig(optimizer="sgd").run_id == RunConfig().run_id
    assert RunConfig(optimizer="adam").run_id != RunConfig().run_id


def test_an_unknown_optimizer_is_refused_by_name():
    with pytest.raises(UserError, match="unknown optimizer 'rmsprop'; valid optimizers: sgd, adam"):
        RunConfig(optimizer="rmsprop")


def test_an_adam_run_on_the_fast_path_equals_torchs_adam(small_mnist):
    fast = RunConfig(
        optimizer="adam",
        lr=0.003,
        cell="NPLSTM",
        direction="uni",
        target="end",
        hidden=16,
        batch_size=20,
        samples=400,
        eval_every=200,
        eval_samples=200,
    )
    reference = dataclasses.replace(fast, impl="reference")  # a SingleNet: torch.optim.Adam
    results = [train_run(c, progress=False, datasets=small_mnist) for c in (fast, reference)]
    mine, theirs = results
    assert_trained_alike(mine, theirs)
    # and it learned: the loss fell
    assert mine.curve[-1]["train_loss"] < mine.curve[0]["train_loss"]


def test_fused_adam_runs_equal_adam_runs_alone(small_mnist):
    base = RunConfig(
        optimizer="adam",
        cell="LSTM",
        direction="bidi",
        target="ctc",
        hidden=8,
        batch_size=16,
        samples=320,
        eval_every=160,
        eval_samples=200,
    )
    configs = [
        dataclasses.replace(base, lr=0.003, momentum=0.9, seed=0),
        dataclasses.replace(base, lr=0.001, momentum=0.5, seed=1),
        dataclasses.replace(base, lr=0.01, momentum=0.0, seed=0),
    ]
    alone = [train_run(c, progress=False, datasets=small_mnist) for c in configs]
    fused = train_runs(configs, small_mnist)
    for one, other in zip(alone, fused, strict=True):
        assert_trained_alike(other, one)


def test_the_rate_halves_after_evaluations_without_a_new_lowest_error(small_mnist):
    """A run with halve_lr_after=2 trains exactly like one without it up to the evaluation
    that makes two in a row without a new lowest error, and differently after it."""
    base = RunConfig(
        optimizer="adam",
        cell="NPLSTM",
        direction="uni",
        target="ctc",
        hidden=8,
        batch_size=20,
        lr=0.01,  # too high to settle at this size: the error soon stops setting new lows
        samples=2000,
        eval_every=100,
        eval_samples=100,
    )
    halving = dataclasses.replace(base, halve_lr_after=2)
    plain, halved = (train_run(c, progress=False, datasets=small_mnist) for c in (base, halving))
    errors = [p["test_error"] for p in plain.curve]
    first = next(
        i for i in range(2, len(errors)) if min(errors[i - 1 : i + 1]) >= min(errors[: i - 1])
    )
    assert first + 1 < len(errors)
    same = plain.curve[: first + 1]
    assert [p["train_loss"] for p in halved.curve[: first + 1]] == pytest.approx(
        [p["train_loss"] for p in same], rel=1e-5
    )
    assert [p["train_loss"] for p in halved.curve[first + 1 :]] != pytest.approx(
        [p["train_loss"] for p in plain.curve[first + 1 :]], rel=1e-3
    )


def test_halving_one_stacked_run_leaves_the_others_rates():
    configs = [RunConfig(lr=0.4, momentum=0.0), RunConfig(lr=0.1, momentum=0.0)]
    param = torch.ones(2, 3)
    optimizer = FusedOptimizer([param], configs)
    optimizer.halve_rate(0)
    param.grad = torch.ones(2, 3)
    optimizer.step()
    torch.testing.assert_close(param, torch.tensor([[0.8] * 3, [0.9] * 3]))


def test_a_negative_halving_patience_is_refused():
    with pytest.raises(UserError, match="halve_lr_after must not be negative"):
        RunConfig(halve_lr_after=-1)
