"""A user's cell against reference cells (`compare --cell X --budget`): for each reference,
better, worse or equivalent, by how much and with what confidence.

Each reference is one finding of rule COMPARE, tested as the paper's claims are
(findings.compare_error: every finished run, failures ranked worst; a two-sided Mann-Whitney
test whose direction is the sign of Cliff's delta, the Hodges-Lehmann error ratio, and
equivalence within x1.25 by TOST), each reference's two p-values corrected together by
Holm (one family per question asked, as each paper claim is one). The findings' sweep is
the comparison's own, so the budget driver reads their verdicts to stop rounds once every
comparison is decided.
"""

from __future__ import annotations

from lstmbench.analysis.findings import (
    ALIKE,
    ALPHA,
    BETTER,
    COMPARE,
    EQUIVALENCE,
    WORSE,
    Check,
    Finding,
    Test,
    compare_error,
    evaluate_findings,
)
from lstmbench.analysis.report import Scope
from lstmbench.analysis.runs import FINISHED, LEARNED_FRACTION


def against(runs: list[dict], cell: str, reference: str) -> list[Test]:
    """The cell's runs against the reference's, by best error: "lower" makes a difference
    test's direction (Test.toward) read "the cell has the lower error"."""
    mine = [r for r in runs if r["cell"] == cell]
    theirs = [r for r in runs if r["cell"] == reference]
    return compare_error(mine, theirs, cell, reference, "lower")


def comparison_checks(cell: str, references: list[str], protocol: str) -> list[Check]:
    """One check per reference cell."""
    return [
        Check(
            f"versus_{reference}",
            f"{cell} against {reference} ({protocol} protocol, softmax output): better, "
            f"worse or equivalent within x{10**EQUIVALENCE:.2f}",
            COMPARE,
            lambda runs, r=reference: against(runs, cell, r),
        )
        for reference in references
    ]


def comparison_findings(
    all_runs: list[dict], sweep: str, cell: str, references: list[str], protocol: str
) -> list[Finding]:
    """The comparison's findings from the store's runs (those of other sweeps ignored)."""
    runs = [r for r in all_runs if r["sweep"] == sweep and r["status"] in FINISHED]
    checks = comparison_checks(cell, references, protocol)
    findings = evaluate_findings((check, sweep, runs) for check in checks)
    if not runs:  # evaluate_findings names a paper spec to run; this sweep is the budget's
        for finding in findings:
            finding.note = finding.evidence = (
                f"no finished runs in {sweep} yet: see the budget plan for what it planned"
            )
    return findings


def method_text(cell: str) -> str:
    """How the comparison is tested and decided, in words."""
    return (
        f"{cell} against each reference cell, every finished run counted: a run learned when "
        f"its best error came to at most {LEARNED_FRACTION:.0%} of chance; runs that did not "
        "learn or diverged rank below every error. Difference: Mann-Whitney U on log10 best "
        "error, two-sided, its direction from the same statistic (Cliff's delta); the size "
        "as the Hodges-Lehmann error ratio (the median ratio over all pairs of runs; below 1: "
        f"{cell} lower). Equivalence: within x{10**EQUIVALENCE:.2f} on the error ratio either "
        "way (two one-sided shifted Mann-Whitney tests, TOST). The two p-values of each "
        "reference cell's comparison are corrected together by Holm-Bonferroni at "
        f"{ALPHA:g}. Verdicts: {BETTER} or "
        f"{WORSE} (a significant difference, {cell} lower or higher), {ALIKE} (significant "
        "equivalence, no significant difference), inconclusive (neither yet; the runs "
        "needed are below), no data (fewer than 3 finished runs in a group)."
    )


def comparison_scope(sweep: str, cell: str, references: list[str], protocol: str) -> Scope:
    """What the comparison's report is about: these findings, not the paper's claims."""
    return Scope(
        title=f"lstmbench: {cell} against {', '.join(references)} ({protocol}, softmax)",
        method=method_text(cell),
        column="comparison",
        findings=lambda runs: comparison_findings(runs, sweep, cell, references, protocol),
    )


def speed_text(cell: str, seconds: dict[str, float], reference: str) -> str:
    """Each cell's seconds per training sample and its ratio to the reference's."""
    if reference not in seconds or cell not in seconds:
        return "not timed (the plan was made before cells were timed, or timing failed)"
    base = seconds[reference]
    lines = [
        f"speed ratio {cell} / {reference}: {seconds[cell] / base:.2f} (time per training "
        f"sample; above 1: {cell} slower)",
        "seconds per training sample, one run alone, every cell at the same hidden size, "
        "timed one after another in this plan's calibration:",
    ]
    lines += [
        f"  {name}: {value * 1e3:.3g} ms ({value / base:.2f}x {reference})"
        for name, value in seconds.items()
    ]
    return "\n".join(lines)
