"""Run a sweep: queue its runs in the store, execute them, store every outcome as it comes.

Resuming is built in: runs already finished are never queued again, and runs a stopped
runner left 'running' go back in the queue when the sweep is run again.

Several runners may work on one results file at once (started in other terminals, say):
each claims a task's runs from the shared queue only when one of its workers is free, so
every run is trained once and a runner started later still gets a share.
"""

from __future__ import annotations

import math
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from lstmbench.errors import UserError
from lstmbench.sweep.executors import (
    EXECUTORS,
    LocalExecutor,
    RayExecutor,
    check_device_name,
    cpu_count,
    on_gpu,
    threads_per_worker,
)
from lstmbench.sweep.spec import Spec
from lstmbench.sweep.store import ResultsStore, runner_id
from lstmbench.sweep.worker import failure
from lstmbench.training.config import RunConfig
from lstmbench.training.fused import make_tasks
from lstmbench.training.record import RunResult

DEFAULT_PACK = 16  # fused runs equal runs alone to float rounding (tests/test_sweep_fused.py)
# On a GPU a small run is bound by launches, not arithmetic: many runs share each launch.
DEFAULT_GPU_PACK = 128
TASKS_PER_GPU = 4  # fused groups training on one GPU at once (their launches interleave)
# Seconds a claim on a run lasts unless renewed (a runner renews it four times per lease).
# Only a runner on another host needs it to run out: a dead runner on this host is seen at once.
DEFAULT_LEASE = 300.0
REFRESH = 5.0  # seconds between looks for runs that other runners have given up


def default_pack(device: str) -> int:
    """Runs fused per task unless --pack says otherwise: DEFAULT_GPU_PACK on a GPU."""
    return DEFAULT_GPU_PACK if on_gpu(device) else DEFAULT_PACK


@dataclass
class SweepOptions:
    """How to run a sweep (none of this changes any run's result)."""

    scale: str = "tiny"
    executor: str = "local"
    workers: int = 0  # 0: one per core (local), or as many as the cluster's CPUs allow (Ray)
    threads: int = 0  # torch threads per worker; 0: cores / workers
    address: str | None = None  # Ray cluster address; None starts a local cluster
    data_path: str | None = None
    plugins: list[str] = field(default_factory=list)
    pack: int = DEFAULT_PACK  # runs trained together when they differ only in lr/momentum/seed
    retry_failed: bool = False
    progress: bool = True
    lease: float = DEFAULT_LEASE  # seconds; see DEFAULT_LEASE
    device: str = "cpu"  # where the workers train: cpu, cuda or cuda:N
    tasks_per_gpu: int = TASKS_PER_GPU  # Ray workers sharing one GPU


@dataclass
class SweepSummary:
    """What a sweep invocation did, and where the sweep stands."""

    counts: dict
    finished_now: int
    elapsed: float


def prepare(spec: Spec, store: ResultsStore, options: SweepOptions) -> list[RunConfig]:
    """Register the sweep and its runs; return the runs still to do."""
    return register(spec.name, spec.source, spec.expand(options.scale), store, options)


def register(
    name: str, source: dict, configs: list[RunConfig], store: ResultsStore, options: SweepOptions
) -> list[RunConfig]:
    """Register a sweep (its source, at options.scale) and queue these runs in it unless
    already there; return the sweep's runs still to do. A sweep grows by being registered
    again with more runs: those it holds already are kept, finished or not."""
    for sweep in store.sweeps():
        if sweep["name"] == name and sweep["scale"] != options.scale:
            raise UserError(
                f"{store.path} already holds sweep {name!r} at scale {sweep['scale']!r}; "
                f"use another --db for scale {options.scale!r}"
            )
    store.ensure_sweep(name, source, options.scale)
    store.add_runs(name, configs)
    store.requeue_interrupted(name)
    if options.retry_failed:
        store.requeue_failed(name)
    return store.queued(name)


def check_options(options: SweepOptions) -> None:
    """Refuse options that cannot work, before anything is stored."""
    if options.executor not in EXECUTORS:
        raise UserError(
            f"unknown executor {options.executor!r}; valid executors: {', '.join(EXECUTORS)}"
        )
    if options.workers < 0 or options.threads < 0:
        raise UserError("--workers and --threads must not be negative")
    if not options.lease > 0:
        raise UserError(f"--lease must be a positive number of seconds, got {options.lease}")
    if options.pack < 1:
        raise UserError(f"--pack must be at least 1 (1: every run alone), got {options.pack}")
    if options.address and options.executor != "ray":
        raise UserError("--address is for --executor ray; add it or leave --address out")
    check_device(options)


