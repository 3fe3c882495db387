"""The fused recurrence (C++ on the CPU, torch operations elsewhere) equals the step-by-step
reference for every CellSpec: outputs and all gradients, both directions, several batch sizes
and lengths, padded batches; its hand-written backward equals finite differences."""

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from lstmbench.model import kernels
from lstmbench.model.cells import (
    GREFF_PRESETS,
    PAPER_PRESETS,
    CellSpec,
    SpecLSTMCell,
    get_cell,
    make_cell,
    register_cell,
    run_steps,
)
from lstmbench.model.kernels import generic, native
from lstmbench.model.nets import SequenceNet
from lstmbench.training.config import RunConfig

# A user's own spec, with a combination no preset has.
register_cell("TESTCIFGRELU", CellSpec(g="relu", h="linear", peepholes=False, coupled=True))
SPEC_CELLS = [*PAPER_PRESETS, *GREFF_PRESETS, "TESTCIFGRELU"]
BACKENDS = ["native", "generic"]
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def run_kernel(cell: SpecLSTMCell, x: torch.Tensor, backend: str) -> torch.Tensor:
    """The fused sequence through one chosen backend."""
    if backend == "native":
        assert kernels.backend_name(x) == "native", "the C++ kernel did not build here"
        return cell.sequence(x)
    return through(generic, x.unsqueeze(1), [cell]).squeeze(1)


def through(kernel, x: torch.Tensor, cells: list[SpecLSTMCell]) -> torch.Tensor:
    """K cells' weights stacked, x (T, K, B, I) through one fused call of `kernel`."""
    stacked = [
        torch.stack([getattr(cell, name) for cell in cells])
        for name in ("weight_ih", "weight_hh", "bias")
    ]
    peep = cells[0].peephole
    peep = torch.stack([cell.peephole for cell in cells]) if peep is not None else None
    layout = kernels.Layout.of(cells[0].spec)
    return kernels._SpecLSTMSequence.apply(x, *stacked, peep, layout, kernel)


def perturbed(cell: torch.nn.Module, scale: float = 0.3) -> torch.nn.Module:
    """Nonzero biases and peepholes, so every term of the cell matters."""
    with torch.no_grad():
        for p in cell.parameters():
            p.add_(scale * torch.randn_like(p))
    return cell


def assert_same_grads(out_a, out_b, inputs, rtol=1e-5, atol=1e-6):
    weights = torch.randn_like(out_a)
    grads_a = torch.autograd.grad((out_a * weights).sum(), inputs)
    grads_b = torch.autograd.grad((out_b * weights).sum(), inputs)
    for a, b in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", SPEC_CELLS)
@pytest.mark.parametrize("steps, batch", [(1, 1), (6, 1), (11, 3), (7, 9)])
def test_fused_sequence_equals_reference(name, backend, steps, batch):
    torch.manual_seed(steps * 100 + batch)
    cell = perturbed(make_cell(name, 5, 6))
    x = torch.randn(steps, batch, 5, requires_grad=True)
    fused = run_kernel(cell, x, backend)
    reference = run_steps(cell, x)
    torch.testing.assert_close(fused, reference, rtol=1e-5, atol=1e-6)
    assert_same_grads(fused, reference, [x, *cell.parameters()])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", [*PAPER_PRESETS, "CIFG", "NOG"])
@pytest.mark.parametrize("steps, batch", [(6, 1), (7, 9)])
def test_fused_runs_equal_each_run_alone(name, backend, steps, batch):
    """K runs with their own weights and inputs through one call: each gets exactly what it
    gets from the step-by-step reference alone, outputs and gradients."""
    torch.manual_seed(steps + batch)
    cells = [perturbed(make_cell(name, 5, 6)) for _ in range(3)]
    x = torch.randn(steps, len(cells), batch, 5, requires_grad=True)
    kernel = kernels._Native if backend == "native" else generic
    fused = through(kernel, x, cells)
    alone = torch.stack([run_steps(cell, x[:, k]) for k, cell in enumerate(cells)], dim=1)
    torch.testing.assert_close(fused, alone, rtol=1e-5, atol=1e-6)
    parameters = [p for cell in cells for p in cell.parameters()]
    assert_same_grads(fused, alone, [x, *parameters])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["LSTM", "NPLSTM", "NIG", "NOG", "CIFG"])
