"""The learning-rate band a pilot finds: where runs of a group learned within the run length.

The pilot tries rates evenly spaced on a log scale across the paper's range (sweep/budget.py).
A rate learned when its run did (runs.outcome: best error at most half of chance).

The wide band (choose_band) runs from half a step below the lowest rate that learned to half a
step above the highest, inside the paper's range: the edge of learning lies somewhere between
a rate that learned and its neighbour that did not, and half a step either way is the even
guess. Rates between two that learned are kept even if their own run did not learn: one
run's failure there is luck, not a second edge. Experiments whose claims are about how the
error changes with the rate (smoothness, the best rate per momentum, when runs turn) keep it.

Experiments whose claims compare groups, each at its best (cell types, architectures, a
user's cell), refine it: the pilot's steps are coarse (a step is more than a decade across
the paper's range), so a second stage tries the two rates half a step either side of the
group's best (refine_lrs), and the main runs draw from a quarter step either side of the best
of all the rates tried (refined_band). Main runs that miss the band where their group learns
dilute every comparison; runs near each group's best compare the groups as the paper's
best-of-many runs do.

A group in which no rate learned keeps the paper's whole range, so its main runs still show
the claim how it fares.
"""

from __future__ import annotations

import math

from lstmbench.analysis.runs import LEARNED, outcome

NEVER_LEARNED = "never learned in this budget"


def tried_rates(pilot: list[dict]) -> list[dict]:
    """What each pilot rate came to, as {"lr", "outcome", "best_error"} in order of lr, from
    finished pilot runs (run dicts as the store lists them)."""
    return sorted(
        ({"lr": r["lr"], "outcome": outcome(r), "best_error": r.get("best_error")} for r in pilot),
        key=lambda t: t["lr"],
    )


def half_step(lrs: list[float]) -> float:
    """Half the pilot's first stage step, as a ratio (its rates are evenly spaced in log)."""
    return math.sqrt(lrs[1] / lrs[0]) if len(lrs) > 1 else 1.0


def choose_band(
    pilot: list[dict], paper_range: tuple[float, float]
) -> tuple[tuple[float, float], list[dict], str]:
    """The wide band: (band, what each pilot rate came to, why) from a group's finished
    pilot runs."""
    tried = tried_rates(pilot)
    low, high = paper_range
    good = [t["lr"] for t in tried if t["outcome"] == LEARNED]
    if not good:
        return (low, high), tried, f"{NEVER_LEARNED}: no pilot rate learned; the paper's range kept"
    step = half_step([t["lr"] for t in tried])
    band = (max(low, min(good) / step), min(high, max(good) * step))
    why = _cut(band, paper_range, "no rate learned")
    return band, tried, f"{len(good)} of {len(tried)} rates learned; {why}"


def best_rate(tried: list[dict]) -> float | None:
    """The rate whose run learned to the lowest error (None if none learned)."""
    good = [t for t in tried if t["outcome"] == LEARNED]
    return min(good, key=lambda t: t["best_error"])["lr"] if good else None


def refine_lrs(first_stage: list[dict], paper_range: tuple[float, float]) -> list[float]:
    """The second stage's rates: half a first-stage step either side of the group's best
    rate, inside the paper's range; none where no rate learned."""
    tried = tried_rates(first_stage)
    best = best_rate(tried)
    if best is None:
        return []
    step = half_step([t["lr"] for t in tried])
    low, high = paper_range
    return [lr for lr in (best / step, best * step) if low * (1 - 1e-9) <= lr <= high * (1 + 1e-9)]


def refined_band(
    pilot: list[dict], first_stage_lrs: list[float], paper_range: tuple[float, float]
) -> tuple[tuple[float, float], list[dict], str]:
    """The refined band from both stages' finished runs: a quarter of a first-stage step
    either side of the best rate tried, inside the paper's range; the wide band where no
    rate learned."""
    tried = tried_rates(pilot)
    best = best_rate(tried)
    if best is None:
        return choose_band(pilot, paper_range)
    quarter = math.sqrt(half_step(sorted(first_stage_lrs)))
    low, high = paper_range
    band = (max(low, best / quarter), min(high, best * quarter))
    good = sum(t["outcome"] == LEARNED for t in tried)
    why = (
        f"{good} of {len(tried)} rates learned; around the best, {best:.2g}, refined by a "
        f"second stage; {_cut(band, paper_range, 'further than a quarter step from the best')}"
    )
    return band, tried, why


def _cut(band: tuple[float, float], paper_range: tuple[float, float], reason: str) -> str:
    """Where a band is narrower than the paper's range, and why, in words."""
    low, high = paper_range
    cut = []
    if band[0] > low * (1 + 1e-9):
        cut.append(f"below {band[0]:.2g} {reason}")
    if band[1] < high * (1 - 1e-9):
        cut.append(f"above {band[1]:.2g} {reason}")
    return "; ".join(cut) if cut else "every part of the paper's range learned"
