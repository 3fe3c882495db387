"""Fused runs: runs that differ only in learning rate, momentum or seed, trained together.

K such runs share every tensor shape, so their networks are stacked (model.fused.FusedNets)
and trained as one: on the CPU a stretch of training steps is one C++ call (the recurrent
layers, the output layer, one CTC alignment over all K*B sequences, backward, and the SGD or
Adam update of the stacked parameters with each run's own learning rate and momentum);
elsewhere the same step is torch operations and autograd. A run alone is a group of one.
Each run starts from the weights of its own seed and sees the samples of its own seed, in
order; the results agree with the run trained alone to float rounding
(tests/test_sweep_fused.py).
"""

from __future__ import annotations

import math

import torch

from lstmbench.data import Batch, SequenceDataset
from lstmbench.model.cells import get_cell
from lstmbench.model.fused import FusedNets
from lstmbench.model.kernels import backend_name
from lstmbench.model.kernels.native import native_ctc, native_kernel
from lstmbench.model.nets import OUTPUTS, SequenceNet
from lstmbench.training.config import ADAM_BETA2, ADAM_EPS, RunConfig
from lstmbench.training.init import initial_net
from lstmbench.training.losses import sample_losses
from lstmbench.training.targets import TARGET_MODES

# Settings that leave every tensor shape alone, so runs differing only in them can share
# one fused computation.
FUSABLE = ("lr", "momentum", "seed")
FIXED_LENGTH_DATASETS = ("mnist",)
# Fusing pays the per-step costs that do not grow with a run's size (the calls, the tensors'
# bookkeeping, Python once per stretch of steps) once per group, but K runs' weights and
# activations then share the caches. Measured on one thread (benchmarks/fused_speed.py,
# Intel Xeon), fused against alone at batch 1: hidden 50 K=16 1.08x, hidden 100 K=16 1.18x
# and K=32 1.15x, hidden 200 K=4 1.13x but K=16 0.96x, hidden 500 K=2 1.01x and K=8 0.84x;
# at batch 20: hidden 16 K=8 1.23x, hidden 100 K=2 0.77x. So a group's step work, K x batch
# x recurrent weights of a run, is kept under this many; a run bigger than that trains alone.
MAX_FUSED_WORK = 2_000_000
INPUT_FEATURES = {"mnist": 28}  # text lines: 48 (their normalized height)


def recurrent_weights(config: RunConfig) -> int:
    """The recurrent layers' weights of one run (all layers and directions); a cell without a
    spec (a GRU, a plugin's) counted as four blocks, like an LSTM."""
    spec = get_cell(config.cell).spec
    blocks = len(spec.blocks) if spec is not None else 4
    directions = 2 if config.direction == "bidi" else 1
    inputs = INPUT_FEATURES.get(config.dataset.partition(":")[0], 48)
    weights = 0
    for _ in range(config.layers):
        weights += directions * blocks * config.hidden * (inputs + config.hidden)
        inputs = directions * config.hidden
    return weights


def step_work(config: RunConfig) -> int:
    """Batch x the recurrent weights of one run."""
    return config.batch_size * recurrent_weights(config)


def run_work(config: RunConfig) -> float:
    """A run's cost in rough proportion: its training length times its recurrent weights.
    The length is in samples, or in epochs where the run counts those (a spec's runs all
    count one way), so it orders the runs of one sweep, not of two."""
    return (config.samples or config.epochs) * recurrent_weights(config)


def group_size(config: RunConfig, fuse: int, device: str = "cpu") -> int:
    """How many runs like this one to fuse, at most `fuse`.

    On the CPU, text lines train alone: a line is hundreds of steps, so the per-step costs
    fusing shares are already small beside the recurrence, and fused line runs measured
    slower than alone (benchmarks/fused_speed.py --lines, one seed: batch 1 K=8 0.87x,
    batch 10 K=8 0.71x); and fusing stops at MAX_FUSED_WORK. On a GPU a step is bound by
    its launches whatever the sizes, so every run fuses up to `fuse`.
    """
    if device != "cpu":
        return max(1, fuse)
    if config.dataset.partition(":")[0] not in FIXED_LENGTH_DATASETS:
        return 1
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


