"""Networks: unidirectional (LSTM1) or bidirectional (BIDI) recurrent layers, stacked,
under a softmax or logistic output layer."""

from __future__ import annotations

import torch
from torch import nn

from lstmbench.errors import UserError
from lstmbench.model.cells import make_cell, run_steps

DIRECTIONS = ("uni", "bidi")
OUTPUTS = ("softmax", "logistic")
IMPLEMENTATIONS = ("fast", "reference")


def check_choice(kind: str, value: str, valid) -> None:
    """Refuse a value outside `valid`, naming the valid ones."""
    if value not in valid:
        raise UserError(f"unknown {kind} {value!r}; valid {kind}s: {', '.join(valid)}")


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of a padded (T, B, F) batch within its own length.

    Padding stays where it is, so a reversed pass reads every sequence from its true end.
    Applying it twice gives back the input.
    """
    steps = x.shape[0]
    t = torch.arange(steps, device=x.device).unsqueeze(1)
    lengths = lengths.to(x.device).unsqueeze(0)
    index = torch.where(t < lengths, lengths - 1 - t, t)
    return x.gather(0, index.unsqueeze(2).expand_as(x))


class RecurrentLayer(nn.Module):
    """One recurrent layer, forward only or forward plus a time-reversed twin."""

    def __init__(self, cell: str, input_size: int, hidden: int, bidirectional: bool, impl: str):
        super().__init__()
        self.forward_cell = make_cell(cell, input_size, hidden)
        self.backward_cell = make_cell(cell, input_size, hidden) if bidirectional else None
        self.impl = impl
        self.output_size = hidden * (2 if bidirectional else 1)

    def _run(self, cell, x):
        return run_steps(cell, x) if self.impl == "reference" else cell.sequence(x)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        y = self._run(self.forward_cell, x)
        if self.backward_cell is None:
            return y
        y_rev = reverse_padded(self._run(self.backward_cell, reverse_padded(x, lengths)), lengths)
        return torch.cat([y, y_rev], dim=2)


class SequenceNet(nn.Module):
    """Recurrent layers followed by a per-frame linear output layer (logits)."""

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden: int,
        n_classes: int,
        direction: str = "uni",
        layers: int = 1,
        output: str = "softmax",
        impl: str = "fast",
    ):
        super().__init__()
        check_choice("direction", direction, DIRECTIONS)
        check_choice("output layer", output, OUTPUTS)
        check_choice("implementation", impl, IMPLEMENTATIONS)
        if layers < 1:
            raise UserError(f"layers must be at least 1, got {layers}")
        self.output = output
        self.input_size = input_size
        self.layers = nn.ModuleList()
        size = input_size
        for _ in range(layers):
            layer = RecurrentLayer(cell, size, hidden, direction == "bidi", impl)
            self.layers.append(layer)
            size = layer.output_size
        self.classifier = nn.Linear(size, n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (T, B, classes) for a padded input batch (T, B, features)."""
        if lengths is None:
            lengths = torch.full((x.shape[1],), x.shape[0], dtype=torch.long)
        for layer in self.layers:
            x = layer(x, lengths)
        return self.classifier(x)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Per-frame class scores in [0, 1]: softmax, or independent sigmoids."""
        if self.output == "softmax":
            return torch.softmax(logits, dim=-1)
        return torch.sigmoid(logits)
