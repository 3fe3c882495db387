"""What a training run needs from any dataset: padded batches and an error rule."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lstmbench.errors import UserError

# Class 0 of every dataset is the blank: no label (CTC's blank, and the frames around a fixed
# target).
BLANK = 0


@dataclass
class Batch:
    """A padded batch: inputs (T, B, F), lengths (B,), targets (B, L), target lengths (B,)."""

    inputs: torch.Tensor
    input_lengths: torch.Tensor
    targets: torch.Tensor
    target_lengths: torch.Tensor

    def to(self, device) -> Batch:
        """The same batch on another device (lengths stay on the CPU)."""
        return Batch(self.inputs.to(device), self.input_lengths, self.targets, self.target_lengths)


class SequenceDataset:
    """Base for datasets of (sequence, label sequence) pairs.

    `metric` is "sequence" (a sample is wrong unless decoded exactly, MNIST) or "character"
    (edit distance over reference length, text lines). `fixed_length` says whether every
    sequence has the same number of steps, which fixed-position targets need.
    """

    n_features: int
    n_classes: int  # including the blank, class 0
    metric: str = "sequence"
    fixed_length: bool = True

    def __len__(self) -> int:
        raise NotImplementedError

    def batch(self, indices: np.ndarray) -> Batch:
        """The padded batch of the given sample indices."""
        raise NotImplementedError

    def for_input_size(self, size: int) -> SequenceDataset:
        """This dataset as a network reading `size` values a step sees it: itself where the
        sizes agree. Only text lines can be scaled to another size."""
        if size == self.n_features:
            return self
        raise UserError(
            f"this dataset has {self.n_features} values a step and cannot be scaled to "
            f"{size}: --line-height applies to text lines only"
        )

    def batches(self, steps: list[np.ndarray]) -> list[Batch]:
        """The batches of consecutive training steps (each its sample indices)."""
        return [self.batch(indices) for indices in steps]

    def epoch_batches(self, rng: np.random.Generator, batch_size: int) -> list[np.ndarray]:
        """The batches of one pass over the data, in training order (a shuffled split).

        Datasets of variable-length sequences override this to group similar lengths.
        """
        order = rng.permutation(len(self))
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]

    def metadata(self) -> dict:
        """What must be kept with a trained model to read its outputs later (e.g. a codec)."""
        return {}

    def chance_error(self) -> float:
        """The error rate of a network that has learned nothing useful."""
        return 1.0 - 1.0 / (self.n_classes - 1) if self.metric == "sequence" else 1.0


class ArraySequenceSet(SequenceDataset):
    """Equal-length sequences (N, T, F) with one label each, e.g. MNIST columns."""

    def __init__(self, inputs: np.ndarray, labels: np.ndarray, n_classes: int):
        self.inputs = inputs
        self.labels = labels
        self.n_features = inputs.shape[2]
        self.n_classes = n_classes

    def __len__(self):
        return len(self.labels)

    def batch(self, indices):
        inputs = torch.from_numpy(self.inputs[indices]).transpose(0, 1).contiguous()
        count = len(indices)
        return Batch(
            inputs,
            torch.full((count,), inputs.shape[0], dtype=torch.long),
            torch.from_numpy(self.labels[indices]).view(count, 1),
            torch.ones(count, dtype=torch.long),
        )

    def batches(self, steps):
        # One gather for all the steps, then views: at batch 1 a batch apiece cost about as
        # much as the training step itself.
        whole = self.batch(np.concatenate(steps))
        bounds = np.cumsum([0] + [len(indices) for indices in steps])
        return [
            Batch(
                whole.inputs[:, start:end],
                whole.input_lengths[start:end],
                whole.targets[start:end],
                whole.target_lengths[start:end],
            )
            for start, end in zip(bounds[:-1], bounds[1:], strict=True)
        ]
