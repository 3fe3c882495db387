"""The parametrized LSTM cell of the paper's Figure 6, and its named presets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from lstmbench.errors import UserError

NONLINEARITIES = ("tanh", "relu", "linear")


@dataclass(frozen=True)
class CellSpec:
    """Which nonlinearities, peepholes and gates an LSTM cell has.

    g is the cell-input nonlinearity, h the output nonlinearity; the gate function f is
    always the logistic sigmoid. Gate switches follow Greff et al.: a missing gate is the
    constant 1, and `coupled` ties the forget gate to the input gate (r = 1 - i).
    """

    g: str = "tanh"
    h: str = "tanh"
    peepholes: bool = True
    input_gate: bool = True
    forget_gate: bool = True
    output_gate: bool = True
    coupled: bool = False

    def __post_init__(self):
        for field in ("g", "h"):
            value = getattr(self, field)
            if value not in NONLINEARITIES:
                raise UserError(
                    f"cell nonlinearity {field}={value!r} is not one of {', '.join(NONLINEARITIES)}"
                )
        if self.coupled and not (self.input_gate and self.forget_gate):
            raise UserError(
                "a coupled (CIFG) cell needs both its input and forget gate switched on"
            )

    @property
    def blocks(self) -> tuple[str, ...]:
        """The pre-activation blocks the cell computes, in weight-matrix order."""
        names = []
        if self.input_gate:
            names.append("i")
        if self.forget_gate and not self.coupled:
            names.append("r")
        names.append("u")
        if self.output_gate:
            names.append("o")
        return tuple(names)

    @property
    def peephole_gates(self) -> tuple[str, ...]:
        """The gates that see the cell state through a diagonal peephole weight."""
        if not self.peepholes:
            return ()
        return tuple(b for b in self.blocks if b != "u")

    def replace(self, **changes) -> CellSpec:
        """A copy with some switches changed."""
        return dataclasses.replace(self, **changes)


def activation(name: str):
    """The elementwise function for a nonlinearity name."""
    if name == "tanh":
        return torch.tanh
    if name == "relu":
        return torch.relu
    return _identity


def _identity(x):
    return x


LSTM = CellSpec()
# The paper's six types (Fig. 6). Whether its LIN/RELU types had peepholes is not stated; they
# carry them here like LSTM, and the switch makes the no-peephole versions one option away.
PAPER_PRESETS: dict[str, CellSpec] = {
    "LSTM": LSTM,
    "NPLSTM": LSTM.replace(peepholes=False),
    "LINLSTM": LSTM.replace(h="linear"),
    "RELU2LSTM": LSTM.replace(g="relu", h="relu"),
    "RELULSTM": LSTM.replace(g="relu", h="linear"),
    "RELUTANHLSTM": LSTM.replace(g="relu", h="tanh"),
}
# Greff et al., "LSTM: A Search Space Odyssey": each changes one thing of the peephole LSTM.
GREFF_PRESETS: dict[str, CellSpec] = {
    "NIG": LSTM.replace(input_gate=False),
    "NFG": LSTM.replace(forget_gate=False),
    "NOG": LSTM.replace(output_gate=False),
    "CIFG": LSTM.replace(coupled=True),
    "NIAF": LSTM.replace(g="linear"),
    "NOAF": LSTM.replace(h="linear"),
    "NP": LSTM.replace(peepholes=False),
}
