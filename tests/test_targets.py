"""Targets and losses: fixed positions, CTC alignment against brute force and torch."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from lstmbench.errors import UserError
from lstmbench.losses import sequence_loss
from lstmbench.targets import ctc_alignment, fixed_position_targets


def brute_force_posteriors(probs, target):
    """Enumerate every frame labelling that collapses to `target`: the obvious definition."""
    steps, classes = probs.shape
    posteriors = torch.zeros_like(probs)
    total = 0.0
    for path in itertools.product(range(classes), repeat=steps):
        collapsed = [k for j, k in enumerate(path) if k != 0 and (j == 0 or path[j - 1] != k)]
        if collapsed != target:
            continue
        weight = math.prod(probs[t, k].item() for t, k in enumerate(path))
        total += weight
        for t, k in enumerate(path):
            posteriors[t, k] += weight
    return posteriors / total, -math.log(total)


@pytest.mark.parametrize("target", [[1], [2, 2], [1, 2], [2, 1, 2]])
def test_alignment_equals_brute_force_enumeration(target):
    torch.manual_seed(0)
    probs = torch.softmax(torch.randn(6, 3, dtype=torch.float64), dim=-1)
    expected, expected_nll = brute_force_posteriors(probs, target)
    posteriors, nll = ctc_alignment(
        probs.log().unsqueeze(1),
        torch.tensor([target]),
        torch.tensor([6]),
        torch.tensor([len(target)]),
    )
    torch.testing.assert_close(posteriors[:, 0], expected)
    assert nll.item() == pytest.approx(expected_nll)


def ragged_batch(dtype):
    torch.manual_seed(1)
    logits = torch.randn(15, 4, 7, dtype=dtype, requires_grad=True)
    targets = torch.tensor([[1, 2, 2, 3], [4, 0, 0, 0], [5, 6, 0, 0], [3, 3, 3, 0]])
    return logits, targets, torch.tensor([15, 11, 6, 12]), torch.tensor([4, 1, 2, 3])


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_softmax_ctc_gradient_equals_torch_ctc_loss(dtype, tolerance):
    logits, targets, lengths, target_lengths = ragged_batch(dtype)
    loss = sequence_loss(logits, "softmax", "ctc", targets, lengths, target_lengths)
    ours = torch.autograd.grad(loss, logits)[0]
    reference = (
        F.ctc_loss(F.log_softmax(logits, -1), targets, lengths, target_lengths, reduction="sum")
        / logits.shape[1]
    )
    theirs = torch.autograd.grad(reference, logits)[0]
    assert (ours - theirs).abs().max().item() < tolerance
    assert loss.item() == pytest.approx(reference.item(), rel=1e-5)


def test_posteriors_sum_to_one_inside_and_zero_outside_each_sequence():
    logits, targets, lengths, target_lengths = ragged_batch(torch.float64)
    posteriors, _ = ctc_alignment(logits.log_softmax(-1), targets, lengths, target_lengths)
    sums = posteriors.sum(-1)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(sums[:n, b], torch.ones(n, dtype=torch.float64))
        assert sums[n:, b].abs().max().item() == 0 if n < sums.shape[0] else True


def test_impossible_alignment_gives_infinite_nll_and_no_gradient():
    log_probs = torch.randn(2, 1, 4).log_softmax(-1)
    posteriors, nll = ctc_alignment(
        log_probs, torch.tensor([[1, 1]]), torch.tensor([2]), torch.tensor([2])
    )  # "1 1" needs three frames
    assert math.isinf(nll.item()) and posteriors.abs().sum().item() == 0


def test_logistic_ctc_aligns_on_frame_normalized_outputs():
    torch.manual_seed(2)
    logits = torch.randn(8, 1, 5, dtype=torch.float64, requires_grad=True)
    targets, lengths, target_lengths = torch.tensor([[2, 3]]), torch.tensor([8]), torch.tensor([2])
    probs = torch.sigmoid(logits)
    normalized = probs / probs.sum(-1, keepdim=True)
    wanted, _ = ctc_alignment(normalized.log(), targets, lengths, target_lengths)
    expected = 0.5 * ((probs - wanted) ** 2).sum()
    loss = sequence_loss(logits, "logistic", "ctc", targets, lengths, target_lengths)
    assert loss.item() == pytest.approx(expected.item())
    (grad,) = torch.autograd.grad(loss, logits)
    torch.testing.assert_close(grad, ((probs - wanted) * probs * (1 - probs)).detach())


@pytest.mark.parametrize("mode, step", [("center", 14), ("end", 27)])
def test_fixed_position_targets_put_the_label_on_one_step(mode, step):
    frames = fixed_position_targets(
        mode, torch.tensor([[3], [7]]), torch.tensor([1, 1]), torch.tensor([28, 28])
    )
    assert frames.shape == (28, 2)
    assert frames[step].tolist() == [3, 7]
    assert int((frames != 0).sum()) == 2


def test_fixed_position_losses_for_both_output_layers():
    torch.manual_seed(3)
    logits = torch.randn(5, 2, 4)
    targets, lengths, ones = torch.tensor([[1], [3]]), torch.tensor([5, 5]), torch.tensor([1, 1])
    frames = torch.zeros(5, 2, dtype=torch.long)
    frames[4] = torch.tensor([1, 3])
    softmax = sequence_loss(logits, "softmax", "end", targets, lengths, ones)
    expected = F.cross_entropy(logits.reshape(10, 4), frames.reshape(10), reduction="sum") / 2
    assert softmax.item() == pytest.approx(expected.item(), rel=1e-6)
    logistic = sequence_loss(logits, "logistic", "end", targets, lengths, ones)
    wanted = F.one_hot(frames, 4).float()
    assert logistic.item() == pytest.approx(
        (0.5 * ((torch.sigmoid(logits) - wanted) ** 2).sum() / 2).item(), rel=1e-6
    )


def test_fixed_position_refuses_multi_label_targets():
    with pytest.raises(UserError, match="use the ctc target"):
        fixed_position_targets("end", torch.tensor([[1, 2]]), torch.tensor([2]), torch.tensor([9]))
