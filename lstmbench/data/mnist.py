"""MNIST from the original IDX files: read, verify, fetch, and turn into column sequences."""

from __future__ import annotations

import gzip
import hashlib
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from lstmbench.data.base import ArraySequenceSet
from lstmbench.data.registry import register_dataset
from lstmbench.errors import UserError

# SHA-256 of the *decompressed* files: independent of how a mirror gzipped them.
CHECKSUMS = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
ENV_VAR = "LSTMBENCH_MNIST"
GZIP_MAGIC = b"\x1f\x8b"
FETCH_HINT = "run `lstmbench data fetch mnist`, or point --data / $LSTMBENCH_MNIST at the IDX files"


def default_cache() -> Path:
    """Where `data fetch` puts MNIST: $XDG_CACHE_HOME/lstmbench/mnist (or ~/.cache/...)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lstmbench" / "mnist"


def resolve_dir(path: str | os.PathLike | None = None) -> Path:
    """The MNIST directory: the given path, else $LSTMBENCH_MNIST, else the user cache."""
    if path:
        return Path(path)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return default_cache()


def _find(directory: Path, name: str) -> Path:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise UserError(f"MNIST file {name}(.gz) is missing from {directory}; {FETCH_HINT}")


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise UserError(
            f"MNIST file {path} is unreadable or corrupt ({error}); {FETCH_HINT}"
        ) from None


def parse_idx(raw: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode an IDX file (unsigned bytes): magic, dimension sizes, then the data."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise UserError(f"{source} is not an unsigned-byte IDX file; {FETCH_HINT}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(raw) != header + int(np.prod(shape)):
        raise UserError(f"{source} is truncated or has extra bytes for shape {shape}; {FETCH_HINT}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_idx(
    directory: Path, name: str, checksums: dict[str, str] | None = CHECKSUMS
) -> np.ndarray:
    """Read one IDX file, checking its content hash when `checksums` knows it."""
    path = _find(directory, name)
    raw = _read_bytes(path)
    expected = (checksums or {}).get(name)
    if expected and hashlib.sha256(raw).hexdigest() != expected:
        raise UserError(f"MNIST file {path} is corrupt (its SHA-256 does not match); {FETCH_HINT}")
    return parse_idx(raw, str(path))


def as_column_sequences(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) images -> (N, 28, 28) sequences: time = column, features = the column."""
    return np.ascontiguousarray(images.transpose(0, 2, 1), dtype=np.float32) / 255.0


N_CLASSES = 11  # ten digits and the blank


def load_split(directory: Path, split: str, checksums=CHECKSUMS) -> ArraySequenceSet:
    """Load 'train' or 't10k' as column sequences; labels shifted by one (0 is blank)."""
    images = read_idx(directory, f"{split}-images-idx3-ubyte", checksums)
    labels = read_idx(directory, f"{split}-labels-idx1-ubyte", checksums)
    if len(images) != len(labels):
        raise UserError(
            f"MNIST {split}: {len(images)} images but {len(labels)} labels; {FETCH_HINT}"
        )
    return ArraySequenceSet(as_column_sequences(images), labels.astype(np.int64) + 1, N_CLASSES)


def load_mnist(path=None, validation: int = 0, seed: int = 0):
    """(train, test) column-sequence sets; with validation > 0, test is a held-out part of
    the training set (chosen with `seed`) and train is the rest."""
    directory = resolve_dir(path)
    if not directory.is_dir():
        raise UserError(f"MNIST directory {directory} does not exist; {FETCH_HINT}")
    train = load_split(directory, "train")
    if validation <= 0:
        return train, load_split(directory, "t10k")
    if validation >= len(train):
        raise UserError(
            f"validation size {validation} must be below the {len(train)} training images"
        )
    order = np.random.default_rng(seed).permutation(len(train))
    held, kept = order[:validation], order[validation:]
    return (
        ArraySequenceSet(train.inputs[kept], train.labels[kept], N_CLASSES),
        ArraySequenceSet(train.inputs[held], train.labels[held], N_CLASSES),
    )


def fetch_mnist(
    destination: Path | None = None,
    mirrors=MIRRORS,
    checksums: dict[str, str] = CHECKSUMS,
    attempts: int = 2,
    log=print,
) -> Path:
    """Download the four MNIST files into `destination`, verified, trying mirrors in turn."""
    destination = destination or default_cache()
    destination.mkdir(parents=True, exist_ok=True)
    for name, expected in checksums.items():
        present = [p for p in (destination / f"{name}.gz", destination / name) if p.exists()]
        if present and _content_hash(present[0].read_bytes()) == expected:
            log(f"{name}: already present and verified")
            continue
        data, mirror = _download_verified(name, expected, mirrors, attempts, destination)
        target = destination / (f"{name}.gz" if data[:2] == GZIP_MAGIC else name)
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(data)
        partial.replace(target)  # never leave a half-written file under the real name
        log(f"{name}: fetched from {mirror}")
    return destination


def _download_verified(name, expected, mirrors, attempts, destination) -> tuple[bytes, str]:
    """The first copy of `name` from the mirrors whose content hash is right."""
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + f"/{name}.gz"
        for attempt in range(attempts):
            try:
                data = _download(url)
            except (urllib.error.URLError, OSError) as error:
                failures.append(f"{url}: {error}")
                time.sleep(0.2 * attempt)
                continue
            if _content_hash(data) == expected:
                return data, mirror
            failures.append(f"{url}: checksum mismatch")
            break  # a mirror serving a wrong file will not serve a right one on retry
    raise UserError(
        f"could not fetch MNIST file {name} from any mirror:\n  "
        + "\n  ".join(failures)
        + f"\nCheck the network, or download the files by hand into {destination}"
    )


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def _content_hash(data: bytes) -> str:
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError):
            return "corrupt"
    return hashlib.sha256(data).hexdigest()


def _load_registered(argument, path, validation, seed):
    return load_mnist(argument or path, validation, seed)


register_dataset("mnist", _load_registered)
