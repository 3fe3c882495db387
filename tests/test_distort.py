"""Distorted training images: the warp against a pixel-by-pixel bilinear reference, what
strength 0 and a whole-pixel shift do, one random stream per run (fused or alone), the
settings refused, and a distorted run on real MNIST that learns."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from lstmbench.data.distort import (
    ELASTIC_RMS,
    Distortion,
    affine_matrices,
    elastic_field,
    smoothing_matrix,
    source_pixels,
    warp,
)
from lstmbench.errors import UserError
from lstmbench.training.config import RunConfig
from lstmbench.training.loop import train_run, train_runs


def reference_warp(image: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Bilinear interpolation one output pixel at a time; pixels outside read zero."""
    height, width = image.shape

    def pixel(y: int, x: int) -> float:
        return float(image[y, x]) if 0 <= y < height and 0 <= x < width else 0.0

    out = np.zeros_like(image)
    for y in range(height):
        for x in range(width):
            sx, sy = sources[y, x]
            x0, y0 = math.floor(sx), math.floor(sy)
            fx, fy = sx - x0, sy - y0
            out[y, x] = (
                pixel(y0, x0) * (1 - fx) * (1 - fy)
                + pixel(y0, x0 + 1) * fx * (1 - fy)
                + pixel(y0 + 1, x0) * (1 - fx) * fy
                + pixel(y0 + 1, x0 + 1) * fx * fy
            )
    return out


def test_warp_equals_pixel_by_pixel_bilinear_interpolation():
    generator = torch.Generator().manual_seed(3)
    images = torch.rand(3, 9, 11, generator=generator)
    matrices = affine_matrices(3, 2.0, generator)
    field = elastic_field(3, 9, 11, generator) * 2.0
    sources = source_pixels(matrices, field)
    warped = warp(images, sources)
    for k in range(3):
        expected = reference_warp(images[k].double().numpy(), sources[k].double().numpy())
        np.testing.assert_allclose(warped[k].numpy(), expected, atol=1e-5)


def test_the_affine_part_rotates_about_the_center():
    matrix = torch.tensor([[[0.0, -1.0, 0.0], [1.0, 0.0, 0.0]]])  # a quarter turn
    sources = source_pixels(matrix, torch.zeros(1, 5, 5, 2))
    # the center stays; the output's top-left corner reads the input's bottom-left one
    assert sources[0, 2, 2].tolist() == [2.0, 2.0]
    assert sources[0, 0, 0].tolist() == [4.0, 0.0]


