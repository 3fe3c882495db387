"""Recurrent cells: the LSTM specification, its presets, and the registry."""

from lstmbench.model.cells import gru  # noqa: F401  (registers GRU the way a user cell is registered)
from lstmbench.model.cells.base import RecurrentCell, run_steps
from lstmbench.model.cells.lstm import SpecLSTMCell
from lstmbench.model.cells.registry import (
    CellEntry,
    cell_names,
    get_cell,
    load_plugins,
    make_cell,
    register_cell,
)
from lstmbench.model.spec import GREFF_PRESETS, PAPER_PRESETS, CellSpec

__all__ = [
    "CellEntry",
    "CellSpec",
    "GREFF_PRESETS",
    "PAPER_PRESETS",
    "RecurrentCell",
    "SpecLSTMCell",
    "cell_names",
    "get_cell",
    "load_plugins",
    "make_cell",
    "register_cell",
    "run_steps",
]
