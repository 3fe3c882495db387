"""Run files: checkpoints of the earlier format still load and score the same; the format
number refuses what this version cannot read; writes are atomic."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import shared_data

from lstmbench.cli.main import main
from lstmbench.errors import UserError
from lstmbench.training import checkpoint
from lstmbench.training.checkpoint import BEST, FORMAT, load_checkpoint, read_checkpoint
from lstmbench.training.config import RunConfig
from lstmbench.training.evaluate import evaluate
from lstmbench.training.loop import train_run

# Written by lstmbench before checkpoints had a format number (format 1): a BIDI LSTM with
# peepholes, 16 units, CTC, trained on 40,000 MNIST samples. Its result.json holds the error
# it measured on the first 500 test samples; `lstmbench eval` then printed 20.80% on all
# 10,000.
OLD_RUN = Path(__file__).parent / "data" / "checkpoint-v1"


def test_a_checkpoint_of_the_earlier_format_scores_as_it_did(mnist, capsys):
    _, test = mnist
    saved = json.loads((OLD_RUN / "result.json").read_text())
    _, contents = read_checkpoint(OLD_RUN)
    assert "format" not in contents  # really the earlier format
    config, net = load_checkpoint(OLD_RUN, test)
    assert config == RunConfig.from_dict(saved["config"]) and config.cell == "LSTM"
    assert evaluate(net, test, config.eval_samples) == saved["final_error"] == 0.2
    assert main(["eval", str(OLD_RUN), "--data", str(shared_data("mnist"))]) == 0
    assert "test error 20.80% on 10000 samples" in capsys.readouterr().out


def test_new_checkpoints_carry_the_format_and_reload(small_mnist, tmp_path):
    config = RunConfig(direction="uni", hidden=6, batch_size=20, samples=200, eval_every=200)
    result = train_run(config, datasets=small_mnist, out_dir=tmp_path, progress=False)
    _, contents = read_checkpoint(tmp_path / config.run_id)
    assert contents["format"] == FORMAT
    _, net = load_checkpoint(tmp_path / config.run_id / "model.pt", small_mnist[1])
    assert evaluate(net, small_mnist[1]) == result.final_error


def test_best_pt_keeps_the_network_at_the_lowest_error(small_mnist, tmp_path, capsys):
    # a rate at which this run reads best at its first evaluation and worse after it
    config = RunConfig(
        direction="uni", hidden=6, batch_size=20, samples=600, eval_every=100, lr=0.01
    )
    result = train_run(config, datasets=small_mnist, out_dir=tmp_path, progress=False)
    assert result.best_samples < result.samples_seen and result.best_error < result.final_error
    best = tmp_path / config.run_id / BEST
    _, contents = read_checkpoint(best)
    assert (contents["samples"], contents["error"]) == (result.best_samples, result.best_error)
    assert contents["format"] == FORMAT
    _, net = load_checkpoint(best, small_mnist[1])
    assert evaluate(net, small_mnist[1], config.eval_samples) == result.best_error
    # `lstmbench eval` reads it like model.pt
    assert main(["eval", str(best), "--data", str(shared_data("mnist"))]) == 0
    assert "test error" in capsys.readouterr().out


def test_a_newer_format_is_refused_by_name(tmp_path):
    contents = torch.load(OLD_RUN / "model.pt", weights_only=True)
    contents["format"] = FORMAT + 1
    torch.save(contents, tmp_path / "model.pt")
    with pytest.raises(UserError, match=f"format {FORMAT + 1}, newer than this lstmbench"):
        read_checkpoint(tmp_path)


def test_truncated_or_foreign_files_are_named(tmp_path):
    data = (OLD_RUN / "model.pt").read_bytes()
    (tmp_path / "model.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="unreadable or corrupt"):
        read_checkpoint(tmp_path)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "model.pt")
    with pytest.raises(UserError, match="not an lstmbench checkpoint"):
        read_checkpoint(tmp_path)


def test_a_write_killed_midway_leaves_the_old_file_whole(tmp_path, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    before = (run / "model.pt").read_bytes()

    def dies_after_some_bytes(stream):
        stream.write(before[:100])
        raise KeyboardInterrupt  # stands in for a kill during the write

    with pytest.raises(KeyboardInterrupt):
        checkpoint.write_atomically(run / "model.pt", dies_after_some_bytes)
    assert (run / "model.pt").read_bytes() == before
    assert sorted(p.name for p in run.iterdir()) == ["model.pt", "result.json"]  # no debris


def test_eval_of_a_result_without_config_is_one_clear_message(tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    (run / "result.json").write_text(json.dumps({"status": "done"}))
    assert main(["eval", str(run)]) == 2
    err = capsys.readouterr().err
    assert 'holds no run config (no "config" entry)' in err and "Traceback" not in err
    (run / "result.json").write_text("{not json")
    assert main(["eval", str(run)]) == 2
    assert "unreadable or corrupt" in capsys.readouterr().err
