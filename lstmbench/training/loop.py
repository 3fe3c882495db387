"""The training loop. One run, or K runs that differ only in lr, momentum or seed fused into
one computation: both go through `train_runs`, with one evaluation record, one divergence
watch and one result record. A run of a spec LSTM is a fused group of one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from lstmbench.data import SequenceDataset, load_dataset
from lstmbench.data.distort import Distortion
from lstmbench.data.lines import TARGET_HEIGHT
from lstmbench.errors import UserError
from lstmbench.model.kernels.native import native_ctc, native_kernel
from lstmbench.model.nets import SequenceNet
from lstmbench.training.checkpoint import save_best, save_run
from lstmbench.training.config import ADAM_BETA2, ADAM_EPS, RunConfig
from lstmbench.training.evaluate import evaluate
from lstmbench.training.fused import FUSABLE, FusedRuns, FusedUnstable, fuse_key, update_allowed
from lstmbench.training.init import fit_datasets, initial_net, read_starting_model
from lstmbench.training.losses import sequence_loss
from lstmbench.training.progress import TrainingProgress
from lstmbench.training.record import RunResult
from lstmbench.training.schedule import rate_factor, run_progress
from lstmbench.training.targets import FIXED_MODES

OnEvaluation = Callable[[RunResult, dict], None]
# Training steps per call between two evaluations: enough that the per-step work in Python
# is paid once per stretch, few enough that the time limit and progress stay responsive.
CHUNK_STEPS = 32
# Flush denormal floats to zero while training (on CPUs that can). A run whose gates
# saturate (a high learning rate, the top of every pilot's range) fills its backward pass
# with numbers below float32's normal range, which x86 cores compute on a slow path: one
# such run on text lines trained 11x slower with them kept (benchmarks/denormals.py).
# Flushing changes nothing above 1e-38 in float32 (1e-308 in float64).
FLUSH_DENORMALS = True
# Added to a run's seed for its distortions' random stream: seeded apart from torch's global
# generator, which the initial weights drew from.
DISTORT_STREAM = 7919


def check_compatible(config: RunConfig, dataset: SequenceDataset) -> None:
    """Refuse combinations that cannot work, before any training."""
    if config.target in FIXED_MODES and not dataset.fixed_length:
        raise UserError(
            f"target mode {config.target!r} puts the label at a fixed time step, which needs "
            f"sequences of one length; dataset {config.dataset!r} has variable-length "
            "sequences: use --target ctc"
        )
    if config.distort and not dataset.fixed_length:
        raise UserError(
            f"--distort warps fixed-size images such as MNIST; dataset {config.dataset!r} "
            "has variable-length sequences: leave --distort at 0"
        )


def at_line_height(config: RunConfig, *datasets: SequenceDataset) -> tuple[SequenceDataset, ...]:
    """The datasets as the run reads them: text lines scaled to its line height."""
    if config.line_height == TARGET_HEIGHT:
        return datasets
    try:
        return tuple(dataset.for_input_size(config.line_height) for dataset in datasets)
    except UserError as error:
        raise UserError(f"dataset {config.dataset!r}: {error}") from None


def load_kernels(config: RunConfig, device: str) -> None:
    """Build or load the C++ kernels a run will use, before its clock starts."""
    if device == "cpu" and fuse_key(config) is not None:
        native_kernel()
    if config.target == "ctc":
        native_ctc()


def next_chunk(orders: list, at: int, seen: int, evaluation: int, total: int) -> list:
    """The training steps from orders[at] on that one call trains: until the next evaluation
    or the end, at least one step and at most CHUNK_STEPS. A step is each run's sample
    indices, the last batch cut to end at `total` samples."""
    chunk, planned = [], seen
    until = min(evaluation, total)
    while at < len(orders) and len(chunk) < CHUNK_STEPS and (not chunk or planned < until):
        step = [indices[: total - planned] for indices in orders[at]]
        chunk.append(step)
        planned += len(step[0])
        at += 1
    return chunk


def load_chunk(train_set: SequenceDataset, chunk, shared_order: bool, device: str, distortions=()):
    """The batches of a chunk's steps, per step a list with each run's batch (one Batch
    object for all runs where they share a data order). `distortions`, one per run where
    given, distort each run's batches; runs that share an order share a seed, so the first
    run's distortion stands for all."""
    runs = len(chunk[0])
    if shared_order:
        batches = train_set.batches([s[0] for s in chunk])
        if distortions:
            batches = [distortions[0](batch) for batch in batches]
        steps = [[batch] * runs for batch in batches]
    else:
        by_run = [train_set.batches([s[k] for s in chunk]) for k in range(runs)]
        if distortions:
            pairs = zip(distortions, by_run, strict=True)
            by_run = [[distort(batch) for batch in run] for distort, run in pairs]
        steps = [list(step) for step in zip(*by_run, strict=True)]
    return [[b.to(device) for b in step] for step in steps]


