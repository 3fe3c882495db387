"""Targets and losses: fixed positions, CTC alignment against brute force and torch."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from lstmbench.errors import UserError
from lstmbench.model.kernels.native import native_ctc
from lstmbench.training.losses import sequence_loss
from lstmbench.training.targets import (
    ctc_alignment,
    ctc_alignment_reference,
    fixed_position_targets,
)

# The C++ alignment (used in training) and the NumPy one it is checked against.
ALIGNMENTS = [ctc_alignment, ctc_alignment_reference]


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


@pytest.mark.parametrize("align", ALIGNMENTS)
@pytest.mark.parametrize("target", [[1], [2, 2], [1, 2], [2, 1, 2]])
def test_alignment_equals_brute_force_enumeration(align, target):
    torch.manual_seed(0)
    probs = torch.softmax(torch.randn(6, 3, dtype=torch.float64), dim=-1)
    expected, expected_nll = brute_force_posteriors(probs, target)
    posteriors, nll = align(
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


@pytest.mark.parametrize("align", ALIGNMENTS)
def test_posteriors_sum_to_one_inside_and_zero_outside_each_sequence(align):
    logits, targets, lengths, target_lengths = ragged_batch(torch.float64)
    posteriors, _ = align(logits.log_softmax(-1), targets, lengths, target_lengths)
    sums = posteriors.sum(-1)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(sums[:n, b], torch.ones(n, dtype=torch.float64))
        assert sums[n:, b].abs().max().item() == 0 if n < sums.shape[0] else True


@pytest.mark.parametrize("align", ALIGNMENTS)
def test_impossible_alignment_gives_infinite_nll_and_no_gradient(align):
    log_probs = torch.randn(2, 1, 4).log_softmax(-1)
    posteriors, nll = align(
        log_probs, torch.tensor([[1, 1]]), torch.tensor([2]), torch.tensor([2])
    )  # "1 1" needs three frames
    assert math.isinf(nll.item()) and posteriors.abs().sum().item() == 0


def line_like_batch(scale: float, seed: int = 3):
    """Long ragged sequences with many classes and repeated labels, like text lines."""
    generator = torch.Generator().manual_seed(seed)
    steps, batch, classes = 120, 5, 12
    log_probs = (
        scale * torch.randn(steps, batch, classes, generator=generator, dtype=torch.float64)
    ).log_softmax(-1)
    targets = torch.randint(1, 4, (batch, 20), generator=generator)  # few classes: repeats
    target_lengths = torch.tensor([20, 1, 7, 13, 0])
    lengths = torch.tensor([120, 9, 60, 100, 30])
    return log_probs, targets, lengths, target_lengths


@pytest.mark.parametrize("scale", [1.0, 10.0, 3000.0])  # 3000: the scaled pass underflows
def test_native_alignment_equals_the_reference(scale):
    batch = line_like_batch(scale)
    posteriors, nll = ctc_alignment(*batch)
    expected, expected_nll = ctc_alignment_reference(*batch)
    torch.testing.assert_close(posteriors, expected, rtol=0, atol=1e-10)
    torch.testing.assert_close(nll, expected_nll, rtol=1e-12, atol=0)


@pytest.mark.skipif(native_ctc() is None, reason="the C++ kernels could not be built")
def test_native_alignment_on_two_threads_equals_one():
    """A batch's sequences are aligned side by side on torch's threads (ctc.cpp), each in
    its own thread's workspace: two threads give exactly what one gives."""
    batch = line_like_batch(10.0)
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            results.append(native_ctc().alignment(*batch))
    finally:
        torch.set_num_threads(before)
    for one, two in zip(*results, strict=True):
        torch.testing.assert_close(two, one, rtol=0, atol=0)


def test_log_space_pass_equals_the_reference():
    log_probs, targets, lengths, target_lengths = line_like_batch(2.0)
    for b in range(3):  # sequences the scaled pass handles: the log pass alone must agree
        one = (
            log_probs[:, b : b + 1],
            targets[b : b + 1],
            lengths[b : b + 1],
            target_lengths[b : b + 1],
        )
        posteriors, nll = native_ctc().alignment_log_space(*one)
        expected, expected_nll = ctc_alignment_reference(*one)
        torch.testing.assert_close(posteriors, expected, rtol=0, atol=1e-10)
        torch.testing.assert_close(nll, expected_nll, rtol=1e-12, atol=0)


def test_native_alignment_keeps_float32_and_gives_nan_for_nan_outputs():
    log_probs, targets, lengths, target_lengths = line_like_batch(1.0)
    log_probs = log_probs.float()
    log_probs[5, 2, 3] = float("nan")
    posteriors, nll = ctc_alignment(log_probs, targets, lengths, target_lengths)
    assert posteriors.dtype == torch.float32 and nll.dtype == torch.float32
    assert math.isnan(nll[2].item()) and torch.isfinite(nll[[0, 1, 3]]).all()


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
