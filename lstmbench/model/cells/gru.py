"""A GRU, registered exactly the way a user registers a cell of their own."""

import torch
from torch import nn

from lstmbench.model.cells.base import RecurrentCell, uniform_
from lstmbench.model.cells.registry import register_cell


class GRUCell(RecurrentCell):
    """Gated recurrent unit (Cho et al. 2014), in torch.nn.GRU's formulation."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.zeros(3 * hidden_size))
        self.bias_hh = nn.Parameter(torch.zeros(3 * hidden_size))
        uniform_(self.weight_ih, hidden_size)
        uniform_(self.weight_hh, hidden_size)

    def initial_state(self, batch, like):
        return (like.new_zeros(batch, self.hidden_size),)

    def step(self, x_t, state):
        (h,) = state
        xr, xz, xn = (x_t @ self.weight_ih.t() + self.bias_ih).chunk(3, dim=1)
        hr, hz, hn = (h @ self.weight_hh.t() + self.bias_hh).chunk(3, dim=1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        h = (1 - z) * n + z * h
        return h, (h,)


register_cell("GRU", GRUCell, "gated recurrent unit (not an LSTM)")
