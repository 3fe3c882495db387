"""Training runs on real MNIST: every direction, output layer and target mode learns;
runs are reproducible; divergence is detected; checkpoints load."""

import json
import math

import numpy as np
import pytest
import torch

from lstmbench.errors import UserError
from lstmbench.model.nets import SequenceNet, reverse_padded
from lstmbench.training import loop
from lstmbench.training.checkpoint import build_net, load_checkpoint
from lstmbench.training.config import RunConfig
from lstmbench.training.evaluate import evaluate
from lstmbench.training.loop import DivergenceWatch, train_run, train_runs
from lstmbench.training.losses import sequence_loss


def tiny(**changes) -> RunConfig:
    values = dict(
        hidden=20,
        epochs=1,
        batch_size=16,
        lr=0.05,
        momentum=0.9,
        eval_every=1000,
        direction="uni",
        target="end",
    )
    values.update(changes)
    return RunConfig(**values)


def held_out_loss(net, dataset, config):
    """The mean training objective of a network over a whole dataset."""
    batch = dataset.batch(np.arange(len(dataset)))
    with torch.no_grad():
        logits = net(batch.inputs, batch.input_lengths)
        return sequence_loss(
            logits,
            config.output,
            config.target,
            batch.targets,
            batch.input_lengths,
            batch.target_lengths,
        ).item()


@pytest.mark.parametrize("direction", ["uni", "bidi"])
@pytest.mark.parametrize("output", ["softmax", "logistic"])
@pytest.mark.parametrize("target", ["center", "end", "ctc"])
def test_every_architecture_learns(small_mnist, direction, output, target):
    """A short run lowers the held-out loss well below the untrained network's.

    (Error rates need longer runs: SGD spends its first thousands of samples learning the
    blank; test_real_mnist.py checks a full run's error.)
    """
    train, test = small_mnist
    config = tiny(
        direction=direction,
        output=output,
        target=target,
        hidden=32,
        batch_size=8,
        samples=1600,
        eval_every=800,
        lr=0.05 if output == "softmax" else 0.5,
    )
    torch.manual_seed(config.seed)
    untrained = build_net(config, train)
    result = train_run(config, datasets=small_mnist, progress=False)
    assert result.status == "done" and result.samples_seen == 1600
    assert [p["samples"] for p in result.curve] == [800, 1600]
    before, after = (
        held_out_loss(untrained, test, config),
        held_out_loss(result.model, test, config),
    )
    assert after < 0.75 * before, (before, after)


def test_same_seed_same_result(small_mnist):
    config = tiny(samples=600, eval_every=300)
    first = train_run(config, datasets=small_mnist, progress=False)
    second = train_run(config, datasets=small_mnist, progress=False)
    assert [p["test_error"] for p in first.curve] == [p["test_error"] for p in second.curve]
    assert [p["train_loss"] for p in first.curve] == [p["train_loss"] for p in second.curve]
    other = train_run(
        tiny(samples=600, eval_every=300, seed=1), datasets=small_mnist, progress=False
    )
    assert [p["train_loss"] for p in other.curve] != [p["train_loss"] for p in first.curve]


@pytest.mark.parametrize("lrs", [[0.01], [0.01, 0.003]])
def test_a_callback_sees_each_network_as_it_was_evaluated(small_mnist, lrs):
    """on_evaluation gets result.model as it is at that point (one run, and runs fused), so a
    callback can measure more than the test error (benchmarks/mnist_headline.py)."""
    train, test = small_mnist
    configs = [
        RunConfig(hidden=8, lr=lr, samples=400, eval_every=200, eval_samples=200) for lr in lrs
    ]
    seen = []

    def on_evaluation(result, point):
        weights = torch.cat([p.detach().flatten() for p in result.model.parameters()]).clone()
        again = evaluate(result.model, test, 200)
        seen.append((result.config.lr, again, point["test_error"], weights))

    train_runs(configs, (train, test), on_evaluation=on_evaluation)
    assert len(seen) == 2 * len(lrs)
    assert all(again == measured for _, again, measured, _ in seen)
    for lr in lrs:  # and the network trained between the two points
        first, second = [weights for rate, _, _, weights in seen if rate == lr]
        assert not torch.equal(first, second)


def test_fast_and_reference_implementations_train_identically(small_mnist):
    results = [
        train_run(
            tiny(samples=320, eval_every=160, impl=impl, cell="LSTM", direction="bidi"),
            datasets=small_mnist,
            progress=False,
        )
        for impl in ("fast", "reference")
    ]
    a, b = ([p["train_loss"] for p in r.curve] for r in results)
    assert a == pytest.approx(b, rel=1e-4)


