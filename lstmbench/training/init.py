"""Starting a run from a trained model (`--init MODEL`): its weights, its architecture, and
its codec, refused with one message where the data do not fit it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from lstmbench.data import SequenceDataset
from lstmbench.data.lines.codec import Codec
from lstmbench.errors import UserError
from lstmbench.model.nets import SequenceNet
from lstmbench.training.checkpoint import build_net, read_checkpoint
from lstmbench.training.config import RunConfig

# What shapes the network: taken from the model, so its weights fit.
ARCHITECTURE = ("cell", "direction", "layers", "output", "hidden", "line_height")
# Values per time step of the datasets with a fixed input size; text lines have their height.
INPUT_FEATURES = {"mnist": 28}


@dataclass
class StartingModel:
    """A trained model read from its checkpoint."""

    path: Path
    config: RunConfig
    state: dict
    codec: Codec | None

    @property
    def n_classes(self) -> int:
        return int(self.state["classifier.weight"].shape[0])

    @property
    def n_features(self) -> int:
        return INPUT_FEATURES.get(self.config.dataset.partition(":")[0], self.config.line_height)


def read_starting_model(path: str | Path) -> StartingModel:
    """The model at `path` (a model.pt or its run directory)."""
    file, saved = read_checkpoint(path)
    codec_values = (saved.get("dataset") or {}).get("codec")
    codec = Codec.from_dict(codec_values) if codec_values is not None else None
    return StartingModel(file, RunConfig.from_dict(saved["config"]), saved["state"], codec)


def adopt_architecture(config: RunConfig, given: set[str] = frozenset()) -> RunConfig:
    """The config with the starting model's architecture; a setting in `given` (set by the
    user) that differs from the model's is refused rather than silently replaced."""
    start = read_starting_model(config.init)
    conflicts = [
        f"--{option} {getattr(config, name)} (the model has {getattr(start.config, name)})"
        for name in ARCHITECTURE
        if name in given and getattr(config, name) != getattr(start.config, name)
        for option in [name.replace("_", "-")]
    ]
    if conflicts:
        raise UserError(
            f"--init {config.init} continues that model, whose shape is fixed: "
            f"{'; '.join(conflicts)}; leave these options out"
        )
    return dataclasses.replace(config, **{n: getattr(start.config, n) for n in ARCHITECTURE})


def fit_datasets(
    start: StartingModel, datasets: tuple[SequenceDataset, SequenceDataset], name: str
) -> tuple[SequenceDataset, SequenceDataset]:
    """(train, test) as the model reads them: text lines recoded with its codec. Refuses
    data of another input size, and training lines with characters it has no output for."""
    from lstmbench.data.lines.dataset import LineDataset  # deferred: PIL and SciPy load slowly

    train, test = datasets
    if train.n_features != start.n_features:
        raise UserError(
            f"model {start.path} reads {start.n_features} values per time step (it was "
            f"trained on {start.config.dataset}) but {name} has {train.n_features}: start "
            "from a model trained on the same kind of data"
        )
    if isinstance(train, LineDataset):
        if start.codec is None:
            raise UserError(
                f"model {start.path} was not trained on text lines (it has no codec): start "
                "from a model trained with --dataset lines:PATH or uw3like:SIZE"
            )
        unknown = {c for t in train.texts for c in start.codec.unknown(t)}
        if unknown:
            raise UserError(
                f"the training lines of {name} use characters model {start.path} has no "
                f"output for: {''.join(sorted(unknown))!r}; start from a model whose "
                "training text has them (e.g. `data make-lines --corpus FILE` with such "
                "text), or leave those lines out"
            )
        train = LineDataset(train.images, train.texts, start.codec, train.names)
        test = LineDataset(test.images, test.texts, start.codec, test.names)
    if train.n_classes != start.n_classes:
        raise UserError(
            f"model {start.path} has {start.n_classes} output classes but {name} has "
            f"{train.n_classes}: start from a model trained on data with the same classes"
        )
    return train, test


def initial_net(config: RunConfig, dataset: SequenceDataset) -> SequenceNet:
    """A run's network before training: fresh weights (of the current torch seed), or the
    starting model's where `config.init` names one."""
    net = build_net(config, dataset)
    if config.init:
        start = read_starting_model(config.init)
        try:
            net.load_state_dict(start.state)
        except RuntimeError as error:
            raise UserError(
                f"model {start.path} does not fit this run's network ({error}); leave out "
                "the options that change its shape"
            ) from None
    return net
