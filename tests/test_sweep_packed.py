"""Packed runs give the same results as separate runs (same seeds, same curves)."""

import dataclasses

import pytest
import torch

from lstmbench.sweep.worker import run_task
from lstmbench.training.config import RunConfig
from lstmbench.training.loop import train_run, train_runs
from lstmbench.training.packed import MAX_PACKED_UNITS, PackUnstable, make_tasks


def variants(base: RunConfig) -> list[RunConfig]:
    """Runs that differ only in learning rate, momentum and seed."""
    return [
        dataclasses.replace(base, lr=0.05, momentum=0.9, seed=0),
        dataclasses.replace(base, lr=0.02, momentum=0.5, seed=1),
        dataclasses.replace(base, lr=0.2, momentum=0.0, seed=0),
    ]


def assert_same_run(separate, packed, eval_samples):
    assert packed.config == separate.config
    assert packed.status == separate.status and packed.samples_seen == separate.samples_seen
    assert len(packed.curve) == len(separate.curve)
    # one record: the same fields, in the curve points and in the stored form
    assert packed.to_dict().keys() == separate.to_dict().keys()
    for mine, theirs in zip(packed.curve, separate.curve, strict=True):
        assert mine.keys() == theirs.keys() == {"samples", "test_error", "train_loss", "wall_time"}
        assert mine["samples"] == theirs["samples"]
        assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-4, abs=1e-6)
        # one near-tie decision may flip with the last bit of a weight, no more
        assert abs(mine["test_error"] - theirs["test_error"]) <= 1 / eval_samples
    for mine, theirs in zip(packed.model.parameters(), separate.model.parameters(), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "base",
    [
        RunConfig(
            cell="NPLSTM",
            direction="uni",
            output="softmax",
            target="end",
            hidden=16,
            batch_size=20,
            samples=400,
            eval_every=200,
            eval_samples=200,
        ),
        # every block kind: two bidirectional layers, peepholes, logistic outputs, CTC
        RunConfig(
            cell="LSTM",
            direction="bidi",
            layers=2,
            output="logistic",
            target="ctc",
            hidden=6,
            batch_size=16,
            samples=320,
            eval_every=160,
            eval_samples=200,
        ),
        # stopped as stuck at chance at the first evaluation, all of them
        RunConfig(
            cell="NPLSTM",
            direction="uni",
            target="center",
            hidden=4,
            batch_size=20,
            samples=400,
            eval_every=100,
            eval_samples=100,
            stuck_evals=1,
        ),
    ],
    ids=["uni-softmax-end", "bidi2-logistic-ctc", "stuck"],
)
def test_packed_runs_equal_separate_runs(small_mnist, base):
    configs = variants(base)
    separate = [train_run(c, progress=False, datasets=small_mnist) for c in configs]
    packed = train_runs(configs, small_mnist)
    for one, other in zip(separate, packed, strict=True):
        assert_same_run(one, other, base.eval_samples)
    if base.stuck_evals == 1:
        assert {r.status for r in packed} == {"diverged"}
        assert {r.samples_seen for r in packed} == {100}


def test_a_pack_that_blows_up_falls_back_to_separate_runs(mnist_dir):
    base = RunConfig(
        cell="RELU2LSTM",
        direction="uni",
        target="end",
        hidden=8,
        batch_size=20,
        samples=200,
        eval_every=100,
        eval_samples=100,
    )
    configs = [dataclasses.replace(base, lr=lr, momentum=0.9) for lr in (1e-3, 1e3)]
    from lstmbench.sweep.worker import datasets_for

    datasets = datasets_for(configs[0], str(mnist_dir))
    with pytest.raises(PackUnstable):
        train_runs(configs, datasets)
    outcomes = run_task([c.to_dict() for c in configs], str(mnist_dir), packed=True)
    separate = [train_run(c, progress=False, datasets=datasets) for c in configs]
    assert [o["result"]["status"] for o in outcomes] == ["done", "diverged"]
    for outcome, run in zip(outcomes, separate, strict=True):
        stored = outcome["result"]
        assert stored["samples_seen"] == run.samples_seen and stored["reason"] == run.reason
        without_time = [{k: v for k, v in p.items() if k != "wall_time"} for p in run.curve]
        assert [{k: v for k, v in p.items() if k != "wall_time"} for p in stored["curve"]] == (
            without_time
        )


def test_only_runs_of_one_shape_are_packed():
    base = RunConfig(cell="LSTM", hidden=16, samples=100)
    runs = [dataclasses.replace(base, lr=0.01 * (i + 1), seed=i % 3) for i in range(10)]
    runs += [dataclasses.replace(base, hidden=32, lr=0.1), dataclasses.replace(base, cell="GRU")]
    tasks = make_tasks(runs, 4)
    assert sorted(len(t) for t in tasks) == [1, 1, 2, 4, 4]
    for task in tasks:
        assert len({(c.hidden, c.cell) for c in task}) == 1
    assert make_tasks(runs, 1) == [[c] for c in runs]
    wide = [dataclasses.replace(base, hidden=50, lr=0.01 * (i + 1)) for i in range(5)]
    assert max(len(t) for t in make_tasks(wide, 8)) == MAX_PACKED_UNITS["batched"] // 50
    single = [dataclasses.replace(c, batch_size=1) for c in wide]
    assert max(len(t) for t in make_tasks(single, 8)) == MAX_PACKED_UNITS["single"] // 50
    lines = [
        dataclasses.replace(base, dataset="uw3like:tiny", target="ctc", seed=s) for s in (1, 2)
    ]
    assert len(make_tasks(lines, 8)) == 2  # variable-length batches: the seed must match
