"""Normalized text lines as a SequenceDataset: columns as time steps, CTC label sequences."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from lstmbench.data.base import Batch, SequenceDataset
from lstmbench.data.lines import TARGET_HEIGHT
from lstmbench.data.lines.codec import Codec
from lstmbench.data.lines.normalize import EmptyLineError, normalize_line, scale_to_height
from lstmbench.data.lines.readers import RawLine, ReadReport, read_lines
from lstmbench.errors import UserError

# Lines of similar width are batched together from windows of this many batches, so little
# compute goes to padding while the order still changes from epoch to epoch.
BUCKET_WINDOW = 50


class LineDataset(SequenceDataset):
    """Normalized lines (uint8, ink 255; 48 px, or scaled to another height) with
    transcripts, encoded by a codec shared by train/test."""

    metric = "character"
    fixed_length = False

    def __init__(
        self,
        images: list[np.ndarray],
        texts: list[str],
        codec: Codec,
        names=None,
        height: int = TARGET_HEIGHT,
    ):
        self.n_features = images[0].shape[0] if images else height
        self.images = images
        self.texts = texts
        self.codec = codec
        self.names = list(names) if names is not None else [str(i) for i in range(len(texts))]
        self.labels = [np.array(codec.encode(t), dtype=np.int64) for t in texts]
        self.widths = np.array([image.shape[1] for image in images], dtype=np.int64)
        self.n_classes = codec.n_classes

    def __len__(self):
        return len(self.images)

    def batch(self, indices):
        """Columns as steps (T, B, height) in [0, 1], zero-padded; labels padded with blanks."""
        indices = np.asarray(indices)
        widths = self.widths[indices]
        inputs = np.zeros((int(widths.max()), len(indices), self.n_features), dtype=np.float32)
        label_lengths = [len(self.labels[i]) for i in indices]
        targets = np.zeros((len(indices), max(1, max(label_lengths))), dtype=np.int64)
        for slot, index in enumerate(indices):
            inputs[: widths[slot], slot] = self.images[index].T
            targets[slot, : label_lengths[slot]] = self.labels[index]
        return Batch(
            torch.from_numpy(inputs).mul_(1.0 / 255.0),
            torch.from_numpy(widths),
            torch.from_numpy(targets),
            torch.tensor(label_lengths, dtype=torch.long),
        )

    def epoch_batches(self, rng, batch_size):
        """Shuffled batches of similar widths: sort within random windows, shuffle batches."""
        order = rng.permutation(len(self))
        window = batch_size * BUCKET_WINDOW
        batches = []
        for start in range(0, len(order), window):
            chunk = order[start : start + window]
            chunk = chunk[np.argsort(self.widths[chunk], kind="stable")]
            batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
        return [batches[i] for i in rng.permutation(len(batches))]

    def metadata(self) -> dict:
        """What a trained model needs to read its outputs: the codec."""
        return {"codec": self.codec.to_dict()}

    def subset(self, indices) -> LineDataset:
        """The lines at the given indices, with the same codec."""
        return LineDataset(
            [self.images[i] for i in indices],
            [self.texts[i] for i in indices],
            self.codec,
            [self.names[i] for i in indices],
            self.n_features,
        )

    def for_input_size(self, size: int) -> LineDataset:
        """These lines scaled to `size` px high (widths in proportion), for a network that
        reads lines of that height."""
        if size == self.n_features:
            return self
        images = [scale_to_height(image, size) for image in self.images]
        return LineDataset(images, self.texts, self.codec, self.names, size)

    def unknown_characters(self) -> set[str]:
        """Characters of these transcripts that the codec cannot represent."""
        return set().union(*(self.codec.unknown(t) for t in self.texts)) if self.texts else set()


def normalized_lines(report: ReadReport) -> tuple[list[np.ndarray], list[str], list[str]]:
    """(images, texts, names) of the lines normalized to 48 px; failures join the skipped."""
    images, texts, names = [], [], []
    for line in report.lines:
        try:
            image = line.image if line.normalized else normalize_line(line.image)
        except EmptyLineError as error:
            report.skip(line.name, str(error))
            continue
        if line.normalized and image.shape[0] != TARGET_HEIGHT:
            report.skip(line.name, f"marked normalized but {image.shape[0]} px high")
            continue
        images.append(image)
        texts.append(line.text)
        names.append(line.name)
    return images, texts, names


def load_line_set(path, codec: Codec | None = None, log=None) -> LineDataset:
    """Read and normalize the lines at `path`; the codec defaults to their own characters."""
    report = read_lines(path)
    images, texts, names = normalized_lines(report)
    (log or _warn)(f"{path}: {report.summary()}")
    if not images:
        raise UserError(f"no usable lines in {path}: {report.summary()}")
    return LineDataset(images, texts, codec or Codec.from_texts(texts), names)


def split_by_text(texts: list[str], count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held) indices holding about `count` lines out, whole transcripts at a time,
    so no held-out text also appears in training."""
    unique = sorted(set(texts))
    if count >= len(texts) or len(unique) < 2:
        raise UserError(
            f"cannot hold out {count} of {len(texts)} lines ({len(unique)} distinct texts); "
            "give a smaller --validation or a separate test set"
        )
    rng = np.random.default_rng(seed)
    held_texts, held = set(), 0
    for k in rng.permutation(len(unique)):
        if held >= count or len(held_texts) == len(unique) - 1:
            break
        held_texts.add(unique[k])
        held += texts.count(unique[k])
    held_mask = np.array([t in held_texts for t in texts])
    return np.nonzero(~held_mask)[0], np.nonzero(held_mask)[0]


def train_test_sets(
    train: LineDataset,
    test: LineDataset | None,
    validation: int,
    seed: int,
    characters: str = "",
) -> tuple[LineDataset, LineDataset]:
    """(train, test) with one codec from the training transcripts and `characters`;
    validation > 0 (or no test set: a tenth) holds training lines out by text."""
    if validation > 0 or test is None:
        count = validation if validation > 0 else max(1, len(train) // 10)
        kept, held = split_by_text(train.texts, count, seed)
        train, test = train.subset(kept), train.subset(held)
    codec = Codec.from_texts(train.texts, characters)
    return _recode(train, codec), _recode(test, codec)


def _recode(lines: LineDataset, codec: Codec) -> LineDataset:
    return LineDataset(lines.images, lines.texts, codec, lines.names)


def load_lines(argument: str | None, validation: int = 0, seed: int = 0):
    """(train, test) for `lines:TRAIN` or `lines:TRAIN,TEST` (directories, lists, .h5)."""
    if not argument:
        raise UserError(
            "dataset 'lines' needs a path: lines:DIR, lines:LIST.txt or lines:FILE.h5 "
            "(lines:TRAIN,TEST for a separate test set)"
        )
    train_path, _, test_path = argument.partition(",")
    train = load_line_set(Path(train_path))
    test = load_line_set(Path(test_path)) if test_path else None
    return train_test_sets(train, test, validation, seed)


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


__all__ = ["LineDataset", "RawLine", "load_line_set", "load_lines", "train_test_sets"]