def test_a_whole_pixel_shift_moves_the_image_and_fills_with_zero():
    image = torch.arange(1.0, 26.0).view(1, 5, 5)
    shift = torch.tensor([[[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]])  # read one pixel to the right
    out = warp(image, source_pixels(shift, torch.zeros(1, 5, 5, 2)))[0]
    torch.testing.assert_close(out[:, :4], image[0, :, 1:], atol=1e-5, rtol=0)
    assert out[:, 4].abs().max() < 1e-5


def test_smoothing_is_a_gaussian_blur_that_repeats_the_edge_pixel():
    sigma, size = 1.5, 7
    radius = math.ceil(3 * sigma)
    weights = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    weights /= weights.sum()
    signal = np.random.default_rng(0).normal(size=size)
    offsets = range(-radius, radius + 1)
    expected = []
    for i in range(size):
        edge_repeated = [signal[min(max(i + d, 0), size - 1)] for d in offsets]
        expected.append(sum(w * v for w, v in zip(weights, edge_repeated, strict=True)))
    blurred = smoothing_matrix(size, sigma).double() @ torch.from_numpy(signal)
    np.testing.assert_allclose(blurred.numpy(), expected, rtol=1e-6)


def test_elastic_fields_have_the_stated_size_and_are_smooth():
    field = elastic_field(16, 28, 28, torch.Generator().manual_seed(0))
    rms = field.pow(2).sum(-1).mean((1, 2)).sqrt()
    torch.testing.assert_close(rms, torch.full((16,), ELASTIC_RMS), rtol=1e-4, atol=0)
    # neighbors move together: a step to the next pixel changes the displacement little
    step = (field[:, :, 1:] - field[:, :, :-1]).pow(2).sum(-1).mean().sqrt()
    assert step < 0.3 * ELASTIC_RMS


def test_strength_zero_leaves_images_as_they_are(small_mnist):
    batch = small_mnist[0].batch(np.arange(8))
    same = Distortion(0.0, seed=5)(batch)
    torch.testing.assert_close(same.inputs, batch.inputs, atol=1e-5, rtol=0)


def test_a_distortion_moves_ink_but_keeps_it_and_the_labels(small_mnist):
    batch = small_mnist[0].batch(np.arange(64))
    moved = Distortion(1.0, seed=5)(batch)
    assert moved.inputs.shape == batch.inputs.shape
    assert moved.inputs.min() >= 0 and moved.inputs.max() <= 1
    assert torch.equal(moved.targets, batch.targets)
    change = (moved.inputs - batch.inputs).abs().mean() / batch.inputs.mean()
    assert change > 0.3  # most strokes moved
    ink = moved.inputs.sum((0, 2)) / batch.inputs.sum((0, 2))
    assert ink.median() == pytest.approx(1.0, abs=0.1)  # a warp, not an eraser


def test_each_seed_draws_its_own_distortions_and_the_same_ones_again(small_mnist):
    batch = small_mnist[0].batch(np.arange(8))
    first = Distortion(1.0, seed=1)(batch).inputs
    assert torch.equal(first, Distortion(1.0, seed=1)(batch).inputs)
    assert not torch.equal(first, Distortion(1.0, seed=2)(batch).inputs)
    stream = Distortion(1.0, seed=1)
    stream(batch)
    assert not torch.equal(first, stream(batch).inputs)  # afresh each time a sample is seen


def test_distorted_runs_train_the_same_fused_or_alone(small_mnist):
    base = RunConfig(
        direction="uni", target="end", hidden=12, batch_size=20, samples=300,
        eval_every=150, eval_samples=200, distort=1.0,
    )  # fmt: skip
    for seeds in ((0, 0), (0, 1)):  # one shared data order, and one order each
        configs = [
            dataclasses.replace(base, lr=0.05, seed=seeds[0]),
            dataclasses.replace(base, lr=0.02, seed=seeds[1]),
        ]
        fused = train_runs(configs, small_mnist)
        for config, together in zip(configs, fused, strict=True):
            alone = train_run(config, progress=False, datasets=small_mnist)
            for mine, theirs in zip(together.curve, alone.curve, strict=True):
                assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-4)
    plain = train_run(dataclasses.replace(base, distort=0.0), progress=False, datasets=small_mnist)
    assert plain.curve[0]["train_loss"] != pytest.approx(fused[0].curve[0]["train_loss"])


def test_a_distorted_run_on_real_mnist_learns(small_mnist):
    config = RunConfig(
        direction="bidi", target="ctc", hidden=32, batch_size=8, lr=0.02, momentum=0.9,
        samples=20000, eval_every=4000, distort=1.0,
    )  # fmt: skip
    result = train_run(config, progress=False, datasets=small_mnist)
    assert result.status == "done"
    assert result.best_error < 0.5  # chance is 0.9


def test_distort_settings_are_checked_and_left_out_of_old_run_ids(ragged_mnist):
    for bad in (-0.5, float("nan"), 4.0):
        with pytest.raises(UserError, match="distort must be between 0"):
            RunConfig(distort=bad)
    assert "distort" not in RunConfig().to_dict()  # ids of runs recorded before it exist
    assert RunConfig(distort=1.0).to_dict()["distort"] == 1.0
    assert RunConfig(distort=1.0).run_id != RunConfig().run_id
    assert RunConfig.from_dict(RunConfig(distort=0.5).to_dict()).distort == 0.5

    with pytest.raises(UserError, match="leave --distort at 0"):
        train_run(RunConfig(distort=1.0), datasets=ragged_mnist, progress=False)


def test_strength_one_moves_pixels_as_the_docs_say():
    """The module's docstring and --help: a median of 1.7 px in a digit's middle 20 x 20."""
    generator = torch.Generator().manual_seed(0)
    count = 500
    field = elastic_field(count, 28, 28, generator)
    moved = source_pixels(affine_matrices(count, 1.0, generator), field)
    still = source_pixels(torch.eye(2, 3).expand(count, 2, 3), torch.zeros_like(field))
    distance = (moved - still).norm(dim=-1)[:, 4:24, 4:24]
    assert distance.median().item() == pytest.approx(1.7, abs=0.1)
