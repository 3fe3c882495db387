"""Option groups shared by several commands, each declared once.

- run options: one per RunConfig field, with its default, help and valid values;
- runtime options: where data lives, the device, threads, plugins (how fast, not what);
- sweep-runner options: how a sweep's runs are executed (workers, executor, fusing, ...).
"""

from __future__ import annotations

import argparse
import dataclasses

from lstmbench.errors import UserError
from lstmbench.training.config import RunConfig


def add_run_options(parser: argparse.ArgumentParser, **defaults) -> None:
    """An option per RunConfig field; `defaults` overrides a field's default for this command."""
    unknown = set(defaults) - {f.name for f in dataclasses.fields(RunConfig)}
    if unknown:
        raise ValueError(f"no run settings named {', '.join(sorted(unknown))}")
    group = parser.add_argument_group("run settings (they determine the result)")
    for f in dataclasses.fields(RunConfig):
        default = defaults.get(f.name, f.default)
        group.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            type=type(f.default),
            default=default,
            choices=f.metadata["choices"],
            help=f"{f.metadata['help']} (default: {default})",
        )


def run_config(args: argparse.Namespace) -> RunConfig:
    """The RunConfig the run options of a command line describe; with --init, the shape of
    the model it continues (options that would change it are refused)."""
    config = RunConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig)})
    if not config.init:
        return config
    from lstmbench.training.init import ARCHITECTURE, adopt_architecture

    defaults = RunConfig()
    given = {name for name in ARCHITECTURE if getattr(config, name) != getattr(defaults, name)}
    return adopt_architecture(config, given)


def add_plugin_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        help="import this module first (it may register cells); repeatable",
    )


def add_runtime_options(parser: argparse.ArgumentParser, data: bool = True) -> None:
    """--data, --device, --threads and --plugin: how a command runs, not what it computes."""
    group = parser.add_argument_group("runtime")
    if data:
        group.add_argument(
            "--data", help="dataset directory (default: $LSTMBENCH_MNIST or the cache)"
        )
    group.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    group.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    add_plugin_option(group)


def setup_runtime(args: argparse.Namespace) -> None:
    """Apply the runtime options: load plugins, set the thread count, check the device."""
    import torch

    from lstmbench.model.cells import load_plugins

    load_plugins(args.plugin)
    if getattr(args, "threads", 0) < 0:
        raise UserError(f"--threads must not be negative, got {args.threads}")
    if getattr(args, "threads", 0):
        torch.set_num_threads(args.threads)
    device = getattr(args, "device", "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("device 'cuda' requested but torch sees no GPU; use --device cpu")


def add_sweep_runner_options(parser: argparse.ArgumentParser, default_db: str) -> None:
    """How a sweep's runs execute: database, executor, workers, threads, fusing, data."""
    from lstmbench.sweep.executors import EXECUTORS
    from lstmbench.sweep.runner import DEFAULT_GPU_PACK, DEFAULT_LEASE, DEFAULT_PACK, TASKS_PER_GPU

    group = parser.add_argument_group("sweep runner")
    group.add_argument("--db", help=f"results database (default: {default_db})")
    group.add_argument("--executor", choices=EXECUTORS, default="local", help="(default: local)")
    group.add_argument("--address", help="Ray cluster address (default: start a local cluster)")
    group.add_argument("--workers", type=int, default=0, help="parallel runs (default: cores)")
    group.add_argument(
        "--threads", type=int, default=0, help="torch threads per worker (default: cores/workers)"
    )
    group.add_argument(
        "--pack",
        type=int,
        help="train up to N runs that differ only in lr, momentum or seed as one fused "
        "computation (stacked weights, one recurrence call); 1: each alone "
        f"(default: {DEFAULT_PACK} on the CPU, {DEFAULT_GPU_PACK} on a GPU)",
    )
    group.add_argument(
        "--device",
        default="cpu",
        help="where workers train: cpu, cuda or cuda:N (default: cpu); on a GPU the fused "
        "groups of several workers share it",
    )
    group.add_argument(
        "--tasks-per-gpu",
        type=int,
        default=TASKS_PER_GPU,
        help=f"with --device cuda: fused groups training on one GPU at once (default: "
        f"{TASKS_PER_GPU}); local workers default to this many, Ray workers ask for 1/N of "
        "a GPU each",
    )
    group.add_argument("--retry-failed", action="store_true", help="run failed runs again")
    group.add_argument(
        "--lease",
        type=float,
        default=DEFAULT_LEASE,
        help="seconds another runner waits before it takes over the runs of a runner on another "
        f"host that stopped answering (default: {DEFAULT_LEASE:.0f})",
    )
    group.add_argument("--data", help="MNIST directory (default: $LSTMBENCH_MNIST or the cache)")
    add_plugin_option(group)
    group.add_argument("--quiet", action="store_true", help="no progress display")


def sweep_options(args: argparse.Namespace):
    """The runner options a command line gives."""
    from lstmbench.sweep.runner import SweepOptions, check_options, default_pack

    options = SweepOptions(
        scale=args.scale,
        executor=args.executor,
        workers=args.workers,
        threads=args.threads,
        address=args.address,
        data_path=args.data,
        plugins=args.plugin,
        pack=args.pack if args.pack is not None else default_pack(args.device),
        retry_failed=args.retry_failed,
        progress=not args.quiet,
        lease=args.lease,
        device=args.device,
        tasks_per_gpu=args.tasks_per_gpu,
    )
    check_options(options)  # before any database is opened
    return options


def data_for(datasets: set[str], options):
    """The sweep options for runs of `datasets` (names such as "mnist", "uw3like:small"):
    --data names the MNIST folder, so only runs all on MNIST get it; a line experiment would
    take it for its cache of generated lines."""
    on_mnist = {name.partition(":")[0] for name in datasets} <= {"mnist"}
    return options if on_mnist else dataclasses.replace(options, data_path=None)