class DivergenceWatch:
    """Decides when a run has diverged: a non-finite loss, or error stuck at chance.

    "Stuck" means `patience` evaluations in a row at chance level with no fall in the
    training loss over them, so a slow but learning run is not stopped.
    """

    def __init__(self, chance: float, patience: int):
        self.chance, self.patience = chance, patience
        self.stretch: list[float] = []

    @staticmethod
    def bad_loss(loss: float) -> bool:
        """Whether a training loss means the run has blown up."""
        return not math.isfinite(loss)

    def stuck(self, error: float, train_loss: float) -> bool:
        """Record an evaluation; True once the error has sat at chance long enough."""
        if error < self.chance - 0.01:
            self.stretch = []
            return False
        self.stretch.append(train_loss)
        if len(self.stretch) < self.patience:
            return False
        window = self.stretch[-self.patience :]
        return window[-1] >= 0.99 * window[0]


class SingleNet:
    """One run of a cell that cannot be fused (GRU, a plugin, the reference path), with
    torch's SGD or Adam, behind the fused group's interface."""

    def __init__(self, config: RunConfig, train_set: SequenceDataset, device: str):
        self.config = config
        self.rate = config.lr  # after any halvings; the schedule's factor applies on top
        self.schedule_factor = 1.0
        torch.manual_seed(config.seed)
        self.net = initial_net(config, train_set).to(device)
        if config.optimizer == "adam":
            self.optimizer = torch.optim.Adam(
                self.net.parameters(),
                lr=config.lr,
                betas=(config.momentum, ADAM_BETA2),
                eps=ADAM_EPS,
            )
        else:
            self.optimizer = torch.optim.SGD(
                self.net.parameters(), lr=config.lr, momentum=config.momentum
            )

    def steps(self, chunk, active: list[int]) -> list[list[float]]:
        """Training steps as FusedRuns.steps takes them: the run's mean batch loss per step,
        ending after a step whose loss is not finite (and which updated nothing)."""
        losses = []
        for (batch,) in chunk:
            logits = self.net(batch.inputs, batch.input_lengths)
            loss = sequence_loss(
                logits,
                self.config.output,
                self.config.target,
                batch.targets,
                batch.input_lengths,
                batch.target_lengths,
            )
            losses.append([loss.item()])
            if not update_allowed(losses[-1], active):
                break
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        return losses

    def network(self, k: int) -> SequenceNet:
        return self.net

    def halve_rate(self, k: int) -> None:
        self.rate /= 2
        self.set_schedule_factor(self.schedule_factor)

    def set_schedule_factor(self, factor: float) -> None:
        self.schedule_factor = factor
        for group in self.optimizer.param_groups:
            group["lr"] = self.rate * factor

    def freeze(self, k: int) -> None:
        """Nothing to do: a single run's loop ends with it."""


