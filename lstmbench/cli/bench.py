"""The `lstmbench bench` command: training-step speed of every recurrence against nn.LSTM."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lstmbench.bench import fused_runs, speed
from lstmbench.cli.options import add_runtime_options, setup_runtime

FUSED_RUNS = 16

QUICK = {
    "cells": "NPLSTM,LSTM",
    "shapes": "mnist",
    "directions": "uni,bidi",
    "batches": "1,32",
    "hidden": "100",
}
FULL = {
    "cells": ",".join(speed.DEFAULT_CELLS),
    "shapes": ",".join(speed.SHAPES),
    "directions": "uni,bidi",
    "batches": "1,32,128",
    "hidden": "100,400",
}


def describe_shape(shape: speed.Shape) -> str:
    """A shape's name with its size, for the help text."""
    return f"{shape.name} (T={shape.steps}, {shape.features} features)"


def add_commands(subparsers) -> None:
    """Add `bench` to the lstmbench command."""
    parser = subparsers.add_parser(
        "bench",
        help="training-step speed and memory of every cell type against torch's nn.LSTM",
        description=(
            "Times one training step (forward, backward, SGD) per row, with torch's nn.LSTM "
            "measured in the same run as the baseline. Default: the full grid (takes long "
            "on a small CPU; the text-line shape dominates); --quick: a small one."
        ),
    )
    parser.add_argument("--quick", action="store_true", help="a small grid (its values below)")
    for name, help_text in (
        ("cells", "cell types, comma-separated"),
        ("shapes", "input shapes: " + ", ".join(map(describe_shape, speed.SHAPES.values()))),
        ("directions", "uni, bidi"),
        ("batches", "batch sizes"),
        ("hidden", "hidden sizes"),
    ):
        parser.add_argument(
            f"--{name}", help=f"{help_text} (default: {FULL[name]}; --quick: {QUICK[name]})"
        )
    parser.add_argument(
        "--no-reference", action="store_true", help="leave out the step-by-step reference rows"
    )
    parser.add_argument(
        "--min-time",
        type=float,
        default=1.0,
        help="seconds to time each row at least, in turns with the other rows of its size (1.0)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed bursts per row at least (50 ms of back-to-back steps each); median (3)",
    )
    parser.add_argument(
        "--fused-runs",
        type=int,
        default=FUSED_RUNS,
        help="also time K batch-1 runs fused against the same runs one after another "
        f"through nn.LSTM, per shape, direction and hidden size (default {FUSED_RUNS}; 0: no)",
    )
    parser.add_argument(
        "--json", default="bench.json", help="where the results go as JSON (bench.json)"
    )
    add_runtime_options(parser, data=False)
    parser.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    """Measure the chosen grid, print the table as it goes, and write the JSON."""
    from lstmbench.errors import UserError

    setup_runtime(args)
    if args.repeats < 1 or args.min_time < 0:
        raise UserError("--repeats must be at least 1 and --min-time at least 0")
    if args.fused_runs < 0:
        raise UserError(f"--fused-runs must be 0 (none) or more, got {args.fused_runs}")
    grid = QUICK if args.quick else FULL
    choice = {name: getattr(args, name) or grid[name] for name in FULL}
    cases = speed.build_cases(
        speed.parse_list(choice["cells"], str, "cells"),
        speed.parse_list(choice["shapes"], str, "shapes"),
        speed.parse_list(choice["directions"], str, "directions"),
        speed.parse_list(choice["batches"], int, "batches"),
        speed.parse_list(choice["hidden"], int, "hidden"),
        reference=not args.no_reference,
    )
    output = Path(args.json)
    if not output.parent.is_dir():
        raise UserError(f"--json {output}: folder {output.parent} does not exist; create it first")
    print(f"{len(cases)} rows on {args.device}; memory of every row first, then the timings")
    rows: list[speed.Row] = []

    def show(row: speed.Row) -> None:
        if not rows or (rows[-1].shape, rows[-1].hidden) != (row.shape, row.hidden):
            print(speed.HEADER, flush=True)
        rows.append(row)
        print(speed.format_row(row), flush=True)
        # Kept up to date row by row, so an interrupted run keeps what it measured.
        partial = {"facts": None, "rows": [vars(done) for done in rows], "complete": False}
        output.write_text(json.dumps(partial, indent=1) + "\n")

    facts, rows_done = speed.run_bench(
        cases, args.device, min_time=args.min_time, min_repeats=args.repeats, on_row=show
    )
    fused = []
    if args.fused_runs:
        print(fused_runs.HEADER, flush=True)
        for shape in speed.parse_list(choice["shapes"], str, "shapes"):
            for direction in speed.parse_list(choice["directions"], str, "directions"):
                for hidden in speed.parse_list(choice["hidden"], int, "hidden"):
                    row = fused_runs.measure(
                        args.fused_runs,
                        speed.SHAPES[shape],
                        direction,
                        hidden,
                        args.device,
                        args.min_time,
                        args.repeats,
                    )
                    fused.append(vars(row))
                    print(fused_runs.format_row(row), flush=True)
    document = {**speed.rows_to_json(facts, rows_done), "fused_runs": fused, "complete": True}
    output.write_text(json.dumps(document, indent=1) + "\n")
    print(
        f"sgemm {facts['sgemm_gflops']:.0f} GFLOP/s on {facts['device_name']}, "
        f"{facts['threads']} threads, torch {facts['torch']}; wrote {output}"
    )
    return 0
