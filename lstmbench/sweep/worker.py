"""What runs inside a worker: train one run (or one fused group of runs) and report the outcome."""

from __future__ import annotations

import ctypes
import platform
import signal
import sys
import traceback

import torch

from lstmbench.data import load_dataset
from lstmbench.errors import UserError
from lstmbench.model.cells import load_plugins
from lstmbench.training.config import RunConfig
from lstmbench.training.loop import at_line_height, train_runs
from lstmbench.training.record import RunResult

_DATASETS: dict[tuple, tuple] = {}  # loaded (train, test) sets, kept for the worker's life


def init_worker(threads: int, plugins: list[str], die_with_parent: bool = True) -> None:
    """Set up a worker process: its torch threads, plugins, and death with its parent."""
    if die_with_parent and sys.platform.startswith("linux"):
        # A killed runner must not leave orphan workers training for nobody.
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    torch.set_num_threads(max(1, threads))
    load_plugins(plugins)


def datasets_for(config: RunConfig, data_path: str | None):
    """The (train, test) sets of a config as its runs read them, loaded once per worker."""
    seed = config.seed if config.validation else 0
    key = (config.dataset, data_path, config.validation, seed, config.line_height)
    if key not in _DATASETS:
        datasets = load_dataset(config.dataset, data_path, config.validation, config.seed)
        _DATASETS[key] = at_line_height(config, *datasets)
    return _DATASETS[key]


def run_task(
    configs: list[dict], data_path: str | None, fused: bool, device: str = "cpu"
) -> list[dict]:
    """Train the runs of one task on `device`; one outcome per run: {"result": ...} or
    {"error": ...}.

    A task is one run, or (fused) several runs trained as one fused computation.
    """
    runs = [RunConfig.from_dict(values) for values in configs]
    try:
        if fused and len(runs) > 1:
            results = train_runs(runs, datasets_for(runs[0], data_path), device)
        else:
            results = [train_runs([c], datasets_for(c, data_path), device)[0] for c in runs]
    except Exception as error:  # stored as the run's failure; the sweep goes on
        if len(runs) > 1:  # find out which run of the group is at fault
            return [
                outcome
                for c in runs
                for outcome in run_task([c.to_dict()], data_path, False, device)
            ]
        return [failure(error)]
    return [success(result) for result in results]


def success(result: RunResult) -> dict:
    """A finished run as plain data (no model), to send back to the runner."""
    return {"result": result.to_dict()}


def failure(error: BaseException) -> dict:
    """A run that raised: its error, with the traceback for anything but a user error."""
    text = f"{type(error).__name__}: {error}"
    if not isinstance(error, UserError):
        text += "\n" + "".join(traceback.format_exception(error)[-6:])
    return {"error": text, "user_error": isinstance(error, UserError), "host": platform.node()}
