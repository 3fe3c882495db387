"""Fused runs against the same runs trained one after another, at the paper's sizes.

For each case it trains K runs (differing in learning rate, momentum and seed, as a sweep's
runs do; seeds shared in pairs, as a sweep's grid points share them) first one after another
and then as one fused group, in turns, --repeats times, and prints the median runs/hour of
each, their ratio, and the fused group's arithmetic rate as a share of the machine's sgemm
rate timed in the same process. Runs are truncated to --samples training samples each.

    .venv/bin/python benchmarks/fused_speed.py --data ../shared/data/mnist --threads 1
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time

import torch

from lstmbench.bench import speed
from lstmbench.data import load_dataset
from lstmbench.training.config import RunConfig
from lstmbench.training.loop import train_runs

# (name, base config, runs fused) at the paper-scale settings of the specs they stand for.
MNIST = dict(eval_every=10**9, eval_samples=1)
CASES = [
    ("lr_hidden 50", RunConfig(cell="LSTM", hidden=50, batch_size=1, **MNIST), 16),
    ("lr_hidden 100", RunConfig(cell="LSTM", hidden=100, batch_size=1, **MNIST), 16),
    ("lr_hidden 200", RunConfig(cell="LSTM", hidden=200, batch_size=1, **MNIST), 16),
    ("lr_hidden 500", RunConfig(cell="LSTM", hidden=500, batch_size=1, **MNIST), 8),
    ("cell_types_mnist", RunConfig(cell="RELU2LSTM", hidden=100, batch_size=1, **MNIST), 16),
    ("batch_momentum 20", RunConfig(cell="LSTM", hidden=100, batch_size=20, **MNIST), 8),
    ("batch_momentum 200", RunConfig(cell="LSTM", hidden=100, batch_size=200, **MNIST), 8),
]
LINES = [
    ("bidi_lines 1", RunConfig(dataset="uw3like:tiny", hidden=100, batch_size=1, **MNIST), 8),
    ("bidi_lines 10", RunConfig(dataset="uw3like:tiny", hidden=100, batch_size=10, **MNIST), 8),
]


def group(base: RunConfig, count: int, samples: int) -> list[RunConfig]:
    """`count` runs of a sweep's kind: rates and momenta differ, seeds shared in pairs."""
    # rates where no run diverges within the truncated length, so every run does all its steps
    rates = [10 ** (-4 + 2 * i / max(1, count - 1)) for i in range(count)]
    lengths = samples * base.batch_size if base.batch_size > 1 else samples
    # Text lines fuse only within one seed (it sets the batches' widths): one seed for all.
    seeds = [i // 2 if base.dataset == "mnist" else 0 for i in range(count)]
    return [
        dataclasses.replace(base, lr=lr, momentum=(0.9, 0.5)[i % 2], seed=seeds[i], samples=lengths)
        for i, lr in enumerate(rates)
    ]


def seconds(configs: list[RunConfig], datasets, fused: bool) -> float:
    """Training time (the loop's own clock; the closing evaluation is of one sample)."""
    groups = [configs] if fused else [[c] for c in configs]
    total = 0.0
    for runs in groups:
        results = train_runs(runs, datasets)
        if any(r.samples_seen < c.samples for r, c in zip(results, runs, strict=True)):
            raise RuntimeError(f"a run stopped early: {[r.reason for r in results]}")
        total += max(r.wall_time for r in results)
    return total


def flops_per_sample(config: RunConfig, steps: int, features: int, classes: int) -> float:
    shape = speed.Shape("case", steps, features, classes)
    case = speed.Case(config.cell, "fast", shape, config.direction, 1, config.hidden)
    return speed.matrix_flops(case)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="MNIST directory (default: $LSTMBENCH_MNIST or cache)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="turns of each, median (3)")
    parser.add_argument("--samples", type=int, default=100, help="steps per run (100)")
    parser.add_argument("--only", action="append", help="cases whose name starts with this")
    parser.add_argument("--lines", action="store_true", help="add the text-line cases")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sgemm, sgemm_flops = speed.sgemm_step("cpu")
    print(
        f"{speed.cpu_name()}, {args.threads} thread(s), torch "
        f"{torch.__version__}; {args.samples} steps a run, median of {args.repeats}"
    )
    print(
        f"{'case':20} {'K':>3} {'alone runs/h':>13} {'fused runs/h':>13} {'ratio':>6} "
        f"{'% sgemm':>8}"
    )
    cases = CASES + (LINES if args.lines else [])
    mnist = load_dataset("mnist", args.data)
    for name, base, count in cases:
        if args.only and not any(name.startswith(o) for o in args.only):
            continue
        datasets = mnist if base.dataset == "mnist" else load_dataset(base.dataset)
        configs = group(base, count, args.samples)
        seconds(configs[:1], datasets, fused=False)  # warm up: kernels, caches
        alone, fused, sgemm_rate = [], [], []
        for _ in range(args.repeats):
            alone.append(seconds(configs, datasets, fused=False))
            fused.append(seconds(configs, datasets, fused=True))
            start = time.perf_counter()
            sgemm()
            sgemm_rate.append(sgemm_flops / (time.perf_counter() - start))
        alone_s, fused_s = statistics.median(alone), statistics.median(fused)
        share = ""
        if base.dataset == "mnist":
            work = flops_per_sample(base, 28, 28, 11) * configs[0].samples * count
            share = f"{100 * work / fused_s / statistics.median(sgemm_rate):7.1f}%"
        print(
            f"{name:20} {count:3} {3600 * count / alone_s:13.0f} {3600 * count / fused_s:13.0f} "
            f"{alone_s / fused_s:5.2f}x {share:>8}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
