"""Fused runs give the same results as runs trained alone (same seeds, same curves), for every
paper cell type, both directions, both output layers, fixed and CTC targets, and text lines;
also where runs share a seed (one data order) and where one run stops while others go on."""

import dataclasses

import pytest
import torch

from lstmbench.data import load_dataset
from lstmbench.data.lines.generate import GenerationParams, generate
from lstmbench.model.cells import PAPER_PRESETS
from lstmbench.sweep.worker import run_task
from lstmbench.training.config import RunConfig
from lstmbench.training.fused import FusedUnstable, fuse_key, make_tasks
from lstmbench.training.loop import train_run, train_runs


def variants(base: RunConfig) -> list[RunConfig]:
    """Runs that differ only in learning rate, momentum and seed."""
    return [
        dataclasses.replace(base, lr=0.05, momentum=0.9, seed=0),
        dataclasses.replace(base, lr=0.02, momentum=0.5, seed=1),
        dataclasses.replace(base, lr=0.2, momentum=0.0, seed=0),
    ]


def assert_same_run(separate, fused, eval_samples):
    assert fused.config == separate.config
    assert fused.status == separate.status and fused.samples_seen == separate.samples_seen
    assert len(fused.curve) == len(separate.curve)
    # one record: the same fields, in the curve points and in the stored form
    assert fused.to_dict().keys() == separate.to_dict().keys()
    for mine, theirs in zip(fused.curve, separate.curve, strict=True):
        assert mine.keys() == theirs.keys() == {"samples", "test_error", "train_loss", "wall_time"}
        assert mine["samples"] == theirs["samples"]
        assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-4, abs=1e-6)
        # one near-tie decision may flip with the last bit of a weight, no more
        assert abs(mine["test_error"] - theirs["test_error"]) <= 1 / eval_samples
    for mine, theirs in zip(fused.model.parameters(), separate.model.parameters(), strict=True):
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
def test_fused_runs_equal_runs_alone(small_mnist, base):
    configs = variants(base)
    separate = [train_run(c, progress=False, datasets=small_mnist) for c in configs]
    fused = train_runs(configs, small_mnist)
    for one, other in zip(separate, fused, strict=True):
        assert_same_run(one, other, base.eval_samples)
    if base.stuck_evals == 1:
        assert {r.status for r in fused} == {"diverged"}
        assert {r.samples_seen for r in fused} == {100}


def test_a_group_that_blows_up_falls_back_to_runs_alone(mnist_dir):
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
    with pytest.raises(FusedUnstable):
        train_runs(configs, datasets)
    outcomes = run_task([c.to_dict() for c in configs], str(mnist_dir), fused=True)
    separate = [train_run(c, progress=False, datasets=datasets) for c in configs]
    assert [o["result"]["status"] for o in outcomes] == ["done", "diverged"]
    for outcome, run in zip(outcomes, separate, strict=True):
        stored = outcome["result"]
        assert stored["samples_seen"] == run.samples_seen and stored["reason"] == run.reason
        without_time = [{k: v for k, v in p.items() if k != "wall_time"} for p in run.curve]
        assert [{k: v for k, v in p.items() if k != "wall_time"} for p in stored["curve"]] == (
            without_time
        )


def test_the_dearest_tasks_come_first():
    # Workers take tasks in order: a long run started last would end the sweep alone.
    base = RunConfig(cell="LSTM", samples=1000, batch_size=1)
    sizes = [25, 25, 200, 25, 100, 200]
    runs = [dataclasses.replace(base, hidden=h, lr=0.01 * (i + 1)) for i, h in enumerate(sizes)]
    long = dataclasses.replace(base, hidden=25, samples=10**6)
    tasks = make_tasks([*runs, long], 16)
    assert [(t[0].hidden, len(t)) for t in tasks] == [(25, 1), (200, 2), (100, 1), (25, 3)]
    assert tasks[0] == [long]
    assert [t[0].hidden for t in make_tasks(runs, 1)] == [200, 200, 100, 25, 25, 25]
    assert [t[0].lr for t in make_tasks(runs, 1)][-3:] == [0.01, 0.02, 0.04]  # ties in order


