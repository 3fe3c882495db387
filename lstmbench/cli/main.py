"""The `lstmbench` command: a parser to which each feature adds its commands."""

from __future__ import annotations

import argparse
import importlib
import sys

from lstmbench.errors import UserError

# Each module has add_commands(subparsers) and gives every parser it adds a `handler` default
# (a function args -> exit status). They are imported here, at the top of the layers.
COMMAND_MODULES: list[str] = [
    "lstmbench.cli.run",
    "lstmbench.cli.data",
    "lstmbench.cli.lines",
    "lstmbench.cli.sweep",
    "lstmbench.cli.analysis",
    "lstmbench.cli.bench",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstmbench", description="Benchmarking of LSTM networks and other recurrent cells."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a subcommand; a user's mistake ends in one message, exit status 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except UserError as error:
        print(f"lstmbench: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lstmbench: interrupted", file=sys.stderr)
        return 130
