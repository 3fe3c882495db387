"""The `lstmbench sweep` subcommands: run, status, show, estimate, export, merge."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from lstmbench.cli.options import add_plugin_option, add_sweep_runner_options, sweep_options
from lstmbench.sweep.spec import SCALES, spec_names

DEFAULT_DB = "results.db"
SPEC_HELP = "a spec file, or the name of a shipped one: " + ", ".join(spec_names())
SCALE_HELP = "run budget (default: tiny); a spec without [scales] runs as written at any scale"


def add_commands(subparsers) -> None:
    """Add `sweep` and its actions to the lstmbench command."""

    sweep = subparsers.add_parser("sweep", help="run experiment specs and manage their results")
    actions = sweep.add_subparsers(dest="sweep_command", required=True, metavar="ACTION")

    run = actions.add_parser("run", help="run a spec's runs that are not finished yet")
    run.add_argument("spec", help=SPEC_HELP)
    run.add_argument("--scale", choices=SCALES, default="tiny", help=SCALE_HELP)
    add_sweep_runner_options(run, DEFAULT_DB)
    run.set_defaults(handler=_run)

    status = actions.add_parser("status", help="summarize a results database")
    status.add_argument("--db", default=DEFAULT_DB, help=f"(default: {DEFAULT_DB})")
    status.add_argument("--failed", action="store_true", help="also list failed runs' errors")
    status.set_defaults(handler=_status)

    show = actions.add_parser("show", help="validate a spec and list the runs of a scale")
    show.add_argument("spec", help=SPEC_HELP)
    show.add_argument("--scale", choices=SCALES, default="tiny", help=SCALE_HELP)
    show.set_defaults(handler=_show)

    estimate = actions.add_parser(
        "estimate", help="time a spec's configurations here and print what its runs will cost"
    )
    estimate.add_argument("spec", help=SPEC_HELP)
    estimate.add_argument("--scale", choices=SCALES, default="tiny", help=SCALE_HELP)
    _add_estimate_options(estimate)
    estimate.set_defaults(handler=_estimate)

    export = actions.add_parser("export", help="write runs (or curve points) to CSV or Parquet")
    export.add_argument("out", help="output file ending in .csv or .parquet")
    export.add_argument("--db", default=DEFAULT_DB, help=f"(default: {DEFAULT_DB})")
    export.add_argument("--sweep", help="only this sweep")
    export.add_argument("--curves", action="store_true", help="curve points instead of runs")
    export.set_defaults(handler=_export)

    merge = actions.add_parser("merge", help="merge results files from elsewhere into --db")
    merge.add_argument("others", nargs="+", help="results files to merge in")
    merge.add_argument("--db", default=DEFAULT_DB, help=f"(default: {DEFAULT_DB})")
    merge.set_defaults(handler=_merge)


def _store(path: str, must_exist: bool = False):
    from lstmbench.errors import UserError
    from lstmbench.sweep.store import ResultsStore

    if must_exist and not Path(path).is_file():
        raise UserError(f"no results database {path}; give --db FILE of an existing sweep")
    return ResultsStore(path)


def _run(args: argparse.Namespace) -> int:
    from lstmbench.model.cells import load_plugins
    from lstmbench.sweep.runner import run_sweep
    from lstmbench.sweep.spec import load_spec

    load_plugins(args.plugin)  # plugin cells must be known before the spec is validated
    spec = load_spec(args.spec)
    options = sweep_options(args)
    store = _store(args.db or DEFAULT_DB)
    summary = run_sweep(spec, store, options)
    counts = summary.counts
    rate = summary.finished_now / summary.elapsed * 3600 if summary.elapsed else 0.0
    # Runs still 'running' when this runner ends belong to other runners on the same file.
    elsewhere = f", {counts['running']} running elsewhere" if counts["running"] else ""
    print(
        f"sweep {spec.name} ({args.scale}) in {args.db or DEFAULT_DB}: {counts['done']} done, "
        f"{counts['diverged']} diverged, {counts['failed']} failed, {counts['queued']} queued"
        f"{elsewhere}; {summary.finished_now} runs this time in {summary.elapsed:.0f} s "
        f"({rate:.0f} runs/hour)"
    )
    return 1 if counts["failed"] else 0


def _status(args: argparse.Namespace) -> int:
    store = _store(args.db, must_exist=True)
    sweeps = store.sweeps()
    if not sweeps:
        print(f"{args.db}: no sweeps yet")
    for sweep in sweeps:
        counts = store.counts(sweep["name"])
        total = sum(counts.values())
        done = store.runs(sweep["name"], "done")
        best = min(done, key=lambda r: _sortable(r["best_error"]), default=None)
        wall = sum(r["wall_time"] for r in done if math.isfinite(r["wall_time"]))
        parts = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
        print(
            f"{sweep['name']} ({sweep['scale']}, since {sweep['created']}): {total} runs: {parts}"
        )
        if best is not None:
            print(
                f"  best error {best['best_error']:.2%}: run {best['run_id']} "
                f"({best['cell']} {best['direction']} {best['output']}/{best['target']} "
                f"hidden {best['hidden']} lr {best['lr']:.3g} momentum {best['momentum']:.3g} "
                f"batch {best['batch_size']}); {wall / 3600:.2f} h of training stored"
            )
        if args.failed:
            for run in store.runs(sweep["name"], "failed"):
                print(f"  failed {run['run_id']}: {run['error'].splitlines()[0]}")
    return 0


def _sortable(value: float) -> float:
    return value if math.isfinite(value) else math.inf


def _show(args: argparse.Namespace) -> int:
    from lstmbench.sweep.spec import load_spec

    spec = load_spec(args.spec)
    configs = spec.expand(args.scale)
    fixed, swept = spec.settings(args.scale)
    print(f"{spec.name}: {spec.description}")
    if spec.scaled:
        print(f"scale {args.scale}: {len(configs)} runs")
    else:
        print(f"{len(configs)} runs at every scale (the spec has no [scales])")
    print("fixed: " + ", ".join(f"{k}={v}" for k, v in fixed.items()))
    for dimension in swept.values():
        print(f"swept: {dimension.setting} {dimension.kind} {list(dimension.values)}")
    return 0


def _add_estimate_options(parser: argparse.ArgumentParser) -> None:
    """The sweep runner's options that change the cost (a subset), and how to time."""
    from lstmbench.sweep.estimate import EstimateOptions
    from lstmbench.sweep.runner import DEFAULT_GPU_PACK, DEFAULT_PACK

    default = EstimateOptions()
    group = parser.add_argument_group("sweep runner (as `sweep run` would be given them)")
    group.add_argument(
        "--pack",
        type=int,
        help=f"fused runs per task (default: {DEFAULT_PACK}; {DEFAULT_GPU_PACK} on a GPU)",
    )
    group.add_argument(
        "--workers", type=int, help="local workers for the wall time (default: cores / threads)"
    )
    group.add_argument(
        "--threads",
        type=int,
        default=default.threads,
        help=f"torch threads (cores) per worker, also while timing (default: {default.threads})",
    )
    group.add_argument(
        "--ray-workers",
        type=int,
        default=default.ray_workers,
        help=f"Ray workers for the wall time on a cluster (default: {default.ray_workers})",
    )
    group.add_argument("--data", help="MNIST directory (default: $LSTMBENCH_MNIST or the cache)")
    group.add_argument(
        "--device",
        default="cpu",
        help="time on this device: cpu (core-hours) or cuda (GPU-hours) (default: cpu)",
    )
    add_plugin_option(group)
    timing = parser.add_argument_group("timing")
    timing.add_argument(
        "--steps",
        type=int,
        default=default.steps,
        help=f"training steps per timing (default: {default.steps})",
    )
    timing.add_argument(
        "--repeats",
        type=int,
        default=default.repeats,
        help=f"timings per group and mode, the fastest counts (default: {default.repeats})",
    )
    timing.add_argument(
        "--bins",
        type=int,
        default=default.bins,
        help="ranges a randomly drawn size (hidden, batch size) is grouped into, each timed "
        f"once (default: {default.bins})",
    )
    timing.add_argument("--json", help="also write the estimate to this JSON file")
    timing.add_argument("--quiet", action="store_true", help="no progress lines")


