"""Datasets by name: MNIST read as column sequences, and text lines (real or generated),
each registering itself with the registry."""

from lstmbench.data import lines, mnist  # noqa: F401  (they register their datasets)
from lstmbench.data.base import BLANK, ArraySequenceSet, Batch, SequenceDataset
from lstmbench.data.registry import (
    check_dataset_name,
    dataset_names,
    load_dataset,
    register_dataset,
)

__all__ = [
    "BLANK",
    "ArraySequenceSet",
    "Batch",
    "SequenceDataset",
    "check_dataset_name",
    "dataset_names",
    "load_dataset",
    "register_dataset",
]
