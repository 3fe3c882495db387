"""Text lines: readers (real UW3 sample, bad entries), 48 px normalization, codec, batching."""

import shutil
import unicodedata

import numpy as np
import pytest
import torch
from conftest import shared_data
from PIL import Image
from scipy import ndimage

from lstmbench.data import load_dataset
from lstmbench.data.lines.codec import UNKNOWN, Codec
from lstmbench.data.lines.dataset import LineDataset, load_line_set, split_by_text
from lstmbench.data.lines.normalize import (
    TARGET_HEIGHT,
    EmptyLineError,
    estimate_skew,
    ink_kept,
    normalize_line,
    to_ink,
)
from lstmbench.data.lines.readers import RawLine, read_hdf5, read_image, read_lines, write_hdf5
from lstmbench.errors import UserError
from lstmbench.model.nets import SequenceNet
from lstmbench.training.metrics import character_errors


@pytest.fixture(scope="module")
def uw3():
    return shared_data("uw3-sample")


@pytest.fixture(scope="module")
def real_lines(uw3):
    report = read_lines(uw3)
    assert not report.skipped
    return report.lines


def test_directory_reader_reads_every_real_line(real_lines, uw3):
    assert len(real_lines) == 50
    first = next(line for line in real_lines if line.name == "010001")
    assert first.text == "Efficient Algorithms for Finding Maximum Matching in Graphs"
    assert first.image.shape == (54, 1421) and first.image.dtype == np.uint8
    assert first.text == (uw3 / "010001.gt.txt").read_text().strip()


def copy_lines(source, target, names):
    target.mkdir()
    for name in names:
        shutil.copy(source / f"{name}.bin.png", target)
        shutil.copy(source / f"{name}.gt.txt", target)


def test_bad_entries_are_named_counted_and_skipped(uw3, tmp_path):
    folder = tmp_path / "lines"
    copy_lines(uw3, folder, ["010001", "010002", "010003"])
    shutil.copy(uw3 / "010005.bin.png", folder / "notext.png")  # image without transcript
    (folder / "broken.png").write_bytes(b"\x89PNG not really")  # unreadable image
    (folder / "broken.gt.txt").write_text("some text")
    Image.new("L", (100, 40), 255).save(folder / "blank.png")  # no ink
    (folder / "blank.gt.txt").write_text("blank")
    shutil.copy(uw3 / "010006.bin.png", folder / "empty.png")
    (folder / "empty.gt.txt").write_text("  \n")  # empty line
    (folder / "orphan.gt.txt").write_text("no image")
    report = read_lines(folder)
    assert sorted(line.name for line in report.lines) == ["010001", "010002", "010003"]
    reasons = dict(report.skipped)
    assert set(reasons) == {"notext", "broken", "blank", "empty", "orphan"}
    assert "no transcript" in reasons["notext"] and "unreadable image" in reasons["broken"]
    assert "empty transcript" in reasons["empty"] and "no ink" in reasons["blank"]
    summary = report.summary()
    assert "3 lines read, 5 skipped" in summary and "notext" in summary
    train, test = load_dataset(f"lines:{folder},{folder}")  # a run survives the bad entries
    assert len(train) == 3 and len(test) == 3


def test_prefers_binarized_image_and_reads_list_files(uw3, tmp_path):
    folder = tmp_path / "lines"
    copy_lines(uw3, folder, ["010001", "010002"])
    Image.new("L", (50, 20), 0).save(folder / "010001.png")  # a raw twin of 010001.bin.png
    listing = tmp_path / "list.txt"
    listing.write_text(
        f"# training lines\nlines/010001.bin.png\n{folder / '010002.bin.png'}\nlines/missing.png\n"
    )
    by_dir = {line.name: line for line in read_lines(folder).lines}
    assert by_dir["010001"].image.shape == (54, 1421)
    report = read_lines(listing)
    assert [line.name for line in report.lines] == ["010001", "010002"]
    assert report.skipped == [("lines/missing.png", "image file does not exist")]


