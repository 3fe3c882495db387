"""One training run: RunConfig -> curve, best error, checkpoint."""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .config import RunConfig
from .data import SequenceDataset, load_dataset
from .errors import UserError
from .losses import sequence_loss
from .metrics import best_path, character_errors, sequence_errors, unpad
from .nets import SequenceNet
from .targets import FIXED_MODES

EVAL_BATCH = 500


@dataclass
class RunResult:
    """What a run produced: its status, errors, the curve, and how long it took."""

    config: RunConfig
    status: str = "running"  # done | diverged
    reason: str = ""
    best_error: float = float("nan")
    best_samples: int = 0
    final_error: float = float("nan")
    samples_seen: int = 0
    wall_time: float = 0.0
    curve: list[dict] = field(default_factory=list)
    model: SequenceNet | None = field(default=None, repr=False)  # the trained network

    def to_dict(self) -> dict:
        """JSON-ready form, with the config and its id."""
        return {
            "run_id": self.config.run_id,
            "config": self.config.to_dict(),
            "status": self.status,
            "reason": self.reason,
            "best_error": self.best_error,
            "best_samples": self.best_samples,
            "final_error": self.final_error,
            "samples_seen": self.samples_seen,
            "wall_time": self.wall_time,
            "samples_per_second": self.samples_seen / self.wall_time if self.wall_time else 0.0,
            "curve": self.curve,
            "host": platform.node(),
            "version": __version__,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        }


def build_net(config: RunConfig, dataset: SequenceDataset) -> SequenceNet:
    """The network a config describes, sized for a dataset."""
    return SequenceNet(
        config.cell,
        dataset.n_features,
        config.hidden,
        dataset.n_classes,
        direction=config.direction,
        layers=config.layers,
        output=config.output,
        impl=config.impl,
    )


def check_compatible(config: RunConfig, dataset: SequenceDataset) -> None:
    """Refuse combinations that cannot work, before any training."""
    if config.target in FIXED_MODES and not dataset.fixed_length:
        raise UserError(
            f"target mode {config.target!r} puts the label at a fixed time step, which needs "
            f"sequences of one length; dataset {config.dataset!r} has variable-length "
            "sequences: use --target ctc"
        )


@torch.no_grad()
def evaluate(net: SequenceNet, dataset: SequenceDataset, limit: int = 0, device="cpu") -> float:
    """Error rate by best-path decoding: sequence errors, or character error rate."""
    was_training = net.training
    net.eval()
    count = len(dataset) if limit <= 0 else min(limit, len(dataset))
    wrong = total = 0
    for start in range(0, count, EVAL_BATCH):
        batch = dataset.batch(np.arange(start, min(start + EVAL_BATCH, count))).to(device)
        decoded = best_path(net(batch.inputs, batch.input_lengths), batch.input_lengths)
        references = unpad(batch.targets, batch.target_lengths)
        if dataset.metric == "character":
            distance, length = character_errors(decoded, references)
            wrong, total = wrong + distance, total + length
        else:
            wrong, total = wrong + sequence_errors(decoded, references), total + len(references)
    net.train(was_training)
    return wrong / max(total, 1)


class DivergenceWatch:
    """Decides when a run has diverged: a non-finite loss, or error stuck at chance.

    "Stuck" means `patience` evaluations in a row at chance level with no fall in the
    training loss over them, so a slow but learning run is not stopped.
    """

    def __init__(self, chance: float, patience: int):
        self.chance, self.patience = chance, patience
        self.stretch: list[float] = []

    def bad_loss(self, loss: float) -> bool:
        """Whether a training loss means the run has blown up."""
        return not math.isfinite(loss)

    def stuck(self, error: float, train_loss: float) -> bool:
        """Record an evaluation; True once the error has sat at chance long enough."""
        if error < self.chance - 0.01:
            self.stretch = []
            return False
        self.stretch.append(train_loss)
        if len(self.stretch) < self.patience:
            return False
        window = self.stretch[-self.patience :]
        return window[-1] >= 0.99 * window[0]


