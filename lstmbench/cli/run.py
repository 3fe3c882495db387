"""`train`, `eval` and `cells`: one network at a time."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lstmbench.cli.options import add_run_options, add_runtime_options, run_config, setup_runtime
from lstmbench.errors import UserError

LINE_DATASETS = ("lines", "uw3like")


def add_commands(commands) -> None:
    train = commands.add_parser("train", help="train one network and report its test error")
    add_run_options(train)
    add_runtime_options(train)
    train.add_argument("--out", default="runs", help="where run directories go (default: runs)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument(
        "--minutes",
        type=float,
        default=0.0,
        help="stop after this many minutes of training, with a last evaluation (0: no limit)",
    )
    train.set_defaults(handler=train_command)

    evaluate = commands.add_parser("eval", help="test error of a trained checkpoint")
    evaluate.add_argument("checkpoint", help="a run directory, its model.pt or best.pt")
    evaluate.add_argument(
        "--test-split",
        action="store_true",
        help="score the dataset's test split even for a run trained with --validation (whose "
        "evaluations, and so best.pt, chose on held-out training data)",
    )
    evaluate.add_argument(
        "test_data",
        nargs="?",
        help="text-line models: lines to score, all of them (a folder, list, .h5 or lines:PATH), "
        "or a dataset name, whose test split is scored (default: the model's own dataset)",
    )
    add_runtime_options(evaluate)
    evaluate.set_defaults(handler=eval_command)

    cells = commands.add_parser("cells", help="list the registered cell types")
    cells.add_argument("--plugin", action="append", default=[], help="import this module first")
    cells.set_defaults(handler=cells_command)


def train_command(args: argparse.Namespace) -> int:
    from lstmbench.training.checkpoint import BEST, run_directory
    from lstmbench.training.loop import train_run

    setup_runtime(args)
    if args.minutes < 0:
        raise UserError(f"--minutes must not be negative, got {args.minutes}")
    config = run_config(args)
    result = train_run(
        config,
        args.data,
        args.device,
        args.out,
        progress=not args.quiet,
        time_limit=60 * args.minutes,
    )
    split = "validation" if config.validation else "test"  # what the evaluations read
    for point in result.curve:
        print(
            f"samples {point['samples']:>8}  loss {point['train_loss']:9.4f}  "
            f"{split} error {point['test_error']:7.2%}  ({point['wall_time']:.0f} s)"
        )
    reason = f" ({result.reason})" if result.reason else ""
    print(
        f"run {config.run_id}: {result.status}{reason}; "
        f"best {split} error {result.best_error:.2%} at {result.best_samples} samples, "
        f"final {result.final_error:.2%}, {result.wall_time:.0f} s"
    )
    directory = run_directory(args.out, config)
    written = f"wrote {directory / 'result.json'} and {directory / 'model.pt'}"
    best = directory / BEST
    if best.is_file():  # none where no evaluation came before a divergence
        written += f", and {best} (the network at the lowest {split} error)"
    print(written)
    on_lines = config.dataset.partition(":")[0] in LINE_DATASETS
    if config.validation and best.is_file() and not on_lines:
        # The run chose on held-out training data: what its choice reads on the test set.
        values = {**config.to_dict(), "validation": 0}
        _, error, count = score_checkpoint(best, values, args.data, args.device)
        print(
            f"chosen on validation (best.pt, after {result.best_samples} samples): test error "
            f"{error:.2%} on {count} samples"
        )
    return 0


def saved_config(checkpoint: Path) -> dict:
    """The config stored beside a checkpoint, in result.json."""
    path = (
        checkpoint / "result.json" if checkpoint.is_dir() else checkpoint.with_name("result.json")
    )
    if not path.is_file():
        raise UserError(f"no result.json beside {checkpoint}: cannot tell which dataset it used")
    try:
        values = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path} is unreadable or corrupt ({error})") from None
    if not isinstance(values, dict) or not isinstance(values.get("config"), dict):
        raise UserError(
            f'{path} holds no run config (no "config" entry): it was not written by '
            "`lstmbench train`; give the run directory a training run wrote"
        )
    return values["config"]


def eval_command(args: argparse.Namespace) -> int:
    setup_runtime(args)
    path = Path(args.checkpoint)
    config_values = saved_config(path)
    if args.test_split:
        config_values = {**config_values, "validation": 0}
    dataset = str(config_values.get("dataset", ""))
    if args.test_data or dataset.partition(":")[0] in LINE_DATASETS:
        return eval_lines(args, config_values)
    config, error, count = score_checkpoint(path, config_values, args.data, args.device)
    split = "validation" if config_values.get("validation", 0) else "test"
    print(
        f"{config.cell} {config.direction} {config.output}/{config.target} "
        f"hidden {config.hidden}: {split} error {error:.2%} on {count} samples"
    )
    return 0


def score_checkpoint(path: Path, config_values: dict, data: str | None, device: str):
    """(config, error, samples scored) of a checkpoint on the test split of its dataset as
    `config_values` (its run's config) names it: the held-out part of the training set
    where they give a validation size."""
    import torch

    from lstmbench.data import load_dataset
    from lstmbench.training.checkpoint import load_checkpoint
    from lstmbench.training.evaluate import evaluate

    _, test_set = load_dataset(
        str(config_values.get("dataset", "")),
        data,
        config_values.get("validation", 0),
        config_values.get("seed", 0),
    )
    config, net = load_checkpoint(path, test_set)
    net.to(device)
    with torch.no_grad():
        error = evaluate(net, test_set, 0, device)
    return config, error, len(test_set)


def lines_to_score(source: str, config_values: dict, data_path: str | None, codec):
    """(lines, what they are) for `eval`: a folder or lines:PATH is scored whole; a dataset
    name by its test split."""
    from lstmbench.data import load_dataset
    from lstmbench.data.lines.dataset import LineDataset, load_line_set

    name, _, argument = source.partition(":")
    if Path(source).exists() or (name == "lines" and argument and "," not in argument):
        folder = Path(argument if name == "lines" and not Path(source).exists() else source)
        return load_line_set(folder, codec), f"all lines of {folder}"
    _, test = load_dataset(
        source, data_path, config_values.get("validation", 0), config_values.get("seed", 0)
    )
    if not isinstance(test, LineDataset):
        raise UserError(f"{source} is not a text-line dataset; give a directory, list or .h5")
    return LineDataset(test.images, test.texts, codec, test.names), f"the test split of {source}"


def eval_lines(args: argparse.Namespace, config_values: dict) -> int:
    """CER of a line model on DATA (or its own test split), with the commonest confusions."""
    from lstmbench.training.recognize import load_line_model, score_lines

    _, net, codec = load_line_model(args.checkpoint)
    net.to(args.device)
    source = args.test_data or str(config_values["dataset"])
    test, what = lines_to_score(source, config_values, args.data, codec)
    unknown = test.unknown_characters()
    error, _, counts = score_lines(net, test, args.device)
    print(
        f"character error rate {error:.2%} on {what}: {len(test)} lines "
        f"({sum(len(t) for t in test.texts)} characters)"
    )
    if unknown:
        print(f"characters not in the model's codec (always errors): {''.join(sorted(unknown))}")
    if counts:
        print("most frequent errors (reference -> output, count):")
        for (reference, output), count in counts.most_common(10):
            print(f"  {reference or '(none)'!r:>8} -> {output or '(none)'!r:<8} {count}")
    return 0


def cells_command(args: argparse.Namespace) -> int:
    from lstmbench.model.cells import cell_names, get_cell, load_plugins

    load_plugins(args.plugin)
    for name in cell_names():
        print(f"{name:14} {get_cell(name).description}")
    return 0
