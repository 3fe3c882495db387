"""How far fusing batch-1 runs can go: the part of a step that fusing cannot share, measured.

Fusing K runs shares what a step pays regardless of the run's size (calls, bookkeeping). It
cannot share the recurrence: every run has its own recurrent weights, and at batch 1 each
step reads all of them once forward and once backward, so the recurrence of K runs costs K
times one run's, whatever the order of the loops. That puts a ceiling on fusing:

    fused / alone  <=  (one run's whole step) / (one run's recurrence, as fused)

and on the arithmetic rate, flops per sample / (recurrence time x sgemm rate). A faster
recurrence would raise that ceiling, but not past an ideal one: every recurrent weight read
at the cache's full rate, every other matrix product at the sgemm rate, nothing else costing
anything. This script times, in turns in one process, on MNIST (28 steps of 28 features):

- a whole training step of one run alone, and of K runs fused, per run and sample (the C++
  step: forward, CTC loss, backward, SGD with momentum; `lstmbench.training.loop`);
- the recurrence alone: the C++ forward and backward through time of K stacked runs, both
  directions, per run and sample, with its rate of reading recurrent weights in GB/s;
- the same processor's rate of reading a vector that fits its second-level cache (a dot
  product of two 512 KB halves), the most the recurrence's weight reads could reach.

    .venv/bin/python benchmarks/fused_bound.py --data ../shared/data/mnist --threads 1
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
from lstmbench.model.kernels import Layout
from lstmbench.model.kernels.native import native_kernel
from lstmbench.model.spec import LSTM
from lstmbench.sweep.estimate import slope_per_sample
from lstmbench.training.config import RunConfig
from lstmbench.training.loop import train_runs

STEPS, FEATURES, CLASSES = 28, 28, 11
BASE = RunConfig(cell="LSTM", direction="bidi", batch_size=1, eval_every=10**9, eval_samples=1)


def train_seconds(configs: list[RunConfig], datasets) -> float:
    """The loop's own clock for training `configs` as one group."""
    results = train_runs(configs, datasets)
    if any(r.samples_seen < c.samples for r, c in zip(results, configs, strict=True)):
        raise RuntimeError(f"a run stopped early: {[r.reason for r in results]}")
    return max(r.wall_time for r in results)