def _estimate(args: argparse.Namespace) -> int:
    import json
    import sys

    from lstmbench.model.cells import load_plugins
    from lstmbench.sweep.estimate import (
        EstimateOptions,
        check_options,
        estimate_spec,
        format_estimate,
    )
    from lstmbench.sweep.runner import default_pack
    from lstmbench.sweep.spec import load_spec

    options = EstimateOptions(
        scale=args.scale,
        pack=args.pack if args.pack is not None else default_pack(args.device),
        workers=args.workers,
        ray_workers=args.ray_workers,
        threads=args.threads,
        steps=args.steps,
        repeats=args.repeats,
        bins=args.bins,
        data_path=args.data,
        device=args.device,
    )
    check_options(options)  # before the spec, so a mistake costs no loading
    load_plugins(args.plugin)
    spec = load_spec(args.spec)
    log = None if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    estimate = estimate_spec(spec, options, log)
    print(format_estimate(estimate))
    if args.json:
        Path(args.json).write_text(json.dumps(estimate.to_dict(), indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


def _export(args: argparse.Namespace) -> int:
    store = _store(args.db, must_exist=True)
    rows = store.export(args.out, args.sweep, args.curves)
    print(f"wrote {rows} {'curve points' if args.curves else 'runs'} to {args.out}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    store = _store(args.db)
    for other in args.others:
        counts = store.merge(other)
        print(
            f"merged {other} into {args.db or DEFAULT_DB}: {counts['added']} runs added, "
            f"{counts['updated']} updated, {counts['kept']} already there"
        )
    return 0
