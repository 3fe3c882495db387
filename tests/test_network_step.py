"""The C++ training step (network_step.h) against the same step in torch operations and
autograd, in float64: losses, updated weights and momentum buffers, for every cell spec, both
directions, both output layers, every target mode, variable-length batches, two layers, runs
with their own batches or one shared batch, and a run that has stopped; Adam's update and its
moments on a few of those; and one thread against two."""

import numpy as np
import pytest
import torch

from lstmbench.data.base import ArraySequenceSet, Batch
from lstmbench.model.kernels.native import native_ctc, native_kernel
from lstmbench.model.spec import GREFF_PRESETS, PAPER_PRESETS
from lstmbench.training.config import RunConfig
from lstmbench.training.fused import FusedRuns

FEATURES, CLASSES, STEPS = 5, 4, 7
pytestmark = pytest.mark.skipif(
    native_kernel() is None or native_ctc() is None, reason="the C++ kernels could not be built"
)


@pytest.fixture
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def make_runs(native: bool, **settings) -> FusedRuns:
    """Three runs of one shape with their own lr, momentum and seed."""
    data = np.zeros((1, STEPS, FEATURES), np.float32)
    shape_only = ArraySequenceSet(data, np.zeros(1, np.int64), CLASSES)  # sizes the networks
    base = dict(hidden=3, batch_size=3) | settings
    configs = [
        RunConfig(lr=0.3, momentum=0.9, seed=0, **base),
        RunConfig(lr=0.1, momentum=0.5, seed=1, **base),
        RunConfig(lr=0.5, momentum=0.0, seed=2, **base),
    ]
    runs = FusedRuns(configs, shape_only, "cpu")
    assert (runs.native_steps is not None) is True
    if not native:
        runs.native_steps = None  # the torch-operations step, the reference
    return runs


def random_batch(rng: np.random.Generator, lengths: list[int], ctc: bool) -> Batch:
    """A padded batch of random inputs (the padding random too: both paths must ignore it
    alike) with labels 1..C-1: one per sequence, or up to two under CTC."""
    inputs = torch.from_numpy(rng.normal(size=(STEPS, len(lengths), FEATURES)))
    label_count = [int(rng.integers(1, 3)) if ctc else 1 for _ in lengths]
    targets = torch.zeros(len(lengths), max(label_count), dtype=torch.long)
    for b, n in enumerate(label_count):
        targets[b, :n] = torch.from_numpy(rng.integers(1, CLASSES, size=n))
    return Batch(inputs, torch.tensor(lengths), targets, torch.tensor(label_count))


def train_three_steps(runs: FusedRuns, shared: bool, ctc: bool, lengths: list[int]):
    """Two steps in one call, then one more after run 1 has stopped (no gradient, no update;
    the others go on)."""
    rng = np.random.default_rng(7)
    chunk = []
    for _ in range(3):
        if shared:
            chunk.append([random_batch(rng, lengths, ctc)] * 3)
        else:
            chunk.append([random_batch(rng, lengths, ctc) for _ in range(3)])
    losses = runs.steps(chunk[:2], [0, 1, 2])
    runs.freeze(1)
    return losses + runs.steps(chunk[2:], [0, 2])


CASES = [
    # (cell, direction, output, target, layers, shared data order, batch lengths)
    *[(cell, "bidi", "softmax", "ctc", 1, False, [7, 5, 6]) for cell in PAPER_PRESETS],
    *[(cell, "uni", "logistic", "end", 1, True, [7, 7, 7]) for cell in PAPER_PRESETS],
    *[(cell, "bidi", "softmax", "center", 2, False, [7, 4, 6]) for cell in GREFF_PRESETS],
    ("LSTM", "bidi", "logistic", "ctc", 2, True, [6, 7, 3]),
    ("NPLSTM", "uni", "softmax", "end", 2, False, [7, 7, 7]),
    ("RELULSTM", "uni", "logistic", "center", 1, False, [5, 7, 2]),
    ("LINLSTM", "uni", "softmax", "ctc", 1, True, [7, 7, 7]),
]
# Adam's update on a few of the cases above.
ADAM_CASES = [CASES[0], CASES[len(PAPER_PRESETS)], CASES[-4]]


