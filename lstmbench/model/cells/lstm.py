"""The LSTM cell built from a CellSpec (paper Fig. 6 and Greff et al.'s variants)."""

from __future__ import annotations

import torch
from torch import nn

from lstmbench.model.cells.base import RecurrentCell, uniform_
from lstmbench.model.kernels import spec_lstm_sequence
from lstmbench.model.spec import CellSpec, activation


class SpecLSTMCell(RecurrentCell):
    """An LSTM cell whose nonlinearities, peepholes and gates come from a CellSpec.

    Parameters: weight_ih (B*H, I) and weight_hh (B*H, H) stacked over the spec's blocks
    (i, r, u, o, those present), one bias per block, and one diagonal peephole vector per
    gate that has one (`peephole` is None in cells without them).
    """

    def __init__(self, spec: CellSpec, input_size: int, hidden_size: int):
        super().__init__()
        self.spec = spec
        self.input_size = input_size
        self.hidden_size = hidden_size
        n = len(spec.blocks)
        self.weight_ih = nn.Parameter(torch.empty(n * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(n * hidden_size, hidden_size))
        self.bias = nn.Parameter(torch.zeros(n * hidden_size))
        for weight in (self.weight_ih, self.weight_hh):
            uniform_(weight, hidden_size)
        if spec.peephole_gates:
            self.peephole = nn.Parameter(torch.empty(len(spec.peephole_gates), hidden_size))
            uniform_(self.peephole, hidden_size)
        else:
            self.register_parameter("peephole", None)
        self._g = activation(spec.g)
        self._h = activation(spec.h)

    def initial_state(self, batch, like):
        zeros = like.new_zeros(batch, self.hidden_size)
        return zeros, zeros

    def step(self, x_t, state):
        y, c = state
        z = x_t @ self.weight_ih.t() + y @ self.weight_hh.t() + self.bias
        return self.gates(z, c)

    def gates(self, z: torch.Tensor, c: torch.Tensor):
        """Apply the gate arithmetic to the pre-activations z (batch, B*H) and state c."""
        spec = self.spec
        blocks = dict(zip(spec.blocks, z.split(self.hidden_size, dim=1), strict=True))
        peep = (
            dict(zip(spec.peephole_gates, self.peephole, strict=True))
            if self.peephole is not None
            else {}
        )

        def gate(name, cell_state):
            pre = blocks[name]
            if name in peep:
                pre = pre + peep[name] * cell_state
            return torch.sigmoid(pre)

        i = gate("i", c) if spec.input_gate else 1.0
        if spec.coupled:
            r = 1.0 - i
        else:
            r = gate("r", c) if spec.forget_gate else 1.0
        c_new = r * c + i * self._g(blocks["u"])
        o = gate("o", c_new) if spec.output_gate else 1.0
        y_new = o * self._h(c_new)
        return y_new, (y_new, c_new)

    def sequence(self, x):
        # The fused kernels serve every spec; run_steps stays the reference.
        return spec_lstm_sequence(self, x)

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, spec={self.spec}"
