"""RunResult: what a run produced, and its one plain-data form (result.json, worker
messages and the results store all use it)."""

from __future__ import annotations

import dataclasses
import math
import platform
from dataclasses import dataclass, field

import torch

from lstmbench import __version__
from lstmbench.model.nets import SequenceNet
from lstmbench.training.config import RunConfig

# Keys of to_dict() that are derived from the fields or describe the software, not the run.
DERIVED = ("run_id", "samples_per_second", "version", "torch", "threads")


@dataclass
class RunResult:
    """A run's status, errors, curve, timing and host; `model` is the trained network."""

    config: RunConfig
    status: str = "running"  # running | done | diverged
    reason: str = ""
    best_error: float = math.nan
    best_samples: int = 0
    final_error: float = math.nan
    samples_seen: int = 0
    wall_time: float = 0.0
    data_time: float = 0.0  # seconds of wall_time spent assembling batches
    curve: list[dict] = field(default_factory=list)  # samples, test_error, train_loss, wall_time
    host: str = field(default_factory=platform.node)
    model: SequenceNet | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        """JSON-ready form: every field but the model, plus the run id and the software."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        del values["model"]
        values["config"] = self.config.to_dict()
        return {
            "run_id": self.config.run_id,
            **values,
            "samples_per_second": self.samples_seen / self.wall_time if self.wall_time else 0.0,
            "version": __version__,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        }

    @classmethod
    def from_dict(cls, values: dict) -> RunResult:
        """The inverse of to_dict (derived keys are dropped; a missing field keeps its
        default, so result.json files written before a field existed still read)."""
        known = {f.name for f in dataclasses.fields(cls)} - {"model"}
        kept = {k: v for k, v in values.items() if k in known}
        kept["config"] = RunConfig.from_dict(values["config"])
        return cls(**kept)