class RunState:
    """One run's record as it trains: its result, divergence watch and pending losses."""

    def __init__(self, config: RunConfig, chance: float):
        self.result = RunResult(config)
        self.watch = DivergenceWatch(chance, config.stuck_evals)
        self.losses: list[float] = []
        self.since_best = 0  # evaluations since the lowest error, or since the rate halved

    def record(self, error: float, seen: int, wall: float) -> dict:
        """Add a curve point (mean training loss since the last one); update the best error."""
        mean_loss = float(np.mean(self.losses)) if self.losses else math.nan
        self.losses.clear()
        point = {"samples": seen, "test_error": error, "train_loss": mean_loss, "wall_time": wall}
        result = self.result
        result.curve.append(point)
        if not error >= result.best_error:  # also true while best_error is still NaN
            result.best_error, result.best_samples = error, seen
            self.since_best = 0
        else:
            self.since_best += 1
        return point

    def rate_to_halve(self) -> bool:
        """Whether the run's learning rate halves now (config.halve_lr_after evaluations
        without a new lowest error); the count starts again after it does."""
        patience = self.result.config.halve_lr_after
        if not patience or self.since_best < patience:
            return False
        self.since_best = 0
        return True

    def stop(self, status: str, reason: str, seen: int, wall: float) -> None:
        result = self.result
        result.status, result.reason = status, reason
        result.samples_seen, result.wall_time = seen, wall


def train_runs(
    configs: list[RunConfig],
    datasets: tuple[SequenceDataset, SequenceDataset],
    device: str = "cpu",
    progress: bool = False,
    on_evaluation: OnEvaluation | None = None,
    time_limit: float = 0.0,
) -> list[RunResult]:
    """Train runs that differ only in lr, momentum or seed; one run is a group of one.

    Each run starts from the weights and sees the samples, in the order, of its own seed.
    `on_evaluation(result, point)` receives each curve point as soon as it is measured,
    with result.model the network as it is at that point;
    `time_limit` > 0 ends training after that many seconds, with a last evaluation (and a
    learning-rate schedule then runs its course by that time, where it comes before the
    samples' end).
    A fused group raises FusedUnstable when a run's loss stops being finite (its overflow
    could reach the others through the shared arithmetic); train those runs alone instead.
    """
    keys = {fuse_key(c) for c in configs}
    if len(configs) > 1 and (len(keys) != 1 or None in keys):
        raise ValueError("runs trained together must differ only in " + ", ".join(FUSABLE))
    if device == "cpu":
        torch.set_flush_denormal(FLUSH_DENORMALS)
    base = configs[0]
    train_set, test_set = at_line_height(base, *datasets)
    check_compatible(base, train_set)
    if fuse_key(base) is None:
        nets = SingleNet(base, train_set, device)
    else:
        nets = FusedRuns(configs, train_set, device)
    load_kernels(base, device)  # a first build takes a minute: not part of the run's time
    runs = [RunState(config, train_set.chance_error()) for config in configs]
    active = list(range(len(configs)))
    rngs = [np.random.default_rng(c.seed) for c in configs]
    distortions = (
        [Distortion(c.distort, c.seed + DISTORT_STREAM) for c in configs] if base.distort else []
    )
    shared_order = len({c.seed for c in configs}) == 1
    total = base.samples or int(round(base.epochs * len(train_set)))
    bar = TrainingProgress(total, progress)
    start = time.perf_counter()
    seen, next_eval, data_time, out_of_time = 0, base.eval_every, 0.0, False

    def stop(k: int, status: str, reason: str) -> None:
        runs[k].stop(status, reason, seen, time.perf_counter() - start)
        active.remove(k)
        nets.freeze(k)

    def evaluate_active() -> None:
        wall = time.perf_counter() - start
        for k in list(active):
            network = nets.network(k)
            error = evaluate(network, test_set, base.eval_samples, device)
            point = runs[k].record(error, seen, wall)
            bar.evaluated(point["train_loss"], error)
            if on_evaluation is not None:
                runs[k].result.model = network  # as it is now: a callback may measure more
                on_evaluation(runs[k].result, point)
            if runs[k].watch.stuck(error, point["train_loss"]):
                stop(k, "diverged", f"error at chance since {seen} samples")
            elif runs[k].rate_to_halve():
                nets.halve_rate(k)

    while active and seen < total and not out_of_time:
        orders = list(
            zip(*(train_set.epoch_batches(rng, base.batch_size) for rng in rngs), strict=True)
        )
        at = 0
        while at < len(orders) and active and seen < total and not out_of_time:
            # The schedule's factor is set once a chunk: CHUNK_STEPS steps are a small
            # fraction of any run long enough for a schedule to matter.
            elapsed = time.perf_counter() - start
            progress = run_progress(seen, total, elapsed, time_limit)
            nets.set_schedule_factor(rate_factor(base.lr_schedule, progress))
            chunk = next_chunk(orders, at, seen, next_eval, total)
            at += len(chunk)
            loading = time.perf_counter()
            chunk_batches = load_chunk(train_set, chunk, shared_order, device, distortions)
            data_time += time.perf_counter() - loading
            # steps() may end early (a non-finite loss): the steps it did not take are dropped
            for step, values in zip(chunk, nets.steps(chunk_batches, active), strict=False):
                for k in list(active):
                    if DivergenceWatch.bad_loss(values[k]):
                        if len(configs) > 1:
                            raise FusedUnstable(f"a fused run's loss became {values[k]} at {seen}")
                        stop(k, "diverged", f"loss became {values[k]} at {seen} samples")
                if not active:
                    break
                seen += len(step[0])
                for k in active:
                    runs[k].losses.append(values[k])
                bar.update(len(step[0]))
            out_of_time = 0 < time_limit <= time.perf_counter() - start
            if active and (seen >= next_eval or seen >= total or out_of_time):
                next_eval += base.eval_every
                evaluate_active()
    bar.close()
    wall = time.perf_counter() - start
    results = []
    for k, run in enumerate(runs):
        if k in active:
            run.stop("done", "", seen, wall)
        result = run.result
        result.data_time = data_time
        result.model = nets.network(k)
        if result.curve:
            result.final_error = result.curve[-1]["test_error"]
        results.append(result)
    return results


