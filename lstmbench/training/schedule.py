"""Learning-rate schedules over a run's length: the factor the rate is multiplied by at each
point of training (on top of any halving on plateaus)."""

from __future__ import annotations

import math

# constant: the rate as given throughout (the paper's). cosine: from the given rate down to
# zero along half a cosine over the run, which lets a run of a fixed length settle into a
# minimum at its end instead of stopping wherever the last steps left it.
SCHEDULES = ("constant", "cosine")


def rate_factor(schedule: str, progress: float) -> float:
    """The learning rate's factor at `progress` (0 at the start, 1 at the end) of a run."""
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
    raise ValueError(f"unknown learning-rate schedule {schedule!r}")


def run_progress(seen: int, total: int, elapsed: float, time_limit: float) -> float:
    """How far through its length a run is: by samples, or by time where a time limit will
    end it sooner (whichever is further)."""
    progress = seen / total if total else 0.0
    if time_limit > 0:
        progress = max(progress, elapsed / time_limit)
    return min(progress, 1.0)