def test_saturated_gates_stay_finite_and_equal_reference(name, backend):
    """Huge pre-activations (as after a few large updates on long text lines) saturate the
    gates; the fused path must give what the reference gives, not NaN."""
    torch.manual_seed(5)
    cell = make_cell(name, 8, 6)
    with torch.no_grad():
        for p in cell.parameters():
            p.mul_(60)
    x = torch.randn(40, 3, 8, requires_grad=True)
    fused, reference = run_kernel(cell, x, backend), run_steps(cell, x)
    assert torch.isfinite(fused).all()
    scale = reference.abs().max().item()
    torch.testing.assert_close(fused, reference, rtol=1e-3, atol=1e-3 * scale)
    weights = torch.randn_like(fused)
    for a, b in zip(
        torch.autograd.grad((fused * weights).sum(), [x, *cell.parameters()]),
        torch.autograd.grad((reference * weights).sum(), [x, *cell.parameters()]),
        strict=True,
    ):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3 * b.abs().max().item())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["LSTM", "NOG", "CIFG", "RELU2LSTM", "NIG", "NFG"])
def test_hand_written_backward_matches_finite_differences(name, backend):
    torch.manual_seed(3)
    cell = perturbed(make_cell(name, 3, 4).double(), scale=0.5)
    layout = kernels.Layout.of(cell.spec)
    kernel = generic if backend == "generic" else kernels._Native
    if backend == "native":
        assert kernels.backend_name(torch.zeros(1, dtype=torch.float64)) == "native"

    def outputs(x, w_ih, w_hh, bias, peep):
        return kernels._SpecLSTMSequence.apply(x, w_ih, w_hh, bias, peep, layout, kernel)

    # two runs with their own weights, so the runs dimension is checked too
    second = perturbed(make_cell(name, 3, 4).double(), scale=0.5)
    x = torch.randn(5, 2, 2, 3, dtype=torch.float64, requires_grad=True)
    stacked = [
        torch.stack([getattr(c, n).detach() for c in (cell, second)]).requires_grad_()
        for n in ("weight_ih", "weight_hh", "bias")
    ]
    peep = (
        torch.stack([cell.peephole.detach(), second.peephole.detach()]).requires_grad_()
        if cell.peephole is not None
        else None
    )
    assert torch.autograd.gradcheck(outputs, (x, *stacked, peep), eps=1e-6, atol=1e-7)


def twin_nets(cell: str, direction: str, hidden: int = 6) -> tuple[SequenceNet, SequenceNet]:
    """A fast and a reference network with the same weights."""
    fast = perturbed(SequenceNet(cell, 4, hidden, 5, direction=direction, impl="fast"))
    reference = SequenceNet(cell, 4, hidden, 5, direction=direction, impl="reference")
    reference.load_state_dict(fast.state_dict())
    return fast, reference


@pytest.mark.parametrize("direction", ["uni", "bidi"])
@pytest.mark.parametrize("name", [*PAPER_PRESETS, "CIFG", "NOG", "TESTCIFGRELU"])
def test_padded_batch_through_network_equals_reference(name, direction):
    torch.manual_seed(7)
    fast, reference = twin_nets(name, direction)
    lengths = torch.tensor([9, 4, 1, 7, 9])
    x = torch.randn(9, 5, 4)
    valid = (torch.arange(9).unsqueeze(1) < lengths).unsqueeze(2)
    x = torch.where(valid, x, torch.zeros(()))  # zero padding, as batches are padded
    logits_fast = fast(x, lengths)
    logits_reference = reference(x, lengths)
    torch.testing.assert_close(logits_fast * valid, logits_reference * valid, rtol=1e-5, atol=1e-6)
    weights = torch.randn_like(logits_fast) * valid  # padding contributes nothing to a loss
    grads_fast = torch.autograd.grad((logits_fast * weights).sum(), list(fast.parameters()))
    grads_ref = torch.autograd.grad(
        (logits_reference * weights).sum(), list(reference.parameters())
    )
    for a, b in zip(grads_fast, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["LSTM", "NPLSTM"])
