"""Reading a sweep's runs from the results store, and saying which spec to run when absent."""

from __future__ import annotations

import math
from collections.abc import Iterable

from lstmbench.errors import UserError

# The paper's experiments, one spec (and sweep) each, with the figures they feed.
PAPER_SPECS = {
    "lr_hidden": "Figs. 2-3: learning rate x hidden size, LSTM on MNIST",
    "batch_momentum": "Figs. 4-5: batch size and momentum, LSTM on MNIST",
    "cell_types_mnist": "Figs. 7-8: six LSTM types x two output layers on MNIST",
    "cell_types_lines": "Figs. 9-10: LINLSTM, LSTM, NPLSTM x two output layers on text lines",
    "bidi_ctc_mnist": "Figs. 13-14: LSTM1/BIDI x center/end/ctc targets on MNIST",
    "bidi_lines": "Fig. 15: LSTM1 vs BIDI on text lines",
    "long_lines": "Fig. 16: long LSTM1 training on text lines",
}
FINISHED = ("done", "diverged")
# A run "learned" when its best error is well below chance (MNIST 90%, lines about 100%).
# Claims of no difference are tested on such runs only: runs stuck at chance all score alike
# and would make any two groups look equivalent.
LEARNED = 0.8
# Sweeps written by `lstmbench compare --cell NAME` are named compare-PROTOCOL-NAME.
COMPARE_PREFIX = "compare-"


class MissingData(UserError):
    """A figure or finding needs runs that the results database does not hold."""


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


def sweep_runs(store, sweep: str, what: str, minimum: int = 1) -> list[dict]:
    """The finished runs (done or diverged) of a sweep, or MissingData naming the spec."""
    runs = [r for r in store.runs(sweep) if r["status"] in FINISHED]
    if len(runs) < minimum:
        raise missing(sweep, what, f"found {len(runs)} finished, need {minimum}")
    return runs


def compare_sweeps(store, protocol: str) -> list[str]:
    """Names of the `compare` sweeps that followed a protocol (a paper spec)."""
    prefix = f"{COMPARE_PREFIX}{protocol}-"
    return [s["name"] for s in store.sweeps() if s["name"].startswith(prefix)]


def with_compared(store, sweep: str, what: str, minimum: int = 1) -> list[dict]:
    """A sweep's finished runs plus those of user cells compared on the same protocol."""
    runs = sweep_runs(store, sweep, what, minimum)
    for name in compare_sweeps(store, sweep):
        runs += [r for r in store.runs(name) if r["status"] in FINISHED]
    return runs


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


def sweep_scale(store, sweep: str) -> str:
    """The scale a sweep was run at ("?" when unknown)."""
    for entry in store.sweeps():
        if entry["name"] == sweep:
            return entry["scale"]
    return "?"
