"""How well a short timing predicts the seconds per sample of a long run.

`sweep estimate` and `reproduce --budget` cost runs from a few dozen timed steps. For each
case it times, in turns, --repeats times: the average over 30 steps (how timing was taken
before), estimate.py's timing (the slope between a short and a long timing), and a run of
--samples steps, whose average is the reference; it prints the median of each against the
reference.

    .venv/bin/python benchmarks/calibration_accuracy.py --data ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys

import torch

from lstmbench.bench.speed import cpu_name
from lstmbench.data import load_dataset
from lstmbench.sweep.estimate import _best, _per_sample, _truncated
from lstmbench.training.config import RunConfig
from lstmbench.training.loop import train_runs

CASES = [(100, 1, 1), (100, 1, 2), (25, 1, 1), (25, 1, 2), (100, 20, 1), (100, 20, 2)]
STEPS = 30  # the timing's steps (estimate.py's default)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="MNIST directory (default: $LSTMBENCH_MNIST or cache)")
    parser.add_argument("--samples", type=int, default=1500, help="steps of the reference run")
    parser.add_argument("--repeats", type=int, default=3, help="turns of each, median (3)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    datasets = load_dataset("mnist", args.data)
    print(
        f"{cpu_name()}, 1 thread, torch {torch.__version__}; "
        f"reference: runs of {args.samples} steps; median of {args.repeats}"
    )
    print(f"{'case':28} {'30-step average':>16} {'estimate.py':>12}")
    for hidden, batch, runs in CASES:
        base = RunConfig(cell="LSTM", hidden=hidden, batch_size=batch, eval_every=10**9)
        configs = [dataclasses.replace(base, lr=1e-3 * (k + 1)) for k in range(runs)]
        train_runs([_truncated(base, 2 * batch)], datasets)  # first calls off the clock
        average, slope = [], []
        for _ in range(args.repeats):
            short, _ = _best(configs, datasets, 1, STEPS * batch, "cpu")
            timed, _, _ = _per_sample(configs, datasets, 1, STEPS * batch, "cpu")
            reference, _ = _best(configs, datasets, 1, args.samples * batch, "cpu")
            per_sample = reference / (args.samples * batch)
            average.append(short / (STEPS * batch) / per_sample)
            slope.append(timed / per_sample)
        name = f"hidden {hidden}, batch {batch}, {runs} run(s)"
        print(
            f"{name:28} {statistics.median(average):15.2f}x {statistics.median(slope):11.2f}x",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
