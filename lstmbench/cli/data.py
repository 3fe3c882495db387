"""`data fetch` (MNIST) and `data make-lines` (the generated UW3-like line set)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lstmbench.errors import UserError


def add_commands(commands) -> None:
    data = commands.add_parser("data", help="get datasets")
    actions = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    fetch = actions.add_parser("fetch", help="download a dataset, verified")
    fetch.add_argument("name", choices=["mnist"])
    fetch.add_argument("--dest", help="target directory (default: the user cache)")
    fetch.add_argument(
        "--mirror", action="append", help="base URL to try before the public mirrors; repeatable"
    )
    fetch.set_defaults(handler=fetch_command)

    make = actions.add_parser(
        "make-lines", help="generate the UW3-like line set (once; reused from the cache)"
    )
    make.add_argument("--size", default="small", help="tiny, small or full (default: small)")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--corpus", default="", help="UTF-8 text file (default: built-in text)")
    make.add_argument(
        "--font",
        action="append",
        default=[],
        help="faces to draw in instead of the era's (Courier, Times, Helvetica; each regular, "
        "bold, italic): a .ttf/.otf file, a folder of them, a face or group name (era, "
        "courier, times, helvetica, times-bold, ..., classic) or an installed font's file "
        "name such as LiberationSerif-Bold; repeatable",
    )
    make.add_argument(
        "--degradation",
        default="augraphy",
        help="augraphy (its printing effects, then the scan) or classic (the hand-written "
        "scan alone); default: augraphy",
    )
    make.add_argument(
        "--strength",
        type=float,
        default=1.0,
        help="strength of augraphy's printing effects, 0 to 1 (default: 1, the closest to "
        "real UW3 scans)",
    )
    make.add_argument("--out", help="cache directory (default: ~/.cache/lstmbench/uw3like)")
    make.add_argument("--workers", type=int, default=1, help="processes (default: 1)")
    make.set_defaults(handler=make_lines_command)


def fetch_command(args: argparse.Namespace) -> int:
    from lstmbench.data.mnist import MIRRORS, fetch_mnist

    mirrors = list(args.mirror or []) + list(MIRRORS)
    destination = fetch_mnist(Path(args.dest) if args.dest else None, mirrors=mirrors)
    print(f"MNIST is in {destination}")
    return 0


def make_lines_command(args: argparse.Namespace) -> int:
    """Generate (or find) a UW3-like line set and say how to train on it."""
    from lstmbench.data.lines.generate import GenerationParams, generate

    params = GenerationParams(
        args.size, args.seed, tuple(args.font), args.corpus, args.degradation, args.strength
    )
    params.check()
    if args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    directory = generate(params, Path(args.out) if args.out else None, args.workers)
    default = GenerationParams()
    custom = (
        args.font
        or args.corpus
        or (args.degradation, args.strength) != (default.degradation, default.strength)
    )
    name = (
        f"uw3like:{directory}"
        if custom or args.out
        else f"uw3like:{args.size}" + (f":{args.seed}" if args.seed else "")
    )
    print(f"lines are in {directory}; train with --dataset {name}")
    return 0