@pytest.mark.parametrize(
    ("cell", "direction", "output", "target", "layers", "shared", "lengths", "optimizer"),
    [(*case, "sgd") for case in CASES] + [(*case, "adam") for case in ADAM_CASES],
)
def test_native_step_equals_autograd(
    float64, cell, direction, output, target, layers, shared, lengths, optimizer
):
    settings = dict(
        cell=cell,
        direction=direction,
        output=output,
        target=target,
        layers=layers,
        optimizer=optimizer,
    )
    results = {}
    for native in (True, False):
        runs = make_runs(native, **settings)
        losses = train_three_steps(runs, shared, target == "ctc", lengths)
        results[native] = (losses, runs.params, runs.optimizer.buffers + runs.optimizer.squares)
    (fast_losses, fast_params, fast_buffers), (ref_losses, ref_params, ref_buffers) = (
        results[True],
        results[False],
    )
    np.testing.assert_allclose(fast_losses, ref_losses, rtol=1e-10)
    for mine, theirs in zip(fast_params + fast_buffers, ref_params + ref_buffers, strict=True):
        torch.testing.assert_close(mine.detach(), theirs.detach(), rtol=1e-9, atol=1e-11)


def test_the_stopped_run_keeps_its_weights(float64):
    runs = make_runs(True, cell="NPLSTM", direction="bidi", target="end")
    rng = np.random.default_rng(0)
    runs.steps([[random_batch(rng, [7, 7, 7], False)] * 3], [0, 1, 2])
    runs.freeze(1)
    before = [p.clone() for p in runs.params if p.numel()]  # no peepholes: empty placeholders
    runs.steps([[random_batch(rng, [7, 7, 7], False)] * 3], [0, 2])
    for param, old in zip([p for p in runs.params if p.numel()], before, strict=True):
        torch.testing.assert_close(param[1], old[1], rtol=0, atol=0)
        assert not torch.equal(param[0], old[0])


def test_a_non_finite_loss_updates_nothing(float64):
    runs = make_runs(True, cell="LSTM", direction="uni", target="ctc")
    with torch.no_grad():
        runs.params[-2][2, 0, 0] = float("nan")  # an output weight of run 2
    before = [p.clone() for p in runs.params]
    rng = np.random.default_rng(0)
    chunk = [[random_batch(rng, [7, 6, 5], True)] * 3 for _ in range(2)]
    (losses,) = runs.steps(chunk, [0, 1, 2])  # the chunk ends at the first step
    assert np.isnan(losses[2]) and np.isfinite(losses[:2]).all()
    for param, old in zip(runs.params, before, strict=True):
        torch.testing.assert_close(param, old, rtol=0, atol=0, equal_nan=True)


def test_two_threads_give_what_one_gives(float64):
    """With two threads the directions of a bidirectional layer run side by side
    (network_step.h's each_direction): the step computes what one thread computes."""
    results = []
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            runs = make_runs(True, cell="LSTM", direction="bidi", layers=2, target="ctc")
            losses = train_three_steps(runs, False, True, [7, 5, 6])
            results.append((losses, [p.detach().clone() for p in runs.params]))
    finally:
        torch.set_num_threads(before)
    (one_losses, one_params), (two_losses, two_params) = results
    np.testing.assert_allclose(two_losses, one_losses, rtol=1e-12)
    for mine, theirs in zip(two_params, one_params, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-12, atol=1e-14)


@pytest.mark.skipif(not torch.set_flush_denormal(False), reason="no flush-denormal mode here")
def test_the_second_directions_thread_flushes_denormals_as_the_caller_does():
    """Flushing denormals is a per-thread setting: the thread that runs the second direction
    takes the caller's, whether on or off."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        for flush in (True, False):
            torch.set_flush_denormal(flush)
            threads = native_kernel().direction_threads()
            assert [flushes for flushes, _ in threads] == [flush, flush]
            assert len({number for _, number in threads}) == 2  # two threads ran them
    finally:
        torch.set_num_threads(before)
        torch.set_flush_denormal(False)
