"""Error rate of a network on a dataset, by best-path decoding."""

from __future__ import annotations

import numpy as np
import torch

from lstmbench.data import SequenceDataset
from lstmbench.model.nets import SequenceNet
from lstmbench.training.metrics import best_path, character_errors, sequence_errors, unpad

EVAL_BATCH = 500


@torch.no_grad()
def evaluate(net: SequenceNet, dataset: SequenceDataset, limit: int = 0, device="cpu") -> float:
    """Sequence error rate, or character error rate for datasets scored by characters, on
    the first `limit` samples (0: all)."""
    was_training = net.training
    net.eval()
    count = len(dataset) if limit <= 0 else min(limit, len(dataset))
    wrong = total = 0
    for start in range(0, count, EVAL_BATCH):
        batch = dataset.batch(np.arange(start, min(start + EVAL_BATCH, count))).to(device)
        decoded = best_path(net(batch.inputs, batch.input_lengths), batch.input_lengths)
        references = unpad(batch.targets, batch.target_lengths)
        if dataset.metric == "character":
            distance, length = character_errors(decoded, references)
            wrong, total = wrong + distance, total + length
        else:
            wrong, total = wrong + sequence_errors(decoded, references), total + len(references)
    net.train(was_training)
    return wrong / max(total, 1)