def train_run(
    config: RunConfig,
    data_path: str | None = None,
    device: str = "cpu",
    out_dir: str | Path | None = None,
    progress: bool = True,
    datasets: tuple[SequenceDataset, SequenceDataset] | None = None,
    on_evaluation: Callable[[dict], None] | None = None,
    time_limit: float = 0.0,
) -> RunResult:
    """Train one network as configured; write result.json and model.pt under out_dir/run_id.

    `datasets` skips loading (train, test) by name; `on_evaluation` receives each curve point
    as soon as it is measured (e.g. to store it, so an interrupted run loses nothing);
    `time_limit` > 0 ends training after that many seconds, with a last evaluation.
    """
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("device 'cuda' requested but torch sees no GPU; use --device cpu")
    train_set, test_set = datasets or load_dataset(
        config.dataset, data_path, config.validation, config.seed
    )
    check_compatible(config, train_set)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    net = build_net(config, train_set).to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=config.lr, momentum=config.momentum)
    total = config.samples or int(round(config.epochs * len(train_set)))
    watch = DivergenceWatch(train_set.chance_error(), config.stuck_evals)
    result = RunResult(config)
    bar = _progress_bar(total, progress)
    start = time.perf_counter()
    seen, next_eval, losses = 0, config.eval_every, []

    def record_evaluation() -> bool:
        error = evaluate(net, test_set, config.eval_samples, device)
        mean_loss = float(np.mean(losses)) if losses else float("nan")
        losses.clear()
        point = {
            "samples": seen,
            "test_error": error,
            "train_loss": mean_loss,
            "wall_time": time.perf_counter() - start,
        }
        result.curve.append(point)
        if on_evaluation is not None:
            on_evaluation(point)
        if not error >= result.best_error:  # also true while best_error is still NaN
            result.best_error, result.best_samples = error, seen
        bar.set_postfix(loss=f"{mean_loss:.3g}", test_err=f"{error:.2%}")
        if watch.stuck(error, mean_loss):
            result.status, result.reason = "diverged", f"error at chance since {seen} samples"
            return False
        return True

    running = True
    while running and seen < total:
        for indices in train_set.epoch_batches(rng, config.batch_size):
            if seen >= total:
                break
            indices = indices[: total - seen]
            batch = train_set.batch(indices).to(device)
            logits = net(batch.inputs, batch.input_lengths)
            loss = sequence_loss(
                logits,
                config.output,
                config.target,
                batch.targets,
                batch.input_lengths,
                batch.target_lengths,
            )
            value = loss.item()
            if watch.bad_loss(value):
                result.status, result.reason = "diverged", f"loss became {value} at {seen} samples"
                running = False
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(indices)
            losses.append(value)
            bar.update(len(indices))
            out_of_time = 0 < time_limit <= time.perf_counter() - start
            if seen >= next_eval or seen >= total or out_of_time:
                next_eval += config.eval_every
                if not record_evaluation() or out_of_time:
                    running = False
                    break
    bar.close()
    if result.status == "running":
        result.status = "done"
    result.samples_seen = seen
    result.wall_time = time.perf_counter() - start
    result.model = net
    if result.curve:
        result.final_error = result.curve[-1]["test_error"]
    if out_dir is not None:
        save_run(result, net, Path(out_dir), train_set.metadata())
    return result


def _progress_bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="sample", unit_scale=True, disable=not enabled, leave=False)


def run_directory(out_dir: Path, config: RunConfig) -> Path:
    """Where a run's files live: out_dir/run_id."""
    return Path(out_dir) / config.run_id


def save_run(
    result: RunResult, net: SequenceNet, out_dir: Path, metadata: dict | None = None
) -> Path:
    """Write result.json and the model checkpoint (with any dataset metadata); returns the
    run directory."""
    directory = run_directory(out_dir, result.config)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "result.json").write_text(json.dumps(result.to_dict(), indent=1))
    saved = {"config": result.config.to_dict(), "state": net.state_dict()}
    if metadata:
        saved["dataset"] = metadata
    torch.save(saved, directory / "model.pt")
    return directory


def load_checkpoint(path: str | Path, dataset: SequenceDataset) -> tuple[RunConfig, SequenceNet]:
    """Rebuild a trained network from model.pt (or its run directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.is_file():
        raise UserError(f"no checkpoint at {path}; give a run directory or its model.pt")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        config = RunConfig.from_dict(saved["config"])
    except (RuntimeError, KeyError, EOFError, OSError) as error:
        raise UserError(f"checkpoint {path} is unreadable or corrupt ({error})") from None
    net = build_net(config, dataset)
    net.load_state_dict(saved["state"])
    return config, net
