"""Packed runs against the same runs one by one, by layer width and batch size.

For each case, trains K runs (differing in learning rate and seed) separately and then
packed, on one torch thread, and prints the best of --repeats timings of each and the ratio.

    nice .venv/bin/python benchmarks/packed_speed.py --data ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import torch

from lstmbench.data import load_dataset
from lstmbench.training.config import RunConfig
from lstmbench.training.loop import train_run, train_runs

# (hidden, runs packed, batch size)
CASES = [(16, 4, 20), (32, 4, 20), (50, 5, 20), (25, 4, 1), (50, 5, 1), (100, 2, 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="MNIST directory (default: $LSTMBENCH_MNIST or cache)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    datasets = load_dataset("mnist", args.data)
    for hidden, count, batch in CASES:
        base = RunConfig(
            cell="LSTM",
            direction="bidi",
            target="ctc",
            hidden=hidden,
            batch_size=batch,
            samples=200 if batch == 1 else 1000,
            eval_every=100000,
            eval_samples=100,
        )
        runs = [dataclasses.replace(base, lr=10 ** -(2 + 0.3 * i), seed=i) for i in range(count)]
        train_run(runs[0], progress=False, datasets=datasets)  # warm up
        separate, packed = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            for config in runs:
                train_run(config, progress=False, datasets=datasets)
            separate.append(time.perf_counter() - start)
            start = time.perf_counter()
            train_runs(runs, datasets)
            packed.append(time.perf_counter() - start)
        print(
            f"hidden {hidden:3} x {count} runs, batch {batch:2}: separate {min(separate):6.2f} s, "
            f"packed {min(packed):6.2f} s, packed is {min(separate) / min(packed):.2f}x as fast"
        )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
