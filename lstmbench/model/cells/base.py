"""The interface every recurrent cell implements, and the plain time loop."""

from __future__ import annotations

import torch
from torch import nn


class RecurrentCell(nn.Module):
    """One recurrent cell: a state, and a step from (input, state) to (output, state).

    Subclasses implement `initial_state` and `step`. `sequence` runs the cell over a whole
    sequence; cells with a faster way to do that override it, and the reference loop in
    `run_steps` stays the ground truth it is tested against.
    """

    input_size: int
    hidden_size: int

    def initial_state(self, batch: int, like: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The zero state for a batch, on the device and dtype of `like`."""
        raise NotImplementedError

    def step(self, x_t: torch.Tensor, state: tuple[torch.Tensor, ...]):
        """One time step: x_t is (batch, input_size); returns (y_t, new_state)."""
        raise NotImplementedError

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs for a whole sequence x of shape (time, batch, input_size)."""
        return run_steps(self, x)


def run_steps(cell: RecurrentCell, x: torch.Tensor) -> torch.Tensor:
    """The plain step-by-step loop over time: (T, B, I) -> (T, B, H)."""
    state = cell.initial_state(x.shape[1], x)
    outputs = []
    for t in range(x.shape[0]):
        y, state = cell.step(x[t], state)
        outputs.append(y)
    return torch.stack(outputs)


def uniform_(tensor: torch.Tensor, hidden_size: int) -> None:
    """The usual recurrent initialization: uniform in +-1/sqrt(hidden)."""
    bound = 1.0 / hidden_size**0.5
    with torch.no_grad():
        tensor.uniform_(-bound, bound)
