"""`lines kfold`: how much a trained line model gains from training on a few real lines."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from lstmbench.cli.options import add_run_options, add_runtime_options, run_config, setup_runtime
from lstmbench.errors import UserError


def add_action(actions) -> None:
    """Add `lines kfold` to the `lines` subcommands."""
    kfold = actions.add_parser(
        "kfold",
        help="adapt a trained line model to real lines: train on k-1 folds, test on the "
        "held-out fold, rotate; CER before and after",
    )
    kfold.add_argument("--real", required=True, help="the real lines (a directory, list or .h5)")
    kfold.add_argument("--folds", type=int, default=5, help="k (default: 5)")
    kfold.add_argument(
        "--minutes", type=float, default=0.0, help="training time per fold (0: no limit)"
    )
    add_run_options(kfold, lr=1e-4, batch_size=4, epochs=10.0, eval_every=1000)
    add_runtime_options(kfold, data=False)
    kfold.set_defaults(handler=kfold_command)


def kfold_command(args) -> int:
    from lstmbench.data.lines.dataset import load_line_set
    from lstmbench.training.kfold import adapt_kfold, pooled

    setup_runtime(args)
    if not args.init:
        raise UserError("lines kfold needs --init MODEL: the trained line model to adapt")
    if args.minutes < 0:
        raise UserError(f"--minutes must not be negative, got {args.minutes}")
    config = dataclasses.replace(run_config(args), dataset=f"lines:{args.real}")
    lines = load_line_set(Path(args.real))
    results = adapt_kfold(config, lines, args.folds, args.device, 60 * args.minutes)
    print(
        f"all {len(lines)} lines of {args.real}, {args.folds} folds: CER "
        f"{pooled(results, 'before'):.2%} before, {pooled(results, 'after'):.2%} after "
        f"adapting {config.init} ({config.samples or config.epochs} "
        f"{'lines' if config.samples else 'epochs'} per fold, lr {config.lr})"
    )
    return 0
