"""The `report`, `reproduce` and `compare` subcommands."""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from pathlib import Path

from lstmbench.analysis.paper import PROTOCOLS, SPECS
from lstmbench.analysis.runs import compare_sweep_name
from lstmbench.cli.options import add_sweep_runner_options, data_for, sweep_options
from lstmbench.errors import UserError

SCALES = ("tiny", "small")


def add_commands(subparsers) -> None:
    """Add `report`, `reproduce` and `compare` to the lstmbench command."""
    report = subparsers.add_parser(
        "report", help="figures, findings and an HTML/Markdown report from a results database"
    )
    report.add_argument("db", help="the results database (SQLite file written by sweeps)")
    report.add_argument("-o", "--out", default="report", help="output folder (default: report)")
    report.set_defaults(handler=_report)

    reproduce = subparsers.add_parser(
        "reproduce", help="run every paper experiment at one scale, then write the report"
    )
    reproduce.add_argument("--scale", choices=SCALES, help="a fixed scale (default: tiny)")
    reproduce.add_argument(
        "--budget",
        help="instead of a scale: plan every experiment to end within this wall time on this "
        "machine, e.g. 15m, 2h or 1h30m (a plan file beside --db; run again to resume; "
        "default --db results-budget.db, --out report-budget)",
    )
    reproduce.add_argument(
        "--only", action="append", choices=list(SPECS), help="only this spec; repeatable"
    )
    _add_sweep_options(reproduce)
    reproduce.set_defaults(handler=_reproduce)

    compare = subparsers.add_parser(
        "compare", help="run the paper's protocol for your cell and report it beside the paper's"
    )
    compare.add_argument("--cell", required=True, help="a registered cell name (see --plugin)")
    compare.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default=PROTOCOLS[0],
        help=f"the paper's experiment to run the cell through (default: {PROTOCOLS[0]})",
    )
    compare.add_argument("--scale", choices=SCALES, help="a fixed scale (default: tiny)")
    compare.add_argument(
        "--budget",
        help="instead of a scale: your cell beside NPLSTM, LSTM and GRU (softmax output), "
        "planned to end within this wall time on this machine, e.g. 1h; verdicts better, "
        "worse or equivalent (a plan file beside --db; run again to resume; default --db "
        "compare-CELL.db, --out report-compare-CELL)",
    )
    _add_sweep_options(compare, "; with --budget: compare-CELL.db")
    compare.set_defaults(handler=_compare)


def _add_sweep_options(parser: argparse.ArgumentParser, budget_db: str = "") -> None:
    parser.add_argument("-o", "--out", help="report folder (default: report-SCALE)")
    add_sweep_runner_options(parser, "results-SCALE.db" + budget_db)


def open_store(path: str | Path, must_exist: bool = True):
    """The results store at path; a missing file is the user's mistake when reading."""
    from lstmbench.sweep.store import ResultsStore

    path = Path(path)
    if must_exist and not path.is_file():
        raise UserError(
            f"results database {path} does not exist; give the file a sweep wrote "
            "(lstmbench sweep run ... --db FILE) or run `lstmbench reproduce`"
        )
    return ResultsStore(path)


def _report(args: argparse.Namespace) -> int:
    from lstmbench.analysis.report import write_report
    from lstmbench.cli.budget import report_parts
    from lstmbench.sweep.budget import plan_path, read_plan

    store = open_store(args.db)
    # A budgeted run's plan lies beside its database: with it, the rebuilt report has the
    # budget's sections too (the plan, the pilot, the runs each open claim needs).
    try:
        plan = read_plan(plan_path(store.path))
    except UserError as error:  # the runs are still worth a report
        print(f"{error}; the report leaves out the budget's sections", file=sys.stderr)
        plan = None
    written = write_report(store, args.out, sys.argv, **(report_parts(plan) if plan else {}))
    print_written(written)
    return 0


def print_written(written) -> None:
    """Say what the findings are, what could not be drawn, and where the report went."""
    for finding in written.findings:
        print(f"  {finding.verdict:>12}  {finding.claim}")
    for key, message in written.missing.items():
        print(f"  {key} not drawn: {message}")
    print(f"wrote {written.html} and {written.markdown} ({len(written.figures)} figures)")


def options_for(spec, options):
    """The sweep options for one spec at options.scale (data_for)."""
    return data_for({config.dataset for config in spec.expand(options.scale)}, options)