def check_device(options: SweepOptions) -> None:
    """A device the runner can train on: the CPU, or a GPU this machine has (or, with Ray on
    a cluster, that the cluster's nodes have: checked when the cluster is reached)."""
    check_device_name(options.device)
    if options.tasks_per_gpu < 1:
        raise UserError(f"--tasks-per-gpu must be at least 1, got {options.tasks_per_gpu}")
    if on_gpu(options.device) and not options.address:
        import torch

        if not torch.cuda.is_available():
            raise UserError(
                f"--device {options.device}: torch sees no GPU on this machine; use --device "
                "cpu, or --executor ray --address HOST:PORT for a cluster with GPU nodes"
            )


def make_executor(options: SweepOptions):
    """The executor the options name, sized so the cores are not oversubscribed."""
    check_options(options)
    gpu = on_gpu(options.device)
    if options.executor == "ray":
        threads = options.threads or 1
        local = None if gpu else cpu_count() // threads  # a GPU cluster sizes itself
        workers = options.workers or (None if options.address else local)
        return RayExecutor(
            workers,
            threads,
            options.plugins,
            options.address,
            device=options.device,
            tasks_per_gpu=options.tasks_per_gpu,
        )
    # On a GPU, a few processes each keep the GPU fed with one fused group at a time.
    workers = options.workers or (options.tasks_per_gpu if gpu else cpu_count())
    threads = options.threads or threads_per_worker(workers)
    return LocalExecutor(workers, threads, options.plugins, options.device)


def run_sweep(
    spec: Spec, store: ResultsStore, options: SweepOptions, executor=None
) -> SweepSummary:
    """Run every run of the spec at the chosen scale that is not finished yet.

    Other runners on the same store may take some of the runs; this one trains only those
    it claims. `executor` reuses running workers (e.g. for several sweeps); by default the
    options' executor is started here and stopped at the end.
    """
    check_options(options)
    return execute(spec.name, prepare(spec, store, options), store, options, executor)


def execute(
    name: str, pending: list[RunConfig], store: ResultsStore, options: SweepOptions, executor=None
) -> SweepSummary:
    """Train the pending runs of a registered sweep (see run_sweep)."""
    fused = options.pack > 1
    start = time.perf_counter()
    progress = Progress(name, store, options.progress)
    if not pending:
        progress.close()
        return SweepSummary(store.counts(name), 0, 0.0)
    own_executor = executor is None
    executor = executor or make_executor(options)
    claims = Claims(name, store, options, pending, executor.workers)
    in_flight: dict[Future, list[RunConfig]] = {}
    finished_now = 0
    stop_reason: str | None = None
    try:
        while True:
            while stop_reason is None and len(in_flight) < executor.workers:
                task = claims.next_task(idle=not in_flight)
                if task is None:
                    break
                future = executor.submit([c.to_dict() for c in task], options.data_path, fused)
                in_flight[future] = task
            if not in_flight:
                break
            claims.renew()
            progress.show()
            done, _ = wait(list(in_flight), timeout=claims.tick, return_when=FIRST_COMPLETED)
            for future in done:
                task = in_flight.pop(future)
                for config, outcome in zip(task, _outcomes(future, task, executor), strict=True):
                    finished_now += 1
                    problem = _record(store, name, config, outcome)
                    if problem and stop_reason is None:
                        stop_reason = problem
    finally:
        # Stopped in the middle (Ctrl-C, say): hand the runs back so that others need not
        # wait for the lease to run out.
        store.release(claims.holder)
        if own_executor:
            executor.shutdown()
        progress.show()
        progress.close()
    if stop_reason is not None:
        raise UserError(
            f"sweep {name!r} stopped: {stop_reason}; fix it, then run the sweep again "
            "with --retry-failed (finished runs are kept)"
        )
    return SweepSummary(store.counts(name), finished_now, time.perf_counter() - start)


