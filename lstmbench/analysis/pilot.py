"""The learning-rate band a pilot finds: where runs of a group learned within the run length.

The pilot tries rates evenly spaced on a log scale across the paper's range (sweep/budget.py).
A rate learned when its run did (runs.outcome: best error at most half of chance). The band
runs from half a step below the lowest rate that learned to half a step above the highest,
inside the paper's range: the edge of learning lies somewhere between a rate that learned and
its neighbour that did not, and half a step either way is the even guess. Rates between two
that learned are kept even if their own run did not learn: one run's failure there is luck,
not a second edge. A group in which no rate learned keeps the paper's whole range, so its
main runs still show the claim how it fares.
"""

from __future__ import annotations

import math

from lstmbench.analysis.runs import LEARNED, outcome

NEVER_LEARNED = "never learned in this budget"


def choose_band(
    pilot: list[dict], paper_range: tuple[float, float]
) -> tuple[tuple[float, float], list[dict], str]:
    """(band, what each pilot rate came to, why) from a group's finished pilot runs.

    Each pilot run is a run dict (as the store lists it) with its lr; the tried rates are
    returned as {"lr", "outcome", "best_error"} in order of lr."""
    tried = sorted(
        ({"lr": r["lr"], "outcome": outcome(r), "best_error": r.get("best_error")} for r in pilot),
        key=lambda t: t["lr"],
    )
    low, high = paper_range
    good = [t["lr"] for t in tried if t["outcome"] == LEARNED]
    if not good:
        return (low, high), tried, f"{NEVER_LEARNED}: no pilot rate learned; the paper's range kept"
    lrs = [t["lr"] for t in tried]
    step = math.sqrt(lrs[1] / lrs[0]) if len(lrs) > 1 else 1.0  # half a step, as a ratio
    band = (max(low, min(good) / step), min(high, max(good) * step))
    cut = []
    if band[0] > low * (1 + 1e-9):
        cut.append(f"below {band[0]:.2g} no rate learned")
    if band[1] < high * (1 - 1e-9):
        cut.append(f"above {band[1]:.2g} no rate learned")
    why = "; ".join(cut) if cut else "every part of the paper's range learned"
    return band, tried, f"{len(good)} of {len(tried)} rates learned; {why}"
