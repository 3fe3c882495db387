"""Continuing a trained model (--init) and adapting it to real lines by k-fold."""

import hashlib

import numpy as np
import pytest
import torch
from conftest import shared_data

from lstmbench.cli.main import main
from lstmbench.data.lines.codec import Codec
from lstmbench.data.lines.dataset import LineDataset, load_line_set
from lstmbench.errors import UserError
from lstmbench.training.checkpoint import run_directory
from lstmbench.training.config import RunConfig
from lstmbench.training.init import initial_net
from lstmbench.training.kfold import folds
from lstmbench.training.loop import train_run


@pytest.fixture(scope="module")
def real():
    """The 50 real lines, coded with every character they use."""
    lines = load_line_set(shared_data("uw3-sample"), log=lambda message: None)
    return LineDataset(lines.images, lines.texts, Codec.from_texts(lines.texts), lines.names)


def tiny_model(datasets, out, **settings) -> str:
    """A few seconds of training; the path of the model.pt it writes."""
    values = dict(
        dataset="lines:" + str(shared_data("uw3-sample")),
        cell="NPLSTM",
        direction="uni",
        hidden=6,
        batch_size=4,
        samples=8,
        eval_every=8,
        eval_samples=4,
    )
    config = RunConfig(**{**values, **settings})
    train_run(config, out_dir=out, progress=False, datasets=datasets)
    return str(run_directory(out, config) / "model.pt")


@pytest.fixture(scope="module")
def model(real, tmp_path_factory):
    return tiny_model((real, real), tmp_path_factory.mktemp("base"))


def digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_folds_are_disjoint_and_cover_the_set():
    parts = folds(50, 5, seed=3)
    assert [len(p) for p in parts] == [10] * 5
    assert sorted(np.concatenate(parts).tolist()) == list(range(50))
    assert [len(p) for p in folds(7, 3, 0)] == [3, 2, 2]
    assert [p.tolist() for p in folds(50, 5, 3)] == [p.tolist() for p in parts]
    with pytest.raises(UserError, match="--folds must be between 2"):
        folds(5, 6, 0)


def test_a_run_from_a_model_starts_from_its_weights(model, real):
    config = RunConfig(dataset="lines:x", direction="uni", hidden=6, init=model)
    start = initial_net(config, real)
    saved = torch.load(model, weights_only=True)["state"]
    assert all(torch.equal(start.state_dict()[k], v) for k, v in saved.items())
    fresh = initial_net(RunConfig(dataset="lines:x", direction="uni", hidden=6), real)
    assert not torch.equal(fresh.state_dict()["classifier.weight"], saved["classifier.weight"])
    assert config.run_id != RunConfig(dataset="lines:x", direction="uni", hidden=6).run_id
    assert "init" not in RunConfig().to_dict()  # runs from scratch keep their ids


def test_train_init_continues_the_model_on_real_lines(model, tmp_path, capsys):
    before = digest(model)
    sample = shared_data("uw3-sample")
    args = ["train", "--init", model, "--dataset", f"lines:{sample}", "--out", str(tmp_path)]
    args += ["--samples", "8", "--eval-every", "8", "--batch-size", "4", "--quiet"]
    args += ["--threads", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and digest(model) == before
    (result,) = tmp_path.glob("*/model.pt")
    saved = torch.load(result, weights_only=True)
    assert saved["config"]["hidden"] == 6 and saved["config"]["init"] == model  # the model's
    assert saved["dataset"]["codec"] == torch.load(model, weights_only=True)["dataset"]["codec"]
    args += ["--hidden", "50"]
    assert main(args) == 2
    assert "--hidden 50 (the model has 6); leave these options out" in capsys.readouterr().err


def test_init_refuses_a_model_of_another_alphabet_or_input(real, tmp_path, capsys, small_mnist):
    sample = shared_data("uw3-sample")
    few = real.subset(range(4))
    narrow = LineDataset(few.images, few.texts, Codec.from_texts(few.texts), few.names)
    other = tiny_model((narrow, narrow), tmp_path / "narrow")
    args = ["train", "--init", other, "--dataset", f"lines:{sample}", "--out", str(tmp_path)]
    args += ["--samples", "4", "--quiet"]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert "use characters model" in error and "has no output for" in error
    assert "start from a model whose training text has them" in error
    digits = tiny_model(small_mnist, tmp_path / "mnist", dataset="mnist", samples=4)
    assert main(["train", "--init", digits, "--dataset", f"lines:{sample}", "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "reads 28 values per time step" in error and "has 48" in error
    assert main(["train", "--init", str(tmp_path / "none.pt"), "--quiet"]) == 2
    assert "no checkpoint at" in capsys.readouterr().err


def test_kfold_reports_before_and_after_and_leaves_the_model_alone(model, capsys):
    before = digest(model)
    sample = shared_data("uw3-sample")
    args = ["lines", "kfold", "--init", model, "--real", str(sample), "--folds", "5"]
    args += ["--samples", "8", "--batch-size", "4", "--threads", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("fold ")]
    assert len(rows) == 5
    assert all("trained on 40 lines, tested on 10" in row for row in rows)
    assert all("before" in row and "after" in row for row in rows)
    assert "all 50 lines" in out and "before" in out.splitlines()[-1]
    assert digest(model) == before
    assert main(["lines", "kfold", "--real", str(sample)]) == 2
    assert "needs --init MODEL" in capsys.readouterr().err
