"""A run's files: result.json, model.pt and best.pt, written atomically, and read back.

model.pt holds {"format", "config", "state", "dataset"?}: the network as training left it.
best.pt, written by a single run given a directory, holds the same keys for the network at
its lowest test error, and "samples" and "error" (when it was and what it read): a run that
learned and then diverged still leaves the model it learned. Checkpoints written before the
format number existed have none and are format 1; they hold the same keys and load alike.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

from lstmbench.data import SequenceDataset
from lstmbench.errors import UserError
from lstmbench.model.nets import SequenceNet
from lstmbench.training.config import RunConfig
from lstmbench.training.record import RunResult

FORMAT = 2  # 2: format number added; 1: the same keys without it
READABLE_FORMATS = (1, 2)
BEST = "best.pt"  # the network at the run's lowest test error, beside model.pt


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


def run_directory(out_dir: str | Path, config: RunConfig) -> Path:
    """Where a run's files live: out_dir/run_id."""
    return Path(out_dir) / config.run_id


def write_atomically(path: Path, write) -> None:
    """Call write(file object) on a temporary file beside path, then rename it into place,
    so a kill during the write leaves the old file or none, never a truncated one."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _write_model(result: RunResult, out_dir, name: str, metadata: dict | None, **extra) -> Path:
    """Write result.model, its config and any dataset metadata (and `extra` keys) to
    out_dir/run_id/name; returns the run directory."""
    directory = run_directory(out_dir, result.config)
    directory.mkdir(parents=True, exist_ok=True)
    saved = {
        "format": FORMAT,
        "config": result.config.to_dict(),
        "state": result.model.state_dict(),
        **extra,
    }
    if metadata:
        saved["dataset"] = metadata
    write_atomically(directory / name, lambda stream: torch.save(saved, stream))
    return directory


def save_run(result: RunResult, out_dir: str | Path, metadata: dict | None = None) -> Path:
    """Write result.json and model.pt (with any dataset metadata); returns the directory."""
    directory = _write_model(result, out_dir, "model.pt", metadata)
    text = json.dumps(result.to_dict(), indent=1).encode()
    write_atomically(directory / "result.json", lambda stream: stream.write(text))
    return directory


def save_best(result: RunResult, out_dir: str | Path, metadata: dict | None = None) -> Path:
    """Write best.pt: result.model as it is now, which has just read the run's lowest test
    error (result.best_error, after result.best_samples); returns its path."""
    samples, error = result.best_samples, result.best_error
    return _write_model(result, out_dir, BEST, metadata, samples=samples, error=error) / BEST


def read_checkpoint(path: str | Path) -> tuple[Path, dict]:
    """(file, contents) of model.pt or its run directory (or of a best.pt), checked for a
    readable format."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.is_file():
        raise UserError(f"no checkpoint at {path}; give a run directory, its model.pt or best.pt")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise UserError(f"checkpoint {path} is unreadable or corrupt ({error})") from None
    if not isinstance(saved, dict) or "config" not in saved or "state" not in saved:
        raise UserError(f"{path} is not an lstmbench checkpoint (no config and weights in it)")
    version = saved.get("format", 1)
    if version not in READABLE_FORMATS:
        raise UserError(
            f"checkpoint {path} has format {version}, newer than this lstmbench reads "
            f"({', '.join(map(str, READABLE_FORMATS))}); upgrade lstmbench to load it"
        )
    return path, saved


def load_checkpoint(path: str | Path, dataset: SequenceDataset) -> tuple[RunConfig, SequenceNet]:
    """Rebuild a trained network from model.pt (or its run directory)."""
    path, saved = read_checkpoint(path)
    config = RunConfig.from_dict(saved["config"])
    net = build_net(config, dataset)
    try:
        net.load_state_dict(saved["state"])
    except RuntimeError as error:
        raise UserError(f"checkpoint {path} does not fit its own config ({error})") from None
    return config, net
