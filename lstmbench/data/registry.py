"""The dataset registry: a name (with an optional argument after a colon) -> its loader."""

from __future__ import annotations

from collections.abc import Callable

from lstmbench.data.base import SequenceDataset
from lstmbench.errors import UserError

# name -> loader(argument, data_path, validation, seed) -> (train, test). A dataset name may
# carry an argument after a colon, e.g. "lines:/data/uw3".
DatasetLoader = Callable[[str, str | None, int, int], tuple[SequenceDataset, SequenceDataset]]
_LOADERS: dict[str, DatasetLoader] = {}


def register_dataset(name: str, loader: DatasetLoader) -> None:
    """Make `name` (or `name:ARG`) usable as a dataset."""
    _LOADERS[name] = loader


def dataset_names() -> list[str]:
    """The registered dataset names."""
    return sorted(_LOADERS)


def check_dataset_name(spec: str) -> None:
    """Refuse an unknown dataset name, listing the known ones."""
    if spec.partition(":")[0] not in _LOADERS:
        raise UserError(f"unknown dataset {spec!r}; valid datasets: {', '.join(dataset_names())}")


def load_dataset(spec: str, path: str | None = None, validation: int = 0, seed: int = 0):
    """(train, test) for a dataset name such as "mnist"."""
    check_dataset_name(spec)
    name, _, argument = spec.partition(":")
    return _LOADERS[name](argument, path, validation, seed)
