"""Every cell: the fast path equals the step-by-step reference; gradients equal finite
differences in float64; the registry resolves and refuses names."""

import pytest
import torch

from lstmbench.errors import UserError
from lstmbench.model.cells import (
    GREFF_PRESETS,
    PAPER_PRESETS,
    CellSpec,
    RecurrentCell,
    SpecLSTMCell,
    cell_names,
    get_cell,
    make_cell,
    register_cell,
    run_steps,
)

ALL_CELLS = list(PAPER_PRESETS) + list(GREFF_PRESETS) + ["GRU"]


class ReferenceLoop(torch.nn.Module):
    """The step-by-step loop as a module, so functional_call can swap its parameters."""

    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def forward(self, x):
        return run_steps(self.cell, x)


def test_every_preset_and_gru_is_registered():
    assert set(ALL_CELLS) <= set(cell_names())


@pytest.mark.parametrize("name", ALL_CELLS)
def test_fast_sequence_equals_reference_loop(name):
    torch.manual_seed(0)
    cell = make_cell(name, 5, 7)
    x = torch.randn(9, 3, 5, requires_grad=True)
    fast = cell.sequence(x)
    reference = run_steps(cell, x)
    torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-6)
    weights = torch.randn_like(fast)
    grads_fast = torch.autograd.grad((fast * weights).sum(), [x, *cell.parameters()])
    grads_ref = torch.autograd.grad((reference * weights).sum(), [x, *cell.parameters()])
    for a, b in zip(grads_fast, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ALL_CELLS)
def test_reference_gradients_match_finite_differences(name):
    torch.manual_seed(1)
    cell = make_cell(name, 3, 4).double()
    with torch.no_grad():  # nonzero biases, so ReLU kinks are away from the test point
        for p in cell.parameters():
            p.add_(0.1 * torch.randn_like(p))
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    reference = ReferenceLoop(cell)
    names = [name for name, _ in reference.named_parameters()]

    def outputs(x, *values):
        params = dict(zip(names, values, strict=True))
        return torch.func.functional_call(reference, params, (x,), {}, strict=True)

    values = [p.detach().clone().requires_grad_() for p in cell.parameters()]
    assert torch.autograd.gradcheck(outputs, (x, *values), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "name, blocks, peepholes",
    [
        ("LSTM", ("i", "r", "u", "o"), ("i", "r", "o")),
        ("NPLSTM", ("i", "r", "u", "o"), ()),
        ("NIG", ("r", "u", "o"), ("r", "o")),
        ("NFG", ("i", "u", "o"), ("i", "o")),
        ("NOG", ("i", "r", "u"), ("i", "r")),
        ("CIFG", ("i", "u", "o"), ("i", "o")),
    ],
)
def test_gate_switches_shape_the_parameters(name, blocks, peepholes):
    spec = get_cell(name).spec
    assert spec.blocks == blocks and spec.peephole_gates == peepholes
    cell = make_cell(name, 3, 4)
    assert cell.weight_ih.shape == (4 * len(blocks), 3)
    if peepholes:
        assert cell.peephole.shape == (len(peepholes), 4)
    else:
        assert cell.peephole is None


def test_coupled_gate_forgets_what_it_writes():
    """CIFG: r = 1 - i, so with u = 0 and i = 1 the old cell state is wiped."""
    cell = make_cell("CIFG", 1, 1)
    with torch.no_grad():
        for p in (cell.weight_ih, cell.weight_hh, cell.peephole):
            p.zero_()
        cell.bias.copy_(torch.tensor([50.0, 0.0, 0.0]))  # i -> 1, u = tanh(0) = 0
    _, (_, c) = cell.step(torch.zeros(1, 1), (torch.zeros(1, 1), torch.ones(1, 1)))
    assert c.abs().item() < 1e-6


def test_nonlinearities_of_the_paper_types():
    assert PAPER_PRESETS["RELU2LSTM"] == CellSpec(g="relu", h="relu")
    assert PAPER_PRESETS["RELULSTM"] == CellSpec(g="relu", h="linear")
    assert PAPER_PRESETS["RELUTANHLSTM"] == CellSpec(g="relu", h="tanh")
    assert PAPER_PRESETS["LINLSTM"] == CellSpec(h="linear")
    assert not PAPER_PRESETS["NPLSTM"].peepholes


def test_unknown_cell_lists_the_valid_names():
    with pytest.raises(UserError, match="unknown cell 'NOPE'.*NPLSTM"):
        get_cell("NOPE")


def test_bad_spec_values_are_refused():
    with pytest.raises(UserError, match="nonlinearity"):
        CellSpec(g="sigmoidal")
    with pytest.raises(UserError, match="coupled"):
        CellSpec(coupled=True, forget_gate=False)


def test_user_cells_register_by_spec_or_by_class():
    register_cell("TESTRELUNP", CellSpec(g="relu", peepholes=False))
    assert isinstance(make_cell("testrelunp", 2, 3), SpecLSTMCell)

    class Elman(RecurrentCell):
        def __init__(self, input_size, hidden_size):
            super().__init__()
            self.input_size, self.hidden_size = input_size, hidden_size
            self.linear = torch.nn.Linear(input_size + hidden_size, hidden_size)

        def initial_state(self, batch, like):
            return (like.new_zeros(batch, self.hidden_size),)

        def step(self, x_t, state):
            h = torch.tanh(self.linear(torch.cat([x_t, state[0]], 1)))
            return h, (h,)

    register_cell("TESTELMAN", Elman)
    out = make_cell("TESTELMAN", 2, 3).sequence(torch.randn(4, 5, 2))
    assert out.shape == (4, 5, 3)


def test_gru_matches_torch_gru():
    torch.manual_seed(3)
    cell = make_cell("GRU", 4, 6)
    reference = torch.nn.GRU(4, 6)
    with torch.no_grad():
        reference.weight_ih_l0.copy_(cell.weight_ih)
        reference.weight_hh_l0.copy_(cell.weight_hh)
        reference.bias_ih_l0.copy_(cell.bias_ih)
        reference.bias_hh_l0.copy_(cell.bias_hh)
    x = torch.randn(7, 2, 4)
    torch.testing.assert_close(cell.sequence(x), reference(x)[0], rtol=1e-5, atol=1e-6)


def test_nplstm_matches_torch_lstm():
    """NPLSTM is the standard cell: with the same weights it computes what nn.LSTM does."""
    torch.manual_seed(4)
    cell = make_cell("NPLSTM", 4, 6)
    reference = torch.nn.LSTM(4, 6)
    # torch orders gate blocks (input, forget, cell, output): the same as (i, r, u, o).
    with torch.no_grad():
        reference.weight_ih_l0.copy_(cell.weight_ih)
        reference.weight_hh_l0.copy_(cell.weight_hh)
        reference.bias_ih_l0.copy_(cell.bias)
        reference.bias_hh_l0.zero_()
    x = torch.randn(7, 2, 4)
    torch.testing.assert_close(cell.sequence(x), reference(x)[0], rtol=1e-5, atol=1e-6)
