"""Datasets by name: MNIST read as column sequences (and, by registration, others)."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import UserError
from .base import ArraySequenceSet, Batch, SequenceDataset

# name -> loader(argument, data_path, validation, seed) -> (train, test). A dataset name may
# carry an argument after a colon, e.g. "lines:/data/uw3".
DatasetLoader = Callable[[str, str | None, int, int], tuple[SequenceDataset, SequenceDataset]]
_LOADERS: dict[str, DatasetLoader] = {}


def register_dataset(name: str, loader: DatasetLoader) -> None:
    """Make `name` (or `name:ARG`) usable as a dataset."""
    _LOADERS[name] = loader


def dataset_names() -> list[str]:
    """The registered dataset names."""
    return list(_LOADERS)


def check_dataset_name(spec: str) -> None:
    """Refuse an unknown dataset name, listing the known ones."""
    if spec.partition(":")[0] not in _LOADERS:
        raise UserError(f"unknown dataset {spec!r}; valid datasets: {', '.join(_LOADERS)}")


def load_dataset(spec: str, path: str | None = None, validation: int = 0, seed: int = 0):
    """(train, test) for a dataset name such as "mnist"."""
    check_dataset_name(spec)
    name, _, argument = spec.partition(":")
    return _LOADERS[name](argument, path, validation, seed)


def _load_mnist(argument, path, validation, seed):
    from .mnist import load_mnist

    return load_mnist(argument or path, validation, seed)


register_dataset("mnist", _load_mnist)


def _load_lines(argument, path, validation, seed):
    from ..lines.dataset import load_lines

    return load_lines(argument or path, validation, seed)


def _load_uw3like(argument, path, validation, seed):
    from ..lines.generate import load_uw3like

    return load_uw3like(argument, path, validation, seed)


register_dataset("lines", _load_lines)  # lines:DIR | LIST | FILE.h5 [,TEST]
register_dataset("uw3like", _load_uw3like)  # uw3like:tiny | small | full [:SEED]

__all__ = [
    "ArraySequenceSet",
    "Batch",
    "SequenceDataset",
    "check_dataset_name",
    "dataset_names",
    "load_dataset",
    "register_dataset",
]
