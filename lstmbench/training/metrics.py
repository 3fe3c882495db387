"""Best-path decoding and the error measures: one rule for every output layer and target."""

from __future__ import annotations

import torch
from rapidfuzz.distance import Levenshtein

from lstmbench.data.base import BLANK


def best_path(logits: torch.Tensor, input_lengths: torch.Tensor) -> list[list[int]]:
    """Decode (T, B, C) scores: argmax per frame, merge repeats, drop blanks."""
    best = logits.argmax(dim=-1).t().cpu().tolist()
    decoded = []
    for frames, length in zip(best, input_lengths.tolist(), strict=True):
        labels, previous = [], None
        for k in frames[:length]:
            if k != previous and k != BLANK:
                labels.append(k)
            previous = k
        decoded.append(labels)
    return decoded


def edit_distance(a, b) -> int:
    """Levenshtein distance between two sequences (strings or lists of class numbers)."""
    return Levenshtein.distance(a, b)


def unpad(targets: torch.Tensor, target_lengths: torch.Tensor) -> list[list[int]]:
    """Padded (B, L) targets back to a list of label lists."""
    return [row[:n] for row, n in zip(targets.tolist(), target_lengths.tolist(), strict=True)]


def sequence_errors(decoded: list[list[int]], references: list[list[int]]) -> int:
    """How many decodings are not exactly their reference (MNIST's error rule)."""
    return sum(d != r for d, r in zip(decoded, references, strict=True))


def character_errors(decoded: list[list[int]], references: list[list[int]]) -> tuple[int, int]:
    """(total edit distance, total reference length): their ratio is the character error rate."""
    distance = sum(edit_distance(d, r) for d, r in zip(decoded, references, strict=True))
    return distance, sum(len(r) for r in references)