def test_larger_sizes_equal_reference(name):
    # Batches above the kernel's small-batch threshold use library products for the recurrence.
    torch.manual_seed(11)
    cell = perturbed(make_cell(name, 28, 100), scale=0.05)
    x = torch.rand(28, 32, 28, requires_grad=True)
    fused = cell.sequence(x)
    reference = run_steps(cell, x)
    torch.testing.assert_close(fused, reference, rtol=1e-5, atol=1e-5)
    assert_same_grads(fused, reference, [x, *cell.parameters()], atol=1e-5)


def graph_names(tensor: torch.Tensor) -> set[str]:
    """Names of every autograd node behind a tensor."""
    names, stack, seen = set(), [tensor.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        stack += [next_node for next_node, _ in node.next_functions]
    return names


def test_training_uses_fused_path_by_default_and_reference_on_request():
    assert RunConfig().impl == "fast"
    x = torch.randn(4, 2, 3)
    fast = SequenceNet("LSTM", 3, 5, 4, direction="bidi")
    reference = SequenceNet("LSTM", 3, 5, 4, direction="bidi", impl="reference")
    assert "_SpecLSTMSequenceBackward" in graph_names(fast(x))
    assert "_SpecLSTMSequenceBackward" not in graph_names(reference(x))


def test_evaluation_without_gradients_gives_the_same_outputs():
    torch.manual_seed(5)
    cell = perturbed(make_cell("LINLSTM", 3, 4))
    x = torch.randn(6, 2, 3)
    with torch.no_grad():
        torch.testing.assert_close(cell.sequence(x), run_steps(cell, x), rtol=1e-5, atol=1e-6)


def test_failed_build_falls_back_with_one_warning(monkeypatch):
    import torch.utils.cpp_extension as cpp_extension

    def broken_load(**_):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(cpp_extension, "load", broken_load)
    native.native_module.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="could not be built"):
            assert native.native_kernel() is None
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the second use is silent
            x = torch.randn(3, 2, 4)
            assert kernels.backend_name(x) == "generic"
            cell = make_cell("LSTM", 4, 3)
            torch.testing.assert_close(cell.sequence(x), run_steps(cell, x))
    finally:
        native.native_module.cache_clear()


