"""Fused runs: runs that differ only in learning rate, momentum or seed, trained together.

K such runs share every tensor shape, so their networks are stacked (model.fused.FusedNets)
and go through one fused recurrence call per layer and direction, one output-layer product,
one CTC alignment over all K*B sequences and one SGD update of the stacked parameters, each
run with its own learning rate and momentum. Each run starts from the weights of its own
seed and sees the samples of its own seed, in order; the results agree with the run trained
alone to float rounding (tests/test_sweep_fused.py).
"""

from __future__ import annotations

import torch

from lstmbench.data import SequenceDataset
from lstmbench.model.cells import get_cell
from lstmbench.model.fused import FusedNets
from lstmbench.model.nets import SequenceNet
from lstmbench.training.checkpoint import build_net
from lstmbench.training.config import RunConfig
from lstmbench.training.losses import sample_losses

# Settings that leave every tensor shape alone, so runs differing only in them can share
# one fused computation.
FUSABLE = ("lr", "momentum", "seed")
FIXED_LENGTH_DATASETS = ("mnist",)
# Fusing saves the per-step overheads (Python, dispatch, the loss, the update) once per group,
# but K runs' weights then stream through the caches at every step: it pays while a step is
# small. Measured on one thread (benchmarks/fused_speed.py, Intel Xeon): fused against alone,
# hidden 50 batch 1 K=16 2.8x, hidden 100 batch 1 K=16 1.5x, hidden 200 batch 1 K=2 1.2x
# but K=4 0.9x, hidden 16 batch 20 K=8 2.1x, hidden 100 batch 20 K=2 1.0x, hidden 500
# batch 1 K=8 0.8x. So a group's step work, K x batch x recurrent weights of a run, is kept
# under this many; a run bigger than that trains alone.
MAX_FUSED_WORK = 1_000_000
INPUT_FEATURES = {"mnist": 28}  # text lines: 48 (their normalized height)


def step_work(config: RunConfig) -> int:
    """Batch x the recurrent weights of one run (all layers and directions)."""
    blocks = len(get_cell(config.cell).spec.blocks)
    directions = 2 if config.direction == "bidi" else 1
    inputs = INPUT_FEATURES.get(config.dataset.partition(":")[0], 48)
    weights = 0
    for _ in range(config.layers):
        weights += directions * blocks * config.hidden * (inputs + config.hidden)
        inputs = directions * config.hidden
    return config.batch_size * weights


def group_size(config: RunConfig, fuse: int) -> int:
    """How many runs like this one to fuse, at most `fuse`."""
    return max(1, min(fuse, MAX_FUSED_WORK // step_work(config)))


class FusedUnstable(Exception):
    """A run of a fused group produced a non-finite loss; train the group's runs alone."""


def fuse_key(config: RunConfig) -> tuple | None:
    """Runs with equal keys can be fused; None for a run that cannot be fused at all.

    The seed stays in the key where it changes the data's shapes: a held-out validation
    split, or variable-length batches whose widths depend on the sample order.
    """
    if get_cell(config.cell).spec is None or config.impl != "fast":
        return None
    free = set(FUSABLE)
    if config.validation or config.dataset.partition(":")[0] not in FIXED_LENGTH_DATASETS:
        free.discard("seed")
    return tuple(sorted((k, v) for k, v in config.to_dict().items() if k not in free))


def make_tasks(configs: list[RunConfig], fuse: int) -> list[list[RunConfig]]:
    """Group runs into tasks of at most `fuse` fusable runs (fuse <= 1: one run each).

    Runs of one seed come together first, so a task's runs share their batches where they can.
    """
    if fuse <= 1:
        return [[config] for config in configs]
    groups: dict[tuple, list[RunConfig]] = {}
    tasks = []
    for config in configs:
        key = fuse_key(config)
        if key is None:
            tasks.append([config])
        else:
            groups.setdefault(key, []).append(config)
    for group in groups.values():
        group.sort(key=lambda c: c.seed)
        size = group_size(group[0], fuse)
        tasks.extend(group[i : i + size] for i in range(0, len(group), size))
    return tasks


class FusedSGD:
    """SGD with momentum as torch.optim.SGD computes it, one update for all K stacked runs,
    each with its own learning rate and momentum."""

    def __init__(self, nets: FusedNets, configs: list[RunConfig]):
        self.params = list(nets.stacked)
        # on the parameters' device: a run alone on a GPU is a fused group of one too
        device = self.params[0].device
        self.rates = torch.tensor([c.lr for c in configs], device=device)
        self.momenta = torch.tensor([c.momentum for c in configs], device=device)
        self.buffers = [torch.zeros_like(p) for p in self.params]

    def freeze(self, k: int) -> None:
        """Stop updating run k (it has finished)."""
        self.rates[k] = 0.0

    @torch.no_grad()
    def step(self) -> None:
        for param, buffer in zip(self.params, self.buffers, strict=True):
            shape = (-1,) + (1,) * (param.dim() - 1)
            buffer.mul_(self.momenta.view(shape)).add_(param.grad)
            param.sub_(self.rates.view(shape) * buffer)
            param.grad = None


class FusedRuns:
    """K runs of one shape, fused: the training loop's interface (losses, update, network,
    freeze)."""

    def __init__(self, configs: list[RunConfig], train_set: SequenceDataset, device: str):
        self.config = configs[0]
        nets = []
        for config in configs:
            torch.manual_seed(config.seed)  # the same initial weights as the run alone
            nets.append(build_net(config, train_set))
        self.nets = FusedNets(nets).to(device)
        self.optimizer = FusedSGD(self.nets, configs)

    def losses(self, batches) -> torch.Tensor:
        """Each run's mean batch loss (K,), from one fused pass."""
        runs, batch = len(batches), len(batches[0].target_lengths)
        if all(b is batches[0] for b in batches):  # a shared data order: one batch for all
            inputs = batches[0].inputs.unsqueeze(1).expand(-1, runs, -1, -1)
        else:
            inputs = torch.stack([b.inputs for b in batches], dim=1)
        lengths = batches[0].input_lengths
        logits = self.nets(inputs, lengths)
        steps = logits.shape[0]
        longest = max(b.targets.shape[1] for b in batches)
        targets = torch.cat(
            [torch.nn.functional.pad(b.targets, (0, longest - b.targets.shape[1])) for b in batches]
        )
        per_sample = sample_losses(
            logits.reshape(steps, runs * batch, -1),
            self.config.output,
            self.config.target,
            targets,
            lengths.repeat(runs),
            torch.cat([b.target_lengths for b in batches]),
        )
        return per_sample.view(runs, batch).sum(dim=1) / batch

    def update(self, losses: torch.Tensor, active: list[int]) -> None:
        losses[active].sum().backward()
        self.optimizer.step()

    def network(self, k: int) -> SequenceNet:
        return self.nets.extract(k)

    def freeze(self, k: int) -> None:
        self.optimizer.freeze(k)