def test_only_runs_of_one_shape_are_fused():
    base = RunConfig(cell="LSTM", hidden=16, samples=100)
    runs = [dataclasses.replace(base, lr=0.01 * (i + 1), seed=i % 3) for i in range(10)]
    runs += [dataclasses.replace(base, hidden=32, lr=0.1), dataclasses.replace(base, cell="GRU")]
    tasks = make_tasks(runs, 4)
    assert sorted(len(t) for t in tasks) == [1, 1, 2, 4, 4]
    for task in tasks:
        assert len({(c.hidden, c.cell) for c in task}) == 1
    # one run each, the dearest first (hidden 32), the others in their order
    assert make_tasks(runs, 1) == [[runs[10]]] + [[c] for c in runs[:10] + runs[11:]]
    small = [dataclasses.replace(base, hidden=50, batch_size=1, lr=0.01 * i) for i in range(1, 21)]
    assert [len(t) for t in make_tasks(small, 16)] == [16, 4]
    # where a step is big, fusing loses to the runs alone (MAX_FUSED_WORK): fewer, or none
    mid = [dataclasses.replace(c, hidden=200) for c in small[:8]]
    assert [len(t) for t in make_tasks(mid, 16)] == [5, 3]
    wide = [dataclasses.replace(c, hidden=500) for c in small[:4]]
    assert [len(t) for t in make_tasks(wide, 16)] == [1, 1, 1, 1]
    reference = dataclasses.replace(base, impl="reference")
    assert make_tasks([reference, dataclasses.replace(reference, lr=0.5)], 8) == [
        [reference],
        [dataclasses.replace(reference, lr=0.5)],
    ]
    lines = [
        dataclasses.replace(base, dataset="uw3like:tiny", target="ctc", seed=s) for s in (1, 2)
    ]
    assert len(make_tasks(lines, 8)) == 2  # variable-length batches: the seed must match
    one_seed = [dataclasses.replace(c, seed=1) for c in lines]
    assert len(make_tasks(one_seed, 8)) == 2  # and even then lines train alone: it pays


@pytest.mark.parametrize("target", ["end", "ctc"])
@pytest.mark.parametrize("output", ["softmax", "logistic"])
@pytest.mark.parametrize("direction", ["uni", "bidi"])
@pytest.mark.parametrize("cell", list(PAPER_PRESETS))
def test_every_paper_type_fuses_exactly(small_mnist, cell, direction, output, target):
    """Two runs share seed 0 (one data order, the usual case in a sweep), one has seed 1; the
    middle one barely moves, so it may stop as stuck at chance while the others go on."""
    base = RunConfig(
        cell=cell,
        direction=direction,
        output=output,
        target=target,
        hidden=5,
        batch_size=10,
        samples=60,
        eval_every=20,
        eval_samples=50,
        stuck_evals=2,
    )
    configs = [
        dataclasses.replace(base, lr=0.1, momentum=0.9, seed=0),
        dataclasses.replace(base, lr=1e-9, momentum=0.0, seed=0),
        dataclasses.replace(base, lr=0.05, momentum=0.5, seed=1),
    ]
    alone = [train_run(c, progress=False, datasets=small_mnist) for c in configs]
    fused = train_runs(configs, small_mnist)
    for one, other in zip(alone, fused, strict=True):
        assert_same_run(one, other, base.eval_samples)


def test_a_run_that_stops_leaves_the_others_training(small_mnist):
    """One seed, three rates: the one that does not move stops at its second evaluation, the
    one whose loss rises stops at its third, the third trains to the end."""
    base = RunConfig(
        cell="NPLSTM",
        direction="uni",
        target="end",
        hidden=16,
        batch_size=10,
        samples=600,
        eval_every=100,
        eval_samples=100,
        stuck_evals=2,
    )
    configs = [dataclasses.replace(base, lr=lr, momentum=0.9, seed=0) for lr in (0.03, 1e-9, 0.01)]
    fused = train_runs(configs, small_mnist)
    assert [r.status for r in fused] == ["done", "diverged", "diverged"]
    assert [r.samples_seen for r in fused] == [600, 200, 300]
    assert [len(r.curve) for r in fused] == [6, 2, 3]
    alone = [train_run(c, progress=False, datasets=small_mnist) for c in configs]
    for one, other in zip(alone, fused, strict=True):
        assert_same_run(one, other, base.eval_samples)


def test_text_lines_of_one_seed_fuse_exactly(tmp_path_factory):
    cache = tmp_path_factory.mktemp("uw3like")
    generate(GenerationParams("tiny", 0), cache, log=lambda message: None)
    train, test = load_dataset("uw3like:tiny", str(cache))
    datasets = (train.subset(range(40)), test.subset(range(10)))
    base = RunConfig(
        dataset="uw3like:tiny",
        cell="LSTM",
        hidden=6,
        batch_size=4,
        samples=40,
        eval_every=20,
        eval_samples=10,
    )
    configs = [dataclasses.replace(base, lr=lr, momentum=m) for lr, m in ((1e-2, 0.9), (3e-3, 0.5))]
    # one seed gives equal-width batches, so they can be fused (sweeps train lines alone,
    # where that measured faster: make_tasks)
    assert fuse_key(configs[0]) == fuse_key(configs[1])
    alone = [train_run(c, progress=False, datasets=datasets) for c in configs]
    fused = train_runs(configs, datasets)
    for one, other in zip(alone, fused, strict=True):
        assert_same_run(one, other, 1000)  # character error rates: compare to 1e-3
