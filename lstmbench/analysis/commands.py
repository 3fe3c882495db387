"""The `report`, `reproduce` and `compare` subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError


def add_commands(subparsers) -> None:
    """Add `report`, `reproduce` and `compare` to the lstmbench command."""
    report = subparsers.add_parser(
        "report", help="figures, findings and an HTML/Markdown report from a results database"
    )
    report.add_argument("db", help="the results database (SQLite file written by sweeps)")
    report.add_argument("-o", "--out", default="report", help="output folder (default: report)")
    report.set_defaults(handler=_report)


def open_store(path: str | Path, must_exist: bool = True):
    """The results store at path; a missing file is the user's mistake when reading."""
    from ..sweep.store import ResultsStore

    path = Path(path)
    if must_exist and not path.is_file():
        raise UserError(
            f"results database {path} does not exist; give the file a sweep wrote "
            "(lstmbench sweep run ... --db FILE) or run `lstmbench reproduce`"
        )
    return ResultsStore(path)


def _report(args: argparse.Namespace) -> int:
    import sys

    from .report import write_report

    written = write_report(open_store(args.db), args.out, sys.argv)
    print_written(written)
    return 0


def print_written(written) -> None:
    """Say where the report went, and what could not be drawn."""
    for finding in written.findings:
        print(f"  {finding.verdict:>26}  {finding.claim}")
    for key, message in written.missing.items():
        print(f"  {key} not drawn: {message}")
    print(f"wrote {written.html} and {written.markdown} ({len(written.figures)} figures)")