def run_specs(specs: list, store, options) -> list[str]:
    """Run the specs one after another into one store; returns the problems met (if any)."""
    from lstmbench.sweep.runner import run_sweep

    problems = []
    for number, spec in enumerate(specs, 1):
        runs = spec.scale(options.scale).runs
        print(
            f"[{number}/{len(specs)}] {spec.name} ({options.scale}, {runs} runs): "
            f"{spec.description}",
            flush=True,
        )
        start = time.perf_counter()
        try:
            summary = run_sweep(spec, store, options_for(spec, options))
        except UserError as error:  # one broken sweep must not cost the others
            problems.append(str(error))
            print(f"    stopped: {error}", flush=True)
            continue
        counts = summary.counts
        print(
            f"    {counts['done']} done, {counts['diverged']} diverged, {counts['failed']} "
            f"failed in {time.perf_counter() - start:.0f} s",
            flush=True,
        )
    return problems


def _finish(
    store, out: str, problems: list[str], start: float, sections=None, scope=None, unrun=None
) -> int:
    from lstmbench.analysis.report import write_report

    written = write_report(store, out, sys.argv, sections, scope, unrun)
    print_written(written)
    print(f"total {time.perf_counter() - start:.0f} s; open {written.html} in a browser")
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _reproduce(args: argparse.Namespace) -> int:
    from lstmbench.model.cells import load_plugins
    from lstmbench.sweep.spec import load_spec

    start = time.perf_counter()
    if args.budget is not None:
        from lstmbench.cli.budget import reproduce_budget

        check_budget(args)
        store = open_store(args.db or "results-budget.db", must_exist=False)
        problems, parts = reproduce_budget(args, store)
        return _finish(store, args.out or "report-budget", problems, start, **parts)
    args.scale = args.scale or "tiny"
    load_plugins(args.plugin)
    specs = [load_spec(name) for name in (args.only or SPECS)]
    store = open_store(args.db or f"results-{args.scale}.db", must_exist=False)
    problems = run_specs(specs, store, sweep_options(args))
    return _finish(store, args.out or f"report-{args.scale}", problems, start)


def compare_spec(protocol, cell: str):
    """The protocol spec with its cell types replaced by one cell, as many runs per type."""
    from lstmbench.sweep.spec import SCALES as SPEC_SCALES
    from lstmbench.sweep.spec import parse_spec

    source = copy.deepcopy(protocol.source)
    source["name"] = compare_sweep_name(protocol.name, cell)
    source["description"] = f"{cell} on the {protocol.name} protocol"
    source.get("sweep", {}).pop("cell", None)
    source.setdefault("fixed", {})["cell"] = cell
    for scale in SPEC_SCALES:
        table = source["scales"][scale]
        cells = protocol.scale(scale).sweep.get("cell")
        types = len(cells.values) if cells is not None and cells.kind == "values" else 1
        table["runs"] = math.ceil(table["runs"] / types)
        table.get("sweep", {}).pop("cell", None)
        table.get("fixed", {}).pop("cell", None)
    return parse_spec(source, f"compare --cell {cell}")


def check_budget(args: argparse.Namespace) -> None:
    """Refuse a bad --budget, or one given with --scale, before a database is made."""
    from lstmbench.sweep.budget import parse_duration

    parse_duration(args.budget)
    if args.scale is not None:
        raise UserError("give --budget or --scale, not both: a budget chooses its own scale")


def _compare(args: argparse.Namespace) -> int:
    from lstmbench.model.cells import get_cell, load_plugins
    from lstmbench.sweep.spec import load_spec

    start = time.perf_counter()
    if args.budget is not None:
        check_budget(args)
    load_plugins(args.plugin)
    cell = get_cell(args.cell).name
    if args.budget is not None:
        from lstmbench.cli.compare_budget import budget_spec, compare_budget

        spec = budget_spec(args.protocol, cell)
        store = open_store(args.db or f"compare-{cell}.db", must_exist=False)
        problems, sections, scope = compare_budget(args, store, spec, cell)
        return _finish(
            store, args.out or f"report-compare-{cell}", problems, start, sections, scope
        )
    args.scale = args.scale or "tiny"
    protocol = load_spec(args.protocol)
    specs = [protocol, compare_spec(protocol, cell)]
    store = open_store(args.db or f"results-{args.scale}.db", must_exist=False)
    problems = run_specs(specs, store, sweep_options(args))
    return _finish(store, args.out or f"report-{args.scale}", problems, start)