def test_huge_learning_rate_is_recorded_as_diverged(small_mnist):
    config = tiny(
        lr=1e6, momentum=0.99, cell="RELU2LSTM", output="logistic", stuck_evals=2, eval_every=200
    )
    result = train_run(config, datasets=small_mnist, progress=False)
    assert result.status == "diverged"
    assert "loss became" in result.reason or "chance" in result.reason


def test_divergence_watch_tells_stuck_from_slow():
    stuck = DivergenceWatch(chance=0.9, patience=3)
    assert not stuck.stuck(0.95, 2.0) and not stuck.stuck(0.92, 2.0)
    assert stuck.stuck(0.91, 2.0)
    slow = DivergenceWatch(chance=0.9, patience=3)
    assert not any(slow.stuck(0.95, loss) for loss in (3.0, 2.5, 2.0))  # still learning
    assert DivergenceWatch(0.9, 3).bad_loss(math.nan)


def test_run_writes_curve_json_and_a_checkpoint_that_evaluates(small_mnist, tmp_path):
    config = tiny(samples=500, eval_every=250)
    result = train_run(config, datasets=small_mnist, out_dir=tmp_path, progress=False)
    saved = json.loads((tmp_path / config.run_id / "result.json").read_text())
    assert saved["run_id"] == config.run_id and saved["config"]["hidden"] == 20
    assert [p["samples"] for p in saved["curve"]] == [256, 500]
    assert {"test_error", "train_loss", "wall_time"} <= set(saved["curve"][0])
    _, test = small_mnist
    loaded_config, net = load_checkpoint(tmp_path / config.run_id, test)
    assert loaded_config == config
    assert evaluate(net, test) == pytest.approx(result.final_error)


def test_fixed_targets_are_refused_on_variable_length_data(ragged_mnist):
    with pytest.raises(UserError, match="use --target ctc"):
        train_run(tiny(target="center"), datasets=ragged_mnist, progress=False)


def test_config_refuses_bad_values():
    with pytest.raises(UserError, match="valid cells"):
        RunConfig(cell="LSTMX")
    with pytest.raises(UserError, match="valid target modes: center, end, ctc"):
        RunConfig(target="middle")
    with pytest.raises(UserError, match="momentum"):
        RunConfig(momentum=1.0)
    with pytest.raises(UserError, match="unknown run setting.*hiden"):
        RunConfig.from_dict({"hiden": 10})
    with pytest.raises(UserError, match="valid datasets"):
        RunConfig(dataset="cifar")


def test_run_id_is_a_stable_hash_of_the_config():
    assert RunConfig().run_id == RunConfig().run_id
    assert RunConfig(lr=0.02).run_id != RunConfig().run_id


def test_padding_does_not_change_bidirectional_outputs():
    torch.manual_seed(0)
    net = SequenceNet("LSTM", 3, 5, 4, direction="bidi", layers=2)
    long, short = torch.randn(9, 1, 3), torch.randn(6, 1, 3)
    padded = torch.zeros(9, 2, 3)
    padded[:, 0:1], padded[:6, 1:2] = long, short
    together = net(padded, torch.tensor([9, 6]))
    torch.testing.assert_close(together[:, 0:1], net(long), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(together[:6, 1:2], net(short), rtol=1e-5, atol=1e-6)


def test_reverse_padded_reverses_within_each_length():
    x = torch.arange(4.0).view(4, 1, 1).repeat(1, 2, 1)
    out = reverse_padded(x, torch.tensor([4, 2]))
    assert out[:, 0, 0].tolist() == [3, 2, 1, 0]
    assert out[:, 1, 0].tolist() == [1, 0, 2, 3]


def test_training_flushes_denormal_floats_unless_told_not_to(small_mnist, monkeypatch):
    """A saturated run's backward pass is full of denormal floats, which x86 computes on a
    slow path (benchmarks/denormals.py: 11x on a text-line run); training flushes them."""
    torch.set_flush_denormal(False)  # the process default (earlier tests may have trained)
    tiny_float = torch.tensor([1e-40], dtype=torch.float32)  # below float32's normal range
    assert (tiny_float * 1.0).item() != 0.0
    try:
        train_run(tiny(samples=32), datasets=small_mnist, progress=False)
        assert (tiny_float * 1.0).item() == 0.0
        monkeypatch.setattr(loop, "FLUSH_DENORMALS", False)
        train_run(tiny(samples=32), datasets=small_mnist, progress=False)
        assert (tiny_float * 1.0).item() != 0.0
    finally:
        torch.set_flush_denormal(False)  # the rest of the session as it began
