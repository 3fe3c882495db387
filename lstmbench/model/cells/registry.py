"""Cell names -> cell constructors; the one place every cell name is resolved."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass

from lstmbench.errors import UserError, unknown_name
from lstmbench.model.cells.base import RecurrentCell
from lstmbench.model.cells.lstm import SpecLSTMCell
from lstmbench.model.spec import GREFF_PRESETS, PAPER_PRESETS, CellSpec

CellFactory = Callable[[int, int], RecurrentCell]


@dataclass(frozen=True)
class CellEntry:
    """A registered cell: its name, how to build it, and its spec when it is an LSTM."""

    name: str
    factory: CellFactory
    description: str
    spec: CellSpec | None = None


_CELLS: dict[str, CellEntry] = {}


def register_cell(name: str, cell: CellFactory | CellSpec, description: str = "") -> None:
    """Make `name` usable wherever a cell name is accepted.

    `cell` is either a CellSpec (an LSTM variant) or a callable (input_size, hidden_size)
    returning a RecurrentCell.
    """
    key = name.upper()
    if isinstance(cell, CellSpec):
        spec = cell

        def factory(input_size, hidden_size):
            return SpecLSTMCell(spec, input_size, hidden_size)

        _CELLS[key] = CellEntry(key, factory, description or str(spec), spec)
    elif callable(cell):
        _CELLS[key] = CellEntry(key, cell, description or getattr(cell, "__doc__", "") or "")
    else:
        raise TypeError(f"register_cell({name!r}): expected a CellSpec or a callable")


def get_cell(name: str) -> CellEntry:
    """The registered entry for a cell name (case-insensitive)."""
    try:
        return _CELLS[name.upper()]
    except KeyError:
        raise unknown_name("cell", name, _CELLS) from None


def make_cell(name: str, input_size: int, hidden_size: int) -> RecurrentCell:
    """Build a fresh cell by name."""
    return get_cell(name).factory(input_size, hidden_size)


def cell_names() -> list[str]:
    """All registered cell names, in registration order."""
    return list(_CELLS)


def load_plugins(modules: list[str] | None = None) -> None:
    """Import the modules that register user cells (and those in $LSTMBENCH_PLUGINS)."""
    names = list(modules or [])
    names += [m for m in os.environ.get("LSTMBENCH_PLUGINS", "").split(",") if m.strip()]
    for module in names:
        try:
            importlib.import_module(module.strip())
        except ImportError as error:
            raise UserError(
                f"cannot import cell plugin module {module!r} ({error}); "
                "put it on PYTHONPATH or install it"
            ) from None


for _name, _spec in PAPER_PRESETS.items():
    register_cell(_name, _spec, f"paper type: g={_spec.g} h={_spec.h} peepholes={_spec.peepholes}")
for _name, _spec in GREFF_PRESETS.items():
    register_cell(_name, _spec, "Greff et al. variant of the peephole LSTM")