class Claims:
    """This runner's share of a sweep's queue: it claims a task's runs when a worker is free.

    Tasks are planned from the runs queued when the runner starts; a run another runner
    has claimed meanwhile is skipped, so a task may shrink. Once the plan is used up, the
    queue is looked at again for runs that runners gone since have left.
    """

    def __init__(
        self, sweep: str, store: ResultsStore, options: SweepOptions, pending, workers: int
    ):
        self.sweep, self.store = sweep, store
        self.pack, self.lease, self.workers = options.pack, options.lease, workers
        self.holder = runner_id()
        self.device = options.device
        self.plan = self._tasks(pending)
        self.tick = min(1.0, self.lease / 4)  # how often the runner loop comes round
        self.next_renewal = time.monotonic() + self.lease / 4
        self.next_refresh = time.monotonic() + REFRESH

    def next_task(self, idle: bool) -> list[RunConfig] | None:
        """The runs of the next task this runner claimed; None if there is none to claim.

        `idle`: no task of this runner is in flight, so look for freed runs right away.
        """
        task = self._claim_planned()
        if task is None and (idle or time.monotonic() >= self.next_refresh):
            self.next_refresh = time.monotonic() + REFRESH
            self.store.requeue_interrupted(self.sweep)
            self.plan = self._tasks(self.store.queued(self.sweep))
            task = self._claim_planned()
        return task

    def _tasks(self, configs: list[RunConfig]) -> list[list[RunConfig]]:
        """The runs in tasks of about a worker's share of their work at most (make_tasks)."""
        return make_tasks(configs, self.pack, self.device, self.workers)

    def _claim_planned(self) -> list[RunConfig] | None:
        while self.plan:
            task = self.plan.pop(0)
            claimed = set(
                self.store.claim(self.sweep, [c.run_id for c in task], self.holder, self.lease)
            )
            mine = [config for config in task if config.run_id in claimed]
            if mine:
                return mine
        return None

    def renew(self) -> None:
        """Keep the claims on the runs in flight alive."""
        if time.monotonic() >= self.next_renewal:
            self.store.renew(self.holder, self.lease)
            self.next_renewal = time.monotonic() + self.lease / 4


def _outcomes(future: Future, task: list[RunConfig], executor) -> list[dict]:
    """A task's outcomes; a task whose worker died fails every run in it."""
    try:
        return future.result()
    except BrokenProcessPool as error:
        executor.restart(future)
        died = failure(RuntimeError(f"the worker process died ({error})"))
        return [died] * len(task)
    except Exception as error:  # e.g. a Ray worker lost with its node
        return [failure(error)] * len(task)


def _record(store: ResultsStore, sweep: str, config: RunConfig, outcome: dict) -> str | None:
    """Store one outcome; returns a reason to stop the sweep (a user error), else None."""
    if "result" in outcome:
        store.record_result(sweep, RunResult.from_dict(outcome["result"]))
        return None
    store.record_failure(sweep, config, outcome["error"])
    if outcome.get("user_error"):
        return f"run {config.run_id} failed: {outcome['error']}"
    return None


class Progress:
    """One status line: runs done/running/failed, ETA, and the best error so far."""

    def __init__(self, sweep: str, store: ResultsStore, enabled: bool, stream=None):
        self.sweep, self.store, self.enabled = sweep, store, enabled
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()
        self.finished_at_start = self._finished(store.counts(sweep))
        self.last_line = ""

    @staticmethod
    def _finished(counts: dict) -> int:
        return counts["done"] + counts["diverged"] + counts["failed"]

    def line(self) -> str:
        """The current status line."""
        counts = self.store.counts(self.sweep)
        finished = self._finished(counts)
        total = sum(counts.values())
        elapsed = time.perf_counter() - self.start
        finished_now = finished - self.finished_at_start
        left = total - finished
        eta = elapsed / finished_now * left if finished_now else math.nan
        best = self.store.best_error(self.sweep)
        best_text = f"{best:.2%}" if math.isfinite(best) else "-"
        eta_text = _duration(eta) if math.isfinite(eta) else "?"
        return (
            f"{self.sweep}: {finished}/{total} finished ({counts['done']} done, "
            f"{counts['diverged']} diverged, {counts['failed']} failed), "
            f"{counts['running']} running, ETA {eta_text}, best error {best_text}"
        )

    def show(self) -> None:
        """Redraw the line in place on a terminal; elsewhere print it when it changes."""
        if not self.enabled:
            return
        line = self.line()
        if self.stream.isatty():
            self.stream.write("\r" + line.ljust(len(self.last_line)))
        elif line.split(", ETA")[0] != self.last_line.split(", ETA")[0]:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.last_line = line

    def close(self) -> None:
        """End the status line."""
        if self.enabled and self.stream.isatty() and self.last_line:
            self.stream.write("\n")
            self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
