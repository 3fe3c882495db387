"""Adapting a trained line model to a few real lines, measured by k-fold cross-validation:
train from the model on k-1 folds, score the held-out fold before and after, rotate."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lstmbench.data.lines.dataset import LineDataset
from lstmbench.errors import UserError
from lstmbench.training.config import RunConfig
from lstmbench.training.init import fit_datasets, read_starting_model
from lstmbench.training.loop import train_run
from lstmbench.training.recognize import load_line_model, score_lines


@dataclass
class FoldResult:
    """One fold: its lines, and the CER on its held-out lines before and after adapting."""

    fold: int
    train_lines: int
    test_lines: int
    characters: int
    before: float
    after: float
    status: str


def folds(count: int, k: int, seed: int) -> list[np.ndarray]:
    """k disjoint sets of line indices, together all `count` lines, sizes differing by at
    most one; which line goes where is drawn from `seed`."""
    if not 2 <= k <= count:
        raise UserError(f"--folds must be between 2 and the number of lines ({count}), got {k}")
    order = np.random.default_rng(seed).permutation(count)
    return [np.sort(part) for part in np.array_split(order, k)]


def adapt_kfold(
    config: RunConfig,
    lines: LineDataset,
    k: int,
    device: str = "cpu",
    time_limit: float = 0.0,
    log: Callable[[str], None] = print,
) -> list[FoldResult]:
    """Per fold: CER of the model `config.init` on the fold, then of the model trained from
    it as `config` says on the other folds. The starting model's files are only read."""
    start = read_starting_model(config.init)
    lines, _ = fit_datasets(start, (lines, lines), config.dataset)
    _, original, _ = load_line_model(start.path)
    original.to(device)
    results = []
    parts = folds(len(lines), k, config.seed)
    for number, held in enumerate(parts, start=1):
        kept = np.concatenate([part for j, part in enumerate(parts, start=1) if j != number])
        train, test = lines.subset(kept), lines.subset(held)
        before, _, _ = score_lines(original, test, device)
        fold_config = dataclasses.replace(config, eval_samples=0)
        result = train_run(
            fold_config,
            device=device,
            progress=False,
            datasets=(train, test),
            time_limit=time_limit,
        )
        after, _, _ = score_lines(result.model, test, device)
        fold = FoldResult(
            number,
            len(train),
            len(test),
            sum(len(t) for t in test.labels),
            before,
            after,
            result.status,
        )
        log(
            f"fold {number}/{k}: trained on {fold.train_lines} lines, tested on "
            f"{fold.test_lines}: CER {before:.2%} before, {after:.2%} after"
            + ("" if result.status == "done" else f" (the run {result.status}: {result.reason})")
        )
        results.append(fold)
    return results


def pooled(results: list[FoldResult], field: str) -> float:
    """The CER over all folds' held-out lines together (edits over characters)."""
    characters = sum(r.characters for r in results)
    return sum(getattr(r, field) * r.characters for r in results) / max(characters, 1)