def make_tasks(
    configs: list[RunConfig], fuse: int, device: str = "cpu", workers: int = 1
) -> list[list[RunConfig]]:
    """Group runs into tasks of at most `fuse` fusable runs (fuse <= 1: one run each), as
    many as pay on `device` (group_size) and about an equal share of the work for each of
    `workers` at most (task_limit), the dearest tasks first (run_work).

    Runs of one seed come together first, so a task's runs share their batches where they can.
    Dearest first, because workers take tasks in order: a sweep's largest runs started last
    would keep a few workers busy long after the others ran out of work (on 100 workers,
    lr_hidden at paper scale, whose 500-unit runs are 30 times the cost of its 50-unit ones).
    """
    if fuse <= 1:
        return dearest_first([[config] for config in configs])
    share = sum(run_work(c) for c in configs) / max(1, workers)
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
        size = min(group_size(group[0], fuse, device), task_limit(share, group[0]))
        tasks.extend(group[i : i + size] for i in range(0, len(group), size))
    return dearest_first(tasks)


def task_limit(share: float, config: RunConfig) -> int:
    """How many runs like `config` a task may hold: as many as `share` of work pays for,
    rounded up (equal runs then fill every worker's share exactly: 600 on 100 workers, six a
    task).

    A fused task of K runs takes nearly K times as long as one run, and the last task to end
    ends the sweep: packs dearer than a worker's share leave workers idle while a few finish
    (a pilot's five runs in one task on two workers; bidi_ctc_mnist's 600 runs in packs of 16
    on 100 workers, 60 tasks; its BIDI runs, twice the work of the others, in packs of
    equal count)."""
    return max(1, math.ceil(share / run_work(config) - 1e-9))


def dearest_first(tasks: list[list[RunConfig]]) -> list[list[RunConfig]]:
    """Tasks by their runs' summed run_work, largest first; equal ones in their order."""
    return sorted(tasks, key=lambda task: -sum(run_work(c) for c in task))


class FusedOptimizer:
    """One update for all K stacked runs, each with its own learning rate and momentum: SGD
    with momentum as torch.optim.SGD computes it, or Adam as torch.optim.Adam does (the
    momentum its beta1). `buffers` hold the momentum (SGD) or the first moments (Adam),
    `squares` Adam's second moments (empty for SGD), and `updates` counts the updates made,
    for Adam's bias correction."""

    def __init__(self, params: list[torch.Tensor], configs: list[RunConfig]):
        self.params = params
        self.adam = configs[0].optimizer == "adam"
        # on the parameters' device: a run alone on a GPU is a fused group of one too
        like = dict(device=self.params[0].device, dtype=self.params[0].dtype)
        self.rates = torch.tensor([c.lr for c in configs], **like)
        self.momenta = torch.tensor([c.momentum for c in configs], **like)
        self.buffers = [torch.zeros_like(p) for p in self.params]
        self.squares = [torch.zeros_like(p) for p in self.params] if self.adam else []
        self.updates = 0
        self.schedule_factor = 1.0  # the learning-rate schedule's, the same for every run

    def freeze(self, k: int) -> None:
        """Stop updating run k (it has finished)."""
        self.rates[k] = 0.0

    def halve_rate(self, k: int) -> None:
        self.rates[k] /= 2

    def applied_rates(self) -> torch.Tensor:
        """Each run's learning rate for the next update: its own, times the schedule's factor."""
        return self.rates * self.schedule_factor

    @torch.no_grad()
    def step(self) -> None:
        self.updates += 1
        applied = self.applied_rates()
        if self.adam:  # the bias corrections, one per run, the same for every parameter
            step_sizes = applied / (1 - self.momenta**self.updates)
            second_correction = math.sqrt(1 - ADAM_BETA2**self.updates)
        for j, (param, buffer) in enumerate(zip(self.params, self.buffers, strict=True)):
            if param.grad is None:  # a placeholder for an absent peephole
                continue
            shape = (-1,) + (1,) * (param.dim() - 1)
            rates, momenta = applied.view(shape), self.momenta.view(shape)
            if self.adam:
                buffer.mul_(momenta).add_((1 - momenta) * param.grad)
                self.squares[j].mul_(ADAM_BETA2).addcmul_(
                    param.grad, param.grad, value=1 - ADAM_BETA2
                )
                denominator = self.squares[j].sqrt() / second_correction + ADAM_EPS
                param.sub_(step_sizes.view(shape) * buffer / denominator)
            else:
                buffer.mul_(momenta).add_(param.grad)
                param.sub_(rates * buffer)
            param.grad = None


def update_allowed(values: list[float], active: list[int]) -> bool:
    """Whether a step's update may be applied: every active run's loss is finite (else the
    loop stops the run, or retrains the group's runs alone, from the weights before it)."""
    return all(math.isfinite(values[k]) for k in active)


