"""The bench's fused-runs rows: K batch-1 runs trained as one fused group against the same K
runs trained one after another through torch's nn.LSTM (cuDNN on a GPU, MKL-DNN on the CPU).

A small recurrent run at batch 1 is bound by per-step costs (kernel launches on a GPU, calls
and memory traffic on a CPU), not by arithmetic; a sweep trains hundreds of such runs, so
what counts is runs per hour when many share each step. The fused side is lstmbench's own
training step (training/fused.py: forward, loss, backward and each run's SGD update), with
one label per sequence at its centre frame; the baseline is the bench's nn.LSTM row
(per-frame cross-entropy, torch's SGD), one model and optimizer per run. Both are timed in
turns (speed.interleaved_medians), on random inputs of the row's shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lstmbench.bench import speed
from lstmbench.data.base import ArraySequenceSet
from lstmbench.training.config import RunConfig
from lstmbench.training.fused import FusedRuns

CELL = "NPLSTM"  # nn.LSTM's own cell: no peepholes, tanh
SAMPLES = 64  # random sequences the fused runs draw their batches from


@dataclass
class FusedRunsRow:
    """K runs fused against the same runs one after another through nn.LSTM."""

    cell: str
    runs: int
    shape: str
    direction: str
    hidden: int
    # Steps per second, each advancing all K runs by one sample: for runs of S samples,
    # runs/hour = K * 3600 * steps/s / S, so the ratio of steps/s is the ratio of runs/hour.
    fused_steps_per_s: float
    baseline_steps_per_s: float
    ratio: float  # fused over baseline


HEADER = (
    f"{'fused runs':<16}{'K':>5} {'shape':<6}{'dir':<5}{'hidden':>7}"
    f"{'fused steps/s':>15}{'nn.LSTM steps/s':>17}{'ratio':>8}"
)


def random_set(shape: speed.Shape, seed: int = 0) -> ArraySequenceSet:
    """SAMPLES random sequences of the shape, one label each."""
    rng = np.random.default_rng(seed)
    inputs = rng.random((SAMPLES, shape.steps, shape.features), dtype=np.float32)
    labels = rng.integers(1, shape.classes, SAMPLES)
    return ArraySequenceSet(inputs, labels, shape.classes)


def fused_group(
    runs: int, shape: speed.Shape, direction: str, hidden: int, device: str
) -> tuple[FusedRuns, list]:
    """`runs` batch-1 runs fused, and one step's batches: each run on its own sample."""
    data = random_set(shape)
    configs = [
        RunConfig(
            cell=CELL,
            direction=direction,
            hidden=hidden,
            target="center",
            batch_size=1,
            lr=1e-4 * (1 + k / runs),  # small: no run diverges however long it is timed
            seed=k,
        )
        for k in range(runs)
    ]
    samples = [np.array([k % SAMPLES]) for k in range(runs)]
    return FusedRuns(configs, data, device), [[b.to(device) for b in data.batches(samples)]]


def fused_step(
    runs: int, shape: speed.Shape, direction: str, hidden: int, device: str
) -> Callable[[], None]:
    """One training step of the fused group as a closure, run once (warm-up, kernel build)."""
    group, batches = fused_group(runs, shape, direction, hidden, device)
    active = list(range(runs))

    def step() -> None:
        group.steps(batches, active)

    step()
    speed.synchronize(device)
    return step


def baseline_step(
    runs: int, shape: speed.Shape, direction: str, hidden: int, device: str
) -> Callable[[], None]:
    """One training step of each of `runs` nn.LSTM models, one after another, as a closure."""
    case = speed.Case(speed.BASELINE, "torch", shape, direction, 1, hidden)
    steps = [speed.prepared_step(case, device) for _ in range(runs)]

    def step() -> None:
        for one in steps:
            one()

    return step


def measure(
    runs: int,
    shape: speed.Shape,
    direction: str,
    hidden: int,
    device: str,
    min_time: float = 1.0,
    min_repeats: int = 3,
) -> FusedRunsRow:
    """Time the fused group and the runs one after another in turns; medians."""
    fused, baseline = speed.interleaved_medians(
        [
            fused_step(runs, shape, direction, hidden, device),
            baseline_step(runs, shape, direction, hidden, device),
        ],
        device,
        min_time,
        min_repeats,
    )
    return FusedRunsRow(
        CELL, runs, shape.name, direction, hidden, 1 / fused, 1 / baseline, baseline / fused
    )


def format_row(row: FusedRunsRow) -> str:
    """One line of the fused-runs table (steps/s: K runs advanced one sample each)."""
    return (
        f"{row.cell:<16}{row.runs:>5} {row.shape:<6}{row.direction:<5}{row.hidden:>7}"
        f"{row.fused_steps_per_s:>15.1f}{row.baseline_steps_per_s:>17.1f}{row.ratio:>7.2f}x"
    )
