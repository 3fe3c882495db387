"""RunConfig: every setting that determines a training run's result, validated up front."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from .cells import get_cell
from .data import check_dataset_name
from .errors import UserError
from .nets import DIRECTIONS, IMPLEMENTATIONS, OUTPUTS, check_choice
from .targets import TARGET_MODES


@dataclass(frozen=True)
class RunConfig:
    """One training run. Its id is a hash of these fields, so equal configs are one run.

    Where the data lives, the device and the thread count are not part of it: they change
    how fast a run goes, not what it computes.
    """

    dataset: str = "mnist"
    cell: str = "NPLSTM"
    direction: str = "bidi"
    layers: int = 1
    output: str = "softmax"
    target: str = "ctc"
    hidden: int = 100
    lr: float = 0.01
    momentum: float = 0.9
    batch_size: int = 32
    epochs: float = 1.0
    samples: int = 0  # training samples in all; when > 0 it overrides epochs
    seed: int = 0
    eval_every: int = 15000  # training samples between test evaluations
    eval_samples: int = 0  # test samples per evaluation; 0 means the whole test set
    validation: int = 0  # hold this many training samples out and test on them instead
    stuck_evals: int = 8  # evaluations at chance without progress before calling it diverged
    impl: str = "fast"

    def __post_init__(self):
        check_dataset_name(self.dataset)
        get_cell(self.cell)
        check_choice("direction", self.direction, DIRECTIONS)
        check_choice("output layer", self.output, OUTPUTS)
        check_choice("target mode", self.target, TARGET_MODES)
        check_choice("implementation", self.impl, IMPLEMENTATIONS)
        positive = {
            "layers": self.layers,
            "hidden": self.hidden,
            "batch_size": self.batch_size,
            "eval_every": self.eval_every,
            "stuck_evals": self.stuck_evals,
        }
        for name, value in positive.items():
            if value < 1:
                raise UserError(f"{name} must be at least 1, got {value}")
        if not (self.lr > 0 and self.lr < float("inf")):
            raise UserError(f"learning rate must be a positive number, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise UserError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.samples < 0 or self.epochs <= 0 and self.samples == 0:
            raise UserError("training length: give epochs > 0 or samples > 0")
        for name in ("eval_samples", "validation"):
            if getattr(self, name) < 0:
                raise UserError(f"{name} must not be negative")

    @property
    def run_id(self) -> str:
        """A stable 16-hex-digit id: the hash of every field."""
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        """The fields as a plain dict (for JSON)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> RunConfig:
        """Build from a dict, refusing unknown keys by name."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(
                f"unknown run setting(s) {', '.join(unknown)}; "
                f"valid settings: {', '.join(sorted(known))}"
            )
        return cls(**values)
