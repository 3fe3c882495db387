"""Training progress for a person watching: a live bar on a terminal, plain lines elsewhere."""

from __future__ import annotations

import sys
import time

PLAIN_INTERVAL = 30.0  # seconds between lines written to a file or a pipe


class TrainingProgress:
    """Samples done out of `total`, with the last loss and test error.

    On a terminal it is tqdm's bar; written to a file or pipe, where a bar's carriage-return
    frames pile up, it is one plain line at most every PLAIN_INTERVAL seconds.
    """

    def __init__(self, total: int, enabled: bool, stream=None):
        self.total, self.enabled = total, enabled
        self.stream = stream or sys.stderr
        self.done, self.status = 0, ""
        self.bar = None
        self.last_line = time.perf_counter()
        if enabled and self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, unit="sample", unit_scale=True, leave=False, file=self.stream
            )

    def update(self, samples: int) -> None:
        self.done += samples
        if self.bar is not None:
            self.bar.update(samples)
        elif self.enabled and time.perf_counter() - self.last_line >= PLAIN_INTERVAL:
            self.write_line()

    def evaluated(self, loss: float, error: float) -> None:
        self.status = f"loss {loss:.3g}, test error {error:.2%}"
        if self.bar is not None:
            self.bar.set_postfix_str(self.status)

    def write_line(self) -> None:
        share = self.done / self.total if self.total else 0.0
        status = f"; {self.status}" if self.status else ""
        self.stream.write(f"{self.done}/{self.total} samples ({share:.0%}){status}\n")
        self.stream.flush()
        self.last_line = time.perf_counter()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
