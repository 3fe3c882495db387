"""Reading runs from the results store once, and saying which spec to run when data is absent."""

from __future__ import annotations

import math
from collections.abc import Iterable

from lstmbench.errors import UserError

FINISHED = ("done", "diverged")
# What each finished run came to: every claim, count and figure reads outcome() below.
LEARNED, NOT_LEARNED, DIVERGED = "learned", "did not learn", "diverged"
OUTCOMES = (LEARNED, NOT_LEARNED, DIVERGED)
# The error of a network that learned nothing, by dataset (its name before any colon): ten
# digits guessed are wrong nine times in ten; a text line read as nothing has a character
# error rate of 100%. (The levels of SequenceDataset.chance_error, without loading the data.)
CHANCE_ERROR = {"mnist": 0.9}
OTHER_CHANCE_ERROR = 1.0
# A run learned when its best error came down to half its dataset's chance error or less.
# The best error is the lowest of many evaluations on few test samples (20 at tiny scale: a
# standard deviation of 7 points at 90% error), so a run at chance can score well below
# chance by luck; a bar just under chance counted such runs as learned.
LEARNED_FRACTION = 0.5
# The training loop stops a run whose error sits at chance with status "diverged" and a
# reason that says so: that run did not learn, its loss did not blow up.
AT_CHANCE_REASON = "at chance"
# Sweeps written by `lstmbench compare --cell NAME` are named compare-PROTOCOL-NAME.
COMPARE_PREFIX = "compare-"
# A budget's learning-rate pilot of a spec is the sweep pilot-SPEC.
PILOT_PREFIX = "pilot-"


class MissingData(UserError):
    """A figure or finding needs runs that the results database does not hold."""


class TooFewRuns(ValueError):
    """The runs given cannot support a figure or a test; the message says what is lacking."""


def run_hint(sweep: str) -> str:
    """The command that fills a sweep."""
    return f"lstmbench sweep run {sweep} --db DB"


def missing(sweep: str, what: str, detail: str = "", none_because: str = "") -> MissingData:
    """The error for `what` lacking data from `sweep`, naming the spec to run; or, where why
    no runs were made is known (`none_because`: a budget deferred the experiment), saying
    that instead, since running the spec by hand is then not the way on."""
    if none_because:
        return MissingData(f"{what} has no runs of the {sweep!r} sweep: {none_because}")
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


def pilot_sweep_name(spec: str) -> str:
    """The sweep under which a budget stores the learning-rate pilot of a spec."""
    return PILOT_PREFIX + spec


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


def not_diverged(runs: Iterable[dict]) -> list[dict]:
    """The runs whose best error means something (see outcome): they learned, or measured an
    error and did not learn (runs stopped at chance among them), but did not blow up."""
    return [r for r in runs if outcome(r) != DIVERGED]


def diverged(runs: Iterable[dict]) -> list[dict]:
    """The runs that diverged (see outcome)."""
    return [r for r in runs if outcome(r) == DIVERGED]


def measured(runs: Iterable[dict]) -> list[dict]:
    """The runs with a measured best error, diverged or not."""
    return [r for r in runs if has_error(r)]


def chance_error(run: dict) -> float:
    """The error of a network that has learned nothing, on the run's dataset."""
    return CHANCE_ERROR.get(run["dataset"].partition(":")[0], OTHER_CHANCE_ERROR)


def outcome(run: dict) -> str:
    """LEARNED, NOT_LEARNED or DIVERGED: the one rule for every claim and count.

    A run learned when its best error reached LEARNED_FRACTION of chance, whatever came
    after: the paper's measure is the best error seen. Otherwise it diverged when its loss
    blew up (also before its first evaluation, with no error measured), else it did not learn.
    """
    if has_error(run) and run["best_error"] <= LEARNED_FRACTION * chance_error(run):
        return LEARNED
    stopped_at_chance = AT_CHANCE_REASON in (run.get("reason") or "")
    if not has_error(run) or (run["status"] == "diverged" and not stopped_at_chance):
        return DIVERGED
    return NOT_LEARNED


def learned(runs: Iterable[dict]) -> list[dict]:
    """The runs that learned (see outcome)."""
    return [r for r in runs if outcome(r) == LEARNED]


def outcome_counts(runs: Iterable[dict]) -> dict[str, int]:
    """How many runs came to each outcome, in the order of OUTCOMES."""
    found = [outcome(r) for r in runs]
    return {name: found.count(name) for name in OUTCOMES}


def outcome_text(runs: list[dict]) -> str:
    """The outcomes in words, e.g. '3 of 12 learned, 8 did not learn, 1 diverged'."""
    counts = outcome_counts(runs)
    return (
        f"{counts[LEARNED]} of {len(runs)} learned, {counts[NOT_LEARNED]} did not learn, "
        f"{counts[DIVERGED]} diverged"
    )


def type_label(run: dict) -> str:
    """The paper's type label of a run: output layer and cell, e.g. 'softmax NPLSTM'."""
    return f"{run['output']} {run['cell']}"


def architecture_label(run: dict) -> str:
    """The paper's architecture label: LSTM1/BIDI and target mode, e.g. 'BIDI ctc'."""
    return f"{'BIDI' if run['direction'] == 'bidi' else 'LSTM1'} {run['target']}"
