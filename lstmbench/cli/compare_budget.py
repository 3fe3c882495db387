"""`lstmbench compare --cell MYCELL --budget DURATION`: the user's cell beside NPLSTM, LSTM
and GRU on a cell-type protocol, planned, piloted and run in rounds by the budget driver of
`reproduce --budget` (cli/budget.py), then reported on its own findings.

The spec is sweep/comparison.py's, the verdicts analysis/comparison.py's; this module joins
them into one Work for the driver and times the cells against each other once, when the
plan is made.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from lstmbench.analysis.comparison import comparison_findings, comparison_scope, speed_text
from lstmbench.analysis.report import Scope
from lstmbench.cli.budget import Work, data_path_of, report_sections, run_budget
from lstmbench.errors import UserError
from lstmbench.sweep.comparison import (
    SPEED_REFERENCE,
    comparison_spec,
    references,
    time_cells,
)

SPEED_SECTION = "Speed"


def comparison_work(spec, cell: str, protocol: str) -> Work:
    """The comparison as the budget driver's work: one spec, one finding per reference."""
    others = references(cell)

    def timed(plan, options) -> None:
        data = data_path_of(spec, options)
        print(f"timing {', '.join([cell, *others])} at one hidden size", flush=True)
        try:
            plan.experiment(spec.name).cell_seconds = time_cells(spec, options.threads, data)
        except (UserError, RuntimeError) as error:  # the comparison still runs without it
            plan.notes.append(f"cells not timed: {error}")

    return Work(
        specs={spec.name: spec},
        claims={spec.name: len(others)},
        findings=lambda store: comparison_findings(
            store.runs(spec.name), spec.name, cell, others, protocol
        ),
        resume="--budget, --cell and --protocol",
        plan_timed=timed,
        refined=frozenset({spec.name}),  # each cell is compared at its best rate
    )


def budget_spec(protocol: str, cell: str):
    """The comparison's spec (a cell name no sweep name can carry is refused here)."""
    from lstmbench.sweep.spec import load_spec

    return comparison_spec(load_spec(protocol), cell)


def compare_budget(
    args: argparse.Namespace, store, spec, cell: str
) -> tuple[list[str], Callable, Scope]:
    """Run the comparison `spec` (budget_spec) into `store` to fit the budget; returns the
    problems met, the report's sections (plan, pilot, runs needed, speed) and its scope."""
    problems, plan = run_budget(comparison_work(spec, cell, args.protocol), args, store)
    speed = speed_text(cell, plan.experiment(spec.name).cell_seconds, SPEED_REFERENCE)
    print(speed.splitlines()[0], flush=True)

    def sections(findings) -> list[tuple[str, str]]:
        return [*report_sections(plan, findings), (SPEED_SECTION, speed)]

    return problems, sections, comparison_scope(spec.name, cell, references(cell), args.protocol)