def test_hdf5_round_trip_and_bad_rows(real_lines, tmp_path):
    path = tmp_path / "lines.h5"
    lines = real_lines[:4] + [RawLine("bad", np.zeros((3, 3), np.uint8), "no ink")]
    write_hdf5(path, lines, normalized=False)
    report = read_hdf5(path)
    assert [line.text for line in report.lines] == [line.text for line in real_lines[:4]]
    for read, original in zip(report.lines, real_lines[:4], strict=True):
        assert np.array_equal(read.image, original.image)
    assert report.skipped == [("lines.h5[4]", "empty image (no ink)")]
    import h5py

    with h5py.File(path, "a") as f:
        f["dims"][0] = (7, 7)  # no longer matches the stored pixels
    assert "do not match dims 7 x 7" in read_hdf5(path).skipped[0][1]


def test_unreadable_sources_raise_one_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_lines(tmp_path / "nowhere")
    (tmp_path / "bad.h5").write_bytes(b"not hdf5")
    with pytest.raises(UserError, match="unreadable or corrupt"):
        read_lines(tmp_path / "bad.h5")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no usable lines"):
        load_line_set(tmp_path / "empty")
    with pytest.raises(UserError, match="needs a path"):
        load_dataset("lines")


def test_normalization_of_the_real_sample(real_lines):
    for line in real_lines:
        normalized = normalize_line(line.image)
        assert normalized.shape[0] == TARGET_HEIGHT and normalized.dtype == np.uint8
        assert 0.5 < normalized.shape[1] / line.image.shape[1] < 1.6
        assert ink_kept(line.image) > 0.99, line.name  # ink is not clipped
        # Ink, not paper, is bright after normalization, and the text sits mid-band.
        ink_rows = (normalized > 127).sum(axis=1)
        assert (normalized > 127).mean() < 0.4
        center = (ink_rows * np.arange(TARGET_HEIGHT)).sum() / ink_rows.sum()
        assert 14 < center < 34, line.name


