"""Training targets: fixed label positions (center, end) and CTC forward-backward alignment.

Class 0 is the blank (epsilon); real labels are 1..C-1. A batch's target sequences come
padded, as a (B, L) LongTensor plus their lengths, the layout torch.nn.functional.ctc_loss uses.
"""

from __future__ import annotations

import numpy as np
import torch

from lstmbench.data.base import BLANK
from lstmbench.errors import UserError
from lstmbench.model.kernels.native import native_ctc

TARGET_MODES = ("center", "end", "ctc")
FIXED_MODES = ("center", "end")


def fixed_position(mode: str, length: int) -> int:
    """The time step that carries the label for a sequence of `length` steps."""
    return length // 2 if mode == "center" else length - 1


def fixed_position_targets(
    mode: str, targets: torch.Tensor, target_lengths: torch.Tensor, input_lengths: torch.Tensor
) -> torch.Tensor:
    """Per-frame class targets (T, B): blank everywhere but the one step holding the label."""
    if mode not in FIXED_MODES:
        raise UserError(f"unknown fixed-position target {mode!r}; valid: {', '.join(FIXED_MODES)}")
    if bool((target_lengths != 1).any()):
        raise UserError(
            "fixed-position targets need exactly one label per sequence (as in MNIST); "
            "use the ctc target mode for variable-length transcripts"
        )
    steps = int(input_lengths.max())
    frames = torch.full((steps, targets.shape[0]), BLANK, dtype=torch.long)
    positions = torch.tensor([fixed_position(mode, int(n)) for n in input_lengths])
    frames[positions, torch.arange(targets.shape[0])] = targets[:, 0].cpu()
    return frames.to(targets.device)


def _extend_with_blanks(targets: torch.Tensor, target_lengths: torch.Tensor):
    """The blank-augmented label sequences (B, 2L+1) and where a skip over a blank is allowed."""
    batch, longest = targets.shape
    ext = torch.full((batch, 2 * longest + 1), BLANK, dtype=torch.long, device=targets.device)
    ext[:, 1::2] = targets
    ext_lengths = 2 * target_lengths + 1
    positions = torch.arange(ext.shape[1], device=targets.device)
    ext = torch.where(positions < ext_lengths.unsqueeze(1), ext, BLANK)
    skip = torch.zeros_like(ext, dtype=torch.bool)
    skip[:, 2:] = (ext[:, 2:] != BLANK) & (ext[:, 2:] != ext[:, :-2])
    return ext, ext_lengths, skip


def _shifted(values: np.ndarray, by: int) -> np.ndarray:
    """Shift along the last axis: by > 0 moves entries right (s takes s-by), by < 0 left."""
    out = np.full_like(values, -np.inf)
    if by > 0:
        out[..., by:] = values[..., :-by]
    else:
        out[..., :by] = values[..., -by:]
    return out


@torch.no_grad()
def ctc_alignment(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    input_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
):
    """Frame posteriors of the CTC alignment, by the forward-backward algorithm.

    log_probs: (T, B, C) per-frame log probabilities. Returns (posteriors (T, B, C), nll (B,)):
    posteriors[t, b, k] is the probability that frame t emits class k given the target, and
    nll the negative log likelihood of the target. Frames past a sequence's length get zero;
    a target that cannot fit its input (too short) gets zero posteriors and nll = inf; NaN
    outputs give a NaN nll. Computed in float64 (returned in the input's type) by the C++
    kernel (kernels/ctc.cpp) where it builds, else by `ctc_alignment_reference`; the two agree
    to float64 rounding.
    """

    kernel = native_ctc()
    if kernel is None or log_probs.dtype not in (torch.float32, torch.float64):
        return ctc_alignment_reference(log_probs, targets, input_lengths, target_lengths)
    posteriors, nll = kernel.alignment(
        log_probs.detach().cpu(), targets.cpu(), input_lengths.cpu(), target_lengths.cpu()
    )
    return posteriors.to(log_probs.device), nll.to(log_probs.device)


@torch.no_grad()
@np.errstate(invalid="ignore")  # NaN outputs give a NaN loss, which training reports itself
def ctc_alignment_reference(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    input_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
):
    """`ctc_alignment` written as array operations over the whole batch (NumPy, float64)."""
    # NumPy rather than torch: the recursion is many tiny steps, where NumPy's per-call cost is
    # a fraction of torch's; float64 keeps long sequences accurate.
    lp = np.maximum(log_probs.detach().cpu().double().numpy(), -1e4)  # no log(0): no NaN
    steps, batch, _ = lp.shape
    lengths = input_lengths.cpu().numpy()
    ext, ext_lengths, skip = _extend_with_blanks(targets.cpu(), target_lengths.cpu())
    ext, ext_lengths, skip = ext.numpy(), ext_lengths.numpy(), skip.numpy()
    positions = np.arange(ext.shape[1])
    valid = positions < ext_lengths[:, None]
    emit = np.take_along_axis(lp, np.broadcast_to(ext, (steps, *ext.shape)), axis=2)
    emit[:, ~valid] = -np.inf
    no_skip = np.where(skip, 0.0, -np.inf)  # added to a log term to forbid the skip
    no_skip_from_right = _shifted(no_skip, -2)

    alpha = np.full_like(emit, -np.inf)
    alpha[0, :, :2] = emit[0, :, :2]
    for t in range(1, steps):
        prev = alpha[t - 1]
        paths = np.logaddexp(prev, _shifted(prev, 1))
        alpha[t] = np.logaddexp(paths, _shifted(prev, 2) + no_skip) + emit[t]

    rows = np.arange(batch)
    last = alpha[lengths - 1, rows]  # (B, S)
    log_likelihood = np.logaddexp(last[rows, ext_lengths - 1], last[rows, ext_lengths - 2])

    is_end = (positions == (ext_lengths - 1)[:, None]) | (positions == (ext_lengths - 2)[:, None])
    beta = np.full_like(emit, -np.inf)
    for t in range(steps - 1, -1, -1):
        ends_here = (t == lengths - 1)[:, None]
        if t == steps - 1:
            beta[t] = np.where(ends_here & is_end, emit[t], -np.inf)
            continue
        after = beta[t + 1]
        paths = np.logaddexp(after, _shifted(after, -1))
        recursed = np.logaddexp(paths, _shifted(after, -2) + no_skip_from_right) + emit[t]
        inside = (t < lengths - 1)[:, None]
        beta[t] = np.where(ends_here & is_end, emit[t], np.where(inside, recursed, -np.inf))

    feasible = np.isfinite(log_likelihood)
    log_gamma = alpha + beta - emit - np.where(feasible, log_likelihood, 0.0)[None, :, None]
    gamma = np.nan_to_num(np.exp(log_gamma), nan=0.0) * feasible[None, :, None]
    one_hot = np.eye(lp.shape[2])[ext]  # (B, S, C): which class each extended label is
    posteriors = np.einsum("tbs,bsc->tbc", gamma, one_hot)
    device, dtype = log_probs.device, log_probs.dtype
    return (
        torch.from_numpy(posteriors).to(device=device, dtype=dtype),
        torch.from_numpy(-log_likelihood).to(device=device, dtype=dtype),
    )
