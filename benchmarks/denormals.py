"""Training time with denormal floats kept against flushed to zero, in one process.

A run whose gates saturate (the top of a pilot's learning-rate range) fills its backward pass
with numbers below float32's normal range, and x86 cores compute on those on a slow path.
The training loop flushes them (training/loop.py, FLUSH_DENORMALS). This times, one thread,
the same runs both ways in interleaved rounds and prints the median seconds of each and
their ratio:
- lines: BIDI NPLSTM 50, logistic, CTC, batch 1, lr 0.1 on uw3like:tiny (the slowest run of
  a 2-hour budget's pilot), and the same at lr 1e-3 (a run that learns);
- mnist: BIDI LSTM 100, softmax, CTC, batch 1, lr 0.1, and the same at lr 1e-3.

    .venv/bin/python benchmarks/denormals.py --data ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lstmbench.sweep.worker import datasets_for
from lstmbench.training import loop
from lstmbench.training.config import RunConfig

LINES = dict(dataset="uw3like:tiny", cell="NPLSTM", output="logistic", hidden=50, target="ctc")
MNIST = dict(dataset="mnist", cell="LSTM", output="softmax", hidden=100, target="ctc")


def seconds(config: RunConfig, data, flush: bool) -> float:
    """Wall seconds of one training of `config`, denormals flushed or kept."""
    loop.FLUSH_DENORMALS = flush
    start = time.perf_counter()
    loop.train_runs([config], data)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="MNIST folder (the mnist cases are left out without it)")
    parser.add_argument("--samples", type=int, default=2000, help="training samples a run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = [("lines", LINES, None)] + ([("mnist", MNIST, args.data)] if args.data else [])
    print(f"{'case':<16} {'lr':>6} {'kept s':>8} {'flushed s':>10} {'kept/flushed':>13}")
    for name, settings, path in cases:
        for lr in (0.1, 1e-3):
            config = RunConfig(
                **settings,
                direction="bidi",
                batch_size=1,
                momentum=0.9,
                lr=lr,
                samples=args.samples,
                eval_every=args.samples,
                eval_samples=20,
            )
            data = datasets_for(config, path)
            seconds(config, data, True)  # warm: kernels built, data loaded
            times = {True: [], False: []}
            for _ in range(args.rounds):
                for flush in (False, True):
                    times[flush].append(seconds(config, data, flush))
            kept, flushed = (statistics.median(times[f]) for f in (False, True))
            print(f"{name:<16} {lr:>6g} {kept:>8.2f} {flushed:>10.2f} {kept / flushed:>12.2f}x")


if __name__ == "__main__":
    main()
