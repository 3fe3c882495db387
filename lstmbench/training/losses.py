"""The training objective for each output layer and target mode.

Convention: a sample's loss is summed over its frames (and classes), and the batch loss is
the mean over samples, so gradients are averaged over a batch. With momentum m, an update
therefore weighs each gradient about 1/(1-m) times in total (the paper's Fig. 5 finding).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lstmbench.training.targets import ctc_alignment, fixed_position_targets


def frame_mask(input_lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(T, B) float mask, 1 for frames inside each sequence."""
    t = torch.arange(steps, device=input_lengths.device).unsqueeze(1)
    return (t < input_lengths.unsqueeze(0)).float()


def sequence_loss(
    logits: torch.Tensor,
    output: str,
    target_mode: str,
    targets: torch.Tensor,
    input_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
) -> torch.Tensor:
    """Mean loss over the batch for logits (T, B, C); differentiable in logits."""
    per_sample = sample_losses(logits, output, target_mode, targets, input_lengths, target_lengths)
    return per_sample.sum() / logits.shape[1]


def sample_losses(
    logits: torch.Tensor,
    output: str,
    target_mode: str,
    targets: torch.Tensor,
    input_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
) -> torch.Tensor:
    """Each sample's loss (B,) for logits (T, B, C), summed over its frames.

    softmax: cross-entropy against the frame targets; under CTC its value is the CTC
    negative log likelihood and its gradient exactly CTC's. logistic: half the squared error
    between per-class sigmoids and the (one-hot or aligned) targets; under CTC the alignment
    is computed on the outputs normalized to sum to one per frame, as clstm did.
    """
    steps, _, classes = logits.shape
    input_lengths = input_lengths.to(logits.device)
    mask = frame_mask(input_lengths, steps).to(logits.dtype)
    if output == "softmax":
        log_probs = F.log_softmax(logits, dim=-1)
        if target_mode == "ctc":
            posteriors, nll = ctc_alignment(
                log_probs.detach(), targets, input_lengths, target_lengths
            )
            cross_entropy = -(posteriors * log_probs).sum(dim=(0, 2))
            # Value of the CTC likelihood, gradient of the cross-entropy to the alignment.
            finite_nll = torch.where(torch.isfinite(nll), nll, cross_entropy.detach())
            return cross_entropy - cross_entropy.detach() + finite_nll
        frames = fixed_position_targets(target_mode, targets, target_lengths, input_lengths)
        picked = log_probs.gather(2, frames.unsqueeze(2)).squeeze(2)
        return -(picked * mask).sum(dim=0)
    probs = torch.sigmoid(logits)
    if target_mode == "ctc":
        normalized = probs.detach() / probs.detach().sum(dim=-1, keepdim=True)
        wanted, _ = ctc_alignment(normalized.log(), targets, input_lengths, target_lengths)
    else:
        frames = fixed_position_targets(target_mode, targets, target_lengths, input_lengths)
        wanted = F.one_hot(frames, classes).to(logits.dtype)
    squared = ((probs - wanted) ** 2).sum(dim=2)
    return 0.5 * (squared * mask).sum(dim=0)
