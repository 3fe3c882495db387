"""MNIST: reading real IDX files, content checks, the validation split, and fetching."""

import gzip
import hashlib
import http.server
import shutil
import threading
from functools import partial

import numpy as np
import pytest
import torch

from lstmbench.data.mnist import CHECKSUMS, fetch_mnist, load_mnist, parse_idx, read_idx
from lstmbench.errors import UserError


def test_real_mnist_as_column_sequences(mnist):
    train, test = mnist
    assert train.inputs.shape == (60000, 28, 28) and test.inputs.shape == (10000, 28, 28)
    assert train.inputs.dtype == np.float32
    assert 0.0 <= train.inputs.min() and train.inputs.max() == 1.0
    assert sorted(set(train.labels.tolist())) == list(range(1, 11))  # digit + 1; 0 is blank
    batch = test.batch(np.array([0, 1, 2]))
    assert batch.inputs.shape == (28, 3, 28)  # (time, batch, features)


def test_consecutive_steps_load_as_one_gather_with_the_same_batches(mnist):
    _, test = mnist
    steps = [np.array([5, 3]), np.array([9]), np.array([0, 7, 2])]
    for together, alone in zip(test.batches(steps), map(test.batch, steps), strict=True):
        for field in ("inputs", "input_lengths", "targets", "target_lengths"):
            assert torch.equal(getattr(together, field), getattr(alone, field)), field


def test_time_steps_are_image_columns(mnist_dir):
    raw = read_idx(mnist_dir, "t10k-images-idx3-ubyte")
    _, test = load_mnist(mnist_dir)
    column = 9
    np.testing.assert_allclose(test.inputs[0, column], raw[0][:, column] / 255.0)


def test_validation_split_is_held_out_of_training(mnist_dir):
    train, held = load_mnist(mnist_dir, validation=1000, seed=5)
    assert len(train) == 59000 and len(held) == 1000
    full, _ = load_mnist(mnist_dir)
    train_rows = {row.tobytes() for row in train.inputs[:, 14]}
    overlap = sum(row.tobytes() in train_rows for row in held.inputs[:, 14])
    assert overlap < 50  # only genuinely identical middle columns (e.g. blank) can coincide


def copy_data(mnist_dir, tmp_path, decompress=()):
    for path in mnist_dir.glob("*.gz"):
        if path.name.removesuffix(".gz") in decompress:
            (tmp_path / path.name.removesuffix(".gz")).write_bytes(
                gzip.decompress(path.read_bytes())
            )
        else:
            shutil.copy(path, tmp_path / path.name)
    return tmp_path


def test_raw_and_gzip_files_read_alike(mnist_dir, tmp_path):
    folder = copy_data(mnist_dir, tmp_path, decompress={"t10k-labels-idx1-ubyte"})
    _, test = load_mnist(folder)
    assert len(test) == 10000


def test_missing_file_is_named_with_the_fix(mnist_dir, tmp_path):
    folder = copy_data(mnist_dir, tmp_path)
    (folder / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(UserError, match="t10k-images-idx3-ubyte.*missing.*data fetch mnist"):
        load_mnist(folder)


def test_corrupt_file_is_named(mnist_dir, tmp_path):
    folder = copy_data(mnist_dir, tmp_path, decompress={"t10k-labels-idx1-ubyte"})
    path = folder / "t10k-labels-idx1-ubyte"
    data = bytearray(path.read_bytes())
    data[100] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte is corrupt"):
        load_mnist(folder)


def test_truncated_gzip_is_named(mnist_dir, tmp_path):
    folder = copy_data(mnist_dir, tmp_path)
    path = folder / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(UserError, match="train-labels-idx1-ubyte.gz is unreadable or corrupt"):
        load_mnist(folder)


def test_missing_directory_says_how_to_get_the_data(tmp_path):
    with pytest.raises(UserError, match="does not exist.*data fetch mnist"):
        load_mnist(tmp_path / "nowhere")


def test_idx_parser_checks_the_header_and_size():
    good = bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6))
    assert parse_idx(good).tolist() == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(UserError, match="truncated"):
        parse_idx(good[:-1])
    with pytest.raises(UserError, match="not an unsigned-byte IDX"):
        parse_idx(b"\x00\x00\x0d\x01" + good[4:])


# --- fetching, against a real HTTP server on loopback serving a generated fixture ---


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def mirrors(tmp_path):
    """Three mirrors on one loopback server: one empty, one serving bad files, one good."""
    rng = np.random.default_rng(0)
    fixture = {
        "train-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (20, 28, 28))),
        "train-labels-idx1-ubyte": idx_bytes(rng.integers(0, 10, 20)),
        "t10k-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (10, 28, 28))),
        "t10k-labels-idx1-ubyte": idx_bytes(rng.integers(0, 10, 10)),
    }
    root = tmp_path / "www"
    for name, data in fixture.items():
        (root / "good").mkdir(parents=True, exist_ok=True)
        (root / "bad").mkdir(parents=True, exist_ok=True)
        (root / "empty").mkdir(parents=True, exist_ok=True)
        (root / "good" / f"{name}.gz").write_bytes(gzip.compress(data))
        (root / "bad" / f"{name}.gz").write_bytes(gzip.compress(data[:-1] + b"\x01"))
    handler = partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    checksums = {name: hashlib.sha256(data).hexdigest() for name, data in fixture.items()}
    yield base, checksums
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_fetch_tries_mirrors_in_turn_and_verifies(mirrors, tmp_path):
    base, checksums = mirrors
    messages = []
    destination = fetch_mnist(
        tmp_path / "cache",
        mirrors=[f"{base}/empty/", f"{base}/bad/", f"{base}/good/"],
        checksums=checksums,
        attempts=1,
        log=messages.append,
    )
    train, test = load_mnist_with(destination, checksums)
    assert len(train) == 20 and len(test) == 10
    assert all("good" in m for m in messages)
    # A second fetch finds verified files and downloads nothing.
    messages.clear()
    fetch_mnist(destination, mirrors=[f"{base}/empty/"], checksums=checksums, log=messages.append)
    assert all("already present" in m for m in messages)


def load_mnist_with(folder, checksums):
    from lstmbench.data.mnist import load_split

    return load_split(folder, "train", checksums), load_split(folder, "t10k", checksums)


def test_fetch_reports_every_mirror_when_all_fail(mirrors, tmp_path):
    base, checksums = mirrors
    with pytest.raises(UserError) as failure:
        fetch_mnist(
            tmp_path / "cache",
            mirrors=[f"{base}/empty/", f"{base}/bad/"],
            checksums=checksums,
            attempts=1,
            log=lambda m: None,
        )
    text = str(failure.value)
    assert "404" in text and "checksum mismatch" in text
    assert not list((tmp_path / "cache").glob("*"))  # nothing unverified is left behind


def test_real_checksums_are_the_documented_ones():
    assert CHECKSUMS["t10k-labels-idx1-ubyte"].startswith("ff7bcfd4")
