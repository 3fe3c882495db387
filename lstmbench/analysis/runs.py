"""Reading runs from the results store once, and saying which spec to run when data is absent."""

from __future__ import annotations

import math
from collections.abc import Iterable

from lstmbench.errors import UserError

FINISHED = ("done", "diverged")
# A run "learned" when its best error is well below chance (MNIST 90%, lines about 100%).
# Runs stuck at chance all score alike: they are no evidence for or against any claim.
LEARNED = 0.8
# Sweeps written by `lstmbench compare --cell NAME` are named compare-PROTOCOL-NAME.
COMPARE_PREFIX = "compare-"


class MissingData(UserError):
    """A figure or finding needs runs that the results database does not hold."""


class TooFewRuns(ValueError):
    """The runs given cannot support a figure or a test; the message says what is lacking."""


def run_hint(sweep: str) -> str:
    """The command that fills a sweep."""
    return f"lstmbench sweep run {sweep} --db DB"


def missing(sweep: str, what: str, detail: str = "") -> MissingData:
    """The error for `what` lacking data from `sweep`, naming the spec to run."""
    extra = f" ({detail})" if detail else ""
    return MissingData(
        f"{what} needs finished runs of the {sweep!r} sweep{extra}; run `{run_hint(sweep)}` "
        f"(spec lstmbench/sweep/specs/{sweep}.toml) first"
    )


def compare_sweep_name(protocol: str, cell: str) -> str:
    """The sweep name under which `compare` stores a user cell's runs of a protocol."""
    return f"{COMPARE_PREFIX}{protocol}-{cell}"


def parse_compare_sweep(name: str) -> tuple[str, str] | None:
    """(protocol, cell) of a `compare` sweep name; None for any other sweep."""
    if not name.startswith(COMPARE_PREFIX):
        return None
    protocol, _, cell = name.removeprefix(COMPARE_PREFIX).partition("-")
    return protocol, cell


def finished_by_sweep(runs: Iterable[dict], sweeps: Iterable[dict]) -> dict[str, list[dict]]:
    """The finished runs (done or diverged) of every sweep, each marked with its sweep's scale.

    `runs` and `sweeps` are what the store lists, read once by the caller."""
    scales = {entry["name"]: entry["scale"] for entry in sweeps}
    found: dict[str, list[dict]] = {name: [] for name in scales}
    for run in runs:
        if run["status"] in FINISHED:
            found.setdefault(run["sweep"], []).append(
                {**run, "scale": scales.get(run["sweep"], "?")}
            )
    return found


def compared_sweeps(by_sweep: dict[str, list[dict]], protocol: str) -> list[str]:
    """Names of the `compare` sweeps that followed a protocol (a paper spec)."""
    return [name for name in by_sweep if (parse_compare_sweep(name) or ("",))[0] == protocol]


def paper_runs(runs: Iterable[dict]) -> list[dict]:
    """The runs of the paper's own sweeps, without cells added by `compare`."""
    return [r for r in runs if parse_compare_sweep(r["sweep"]) is None]


def compared_cells(runs: Iterable[dict]) -> list[str]:
    """The user cells among the runs (from `compare` sweeps), in order of first appearance."""
    names = [parsed[1] for r in runs if (parsed := parse_compare_sweep(r["sweep"]))]
    return list(dict.fromkeys(names))


def has_error(run: dict) -> bool:
    """Whether a run measured a (finite) best error."""
    value = run.get("best_error")
    return value is not None and math.isfinite(value)


def converged(runs: Iterable[dict]) -> list[dict]:
    """The runs that finished without diverging and measured an error."""
    return [r for r in runs if r["status"] == "done" and has_error(r)]


def measured(runs: Iterable[dict]) -> list[dict]:
    """The runs with a measured best error, diverged or not."""
    return [r for r in runs if has_error(r)]


def learned(runs: Iterable[dict]) -> list[dict]:
    """The runs whose best error is well below chance."""
    return [r for r in measured(runs) if r["best_error"] < LEARNED]


def type_label(run: dict) -> str:
    """The paper's type label of a run: output layer and cell, e.g. 'softmax NPLSTM'."""
    return f"{run['output']} {run['cell']}"


def architecture_label(run: dict) -> str:
    """The paper's architecture label: LSTM1/BIDI and target mode, e.g. 'BIDI ctc'."""
    return f"{'BIDI' if run['direction'] == 'bidi' else 'LSTM1'} {run['target']}"
