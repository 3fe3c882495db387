"""The Triton recurrence equals the torch-operations kernel (`generic`, itself checked against
the step-by-step reference in test_fast_path.py) for every preset: outputs, saved tensors and
every gradient, K = 1 and 3 runs, batch 1 and 2, both forms of the recurrent product, weights
held in registers or read at every step; K runs in one launch equal the runs one by one; the
hand-written backward equals finite differences in float64.

Without a CUDA device the kernels run in Triton's interpreter (TRITON_INTERPRET=1, set here
before triton is imported) on CPU tensors, at tiny sizes since the interpreter executes every
program in Python. With one (and TRITON_INTERPRET unset) they are compiled and run on CUDA
tensors. Skipped when triton is not installed: it is an optional dependency.
"""

import os

import pytest
import torch

from lstmbench.model.kernels import Layout, _SpecLSTMSequence, generic
from lstmbench.model.spec import GREFF_PRESETS, PAPER_PRESETS, CellSpec

PRESETS = {**PAPER_PRESETS, **GREFF_PRESETS}
# float32: the two kernels add the same terms in different orders, and tanh is formed from
# the sigmoid here; observed differences are below 1e-6 at these sizes.
RTOL, ATOL = 1e-5, 1e-6


def _import_triton_recurrence():
    """The module under test, interpreted on the CPU unless a GPU is there to compile for."""
    # Triton reads the variable when kernels are decorated and again, lazily, when they run:
    # it is set for the rest of the test session (nothing else there uses Triton).
    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")
    interpret = os.environ.get("TRITON_INTERPRET") == "1"
    pytest.importorskip(
        "triton", reason="triton is not installed; the Triton recurrence is optional"
    )
    from lstmbench.model.kernels import triton_recurrence

    return triton_recurrence, "cpu" if interpret else "cuda"


triton_recurrence, DEVICE = _import_triton_recurrence()
TritonKernel = triton_recurrence.TritonKernel


def parameters(spec: CellSpec, runs: int, inputs: int, hidden: int, dtype=torch.float32):
    """K runs' stacked weights (w_ih, w_hh, bias, peep or None), nonzero everywhere so that
    every term of the cell matters, each a leaf that wants its gradient."""
    blocks, rows = len(spec.blocks), len(spec.peephole_gates)
    shapes = [(runs, blocks * hidden, inputs), (runs, blocks * hidden, hidden)]
    shapes += [(runs, blocks * hidden)] + ([(runs, rows, hidden)] if rows else [])
    made = [(0.5 * torch.randn(s, dtype=dtype)).to(DEVICE).requires_grad_() for s in shapes]
    return made if rows else [*made, None]


def sequence(kernel, spec: CellSpec, x, w_ih, w_hh, bias, peep):
    return _SpecLSTMSequence.apply(x, w_ih, w_hh, bias, peep, Layout.of(spec), kernel)


def leaves(x, weights):
    return [x, *(w for w in weights if w is not None)]


def assert_matches_generic(spec, kernel, runs, batch, steps=5, inputs=3, hidden=6):
    x = torch.randn(steps, runs, batch, inputs, device=DEVICE, requires_grad=True)
    weights = parameters(spec, runs, inputs, hidden)
    layout = Layout.of(spec)
    with torch.no_grad():
        saved = kernel.forward(x, *weights, layout)
        expected = generic.forward(x, *weights, layout)
    for name, a, b in zip(("y", "c", "activations"), saved, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=RTOL, atol=ATOL, msg=lambda m, n=name: f"{n}: {m}")
    y = sequence(kernel, spec, x, *weights)
    reference = sequence(generic, spec, x, *weights)
    torch.testing.assert_close(y, reference, rtol=RTOL, atol=ATOL)
    probe = torch.randn_like(y)
    inputs_ = leaves(x, weights)
    got = torch.autograd.grad((y * probe).sum(), inputs_)
    want = torch.autograd.grad((reference * probe).sum(), inputs_)
    names = ["x", "w_ih", "w_hh", "bias", "peep"]
    for name, a, b in zip(names, got, want, strict=False):
        torch.testing.assert_close(a, b, rtol=RTOL, atol=ATOL, msg=lambda m, n=name: f"d{n}: {m}")


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("runs", [1, 3])
@pytest.mark.parametrize("name", PRESETS)
def test_outputs_and_gradients_equal_generic(name, runs, batch):
    torch.manual_seed(runs * 10 + batch)
    assert_matches_generic(PRESETS[name], TritonKernel(), runs, batch)


