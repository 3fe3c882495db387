"""Where runs execute: local worker processes, or tasks on a Ray cluster.

Both hand back concurrent.futures.Future objects whose value is run_task's list of outcomes,
so the runner drives them the same way.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
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


def on_gpu(device: str) -> bool:
    """Whether a device name is a CUDA device ("cuda" or "cuda:N")."""
    return device == "cuda" or device.startswith("cuda:")


def check_device_name(device: str) -> None:
    """Refuse a device name that is neither the CPU nor a CUDA device."""
    if device != "cpu" and not on_gpu(device):
        raise UserError(f"--device {device!r} is not cpu, cuda or cuda:N")


def actor_resources(threads: int, device: str, tasks_per_gpu: int) -> dict:
    """What one Ray worker asks of the cluster: its cores, and on a GPU a share of one, so
    that `tasks_per_gpu` workers (each training one fused group at a time) share a GPU."""
    resources = {"num_cpus": threads}
    if on_gpu(device):
        resources["num_gpus"] = 1 / tasks_per_gpu
    return resources


class LocalExecutor:
    """A pool of worker processes on this machine (spawned, each with its own threads), all
    training on one device."""

    def __init__(self, workers: int, threads: int, plugins: list[str], device: str = "cpu"):
        self.workers, self.threads, self.plugins = workers, threads, list(plugins)
        self.device = device
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
        future = self._pool.submit(run_task, configs, data_path, fused, self.device)
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


class _RayWorker:
    """One long-lived worker process on the cluster: set up once, then it trains task after task.

    Plain Ray tasks may land in any of Ray's worker processes, and Ray starts and stops those
    as it likes: each new one pays the torch import, the kernel load and the data load again
    (tens of seconds on a busy machine, between one run and the next). An actor keeps its
    process, and with it the loaded kernels and data, for the whole sweep.
    """

    def __init__(self, threads: int, plugins: list[str]):
        init_worker(threads, plugins, die_with_parent=False)

    def run(
        self, configs: list[dict], data_path: str | None, fused: bool, device: str
    ) -> list[dict]:
        return run_task(configs, data_path, fused, device)

    def pid(self) -> int:
        return os.getpid()


class RayExecutor:
    """Workers on a Ray cluster (an existing one by address, or a local one started here):
    one actor per worker, each given a task only when it is idle. On GPUs, each worker asks
    for 1/tasks_per_gpu of a GPU, so Ray places several on one GPU and spreads the rest over
    the cluster's GPU nodes (Ray sets each worker's CUDA_VISIBLE_DEVICES)."""

    def __init__(
        self,
        workers: int | None,
        threads: int,
        plugins: list[str],
        address: str | None = None,
        object_store_mb: int = 100,
        device: str = "cpu",
        tasks_per_gpu: int = 1,
    ):
        try:
            import ray
        except ImportError:
            raise UserError(
                "--executor ray needs Ray: pip install 'lstmbench[ray]' (or use --executor local)"
            ) from None
        self.ray, self.threads, self.plugins = ray, threads, list(plugins)
        self.device = device
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
        resources = ray.cluster_resources()
        cpus = int(resources.get("CPU", 1))
        gpus = int(resources.get("GPU", 0))
        if on_gpu(device) and not gpus:
            ray.shutdown()
            raise UserError(
                f"--device {device}: the Ray cluster at {address or 'this machine'} has no GPU; "
                "start its nodes with GPUs (ray start --num-gpus N) or use --device cpu"
            )
        slots = gpus * tasks_per_gpu if on_gpu(device) else cpus // threads
        self.workers = workers or max(1, slots)
        # A worker killed (for memory, say) comes back set up afresh; its task fails, as a
        # task of a dead local worker does, and is not run twice.
        actor = ray.remote(
            **actor_resources(threads, device, tasks_per_gpu), max_restarts=-1, max_task_retries=0
        )(_RayWorker)
        self._actors = [actor.remote(threads, self.plugins) for _ in range(self.workers)]
        self._idle: queue.SimpleQueue[int] = queue.SimpleQueue()
        for index in range(self.workers):
            self._idle.put(index)

    def submit(self, configs: list[dict], data_path: str | None, fused: bool) -> Future:
        """Start one task on an idle worker (the runner never has more in flight than workers)."""
        index = self._idle.get()
        reference = self._actors[index].run.remote(configs, data_path, fused, self.device)
        result: Future = Future()

        def finished(done: Future) -> None:
            # The worker is idle again before the runner hears the task is done, so the
            # runner's next submit finds it.
            self._idle.put(index)
            error = done.exception()
            if error is None:
                result.set_result(done.result())
            else:
                result.set_exception(error)

        reference.future().add_done_callback(finished)
        return result

    def pids(self) -> list[int]:
        """The process id of each worker (they stay the same for the executor's life)."""
        return self.ray.get([actor.pid.remote() for actor in self._actors])

    def restart(self, failed: Future) -> None:
        """Nothing to restart: Ray restarts a dead worker itself."""

    def shutdown(self) -> None:
        """Stop the workers and disconnect (and stop the cluster if it was started here)."""
        # Drop the handles while this session is still up: actor ids repeat from one Ray
        # session to the next (the first job of every cluster is job 1), so a handle released
        # after a later ray.init would release that session's actor of the same id instead.
        for actor in self._actors:
            self.ray.kill(actor)
        self._actors = []
        self.ray.shutdown()