def test_normalization_is_scale_and_polarity_invariant(real_lines):
    line = next(line for line in real_lines if line.name == "010005").image
    normalized = normalize_line(line)
    height, width = line.shape
    larger = np.asarray(Image.fromarray(line).resize((width * 3 // 2, height * 3 // 2)))
    assert abs(normalize_line(larger).shape[1] - normalized.shape[1]) < 0.05 * width
    assert np.array_equal(normalize_line(255 - line), normalized)
    with pytest.raises(EmptyLineError):
        normalize_line(np.full((30, 200), 255, np.uint8))


def test_skew_is_measured_and_removed(real_lines):
    line = next(line for line in real_lines if line.name == "010003").image
    assert estimate_skew(to_ink(line)) == 0.0
    tilted = ndimage.rotate(255 - line, 2.0, reshape=True, order=1)
    assert estimate_skew(to_ink(tilted)) == pytest.approx(2.0, abs=0.3)
    # After deskewing, the normalized line is as tight as the straight one.
    straight, fixed = normalize_line(line), normalize_line(tilted)
    assert abs(fixed.shape[1] - straight.shape[1]) < 0.05 * straight.shape[1]


def test_codec_round_trip_nfc_and_unknown_characters():
    codec = Codec.from_texts(["Caf\u00e9 au lait", "x = 3.14;"])
    assert codec.characters == sorted(set("Caf\u00e9 au laitx=3.14;") - {" "} | {" "})
    for text in ["Caf\u00e9", "lait = 3.14", "a;x"]:
        assert codec.decode(codec.encode(text)) == text
    decomposed = unicodedata.normalize("NFD", "Caf\u00e9")
    assert len(decomposed) == 5 and codec.encode(decomposed) == codec.encode("Caf\u00e9")
    labels = codec.encode("Cafe!")
    assert labels.count(UNKNOWN) == 2 and codec.unknown("Cafe!") == {"e", "!"}
    # An unknown reference character can never be decoded: it counts as one error.
    assert character_errors([codec.encode("Caf")], [labels]) == (2, 5)
    assert Codec.from_dict(codec.to_dict()).characters == codec.characters
    with pytest.raises(UserError):
        Codec.from_dict({})


def line_set(real_lines, count=12):
    images = [normalize_line(line.image) for line in real_lines[:count]]
    texts = [line.text for line in real_lines[:count]]
    return LineDataset(images, texts, Codec.from_texts(texts))


def test_batches_are_columns_with_blank_padded_labels(real_lines):
    lines = line_set(real_lines, 3)
    batch = lines.batch(np.array([1, 0]))
    widths = lines.widths[[1, 0]]
    assert batch.inputs.shape == (widths.max(), 2, 48)
    assert torch.equal(batch.input_lengths, torch.from_numpy(widths))
    column = torch.from_numpy(lines.images[1][:, 5].astype(np.float32) / 255)
    assert torch.allclose(batch.inputs[5, 0], column)
    assert batch.inputs[widths[0] :, 0].abs().sum() == 0  # padding is zero
    assert (
        lines.codec.decode(batch.targets[1, : batch.target_lengths[1]].tolist()) == (lines.texts[0])
    )


def test_epoch_batches_group_widths_and_cover_every_line():
    rng = np.random.default_rng(0)
    widths = rng.integers(50, 1500, size=1000)
    images = [np.zeros((48, w), np.uint8) for w in widths]
    lines = LineDataset(images, ["a"] * 1000, Codec("a"))
    batches = lines.epoch_batches(np.random.default_rng(1), 16)
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))

    def padding(batches):
        padded = sum(len(b) * widths[b].max() for b in batches)
        return 1 - widths.sum() / padded

    shuffled = np.random.default_rng(2).permutation(1000)
    random_batches = [shuffled[i : i + 16] for i in range(0, 1000, 16)]
    assert padding(batches) < 0.05 < 0.3 < padding(random_batches)
    again = lines.epoch_batches(np.random.default_rng(3), 16)
    assert [b.tolist() for b in again] != [b.tolist() for b in batches]


def test_padding_does_not_change_the_outputs(real_lines):
    lines = line_set(real_lines, 4)
    torch.manual_seed(0)
    net = SequenceNet("NPLSTM", 48, 8, lines.n_classes, direction="bidi").double()
    together = lines.batch(np.arange(4))
    logits = net(together.inputs.double(), together.input_lengths)
    for k in range(4):
        alone = lines.batch(np.array([k]))
        single = net(alone.inputs.double(), alone.input_lengths)
        assert torch.allclose(logits[: lines.widths[k], k], single[:, 0], atol=1e-10)


def test_split_by_text_never_shares_a_transcript():
    texts = ["alpha", "beta", "alpha", "gamma", "delta", "beta", "eps", "zeta"]
    kept, held = split_by_text(texts, 3, seed=4)
    assert sorted(kept.tolist() + held.tolist()) == list(range(8))
    assert not {texts[i] for i in kept} & {texts[i] for i in held}
    assert len(held) >= 3
    with pytest.raises(UserError, match="cannot hold out"):
        split_by_text(texts, 8, seed=0)


def test_lines_dataset_has_one_codec_and_scores_unknown_characters(uw3):
    train, test = load_dataset(f"lines:{uw3}", validation=10, seed=3)
    assert train.codec is test.codec
    assert train.metric == "character" and not train.fixed_length
    assert train.n_features == 48 and train.n_classes == train.codec.n_classes
    assert not set(train.texts) & set(test.texts)
    assert set("".join(train.texts)) == set(train.codec.characters)
    unknown = test.unknown_characters()
    labels = [label for line in test.labels for label in line]
    assert labels.count(UNKNOWN) == sum(sum(c in unknown for c in t) for t in test.texts)


def test_read_image_composites_transparency(tmp_path):
    rgba = np.zeros((10, 20, 4), np.uint8)
    rgba[2:8, 5:15, 3] = 255  # opaque black text on a transparent background
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    grey = read_image(tmp_path / "t.png")
    assert grey[0, 0] == 255 and grey[4, 8] == 0
