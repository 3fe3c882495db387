"""Reading lines with a trained model: load it with its codec, decode, score, align errors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import torch

from lstmbench.data.lines.codec import Codec
from lstmbench.data.lines.dataset import LineDataset
from lstmbench.errors import UserError
from lstmbench.model.nets import SequenceNet
from lstmbench.training.checkpoint import load_checkpoint, read_checkpoint
from lstmbench.training.metrics import best_path, character_errors

RECOGNITION_BATCH = 32


def load_line_model(path: str | Path) -> tuple[object, SequenceNet, Codec]:
    """(config, network, codec) of a checkpoint trained on text lines."""
    model, saved = read_checkpoint(path)
    values = saved.get("dataset", {}).get("codec")
    if values is None:
        raise UserError(
            f"checkpoint {model} has no codec: it was not trained on text lines "
            "(train with --dataset lines:PATH or uw3like:SIZE)"
        )
    codec = Codec.from_dict(values)
    config, net = load_checkpoint(model, LineDataset([], [], codec))
    return config, net.eval(), codec


@torch.no_grad()
def decode_lines(net: SequenceNet, dataset: LineDataset, device="cpu") -> list[list[int]]:
    """Best-path labels of every line, batched by width (padding does not change them)."""
    order = np.argsort(dataset.widths, kind="stable")
    decoded: list[list[int]] = [[] for _ in range(len(dataset))]
    for start in range(0, len(order), RECOGNITION_BATCH):
        indices = order[start : start + RECOGNITION_BATCH]
        batch = dataset.batch(indices).to(device)
        labels = best_path(net(batch.inputs, batch.input_lengths), batch.input_lengths)
        for index, line in zip(indices, labels, strict=True):
            decoded[index] = line
    return decoded


def align(reference: str, hypothesis: str) -> list[tuple[str, str]]:
    """A minimal edit script as (reference char, hypothesis char) pairs; "" marks a gap."""
    rows, columns = len(reference) + 1, len(hypothesis) + 1
    cost = np.zeros((rows, columns), dtype=np.int64)
    cost[:, 0] = np.arange(rows)
    cost[0, :] = np.arange(columns)
    for i in range(1, rows):
        for j in range(1, columns):
            cost[i, j] = min(
                cost[i - 1, j] + 1,
                cost[i, j - 1] + 1,
                cost[i - 1, j - 1] + (reference[i - 1] != hypothesis[j - 1]),
            )
    pairs = []
    i, j = rows - 1, columns - 1
    while i > 0 or j > 0:
        if (
            i > 0
            and j > 0
            and cost[i, j] == cost[i - 1, j - 1] + (reference[i - 1] != hypothesis[j - 1])
        ):
            pairs.append((reference[i - 1], hypothesis[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and cost[i, j] == cost[i - 1, j] + 1:
            pairs.append((reference[i - 1], ""))
            i -= 1
        else:
            pairs.append(("", hypothesis[j - 1]))
            j -= 1
    return pairs[::-1]


def confusions(references: list[str], hypotheses: list[str]) -> Counter:
    """How often each (reference, hypothesis) error pair occurs over many lines."""
    counts: Counter = Counter()
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        counts.update(pair for pair in align(reference, hypothesis) if pair[0] != pair[1])
    return counts


def score_lines(net: SequenceNet, dataset: LineDataset, device="cpu"):
    """(character error rate, hypotheses as text, confusion counts) over a line set."""
    decoded = decode_lines(net, dataset, device)
    distance, length = character_errors(decoded, [list(labels) for labels in dataset.labels])
    hypotheses = [dataset.codec.decode(labels) for labels in decoded]
    return distance / max(length, 1), hypotheses, confusions(dataset.texts, hypotheses)