def test_a_lock_left_by_a_killed_build_does_not_block_the_next_one(tmp_path):
    # A build killed midway leaves torch's lock file; the next process must not wait forever.
    # It runs on a private copy of the build folder, where no other process can be building.
    name = native.build_name("spec_lstm")
    assert native.native_kernel() is not None
    folder = tmp_path / "lstmbench" / name
    shutil.copytree(native.build_directory(name), folder, ignore=shutil.ignore_patterns("*lock"))
    (folder / "lock").touch()
    script = (
        "import warnings\n"
        "from lstmbench.model.kernels.native import native_kernel\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    assert native_kernel() is not None\n"
        "print(any('stale build lock' in str(w.message) for w in caught))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    assert done.stdout.strip() == "True"
    assert not (folder / "lock").exists()


def test_the_same_source_elsewhere_reuses_the_build(tmp_path):
    # Another checkout, or the copy of the package Ray ships to a cluster's workers, holds
    # the same source at another path: it must load the build, not spend minutes redoing it.
    name = native.build_name("spec_lstm")
    assert native.native_kernel() is not None
    built = native.build_directory(name) / f"{name}.so"
    stamp = built.stat().st_mtime_ns
    package = Path(native.__file__).resolve().parents[2]
    shutil.copytree(package, tmp_path / "lstmbench", ignore=shutil.ignore_patterns("__pycache__"))
    script = (
        "from lstmbench.model.kernels import native\n"
        "assert native.native_kernel() is not None\n"
        "print(native.__file__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    assert done.stdout.strip().startswith(str(tmp_path))
    assert built.stat().st_mtime_ns == stamp


def test_another_torch_installation_builds_under_another_name(monkeypatch):
    # torch's build file names the torch it compiled against: environments sharing a cache
    # under one name would rebuild each time they alternate.
    name = native.build_name("spec_lstm")
    monkeypatch.setattr(torch, "__file__", "/another/environment/torch/__init__.py")
    assert native.build_name("spec_lstm") != name
    monkeypatch.undo()
    assert native.build_name("spec_lstm") == name


def test_other_dtypes_take_the_generic_path():
    x = torch.randn(3, 2, 4, dtype=torch.bfloat16)
    assert kernels.backend_name(x) == "generic"
    assert kernels.backend_name(x.float()) == "native"


def test_registry_cells_carry_their_spec_into_the_kernel():
    spec = get_cell("TESTCIFGRELU").spec
    layout = kernels.Layout.of(spec)
    assert (layout.i, layout.r, layout.u, layout.o, layout.coupled) == (0, None, 1, 2, True)
    assert (layout.peep_i, layout.peep_r, layout.peep_o) == (None, None, None)


@CUDA
@pytest.mark.parametrize("direction", ["uni", "bidi"])
@pytest.mark.parametrize("name", [*PAPER_PRESETS, *GREFF_PRESETS])
def test_cuda_fused_path_equals_reference(name, direction):
    torch.manual_seed(13)
    fast, reference = (net.cuda() for net in twin_nets(name, direction, hidden=32))
    lengths = torch.tensor([12, 5, 9])
    x = torch.randn(12, 3, 4, device="cuda")
    valid = (torch.arange(12, device="cuda").unsqueeze(1) < lengths.cuda()).unsqueeze(2)
    x = torch.where(valid, x, torch.zeros((), device="cuda"))
    logits_fast, logits_reference = fast(x, lengths), reference(x, lengths)
    torch.testing.assert_close(logits_fast * valid, logits_reference * valid, rtol=1e-5, atol=1e-5)
    weights = torch.randn_like(logits_fast) * valid
    grads_fast = torch.autograd.grad((logits_fast * weights).sum(), list(fast.parameters()))
    grads_ref = torch.autograd.grad(
        (logits_reference * weights).sum(), list(reference.parameters())
    )
    for a, b in zip(grads_fast, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


class _Broken:
    """A kernel that cannot run here, as a Triton kernel that does not compile would not."""

    calls = 0

    @classmethod
    def forward(cls, *args):
        cls.calls += 1
        raise RuntimeError("no such device function")

    backward = forward


def test_an_optional_kernel_that_fails_gives_way_to_the_generic_one_with_one_warning():
    guarded = kernels.UntilItFails(lambda: _Broken, generic, "Broken")
    spec = get_cell("LSTM").spec
    layout = kernels.Layout.of(spec)
    torch.manual_seed(0)
    runs, hidden, inputs = 2, 3, 4
    x = torch.randn(5, runs, 1, inputs, dtype=torch.float64)
    w_ih = torch.randn(runs, layout.blocks * hidden, inputs, dtype=torch.float64)
    w_hh = torch.randn(runs, layout.blocks * hidden, hidden, dtype=torch.float64)
    bias = torch.randn(runs, layout.blocks * hidden, dtype=torch.float64)
    peep = torch.randn(runs, len(spec.peephole_gates), hidden, dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="Broken recurrence failed here .*no such device"):
        y, c, acts = guarded.forward(x, w_ih, w_hh, bias, peep, layout)
    expected = generic.forward(x, w_ih, w_hh, bias, peep, layout)
    for got, want in zip((y, c, acts), expected, strict=True):
        assert torch.equal(got, want)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once failed, never tried again nor warned again
        guarded.backward(torch.ones_like(y), x, w_ih, w_hh, peep, y, c, acts, layout, True)
    assert _Broken.calls == 1 and isinstance(guarded.failure, RuntimeError)


def test_cuda_tensors_take_triton_unless_told_not_to(monkeypatch):
    monkeypatch.setattr(kernels, "_triton_installed", lambda: True)
    assert kernels.triton_wanted()
    monkeypatch.setenv(kernels.GPU_KERNEL_VARIABLE, "generic")
    assert not kernels.triton_wanted()
    assert kernels.backend_name(torch.zeros(1)) == "native"  # the CPU is not affected
