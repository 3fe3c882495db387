"""Shared fixtures: the real data beside the project (../shared/data), loaded once."""

import os
from pathlib import Path

import pytest

from lstmbench.data.base import ArraySequenceSet
from lstmbench.data.mnist import N_CLASSES, load_mnist

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LSTMBENCH_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared_data(name: str) -> Path:
    """A folder of the shared data; missing data is a failure, never a skip."""
    path = SHARED_DATA / name
    assert path.is_dir(), (
        f"test data {path} is missing: put the shared data folder beside the project "
        "or set LSTMBENCH_SHARED_DATA"
    )
    return path


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    return shared_data("mnist")


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    """The real (train, test) MNIST column-sequence sets."""
    return load_mnist(mnist_dir)


def subset(dataset: ArraySequenceSet, count: int) -> ArraySequenceSet:
    """The first `count` samples of a set."""
    return ArraySequenceSet(dataset.inputs[:count], dataset.labels[:count], N_CLASSES)


@pytest.fixture(scope="session")
def small_mnist(mnist):
    """2,000 training and 500 test samples of real MNIST, for quick runs."""
    train, test = mnist
    return subset(train, 2000), subset(test, 500)


@pytest.fixture(scope="session")
def ragged_mnist(small_mnist):
    """small_mnist with its training set claiming variable-length sequences, as text lines
    have: for the settings such data refuses."""
    train, test = small_mnist

    class Ragged(ArraySequenceSet):
        fixed_length = False

    return Ragged(train.inputs, train.labels, train.n_classes), test
