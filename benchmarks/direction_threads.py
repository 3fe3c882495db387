"""Two threads against one for a text-line training step: the C++ step runs the two
directions of a bidirectional layer side by side when it has two threads
(model/kernels/network_step.h: each_direction).

For each case it times training steps on the same uw3like:small batches, one thread and two
threads in turns, --repeats times, and prints the median lines/s of each and their ratio. A
unidirectional row shows what two threads give without a second direction to run (torch's
own threaded operations, and the batch's CTC alignments side by side). Denormals are
flushed as the training loop flushes them. With --init the steps start from a trained line
model (its bidirectional rows only): a trained network's saturated gates are where a thread
that kept denormals would fall onto the CPU's slow path.

    .venv/bin/python benchmarks/direction_threads.py [--init RUN_DIR --dataset uw3like:full]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from lstmbench.bench.speed import cpu_name
from lstmbench.data import load_dataset
from lstmbench.training.config import RunConfig
from lstmbench.training.fused import FusedRuns
from lstmbench.training.init import adopt_architecture, fit_datasets, read_starting_model
from lstmbench.training.loop import FLUSH_DENORMALS

CASES = [  # (direction, batch size)
    ("bidi", 1),
    ("bidi", 4),
    ("bidi", 16),
    ("uni", 4),
]


def lines_per_second(runs: FusedRuns, batches, threads: int) -> float:
    """Train on `batches` with `threads` torch threads; lines a second."""
    torch.set_num_threads(threads)
    started = time.perf_counter()
    for batch in batches:
        runs.steps([[batch]], [0])
    return sum(len(b.target_lengths) for b in batches) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="uw3like:small")
    parser.add_argument("--lines", type=int, default=160, help="lines a timing (default: 160)")
    parser.add_argument("--repeats", type=int, default=5, help="timings a thread count (5)")
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--init", default="", help="a trained line model to start from")
    args = parser.parse_args()
    torch.set_flush_denormal(FLUSH_DENORMALS)
    train, test = load_dataset(args.dataset)
    if args.init:  # the lines recoded as the model reads them
        train, _ = fit_datasets(read_starting_model(args.init), (train, test), args.dataset)
    print(f"{cpu_name()}, torch {torch.__version__}")
    print("direction  batch  1 thread (lines/s)  2 threads (lines/s)  ratio")
    for direction, batch_size in CASES:
        if args.init and direction != "bidi":
            continue  # the model's own shape is kept whatever the config says
        config = RunConfig(
            dataset=args.dataset,
            direction=direction,
            hidden=args.hidden,
            batch_size=batch_size,
            lr=1e-4,
            init=args.init,
        )
        if args.init:
            config = adopt_architecture(config)
        runs = FusedRuns([config], train, "cpu")
        order = train.epoch_batches(np.random.default_rng(0), batch_size)
        batches = [train.batch(indices) for indices in order[: args.lines // batch_size]]
        lines_per_second(runs, batches[:2], 1)  # the kernels built and warm
        rates = {1: [], 2: []}
        for _ in range(args.repeats):
            for threads in (1, 2):
                rates[threads].append(lines_per_second(runs, batches, threads))
        one, two = (statistics.median(rates[t]) for t in (1, 2))
        print(f"{direction:9}  {batch_size:5}  {one:18.1f}  {two:19.1f}  {two / one:5.2f}")


if __name__ == "__main__":
    main()
