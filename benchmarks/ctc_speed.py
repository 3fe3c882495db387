"""The CTC alignment: the C++ kernel against the NumPy reference, on text-line shapes.

For each shape, times `ctc_alignment` (C++) and `ctc_alignment_reference` (NumPy) in turns
on the same random batch, one torch thread, and prints the median milliseconds of each and
their ratio, with the largest posterior difference between the two.

    nice .venv/bin/python benchmarks/ctc_speed.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lstmbench.training.targets import ctc_alignment, ctc_alignment_reference

# (frames, batch, classes, labels per target): MNIST columns, a short and a long text line
CASES = [(28, 20, 11, 1), (400, 10, 90, 25), (800, 10, 90, 50), (800, 1, 90, 50)]


def median_ms(function, arguments, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        function(*arguments)
        times.append(time.perf_counter() - begin)
    return 1e3 * statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    print(" frames batch classes labels   C++ ms  NumPy ms  speed-up  max |diff|")
    for frames, batch, classes, labels in CASES:
        logits = 3 * torch.randn(frames, batch, classes, generator=generator)
        log_probs = logits.log_softmax(-1)
        targets = torch.randint(1, classes, (batch, labels), generator=generator)
        arguments = (log_probs, targets, torch.full((batch,), frames), torch.full((batch,), labels))
        ctc_alignment(*arguments)  # builds the kernel on first use
        native, reference = [], []
        for _ in range(args.repeats):  # in turns, so a change of load falls on both
            native.append(median_ms(ctc_alignment, arguments, 1))
            reference.append(median_ms(ctc_alignment_reference, arguments, 1))
        fast, slow = statistics.median(native), statistics.median(reference)
        difference = (ctc_alignment(*arguments)[0] - ctc_alignment_reference(*arguments)[0]).abs()
        print(
            f"{frames:7d} {batch:5d} {classes:7d} {labels:6d} {fast:8.2f} {slow:9.2f}"
            f" {slow / fast:8.1f}x {difference.max().item():10.1e}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
