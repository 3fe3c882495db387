"""Packed runs: runs that differ only in learning rate, momentum or seed, trained together."""

from __future__ import annotations

from ..config import RunConfig

# Settings that leave every tensor shape alone, so runs differing only in them can share
# one batched computation.
PACKABLE = ("lr", "momentum", "seed")
FIXED_LENGTH_DATASETS = ("mnist",)


def pack_key(config: RunConfig) -> tuple:
    """Runs with equal keys can be packed.

    The seed stays in the key where it changes the data itself: a held-out validation split,
    or variable-length batches whose shapes depend on the sample order.
    """
    values = config.to_dict()
    free = set(PACKABLE)
    if config.validation or config.dataset.partition(":")[0] not in FIXED_LENGTH_DATASETS:
        free.discard("seed")
    return tuple(sorted((k, v) for k, v in values.items() if k not in free))


def make_tasks(configs: list[RunConfig], pack: int) -> list[list[RunConfig]]:
    """Group runs into tasks of at most `pack` packable runs (pack <= 1: one run each)."""
    if pack <= 1:
        return [[config] for config in configs]
    groups: dict[tuple, list[RunConfig]] = {}
    for config in configs:
        groups.setdefault(pack_key(config), []).append(config)
    tasks = []
    for group in groups.values():
        tasks.extend(group[i : i + pack] for i in range(0, len(group), pack))
    return tasks