def step_seconds(hidden: int, runs: int, samples: int, datasets) -> float:
    """Seconds per run and sample of a whole training step, `runs` runs fused.

    The difference of a long and a quarter-length run removes the loop's start."""
    configs = [
        dataclasses.replace(BASE, hidden=hidden, lr=1e-4 * (1 + k), seed=k // 2, samples=samples)
        for k in range(runs)
    ]
    short = [dataclasses.replace(c, samples=samples // 4) for c in configs]
    long_s = train_seconds(configs, datasets)
    short_s = train_seconds(short, datasets)
    return slope_per_sample(short_s, samples // 4, long_s, samples) / runs


def recurrence(hidden: int, runs: int):
    """A closure running the C++ recurrence of `runs` stacked LSTMs forward and backward, both
    directions, on one random batch-1 sequence each; and the recurrent-weight bytes it reads
    (each step reads a run's recurrent weights once forward and once backward)."""
    kernel = native_kernel()
    if kernel is None:
        raise SystemExit("fused_bound: the C++ kernels could not be built here")
    layout = Layout.of(LSTM)
    rows = layout.blocks * hidden
    generator = torch.Generator().manual_seed(0)

    def tensor(*shape):
        return 0.1 * torch.randn(*shape, generator=generator)

    x = tensor(STEPS, runs, 1, FEATURES)
    weights = [
        (
            tensor(runs, rows, FEATURES),
            tensor(runs, rows, hidden),
            tensor(runs, rows),
            tensor(runs, len(LSTM.peephole_gates), hidden),
        )
        for _ in range(2)
    ]
    dy = tensor(STEPS, runs, 1, hidden)

    def run():
        for w_ih, w_hh, bias, peep in weights:
            y, c, acts = kernel.forward(x, w_ih, w_hh, bias, peep, layout.codes)
            kernel.backward(dy, x, w_ih, w_hh, peep, y, c, acts, layout.codes, False)

    run()
    bytes_read = 2 * 2 * (STEPS - 1) * rows * hidden * 4 * runs
    return run, bytes_read


def l2_read_rate(repeats: int = 4000) -> float:
    """Bytes per second of a dot product over 2 x 512 KB of floats, in a loop, after warm-up:
    the data stay in a 2 MB second-level cache."""
    a, b = torch.rand(2**17), torch.rand(2**17)
    torch.dot(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.dot(a, b)
    return repeats * 2 * a.numel() * 4 / (time.perf_counter() - start)


def seconds_of(step, repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="MNIST directory (default: $LSTMBENCH_MNIST or cache)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--hidden", type=int, action="append", help="repeatable (50, 100, 200)")
    parser.add_argument("--runs", type=int, default=16, help="K, runs fused (16)")
    parser.add_argument("--samples", type=int, default=400, help="samples a timed run (400)")
    parser.add_argument("--repeats", type=int, default=3, help="turns, median (3)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    datasets = load_dataset("mnist", args.data)
    sgemm, sgemm_flops = speed.sgemm_step("cpu")
    print(
        f"{speed.cpu_name()}, {args.threads} thread(s), torch {torch.__version__}; BIDI LSTM, "
        f"batch 1, CTC, K={args.runs}; microseconds per run and sample, median of {args.repeats}"
    )
    print(
        f"{'hidden':>6} {'alone':>8} {'fused':>8} {'recurrence':>11} {'ideal':>6} "
        f"{'fused/alone':>12} {'ceiling':>8} {'ideal':>7} {'% sgemm':>8} {'ceiling':>8} "
        f"{'ideal':>7} {'weights GB/s':>13} {'L2 GB/s':>8}"
    )
    for hidden in args.hidden or [50, 100, 200]:
        run_recurrence, bytes_read = recurrence(hidden, args.runs)
        step_seconds(hidden, 1, args.samples // 4, datasets)  # warm up: kernels, caches
        turns: dict[str, list[float]] = {k: [] for k in ("alone", "fused", "rec", "l2", "sgemm")}
        for _ in range(args.repeats):
            turns["alone"].append(step_seconds(hidden, 1, args.samples, datasets))
            turns["fused"].append(step_seconds(hidden, args.runs, args.samples, datasets))
            turns["rec"].append(seconds_of(run_recurrence, 50) / args.runs)
            turns["l2"].append(l2_read_rate())
            turns["sgemm"].append(sgemm_flops / seconds_of(sgemm, 3))
        alone, fused, rec, l2, sgemm_rate = (statistics.median(v) for v in turns.values())
        case = speed.Case(
            "LSTM", "fast", speed.Shape("mnist", STEPS, FEATURES, CLASSES), "bidi", 1, hidden
        )
        flops = speed.matrix_flops(case)
        weight_bytes = bytes_read / args.runs
        # the recurrent products read 4 bytes a weight for 2 FLOPs; the rest is sgemm work
        ideal = weight_bytes / l2 + (flops - weight_bytes / 2) / sgemm_rate
        rate = flops / sgemm_rate  # seconds at the sgemm rate
        print(
            f"{hidden:6} {1e6 * alone:8.0f} {1e6 * fused:8.0f} {1e6 * rec:11.0f} "
            f"{1e6 * ideal:6.0f} {alone / fused:11.2f}x {alone / rec:7.2f}x "
            f"{alone / ideal:6.2f}x {100 * rate / fused:7.1f}% {100 * rate / rec:7.1f}% "
            f"{100 * rate / ideal:7.1f}% "
            f"{weight_bytes / rec / 1e9:13.1f} {l2 / 1e9:8.1f}",
            flush=True,
        )
    print(
        "ceiling: the most fusing could give if everything but today's recurrence cost nothing;"
        " ideal: if the recurrence read its weights at the L2 rate and did its other products at"
        " the sgemm rate; weights GB/s: today's recurrence's reads of its recurrent weights"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