class FusedRuns:
    """K runs of one shape, fused: the training loop's interface (step, network, freeze).

    On the CPU a whole step (forward, loss, backward, update) is one C++ call,
    network_step.h; elsewhere it is torch operations and autograd.
    """

    def __init__(self, configs: list[RunConfig], train_set: SequenceDataset, device: str):
        self.config = configs[0]
        nets = []
        for config in configs:
            torch.manual_seed(config.seed)  # the same initial weights as the run alone
            nets.append(initial_net(config, train_set))
        self.nets = FusedNets(nets).to(device)
        self.params = self.nets.cell_parameters()
        self.optimizer = FusedOptimizer(self.params, configs)
        ctc = self.config.target == "ctc"
        native = backend_name(self.params[0]) == "native" and (not ctc or native_ctc())
        self.native_steps = native_kernel().train_steps if native else None
        self.ctc_pointer = native_ctc().alignment_pointer() if native and ctc else None

    def steps(self, chunk: list[list[Batch]], active: list[int]) -> list[list[float]]:
        """Training steps, one per entry of `chunk` (the K runs' batches of a step, the same
        Batch object throughout where the runs share a data order): each run's mean batch
        loss per step. A step updates the active runs when update_allowed(its losses,
        active); the first step that does not ends the chunk."""
        if self.native_steps is None:
            losses = []
            for batches in chunk:
                losses.append(self._autograd_step(batches, active))
                if not update_allowed(losses[-1], active):
                    break
            return losses
        runs = len(chunk[0])
        arguments = [self._step_tensors(batches) for batches in chunk]
        losses = self.native_steps(
            *(list(column) for column in zip(*arguments, strict=True)),
            self.params,
            self.optimizer.buffers,
            self.optimizer.squares,
            self.optimizer.applied_rates().tolist(),
            self.optimizer.momenta.tolist(),
            self.optimizer.updates,
            [k in active for k in range(runs)],
            self.nets.spec_codes,
            len(self.nets.nets[0].layers),
            self.nets.bidirectional,
            OUTPUTS.index(self.config.output),  # network_step.h's OutputKind
            TARGET_MODES.index(self.config.target),  # and its TargetMode
            self.ctc_pointer,
        ).tolist()
        self.optimizer.updates += len(losses) - (not update_allowed(losses[-1], active))
        return losses

    @staticmethod
    def _step_tensors(batches: list[Batch]):
        """A step's (inputs (T, K or 1, B, F), lengths, targets, target lengths), runs stacked
        where they have their own batches."""
        if all(b is batches[0] for b in batches):  # one data order: one batch for all
            first = batches[0]
            return (
                first.inputs.unsqueeze(1),
                first.input_lengths,
                first.targets,
                first.target_lengths,
            )
        longest = max(b.targets.shape[1] for b in batches)
        targets = [
            torch.nn.functional.pad(b.targets, (0, longest - b.targets.shape[1])) for b in batches
        ]
        return (
            torch.stack([b.inputs for b in batches], dim=1),
            batches[0].input_lengths,
            torch.cat(targets),
            torch.cat([b.target_lengths for b in batches]),
        )

    def _autograd_step(self, batches: list[Batch], active: list[int]) -> list[float]:
        """One step in torch operations and autograd (off the CPU, or without the kernels)."""
        runs, batch = len(batches), len(batches[0].target_lengths)
        inputs, lengths, targets, target_lengths = self._step_tensors(batches)
        if targets.shape[0] != runs * batch:
            targets, target_lengths = targets.repeat(runs, 1), target_lengths.repeat(runs)
        logits = self.nets(inputs.expand(-1, runs, -1, -1), lengths)
        per_sample = sample_losses(
            logits.reshape(logits.shape[0], runs * batch, -1),
            self.config.output,
            self.config.target,
            targets,
            lengths.repeat(runs),
            target_lengths,
        )
        losses = per_sample.view(runs, batch).sum(dim=1) / batch
        values = losses.tolist()
        if update_allowed(values, active):
            losses[active].sum().backward()
            self.optimizer.step()
        return values

    def network(self, k: int) -> SequenceNet:
        return self.nets.extract(k)

    def halve_rate(self, k: int) -> None:
        self.optimizer.halve_rate(k)

    def set_schedule_factor(self, factor: float) -> None:
        self.optimizer.schedule_factor = factor

    def freeze(self, k: int) -> None:
        self.optimizer.freeze(k)
