"""Text lines read at a smaller height (--line-height): the scaling, the network's input,
and a model trained so reading 48 px lines from anywhere (real lines, --init, ocr)."""

import numpy as np
import pytest
import torch
from conftest import shared_data
from test_lines_adapt import tiny_model

from lstmbench.cli.main import main
from lstmbench.data.lines.codec import Codec
from lstmbench.data.lines.dataset import LineDataset, load_line_set
from lstmbench.data.lines.normalize import scale_to_height
from lstmbench.errors import UserError
from lstmbench.sweep.estimate import EstimateOptions, estimate_spec
from lstmbench.sweep.spec import load_spec
from lstmbench.training.config import RunConfig
from lstmbench.training.init import adopt_architecture
from lstmbench.training.loop import at_line_height
from lstmbench.training.recognize import decode_lines, load_line_model, score_lines


def area_mean(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """The slow, obvious downscaling: each new pixel the mean of the source area it covers,
    partly covered pixels weighted by the part covered."""
    rows, columns = image.shape
    out = np.zeros((height, width))
    for i in range(height):
        for j in range(width):
            y0, y1 = i * rows / height, (i + 1) * rows / height
            x0, x1 = j * columns / width, (j + 1) * columns / width
            total = weight = 0.0
            for y in range(int(y0), int(np.ceil(y1))):
                wy = min(y + 1, y1) - max(y, y0)
                for x in range(int(x0), int(np.ceil(x1))):
                    wx = min(x + 1, x1) - max(x, x0)
                    total += wy * wx * float(image[y, x])
                    weight += wy * wx
            out[i, j] = total / weight
    return out


@pytest.mark.parametrize("height", [32, 24, 17])
def test_scaling_is_the_area_mean(height):
    image = np.random.default_rng(height).integers(0, 256, (48, 57), dtype=np.uint8)
    scaled = scale_to_height(image, height)
    width = round(57 * height / 48)
    assert scaled.shape == (height, width) and scaled.dtype == np.uint8
    # rounded to the nearest grey level
    assert np.abs(scaled - area_mean(image, height, width)).max() <= 0.5 + 1e-9
    assert scale_to_height(image, 48) is image


@pytest.fixture(scope="module")
def real():
    lines = load_line_set(shared_data("uw3-sample"), log=lambda message: None)
    return LineDataset(lines.images, lines.texts, Codec.from_texts(lines.texts), lines.names)


def test_lines_scale_with_their_labels(real):
    lines = real.for_input_size(32)
    assert lines.n_features == 32 and len(lines) == len(real)
    assert all(image.shape[0] == 32 for image in lines.images)
    assert np.array_equal(lines.widths, np.round(real.widths * 32 / 48))
    assert all(np.array_equal(a, b) for a, b in zip(lines.labels, real.labels, strict=True))
    batch = lines.batch(np.array([0, 3]))
    assert batch.inputs.shape == (max(lines.widths[[0, 3]]), 2, 32)
    assert lines.subset([1, 2]).n_features == 32
    assert real.for_input_size(48) is real
    assert LineDataset([], [], real.codec, height=24).n_features == 24


def test_fixed_size_data_refuses_a_line_height(small_mnist):
    config = RunConfig(dataset="mnist", line_height=32)
    with pytest.raises(UserError, match="--line-height applies to text lines only"):
        at_line_height(config, *small_mnist)
    assert at_line_height(RunConfig(dataset="mnist"), *small_mnist) == small_mnist


def test_the_setting_keeps_recorded_ids_and_its_range():
    assert "line_height" not in RunConfig().to_dict()
    assert RunConfig(line_height=32).to_dict()["line_height"] == 32
    assert RunConfig(line_height=32).run_id != RunConfig().run_id
    for height in (15, 49):
        with pytest.raises(UserError, match="line height must be between 16 and 48"):
            RunConfig(line_height=height)


@pytest.fixture(scope="module")
def model(real, tmp_path_factory):
    """A model trained a few steps on the real lines at 24 px: its model.pt."""
    return tiny_model((real, real), tmp_path_factory.mktemp("runs"), line_height=24)


def test_a_model_reads_lines_at_its_height(model, real):
    config, net, codec = load_line_model(model)
    assert config.line_height == 24 and net.input_size == 24
    assert net.layers[0].forward_cell.input_size == 24
    # 48 px lines are scaled on the way in: they read exactly as lines scaled beforehand.
    assert decode_lines(net, real) == decode_lines(net, real.for_input_size(24))
    error, _, _ = score_lines(net, real)
    assert 0 <= error <= 1.5


def test_init_continues_at_the_models_height(model):
    config = adopt_architecture(RunConfig(dataset="uw3like:tiny", init=str(model)))
    assert config.line_height == 24
    with pytest.raises(UserError, match="--line-height 32 \\(the model has 24\\)"):
        adopt_architecture(
            RunConfig(dataset="uw3like:tiny", init=str(model), line_height=32), {"line_height"}
        )


def test_ocr_reads_line_images_with_a_smaller_model(model, capsys):
    image = shared_data("uw3-sample") / "010001.bin.png"
    assert main(["ocr", str(model), str(image)]) == 0
    name, _, text = capsys.readouterr().out.rstrip("\n").partition("\t")
    assert name == str(image)
    _, net, codec = load_line_model(model)
    lines = load_line_set(shared_data("uw3-sample"), codec, log=lambda message: None)
    first = lines.names.index("010001")
    with torch.no_grad():
        expected = codec.decode(decode_lines(net, lines.subset([first]))[0])
    assert text == expected


def test_a_sweep_estimate_times_each_line_height(tmp_path):
    spec = tmp_path / "heights.toml"
    spec.write_text(
        f"""
name = "heights"
runs = 2
[fixed]
dataset = "lines:{shared_data("uw3-sample")}"
direction = "uni"
hidden = 6
batch_size = 4
samples = 40
eval_every = 20
eval_samples = 8
[sweep]
line_height = {{ values = [24, 48] }}
"""
    )
    estimate = estimate_spec(load_spec(spec), EstimateOptions(pack=1, workers=1, steps=2))
    heights = sorted(group.timed.line_height for group in estimate.groups)
    assert heights == [24, 48]
    assert all(group.alone > 0 and group.eval_sample > 0 for group in estimate.groups)
