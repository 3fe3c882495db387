"""Packed runs: runs that differ only in learning rate, momentum or seed, trained together.

K such runs share every tensor shape, so they are trained as one network K times as wide
whose weights are block-diagonal: model k owns its own block of units in every layer, the
blocks between models are zero and stay zero, and each block follows its own SGD update with
its own learning rate and momentum. The wide network runs through the same fast recurrence as
a single run, so K small runs cost about one step each instead of K. Each model starts from
the same weights and sees the same samples, in the same order, as its separate run; the
results agree to float rounding (tested).
"""

from __future__ import annotations

import torch

from lstmbench.data import SequenceDataset
from lstmbench.model.cells import get_cell
from lstmbench.model.nets import SequenceNet
from lstmbench.training.checkpoint import build_net
from lstmbench.training.config import RunConfig
from lstmbench.training.losses import sample_losses

# Settings that leave every tensor shape alone, so runs differing only in them can share
# one batched computation.
PACKABLE = ("lr", "momentum", "seed")
FIXED_LENGTH_DATASETS = ("mnist",)
# The wide network does K times the arithmetic of K separate ones (its zero blocks), which
# pays only while small layers leave per-step overheads dominant: cap its width. Measured on
# one CPU thread (benchmarks/packed_speed.py): with batch 20, packs 64 units wide ran about
# 1.8x as fast as separate runs, 128 wide 1.2x, 250 wide 0.7x; with batch 1, 100 wide 2.3x,
# 250 wide 1.5x.
MAX_PACKED_UNITS = {"single": 256, "batched": 128}


