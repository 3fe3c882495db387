"""lstmbench against clstm (the paper's engine) on this machine: one training step at batch 1.

Both train NPLSTM, hidden 100, on the MNIST shape (28 steps of 28 values, 11 softmax classes,
the label on the last frame), SGD with momentum 0.9, one thread. They take turns, round after
round (clstm, then lstmbench), so a change in load hits both; medians are printed. clstm is
built by ../shared/reference/clstm/build.sh (pass the binary with --clstm). lstmbench's figure
is its whole training loop (batches, loss, update), timed by the loop's own clock.

    .venv/bin/python benchmarks/clstm_compare.py --clstm /tmp/clstm-build/bench \\
        --data ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys

import torch

from lstmbench.bench import speed
from lstmbench.data import load_dataset
from lstmbench.training.config import RunConfig
from lstmbench.training.loop import train_runs


def clstm_rate(binary: str, direction: str, steps: int) -> float:
    """clstm's samples/s: the median over its repeats of one invocation."""
    output = subprocess.run(
        [binary, direction, "last", str(steps), "100", "3"],
        capture_output=True,
        text=True,
        check=True,
        env={"OMP_NUM_THREADS": "1"},
    ).stdout
    return float(re.search(r"median: wall=([\d.]+)", output).group(1))


def lstmbench_rate(direction: str, steps: int, datasets) -> float:
    config = RunConfig(
        cell="NPLSTM",
        direction=direction,
        target="end",
        hidden=100,
        batch_size=1,
        lr=1e-3,
        momentum=0.9,
        samples=steps,
        eval_every=10**9,
        eval_samples=1,
    )
    (result,) = train_runs([config], datasets)
    return steps / result.curve[-1]["wall_time"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clstm", required=True, help="clstm's bench binary (build.sh)")
    parser.add_argument("--data", help="MNIST directory (default: $LSTMBENCH_MNIST or cache)")
    parser.add_argument("--rounds", type=int, default=5, help="turns of each, median (5)")
    parser.add_argument("--steps", type=int, default=2000, help="samples a turn (2000)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    datasets = load_dataset("mnist", args.data)
    print(
        f"{speed.cpu_name()}, one thread, batch 1, hidden 100, "
        f"median of {args.rounds} interleaved rounds of {args.steps} samples"
    )
    for direction in ("uni", "bidi"):
        lstmbench_rate(direction, 100, datasets)  # warm up: kernels built, caches filled
        ours, theirs = [], []
        for _ in range(args.rounds):
            theirs.append(clstm_rate(args.clstm, direction, args.steps))
            ours.append(lstmbench_rate(direction, args.steps, datasets))
        mine, clstm = statistics.median(ours), statistics.median(theirs)
        print(
            f"{direction:4}: clstm {clstm:7.0f} samples/s, lstmbench {mine:7.0f} samples/s, "
            f"lstmbench/clstm {mine / clstm:.2f}x",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
