"""RunConfig: every setting that determines a training run's result, validated up front."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from lstmbench.data import check_dataset_name
from lstmbench.data.lines import TARGET_HEIGHT
from lstmbench.errors import UserError
from lstmbench.model.cells import get_cell
from lstmbench.model.nets import DIRECTIONS, IMPLEMENTATIONS, OUTPUTS, check_choice
from lstmbench.training.schedule import SCHEDULES
from lstmbench.training.targets import TARGET_MODES

# Beyond this a digit's strokes leave the image or cross each other.
MAX_DISTORT = 3.0
# Settings added after runs were recorded, and their defaults.
LATER_SETTINGS = {
    "init": "",
    "distort": 0.0,
    "optimizer": "sgd",
    "halve_lr_after": 0,
    "lr_schedule": "constant",
    "line_height": TARGET_HEIGHT,
}
# Below this a line's small letters are a few pixels high.
MIN_LINE_HEIGHT = 16
# The paper's SGD with momentum, or Adam (its second moments' decay fixed at ADAM_BETA2, and
# its first moments' at the run's momentum).
OPTIMIZERS = ("sgd", "adam")
ADAM_BETA2, ADAM_EPS = 0.999, 1e-8


def _setting(default, help_text: str, choices: tuple[str, ...] | None = None):
    """A RunConfig field with the help text (and valid values) its command-line option shows."""
    return field(default=default, metadata={"help": help_text, "choices": choices})


@dataclass(frozen=True)
class RunConfig:
    """One training run. Its id is a hash of these fields, so equal configs are one run.

    Where the data lives, the device and the thread count are not part of it: they change
    how fast a run goes, not what it computes.
    """

    dataset: str = _setting("mnist", "dataset: mnist, lines:DIR or uw3like:tiny|small|full")
    cell: str = _setting("NPLSTM", "cell type (see `lstmbench cells`)")
    direction: str = _setting("bidi", "uni (LSTM1) or bidi (BIDI)", DIRECTIONS)
    layers: int = _setting(1, "stacked recurrent layers")
    output: str = _setting(
        "softmax", "output layer: softmax (cross-entropy) or logistic (MSE)", OUTPUTS
    )
    target: str = _setting(
        "ctc", "label placement: center, end (fixed step) or ctc (aligned)", TARGET_MODES
    )
    hidden: int = _setting(100, "hidden units (states) per direction")
    lr: float = _setting(0.01, "learning rate")
    momentum: float = _setting(0.9, "SGD momentum (Adam: the first moments' decay, beta1)")
    batch_size: int = _setting(32, "samples per update (gradients are averaged over the batch)")
    epochs: float = _setting(1.0, "training length in passes over the training set")
    samples: int = _setting(0, "training length in samples (overrides --epochs)")
    seed: int = _setting(0, "random seed (initial weights and sample order)")
    eval_every: int = _setting(15000, "training samples between test evaluations")
    eval_samples: int = _setting(0, "test samples per evaluation (0: all)")
    validation: int = _setting(0, "hold out this many training samples and test on them")
    distort: float = _setting(
        0.0,
        "distort every training image afresh each time it is seen (fixed-size images such as "
        "MNIST): 1 moves pixels 1.7 px (median), 0 is off",
    )
    halve_lr_after: int = _setting(
        0,
        "halve the learning rate after this many evaluations in a row without a new lowest "
        "error (0: never)",
    )
    lr_schedule: str = _setting(
        "constant",
        "learning rate over the run: constant, or cosine (down to zero at the run's end: its "
        "samples, or its time limit where that ends it sooner); halvings apply on top",
        SCHEDULES,
    )
    stuck_evals: int = _setting(
        8, "evaluations at chance, without progress, before stopping as diverged"
    )
    impl: str = _setting(
        "fast", "recurrence implementation: fast or reference (step-by-step)", IMPLEMENTATIONS
    )
    optimizer: str = _setting(
        "sgd",
        "sgd (with momentum, the paper's) or adam (torch's, beta2 0.999)",
        OPTIMIZERS,
    )
    line_height: int = _setting(
        TARGET_HEIGHT,
        f"text lines: the height in px the network reads them at (normalized to {TARGET_HEIGHT} "
        "px, then scaled down, widths in proportion)",
    )
    init: str = _setting(
        "",
        "continue training from this trained model (its model.pt or run directory); the run "
        "keeps the model's cell, direction, layers, output layer, hidden size, line height "
        "and codec",
    )

    def __post_init__(self):
        check_dataset_name(self.dataset)
        get_cell(self.cell)
        check_choice("direction", self.direction, DIRECTIONS)
        check_choice("output layer", self.output, OUTPUTS)
        check_choice("target mode", self.target, TARGET_MODES)
        check_choice("implementation", self.impl, IMPLEMENTATIONS)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("learning-rate schedule", self.lr_schedule, SCHEDULES)
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
        for name in ("eval_samples", "validation", "halve_lr_after"):
            if getattr(self, name) < 0:
                raise UserError(f"{name} must not be negative")
        if not MIN_LINE_HEIGHT <= self.line_height <= TARGET_HEIGHT:
            raise UserError(
                f"line height must be between {MIN_LINE_HEIGHT} and {TARGET_HEIGHT} px, got "
                f"{self.line_height}"
            )
        if not 0 <= self.distort <= MAX_DISTORT:
            raise UserError(
                f"distort must be between 0 (off) and {MAX_DISTORT}, got {self.distort}"
            )

    @property
    def run_id(self) -> str:
        """A stable 16-hex-digit id: the hash of every field."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        """The fields as a plain dict (for JSON). Settings added later appear only where
        they are not at their defaults, so other runs keep the ids and records they had."""
        values = dataclasses.asdict(self)
        for name, default in LATER_SETTINGS.items():
            if values[name] == default:
                del values[name]
        return values

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
