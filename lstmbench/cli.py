"""The `lstmbench` command."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
from pathlib import Path

from .errors import UserError

# Each feature adds its own subcommands: a module with add_commands(subparsers) that gives every
# parser it adds a `handler` default (a function args -> exit status).
COMMAND_MODULES: list[str] = [
    "lstmbench.lines.commands",
    "lstmbench.analysis.commands",
    "lstmbench.sweep.commands",
    "lstmbench.bench_cli",
]

# Settings whose valid values argparse should list in its own error message.
_CHOICES = {
    "direction": "DIRECTIONS",
    "output": "OUTPUTS",
    "target": "TARGET_MODES",
    "impl": "IMPLEMENTATIONS",
}
_HELP = {
    "dataset": "dataset name (mnist)",
    "cell": "cell type (see `lstmbench cells`)",
    "direction": "uni (LSTM1) or bidi (BIDI)",
    "layers": "stacked recurrent layers",
    "output": "output layer: softmax (cross-entropy) or logistic (MSE)",
    "target": "label placement: center, end (fixed step) or ctc (aligned)",
    "hidden": "hidden units (states) per direction",
    "lr": "learning rate",
    "momentum": "SGD momentum",
    "batch_size": "samples per update (gradients are averaged over the batch)",
    "epochs": "training length in passes over the training set",
    "samples": "training length in samples (overrides --epochs)",
    "seed": "random seed (initial weights and sample order)",
    "eval_every": "training samples between test evaluations",
    "eval_samples": "test samples per evaluation (0: all)",
    "validation": "hold out this many training samples and test on them",
    "stuck_evals": "evaluations at chance, without progress, before stopping as diverged",
    "impl": "recurrence implementation: fast (default) or reference (step-by-step)",
}


def add_run_options(parser: argparse.ArgumentParser) -> None:
    from . import nets, targets
    from .config import RunConfig

    constants = {**vars(nets), **vars(targets)}
    for f in dataclasses.fields(RunConfig):
        kind = type(f.default)
        choices = constants[_CHOICES[f.name]] if f.name in _CHOICES else None
        parser.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            type=kind,
            default=f.default,
            choices=choices,
            help=f"{_HELP.get(f.name, f.name)} (default: {f.default})",
        )


def add_runtime_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="dataset directory (default: $LSTMBENCH_MNIST or the cache)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        help="import this module first (it may register cells); repeatable",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstmbench", description="Benchmarking of LSTM networks and other recurrent cells."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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

    evaluate = commands.add_parser("eval", help="test error of a trained checkpoint")
    evaluate.add_argument("checkpoint", help="a run directory or its model.pt")
    evaluate.add_argument(
        "test_data", nargs="?", help="text-line models: lines or dataset to score (default: own)"
    )
    add_runtime_options(evaluate)

    data = commands.add_parser("data", help="get datasets")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    fetch = data_commands.add_parser("fetch", help="download a dataset, verified")
    fetch.add_argument("name", choices=["mnist"])
    fetch.add_argument("--dest", help="target directory (default: the user cache)")
    fetch.add_argument(
        "--mirror", action="append", help="base URL to try before the public mirrors; repeatable"
    )

    cells = commands.add_parser("cells", help="list the registered cell types")
    cells.add_argument("--plugin", action="append", default=[], help="import this module first")

    train.set_defaults(handler=_train)
    evaluate.set_defaults(handler=_eval)
    fetch.set_defaults(handler=_data)
    cells.set_defaults(handler=_cells)
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_commands(commands)
    return parser


def setup_runtime(args) -> None:
    import torch

    from .cells import load_plugins

    load_plugins(args.plugin)
    if getattr(args, "threads", 0):
        torch.set_num_threads(args.threads)


def _train(args) -> int:
    from .config import RunConfig
    from .train import run_directory, train_run

    setup_runtime(args)
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig)}
    config = RunConfig(**values)
    result = train_run(
        config,
        args.data,
        args.device,
        args.out,
        progress=not args.quiet,
        time_limit=60 * args.minutes,
    )
    directory = run_directory(Path(args.out), config)
    for point in result.curve:
        print(
            f"samples {point['samples']:>8}  loss {point['train_loss']:9.4f}  "
            f"test error {point['test_error']:7.2%}  ({point['wall_time']:.0f} s)"
        )
    reason = f" ({result.reason})" if result.reason else ""
    print(
        f"run {config.run_id}: {result.status}{reason}; "
        f"best test error {result.best_error:.2%} at {result.best_samples} samples, "
        f"final {result.final_error:.2%}, {result.wall_time:.0f} s"
    )
    print(f"wrote {directory / 'result.json'} and {directory / 'model.pt'}")
    return 0


def _eval(args) -> int:
    import torch

    from .data import load_dataset
    from .train import evaluate, load_checkpoint

    setup_runtime(args)
    path = Path(args.checkpoint)
    saved_config = path / "result.json" if path.is_dir() else path.with_name("result.json")
    config_values = (
        json.loads(saved_config.read_text())["config"] if saved_config.exists() else None
    )
    if config_values is None:
        raise UserError(f"no result.json beside {path}: cannot tell which dataset the model used")
    if args.test_data or config_values["dataset"].partition(":")[0] in ("lines", "uw3like"):
        from .lines.commands import eval_lines

        return eval_lines(args, config_values)
    _, test_set = load_dataset(
        config_values["dataset"], args.data, config_values["validation"], config_values["seed"]
    )
    config, net = load_checkpoint(path, test_set)
    net.to(args.device)
    with torch.no_grad():
        error = evaluate(net, test_set, 0, args.device)
    split = "validation" if config.validation else "test"
    print(
        f"{config.cell} {config.direction} {config.output}/{config.target} "
        f"hidden {config.hidden}: {split} error {error:.2%} on {len(test_set)} samples"
    )
    return 0


def _data(args) -> int:
    from .data.mnist import MIRRORS, fetch_mnist

    mirrors = list(args.mirror or []) + list(MIRRORS)
    destination = fetch_mnist(Path(args.dest) if args.dest else None, mirrors=mirrors)
    print(f"MNIST is in {destination}")
    return 0


def _cells(args) -> int:
    from .cells import cell_names, get_cell, load_plugins

    load_plugins(args.plugin)
    for name in cell_names():
        print(f"{name:14} {get_cell(name).description}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a subcommand; a user's mistake ends in one message, exit status 2."""
    args = _parser().parse_args(argv)
    try:
        return args.handler(args)
    except UserError as error:
        print(f"lstmbench: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lstmbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
