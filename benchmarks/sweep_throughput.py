"""Sweep throughput in runs per hour: the MNIST learning-rate x hidden-size spec at tiny scale.

Runs the same sweep (a fresh results file each time) with the local executor and with Ray
(a local cluster), each at 1 and 2 workers, and fused; prints the median of --repeats timings
of each, and each one's ratio to the unfused local executor with the same number of workers.
Workers
are started and warmed (data loaded) before the clock starts, so the figures are the steady
rate of a long sweep.

    nice .venv/bin/python benchmarks/sweep_throughput.py --data ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lstmbench.sweep.runner import SweepOptions, make_executor, run_sweep
from lstmbench.sweep.spec import load_spec
from lstmbench.sweep.store import ResultsStore

# One torch thread per worker everywhere: these networks are far too small for threads to
# help, and it keeps the setups comparable.
SETUPS = {
    "local, 1 worker": dict(executor="local", workers=1, pack=1),
    "local, 2 workers": dict(executor="local", workers=2, pack=1),
    "ray, 1 worker": dict(executor="ray", workers=1, pack=1),
    "ray, 2 workers": dict(executor="ray", workers=2, pack=1),
    "fused (16), local, 1 worker": dict(executor="local", workers=1, pack=16),
    "fused (16), local, 2 workers": dict(executor="local", workers=2, pack=16),
}
BASELINE = {1: "local, 1 worker", 2: "local, 2 workers"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="MNIST directory (default: $LSTMBENCH_MNIST or cache)")
    parser.add_argument("--spec", default="lr_hidden")
    parser.add_argument("--runs", type=int, default=48, help="runs per sweep (tiny settings)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", action="append", help="run only these setups (by name)")
    args = parser.parse_args()
    spec = load_spec(args.spec)
    tiny = dataclasses.replace(spec.scales["tiny"], runs=args.runs)
    spec = dataclasses.replace(spec, scales={**spec.scales, "tiny": tiny})
    warmup = dataclasses.replace(
        spec, scales={**spec.scales, "tiny": dataclasses.replace(tiny, runs=4)}
    )
    rates: dict[str, float] = {}
    print(f"{spec.name} at tiny scale: {args.runs} runs per sweep, median of {args.repeats}")
    with tempfile.TemporaryDirectory() as folder:
        for name, settings in SETUPS.items():
            if args.only and name not in args.only:
                continue
            options = SweepOptions(
                scale="tiny", data_path=args.data, progress=False, threads=1, **settings
            )
            executor = make_executor(options)
            try:
                run_sweep(
                    warmup, ResultsStore(Path(folder) / f"warm-{time.time()}.db"), options, executor
                )
                seconds = []
                for repeat in range(args.repeats):
                    store = ResultsStore(Path(folder) / f"{len(rates)}-{repeat}.db")
                    start = time.perf_counter()
                    summary = run_sweep(spec, store, options, executor)
                    seconds.append(time.perf_counter() - start)
                    assert summary.counts["done"] + summary.counts["diverged"] == args.runs
            finally:
                executor.shutdown()
            rates[name] = args.runs / statistics.median(seconds) * 3600
            workers = settings["workers"]
            baseline = rates.get(BASELINE[workers])
            ratio = f"{rates[name] / baseline:5.2f}x local, {workers} worker(s)" if baseline else ""
            spread = ", ".join(f"{s:.1f}" for s in seconds)
            print(f"{name:30} {rates[name]:9.0f} runs/hour   {ratio}   (seconds: {spread})")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
