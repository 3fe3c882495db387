"""Reading lines with a trained model: load it with its codec, decode, score, align errors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import torch
from rapidfuzz.distance import Levenshtein

from lstmbench.data.lines.codec import Codec
from lstmbench.data.lines.dataset import LineDataset
from lstmbench.errors import UserError
from lstmbench.model.nets import SequenceNet
from lstmbench.training.checkpoint import load_checkpoint, read_checkpoint
from lstmbench.training.config import RunConfig
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
    height = RunConfig.from_dict(saved["config"]).line_height
    config, net = load_checkpoint(model, LineDataset([], [], codec, height=height))
    return config, net.eval(), codec


@torch.no_grad()
def decode_lines(net: SequenceNet, dataset: LineDataset, device="cpu") -> list[list[int]]:
    """Best-path labels of every line, batched by width (padding does not change them), the
    lines scaled to the height the network reads."""
    dataset = dataset.for_input_size(net.input_size)
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
    """The errors of a minimal edit script as (reference char, hypothesis char) pairs; ""
    marks a gap (a deletion or an insertion)."""
    pairs = []
    for op in Levenshtein.editops(reference, hypothesis):
        if op.tag == "replace":
            pairs.append((reference[op.src_pos], hypothesis[op.dest_pos]))
        elif op.tag == "delete":
            pairs.append((reference[op.src_pos], ""))
        else:
            pairs.append(("", hypothesis[op.dest_pos]))
    return pairs


def confusions(references: list[str], hypotheses: list[str]) -> Counter:
    """How often each (reference, hypothesis) error pair occurs over many lines."""
    counts: Counter = Counter()
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        counts.update(align(reference, hypothesis))
    return counts


def score_lines(net: SequenceNet, dataset: LineDataset, device="cpu"):
    """(character error rate, hypotheses as text, confusion counts) over a line set."""
    decoded = decode_lines(net, dataset, device)
    distance, length = character_errors(decoded, [list(labels) for labels in dataset.labels])
    hypotheses = [dataset.codec.decode(labels) for labels in decoded]
    return distance / max(length, 1), hypotheses, confusions(dataset.texts, hypotheses)
