"""Where runs execute: local worker processes, or tasks on a Ray cluster.

Both hand back concurrent.futures.Future objects whose value is run_task's list of outcomes,
so the runner drives them the same way.
"""

from __future__ import annotations

import multiprocessing
import os
import weakref
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from lstmbench.errors import UserError
from lstmbench.sweep.worker import init_worker, run_task

EXECUTORS = ("local", "ray")


def cpu_count() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Torch threads for each of `workers` processes so that cores are not oversubscribed."""
    return max(1, (cores or cpu_count()) // max(1, workers))


class LocalExecutor:
    """A pool of worker processes on this machine (spawned, each with its own threads)."""

    def __init__(self, workers: int, threads: int, plugins: list[str]):
        self.workers, self.threads, self.plugins = workers, threads, list(plugins)
        self._pool = self._start()
        self._pools: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # task -> pool

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker,
            initargs=(self.threads, self.plugins),
        )

    def submit(self, configs: list[dict], data_path: str | None, fused: bool) -> Future:
        """Start one task."""
        future = self._pool.submit(run_task, configs, data_path, fused)
        self._pools[future] = self._pool
        return future

    def restart(self, failed: Future) -> None:
        """Replace the pool after a worker died (e.g. killed for memory), once per pool."""
        if self._pools.pop(failed, None) is self._pool:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._start()

    def shutdown(self) -> None:
        """Stop the workers."""
        self._pool.shutdown(wait=False, cancel_futures=True)


_RAY_WORKER_READY = False


def _ray_task(configs, data_path, fused, threads, plugins):
    global _RAY_WORKER_READY
    if not _RAY_WORKER_READY:
        init_worker(threads, plugins, die_with_parent=False)
        _RAY_WORKER_READY = True
    return run_task(configs, data_path, fused)


class RayExecutor:
    """Tasks on a Ray cluster: an existing one by address, or a local one started here."""

    def __init__(
        self,
        workers: int | None,
        threads: int,
        plugins: list[str],
        address: str | None = None,
        object_store_mb: int = 100,
    ):
        try:
            import ray
        except ImportError:
            raise UserError(
                "--executor ray needs Ray: pip install 'lstmbench[ray]' (or use --executor local)"
            ) from None
        self.ray, self.threads, self.plugins = ray, threads, list(plugins)
        try:
            if address:
                # The cluster runs this very package, shipped with the job.
                package = str(Path(__file__).resolve().parents[1])
                ray.init(
                    address=address,
                    runtime_env={"py_modules": [package]},
                    log_to_driver=False,
                )
                self._started_here = False
            else:
                ray.init(
                    num_cpus=(workers or 1) * threads,
                    object_store_memory=object_store_mb * 1024 * 1024,
                    include_dashboard=False,
                    log_to_driver=False,
                )
                self._started_here = True
        except Exception as error:  # Ray raises plain Exception, e.g. when startup times out
            raise UserError(
                f"cannot reach a Ray cluster at {address or 'a new local cluster'} ({error}); "
                "check --address (host:port of the head node) or leave it out for a local one"
            ) from None
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = workers or max(1, cpus // threads)
        self._task = ray.remote(num_cpus=threads, max_retries=0)(_ray_task)

    def submit(self, configs: list[dict], data_path: str | None, fused: bool) -> Future:
        """Start one task on the cluster."""
        reference = self._task.remote(configs, data_path, fused, self.threads, self.plugins)
        return reference.future()

    def restart(self, failed: Future) -> None:
        """Nothing to restart: Ray replaces dead workers itself."""

    def shutdown(self) -> None:
        """Disconnect (and stop the cluster if it was started here)."""
        self.ray.shutdown()
