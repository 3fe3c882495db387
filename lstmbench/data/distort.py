"""Random distortions of training images (MNIST read as column sequences): a small affine
warp (rotation, scale, shift) and a smooth elastic displacement, drawn afresh for every
sample each time it is seen. A network that has memorized its training set (MNIST's
training loss falls to 1e-4 within 50 epochs) learns nothing more from it; distorted copies
keep teaching it what does not change a digit.

Strength 1 draws a rotation up to 7 degrees, a scaling up to 7% and a shift up to 2 px each
way, and an elastic field of 0.8 px root mean square, smooth over about 4 px: the pixels of
a digit's middle 20 x 20 move by 1.7 px (median; 0.7 to 2.7 px, 10th to 90th percentile).
Strength s multiplies every one of them.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from lstmbench.data.base import Batch

ROTATION = math.radians(7.0)  # at most, either way
SCALE = 0.07  # relative, either way
SHIFT = 2.0  # pixels, either way, along each axis
ELASTIC_RMS = 0.8  # pixels
ELASTIC_SMOOTHNESS = 4.0  # the Gaussian's standard deviation, in pixels


@functools.lru_cache(maxsize=8)
def smoothing_matrix(size: int, sigma: float) -> torch.Tensor:
    """(size, size): a Gaussian blur along one axis of `size` pixels, as a matrix whose row
    i weighs the pixels that output pixel i averages; past the edges the edge pixel repeats,
    so edges are as smooth as the middle. (A matrix product: torch's convolution of single
    channel images took ten times as long here.)"""
    radius = max(1, int(math.ceil(3 * sigma)))
    offsets = torch.arange(-radius, radius + 1)
    weights = torch.exp(-0.5 * (offsets / sigma) ** 2)
    weights /= weights.sum()
    matrix = torch.zeros(size, size)
    for i in range(size):
        matrix[i].index_add_(0, (i + offsets).clamp(0, size - 1), weights)
    return matrix


def elastic_field(count: int, height: int, width: int, generator: torch.Generator):
    """(count, height, width, 2) smooth random displacements in pixels, each field scaled to
    ELASTIC_RMS root mean square."""
    noise = torch.randn(count, 2, height, width, generator=generator)
    rows = smoothing_matrix(height, ELASTIC_SMOOTHNESS)
    columns = smoothing_matrix(width, ELASTIC_SMOOTHNESS)
    field = (rows @ noise @ columns.T).permute(0, 2, 3, 1)
    rms = field.pow(2).sum(-1).mean((1, 2), keepdim=True).sqrt().unsqueeze(-1)
    return field * (ELASTIC_RMS / rms.clamp_min(1e-12))


def affine_matrices(count: int, strength: float, generator: torch.Generator) -> torch.Tensor:
    """(count, 2, 3) maps from output to input pixel offsets around the image center."""

    def uniform(limit: float) -> torch.Tensor:
        return (torch.rand(count, generator=generator) * 2 - 1) * limit * strength

    angle, scale = uniform(ROTATION), 1 + uniform(SCALE)
    shift_x, shift_y = uniform(SHIFT), uniform(SHIFT)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    return torch.stack(
        [torch.stack([cos, -sin, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1
    )


def source_pixels(matrices: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
    """(count, height, width, 2) where each output pixel reads its input, as (x, y) pixel
    coordinates: the affine map around the image center plus the elastic displacement."""
    count, height, width, _ = field.shape
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32),
        torch.arange(width, dtype=torch.float32),
        indexing="ij",
    )
    center_x, center_y = (width - 1) / 2, (height - 1) / 2
    offsets = torch.stack([xs - center_x, ys - center_y, torch.ones_like(xs)], -1)
    mapped = torch.einsum("nij,hwj->nhwi", matrices, offsets)
    return mapped + torch.tensor([center_x, center_y]) + field


def warp(images: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
    """Bilinear resampling of (count, height, width) images at (x, y) pixel coordinates;
    zero (paper white) outside the image."""
    count, height, width = images.shape
    grid = torch.stack(
        [sources[..., 0] * 2 / (width - 1) - 1, sources[..., 1] * 2 / (height - 1) - 1], -1
    )
    out = F.grid_sample(
        images.unsqueeze(1), grid, mode="bilinear", padding_mode="zeros", align_corners=True
    )
    return out.squeeze(1)


class Distortion:
    """One run's distortions: its own random stream (from the run's seed), so a run's
    training data depend only on its settings, trained alone or fused with others."""

    def __init__(self, strength: float, seed: int):
        self.strength = strength
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, batch: Batch) -> Batch:
        """The batch with every image distorted anew; inputs are (columns, batch, rows)."""
        images = batch.inputs.permute(1, 2, 0)  # (batch, rows, columns)
        count, height, width = images.shape
        matrices = affine_matrices(count, self.strength, self.generator)
        field = elastic_field(count, height, width, self.generator) * self.strength
        warped = warp(images, source_pixels(matrices, field)).clamp(0.0, 1.0)
        inputs = warped.permute(2, 0, 1).contiguous()
        return Batch(inputs, batch.input_lengths, batch.targets, batch.target_lengths)
