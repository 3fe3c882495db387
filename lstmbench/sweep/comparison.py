"""The experiment of `lstmbench compare --cell MYCELL --budget DURATION`: a user's cell beside
reference cells on one of the paper's cell-type protocols, and how fast each cell trains.

The spec is the protocol's, with its cell types replaced by the user's cell and the
references, and one output layer: softmax, since logistic outputs rarely learn in the run
lengths a budget affords (a 15-minute reproduction saw 1 of 60 logistic runs learn on MNIST),
and a comparison in which nothing learns decides nothing. Everything else is the protocol's
budget settings (sweep/budget.py base_scale), so the budget driver plans it like any paper
experiment: one learning-rate group per cell.
"""

from __future__ import annotations

import copy
import dataclasses
import math

from lstmbench.sweep.budget import BUDGET_SCALE, EVAL_SAMPLES, base_scale
from lstmbench.sweep.spec import GRID, SCALES, Scale, Spec, parse_spec

# NPLSTM first: the speed ratio is taken against it, and it is the paper's plain LSTM.
REFERENCE_CELLS = ("NPLSTM", "LSTM", "GRU")
OUTPUT = "softmax"
SPEED_REFERENCE = "NPLSTM"
# Training steps each cell is timed for: at batch 1 a step takes about a millisecond, so a
# few hundred keep the ratio clear of timer noise at a second or two per cell.
SPEED_STEPS = 200


def comparison_cells(cell: str) -> list[str]:
    """The user's cell, then the references it is not itself."""
    return list(dict.fromkeys((cell, *REFERENCE_CELLS)))


def references(cell: str) -> list[str]:
    """The reference cells the user's cell is compared with."""
    return comparison_cells(cell)[1:]


def comparison_name(protocol: str, cell: str) -> str:
    """The sweep (and spec) name of a budgeted comparison. Not compare-PROTOCOL-CELL: that
    name marks the runs of a fixed-scale comparison, which the paper's findings read beside
    the protocol's own sweep."""
    return f"versus-{cell}-{protocol}"


def comparison_spec(protocol: Spec, cell: str) -> Spec:
    """The protocol's spec with its cells replaced by the comparison's, softmax output."""
    source = copy.deepcopy(protocol.source)
    source["name"] = comparison_name(protocol.name, cell)
    source["description"] = (
        f"{cell} against {', '.join(references(cell))} on the {protocol.name} protocol "
        f"({OUTPUT} output)"
    )
    sweep = source.setdefault("sweep", {})
    sweep["cell"] = {GRID: comparison_cells(cell)}
    sweep.pop("output", None)
    fixed = source.setdefault("fixed", {})
    fixed.pop("cell", None)
    fixed["output"] = OUTPUT
    for scale in SCALES:
        table = source.get("scales", {}).get(scale, {})
        for setting in ("cell", "output"):
            table.get("sweep", {}).pop(setting, None)
            table.get("fixed", {}).pop(setting, None)
    return parse_spec(source, f"compare --cell {cell} --budget")


def speed_spec(spec: Spec) -> Spec:
    """One run per cell at the budget settings, every drawn whole-number setting (the hidden
    size) at the geometric middle of its range: each cell timed at the same size, so their
    ratio is the cells' own."""
    scale = base_scale(spec)
    fixed = {**scale.fixed, "samples": 1000, "eval_every": 1000, "eval_samples": EVAL_SAMPLES}
    for setting, dimension in scale.sweep.items():
        if dimension.kind == GRID and setting != "cell":
            fixed[setting] = dimension.values[0]
        elif dimension.kind in ("int_uniform", "log_int_uniform"):
            low, high = dimension.values[0], dimension.values[-1]
            fixed[setting] = int(round(math.sqrt(low * high)))
    cells = scale.sweep["cell"]
    return dataclasses.replace(
        spec, scales={BUDGET_SCALE: Scale(len(cells.values), fixed, {"cell": cells})}
    )


def time_cells(spec: Spec, threads: int, data_path: str | None) -> dict[str, float]:
    """Seconds per training sample of one run alone, per cell (estimate.py's timing, one
    group per cell), all at one hidden size and in the same process."""
    from lstmbench.sweep.estimate import EstimateOptions, estimate_spec

    options = EstimateOptions(
        scale=BUDGET_SCALE,
        pack=1,
        workers=1,
        threads=threads,
        steps=SPEED_STEPS,
        repeats=2,
        data_path=data_path,
    )
    estimate = estimate_spec(speed_spec(spec), options)
    return {group.timed.cell: float(group.alone) for group in estimate.groups}