# The other code paths, on the presets that between them switch every gate and nonlinearity:
# several programs per run (batch 3 in blocks of 2: masked rows, peephole sums added up),
# tl.dot (16 rows per program), weights read inside the loop instead of held.
PATHS = {
    "blocks of 2 rows": TritonKernel(block_b=2),
    "dot, 16 rows": TritonKernel(block_b=16),
    "weights read per step": TritonKernel(hoist_limit=0),
    "dot, weights read per step": TritonKernel(block_b=16, hoist_limit=0),
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", ["LSTM", "CIFG", "NIG", "NFG", "NOG", "RELULSTM", "NIAF"])
def test_every_kernel_path_equals_generic(name, path):
    torch.manual_seed(4)
    assert_matches_generic(PRESETS[name], PATHS[path], runs=2, batch=3, hidden=5)


@pytest.mark.parametrize("name", ["LSTM", "NPLSTM", "CIFG", "RELU2LSTM"])
def test_runs_in_one_launch_equal_runs_one_by_one(name):
    """K runs with their own weights and inputs through one launch: each gets exactly what it
    gets through the same kernel alone, outputs and gradients."""
    torch.manual_seed(8)
    spec, runs = PRESETS[name], 3
    x = torch.randn(5, runs, 2, 3, device=DEVICE, requires_grad=True)
    weights = parameters(spec, runs, 3, 6)
    together = sequence(TritonKernel(), spec, x, *weights)
    alone = torch.cat(
        [
            sequence(
                TritonKernel(),
                spec,
                x[:, k : k + 1],
                *(w[k : k + 1] if w is not None else None for w in weights),
            )
            for k in range(runs)
        ],
        dim=1,
    )
    torch.testing.assert_close(together, alone, rtol=1e-6, atol=1e-7)
    probe = torch.randn_like(together)
    inputs_ = leaves(x, weights)
    for a, b in zip(
        torch.autograd.grad((together * probe).sum(), inputs_),
        torch.autograd.grad((alone * probe).sum(), inputs_),
        strict=True,
    ):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["LSTM", "CIFG", "NOG", "RELU2LSTM", "NIG", "NFG"])
def test_hand_written_backward_matches_finite_differences(name):
    torch.manual_seed(3)
    spec = PRESETS[name]
    x = torch.randn(4, 2, 2, 3, dtype=torch.float64, device=DEVICE, requires_grad=True)
    weights = parameters(spec, 2, 3, 4, dtype=torch.float64)

    def outputs(x, w_ih, w_hh, bias, peep):
        return sequence(TritonKernel(), spec, x, w_ih, w_hh, bias, peep)

    # fast_mode compares random directional derivatives (a few evaluations per input instead
    # of one per element, which takes a minute per spec in the interpreter).
    assert torch.autograd.gradcheck(outputs, (x, *weights), eps=1e-6, atol=1e-7, fast_mode=True)


def test_other_dtypes_are_refused():
    spec = PRESETS["LSTM"]
    weights = [w.detach().half() for w in parameters(spec, 1, 3, 4)]
    x = torch.randn(2, 1, 1, 3, device=DEVICE).half()
    with pytest.raises(TypeError, match="float32 or float64"):
        TritonKernel().forward(x, *weights, Layout.of(spec))


def test_layer_function_has_the_fused_signature():
    """triton_lstm_sequence takes what fused_lstm_sequence takes (a spec, not a layout)."""
    torch.manual_seed(1)
    spec = PRESETS["NPLSTM"]
    x = torch.randn(3, 2, 1, 3, device=DEVICE)
    weights = parameters(spec, 2, 3, 4)
    torch.testing.assert_close(
        triton_recurrence.triton_lstm_sequence(x, *weights, spec),
        sequence(generic, spec, x, *weights),
        rtol=RTOL,
        atol=ATOL,
    )