def max_pack(config: RunConfig, pack: int) -> int:
    """How many runs like this one to pack together, at most `pack`."""
    units = MAX_PACKED_UNITS["single" if config.batch_size == 1 else "batched"]
    return max(1, min(pack, units // config.hidden))


class PackUnstable(Exception):
    """A model of the pack produced a non-finite loss; its runs must be trained separately."""


def pack_key(config: RunConfig) -> tuple | None:
    """Runs with equal keys can be packed; None for a run that cannot be packed at all.

    The seed stays in the key where it changes the data itself: a held-out validation split,
    or variable-length batches whose shapes depend on the sample order.
    """
    if get_cell(config.cell).spec is None:  # only the parametrized LSTM has a known layout
        return None
    values = config.to_dict()
    free = set(PACKABLE)
    if config.validation or config.dataset.partition(":")[0] not in FIXED_LENGTH_DATASETS:
        free.discard("seed")
    return tuple(sorted((k, v) for k, v in values.items() if k not in free))


def make_tasks(configs: list[RunConfig], pack: int) -> list[list[RunConfig]]:
    """Group runs into tasks of at most `pack` packable runs (pack <= 1: one run each)."""
    if pack <= 1:
        return [[config] for config in configs]
    groups: dict[tuple, list[RunConfig]] = {}
    tasks = []
    for config in configs:
        key = pack_key(config)
        if key is None:
            tasks.append([config])
        else:
            groups.setdefault(key, []).append(config)
    for group in groups.values():
        size = max_pack(group[0], pack)
        tasks.extend(group[i : i + size] for i in range(0, len(group), size))
    return tasks


class BlockLayout:
    """Where model k's part of each parameter lies in the wide network."""

    def __init__(self, wide: SequenceNet, models: int, hidden: int, features: int, classes: int):
        self.models, self.hidden, self.features, self.classes = models, hidden, features, classes
        self.directions = 2 if wide.layers[0].backward_cell is not None else 1
        self.width = models * hidden

    def units(self, k: int) -> torch.Tensor:
        """Model k's units within one direction of a layer."""
        return torch.arange(k * self.hidden, (k + 1) * self.hidden)

    def layer_outputs(self, k: int) -> torch.Tensor:
        """Model k's units in a layer's output (all its directions)."""
        return torch.cat([d * self.width + self.units(k) for d in range(self.directions)])

    def index(self, name: str, shape: torch.Size, k: int) -> tuple:
        """The index of model k's block of the wide parameter `name`."""
        if name.startswith("classifier."):
            rows = torch.arange(k * self.classes, (k + 1) * self.classes)
            if name.endswith("bias"):
                return (rows,)
            return rows[:, None], self.layer_outputs(k)[None, :]
        layer = int(name.split(".")[1])
        kind = name.rsplit(".", 1)[1]
        if kind == "peephole":
            return torch.arange(shape[0])[:, None], self.units(k)[None, :]
        blocks = shape[0] // self.width
        rows = torch.cat([b * self.width + self.units(k) for b in range(blocks)])
        if kind == "bias":
            return (rows,)
        if kind == "weight_hh":
            return rows[:, None], self.units(k)[None, :]
        if layer == 0:
            inputs = torch.arange(k * self.features, (k + 1) * self.features)
        else:
            inputs = self.layer_outputs(k)
        return rows[:, None], inputs[None, :]


class PackedNets:
    """K networks of one shape held as one block-diagonal wide network."""

    def __init__(self, configs: list[RunConfig], train_set: SequenceDataset):
        base = configs[0]
        self.models = len(configs)
        self.small = []
        for config in configs:
            torch.manual_seed(config.seed)  # the same initial weights as the separate run
            self.small.append(build_net(config, train_set))
        features, classes = train_set.n_features, train_set.n_classes
        self.wide = SequenceNet(
            base.cell,
            self.models * features,
            self.models * base.hidden,
            self.models * classes,
            direction=base.direction,
            layers=base.layers,
            output=base.output,
            impl=base.impl,
        )
        self.layout = BlockLayout(self.wide, self.models, base.hidden, features, classes)
        self.params = dict(self.wide.named_parameters())
        self.blocks = {
            name: [self.layout.index(name, p.shape, k) for k in range(self.models)]
            for name, p in self.params.items()
        }
        self.mask = {}
        with torch.no_grad():
            for name, wide_param in self.params.items():
                wide_param.zero_()
                self.mask[name] = torch.zeros_like(wide_param, dtype=torch.bool)
                small = [dict(net.named_parameters())[name] for net in self.small]
                for k, index in enumerate(self.blocks[name]):
                    wide_param[index] = small[k]
                    self.mask[name][index] = True

    def per_model(self, values: list[float]) -> dict[str, torch.Tensor]:
        """A tensor per parameter holding values[k] in model k's block, 0 elsewhere."""
        maps = {}
        for name, wide_param in self.params.items():
            tensor = torch.zeros_like(wide_param)
            for k, index in enumerate(self.blocks[name]):
                tensor[index] = values[k]
            maps[name] = tensor
        return maps

    @torch.no_grad()
    def extract(self, k: int) -> SequenceNet:
        """Model k as its own network (its weights copied out of the wide one)."""
        net = self.small[k]
        for name, param in net.named_parameters():
            param.copy_(self.params[name][self.blocks[name][k]])
        return net


class PackedSGD:
    """SGD with momentum, as torch.optim.SGD computes it, with a rate and momentum per block."""

    def __init__(self, nets: PackedNets, configs: list[RunConfig]):
        self.nets = nets
        self.rates = [c.lr for c in configs]
        self.lr = nets.per_model(self.rates)
        self.momentum = nets.per_model([c.momentum for c in configs])
        self.buffers = {name: torch.zeros_like(p) for name, p in nets.params.items()}

    def freeze(self, k: int) -> None:
        """Stop updating model k (it has finished)."""
        self.rates[k] = 0.0
        self.lr = self.nets.per_model(self.rates)

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter from its gradient."""
        for name, param in self.nets.params.items():
            grad = torch.where(self.nets.mask[name], param.grad, 0.0)
            buffer = self.buffers[name].mul_(self.momentum[name]).add_(grad)
            param.sub_(self.lr[name] * buffer)
            param.grad = None


class PackedRuns:
    """K runs of one shape as one wide network with its per-block SGD: the training loop's
    interface (losses, update, network, freeze) for K > 1."""

    def __init__(self, configs: list[RunConfig], train_set: SequenceDataset):
        self.config = configs[0]
        self.nets = PackedNets(configs, train_set)
        self.optimizer = PackedSGD(self.nets, configs)

    def losses(self, batches) -> torch.Tensor:
        """Each run's mean batch loss (K,), from one pass of the wide network."""
        models = len(batches)
        inputs = torch.cat([b.inputs for b in batches], dim=2)
        lengths = batches[0].input_lengths
        logits = self.nets.wide(inputs, lengths)
        steps, batch, _ = logits.shape
        # (T, B, K*C) -> (T, K*B, C): run k's samples become rows k*B .. k*B + B - 1.
        logits = (
            logits.view(steps, batch, models, -1).transpose(1, 2).reshape(steps, models * batch, -1)
        )
        longest = max(b.targets.shape[1] for b in batches)
        targets = torch.cat(
            [torch.nn.functional.pad(b.targets, (0, longest - b.targets.shape[1])) for b in batches]
        )
        per_sample = sample_losses(
            logits,
            self.config.output,
            self.config.target,
            targets,
            lengths.repeat(models),
            torch.cat([b.target_lengths for b in batches]),
        )
        return per_sample.view(models, batch).sum(dim=1) / batch

    def update(self, losses: torch.Tensor, active: list[int]) -> None:
        losses[active].sum().backward()
        self.optimizer.step()

    def network(self, k: int) -> SequenceNet:
        return self.nets.extract(k)

    def freeze(self, k: int) -> None:
        self.optimizer.freeze(k)
