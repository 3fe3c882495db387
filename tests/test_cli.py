"""The command line: a real train + eval round trip, and one clear message per mistake."""

import re
import subprocess
import sys

import pytest

from lstmbench.cli.main import main


def test_train_then_eval(mnist_dir, tmp_path, capsys):
    code = main(
        [
            "train",
            "--data",
            str(mnist_dir),
            "--out",
            str(tmp_path),
            "--quiet",
            "--direction",
            "uni",
            "--target",
            "end",
            "--hidden",
            "10",
            "--samples",
            "300",
            "--eval-every",
            "300",
            "--eval-samples",
            "200",
            "--validation",
            "200",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    # its evaluations read 200 held-out training samples: the choice is scored on the test set
    assert "best validation error" in printed
    chosen = re.search(
        r"chosen on validation \(best.pt, after 300 samples\): test error "
        r"(\S+) on 10000 samples",
        printed,
    )
    assert chosen, printed
    run_dir = next(tmp_path.iterdir())
    assert main(["eval", str(run_dir), "--data", str(mnist_dir)]) == 0
    assert re.search(r"validation error \S+ on 200 samples", capsys.readouterr().out)
    best = str(run_dir / "best.pt")
    assert main(["eval", best, "--data", str(mnist_dir), "--test-split"]) == 0
    assert f"test error {chosen[1]} on 10000 samples" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--cell", "FOO"], "unknown cell 'FOO'; valid cells: .*NPLSTM"),
        (["train", "--momentum", "1.5"], "momentum must be in"),
        (["train", "--data", "/nonexistent/mnist"], "does not exist.*data fetch mnist"),
        (["eval", "/nonexistent/run"], "no checkpoint|no result.json"),
        (["train", "--plugin", "no_such_module_xyz"], "cannot import cell plugin"),
    ],
)
def test_user_mistakes_end_in_one_message(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("lstmbench: error:")
    assert "Traceback" not in err
    import re

    assert re.search(message, err), err


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["train", "--target", "middle"],
            "invalid choice: 'middle' (choose from 'center', 'end', 'ctc')",
        ),
        (["train", "--direction", "sideways"], "choose from 'uni', 'bidi'"),
        (["train", "--hidden-units", "3"], "unrecognized arguments: --hidden-units"),
        (["train", "--lr", "fast"], "invalid float value: 'fast'"),
    ],
)
def test_bad_options_list_the_valid_ones(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cells_lists_presets_and_gru(capsys):
    assert main(["cells"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    for name in (
        "LSTM",
        "NPLSTM",
        "LINLSTM",
        "RELU2LSTM",
        "RELULSTM",
        "RELUTANHLSTM",
        "CIFG",
        "GRU",
    ):
        assert name in names


def test_installed_command_runs():
    out = subprocess.run(
        [sys.executable, "-m", "lstmbench.cli", "cells"], capture_output=True, text=True, check=True
    )
    assert "NPLSTM" in out.stdout


def test_data_goes_only_to_runs_all_on_mnist():
    from lstmbench.cli.options import data_for
    from lstmbench.sweep.runner import SweepOptions

    options = SweepOptions(data_path="/data/mnist")
    assert data_for({"mnist"}, options).data_path == "/data/mnist"
    # a line experiment would write its cache of generated lines into the MNIST folder
    assert data_for({"uw3like:tiny"}, options).data_path is None
    assert data_for({"mnist", "lines:/some/dir"}, options).data_path is None