def train_run(
    config: RunConfig,
    data_path: str | None = None,
    device: str = "cpu",
    out_dir: str | Path | None = None,
    progress: bool = True,
    datasets: tuple[SequenceDataset, SequenceDataset] | None = None,
    on_evaluation: OnEvaluation | None = None,
    time_limit: float = 0.0,
) -> RunResult:
    """Train one network as configured; write result.json and model.pt under out_dir/run_id.

    `datasets` skips loading (train, test) by name. With `config.init` the run continues
    that model, on the data as it reads them (text lines in its codec). Given `out_dir`,
    best.pt beside model.pt keeps the network at its lowest test error.
    """
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("device 'cuda' requested but torch sees no GPU; use --device cpu")
    datasets = datasets or load_dataset(config.dataset, data_path, config.validation, config.seed)
    datasets = at_line_height(config, *datasets)
    if config.init:
        datasets = fit_datasets(read_starting_model(config.init), datasets, config.dataset)
    if out_dir is not None:
        on_evaluation = keeping_best(out_dir, datasets[0].metadata(), on_evaluation)
    (result,) = train_runs([config], datasets, device, progress, on_evaluation, time_limit)
    if out_dir is not None:
        save_run(result, out_dir, datasets[0].metadata())
    return result


def keeping_best(out_dir: str | Path, metadata: dict, then: OnEvaluation | None) -> OnEvaluation:
    """An on_evaluation that writes best.pt whenever an evaluation sets the run's lowest
    error (save_best), then calls `then`."""

    def on_evaluation(result: RunResult, point: dict) -> None:
        if point["samples"] == result.best_samples and point["test_error"] == result.best_error:
            save_best(result, out_dir, metadata)
        if then is not None:
            then(result, point)

    return on_evaluation
