"""Reading after a fixed training time: one line model trained for so many minutes, then its
CER on every held-out generated line and on real lines it never saw (`lines benchmark`, and
benchmarks/lines_ablation.py across generator variants)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lstmbench.training.config import RunConfig


@dataclass
class LineReading:
    """What a time-limited line run came to."""

    status: str
    reason: str
    lines_trained: int
    minutes: float
    generated_cer: float
    generated_lines: int
    run_directory: Path
    # The lowest CER the evaluations during training saw (on their share of the generated
    # test lines) and after how many lines: the final CER alone hides a run that learned
    # and then diverged.
    best_cer: float
    best_lines: int
    real_cer: float | None = None
    real_lines: int = 0
    confusions: Counter | None = None  # (reference, output) -> count on the real lines
    # The real lines read by the network at the lowest CER (best.pt), where training went
    # on past it: the model a user would keep, chosen on generated lines alone.
    best_real_cer: float | None = None


def time_limited_reading(
    config: RunConfig,
    minutes: float,
    data: str | None,
    device: str,
    out: str,
    real=None,
    on_evaluation: Callable | None = None,
) -> LineReading:
    """Train `config` for `minutes` of wall time, then score all held-out generated lines
    and `real` (a LineDataset, or None) with the trained model, and `real` with its best
    checkpoint too where that is an earlier one."""
    from lstmbench.data import load_dataset
    from lstmbench.training.checkpoint import BEST, run_directory
    from lstmbench.training.loop import train_run
    from lstmbench.training.recognize import load_line_model, score_lines

    result = train_run(
        config,
        data,
        device,
        out,
        progress=False,
        time_limit=60 * minutes,
        on_evaluation=on_evaluation,
    )
    _, test = load_dataset(config.dataset, data, 0, config.seed)
    error, _, _ = score_lines(result.model, test, device)
    reading = LineReading(
        result.status,
        result.reason,
        result.samples_seen,
        result.wall_time / 60,
        error,
        len(test),
        run_directory(Path(out), config),
        result.best_error,
        result.best_samples,
    )
    if real is not None:
        real = type(test)(real.images, real.texts, test.codec, real.names)
        reading.real_cer, _, reading.confusions = score_lines(result.model, real, device)
        reading.real_lines = len(real)
        best_file = reading.run_directory / BEST
        if result.best_samples < result.samples_seen and best_file.is_file():
            _, best, _ = load_line_model(best_file)
            reading.best_real_cer, _, _ = score_lines(best.to(device), real, device)
    return reading
