"""The report: one self-contained HTML page (figures embedded) and a Markdown summary."""

from __future__ import annotations

import base64
import datetime
import html
import math
import platform
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from lstmbench import __version__
from lstmbench.analysis.findings import ALPHA, EQUIVALENCE, SLOPE_MARGIN, Finding
from lstmbench.analysis.importance import importance
from lstmbench.analysis.paper import (
    EXPERIMENTS,
    Experiment,
    PaperFigure,
    evaluate,
    our_numbers,
    read_experiments,
)
from lstmbench.analysis.plotting import Figure
from lstmbench.analysis.runs import (
    CHANCE_ERROR,
    DIVERGED,
    FINISHED,
    LEARNED,
    LEARNED_FRACTION,
    OTHER_CHANCE_ERROR,
    MissingData,
    TooFewRuns,
    finished_by_sweep,
    missing,
    outcome_counts,
)

# The settings the paper's groups differ in; the outcome table splits a sweep by those that vary.
GROUP_FIELDS = ("output", "cell", "direction", "target")


@dataclass(frozen=True)
class Scope:
    """A report about findings other than the paper's claims (`compare --budget`): its
    title, its method in words, the heading of its findings' first column, and the function
    that gives the findings from the store's runs (as store.runs() lists them). The paper's
    figures, numbers and list of experiments are about claims it did not test: left out."""

    title: str
    method: str
    column: str
    findings: Callable[[list[dict]], list[Finding]]


PAPER_TITLE = "lstmbench: Benchmarking of LSTM Networks, reproduced"


@dataclass
class Report:
    """Where the report went and what it holds."""

    html: Path
    markdown: Path
    figures: list[Figure]
    missing: dict[str, str]  # figure key -> what to run
    findings: list[Finding]


def draw_figure(
    figure: PaperFigure,
    experiment: Experiment,
    runs: list[dict],
    out_dir: Path,
    none_because: str = "",
) -> Figure:
    """One figure from its experiment's runs, or MissingData naming the spec to run (or why
    none ran: `none_because`)."""
    if not runs:
        raise missing(experiment.spec, figure.name, "found 0 finished", none_because)
    try:
        return figure.draw(runs, out_dir)
    except TooFewRuns as error:
        raise missing(experiment.spec, figure.name, str(error)) from None


def draw_figures(
    data: dict[str, list[dict]], out_dir: Path, unrun: Mapping[str, str] | None = None
) -> tuple[list[Figure], dict[str, str]]:
    """Every figure the data (spec -> runs) allows; for the rest, which spec to run, or why
    none of its runs were made (`unrun`: spec -> why)."""
    drawn, absent = [], {}
    unrun = unrun or {}
    for experiment in EXPERIMENTS:  # in the paper's order
        for figure in experiment.figures:
            runs, why = data[experiment.spec], unrun.get(experiment.spec, "")
            try:
                drawn.append(draw_figure(figure, experiment, runs, out_dir, why))
            except MissingData as error:
                absent[figure.key] = str(error)
    return drawn, absent


def compute_seconds(runs: list[dict]) -> float:
    """Seconds of computation behind the runs, each shared computation counted once.

    Runs fused into one task (lstmbench/training/fused.py) train as one computation and
    each reports its wall time: those that ran to the end report the same wall time and
    samples seen, to the bit, which separate runs never do. A fused run stopped early
    (diverged) reports its own, shorter time and still counts on its own.
    """
    tasks = {
        (r["host"], r["wall_time"], r["samples_seen"])
        for r in runs
        if r["wall_time"] is not None and math.isfinite(r["wall_time"])
    }
    return sum(wall for _, wall, _ in tasks)


def sweep_summary(all_runs: list[dict], sweeps: list[dict]) -> list[dict]:
    """Per sweep: scale, run counts by status, compute time and elapsed time."""
    rows = []
    for entry in sweeps:
        runs = [r for r in all_runs if r["sweep"] == entry["name"]]
        counts = {s: sum(r["status"] == s for r in runs) for s in ("done", "diverged", "failed")}
        times = [r["started"] for r in runs if r["started"]]
        ends = [r["finished"] for r in runs if r["finished"]]
        elapsed = _seconds_between(min(times), max(ends)) if times and ends else 0.0
        rows.append(
            {
                "sweep": entry["name"],
                "scale": entry["scale"],
                "runs": len(runs),
                **counts,
                "compute": _duration(compute_seconds(runs)),
                "elapsed": _duration(elapsed),
            }
        )
    return rows


def _seconds_between(start: str, end: str) -> float:
    parse = datetime.datetime.fromisoformat
    return max(0.0, (parse(end) - parse(start)).total_seconds())


def _duration(seconds: float) -> str:
    minutes, second = divmod(int(round(seconds)), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}h{minute:02d}m{second:02d}s" if hours else f"{minute}m{second:02d}s"


def outcome_rows(by_sweep: dict[str, list[dict]]) -> list[dict]:
    """Per sweep and group of runs: how many learned, did not learn, diverged. A group where
    none learned is a result of its budget, and says so."""
    rows = []
    for sweep, runs in by_sweep.items():
        varying = [f for f in GROUP_FIELDS if len({r[f] for r in runs}) > 1]
        groups: dict[str, list[dict]] = {}
        for run in runs:
            groups.setdefault(" ".join(str(run[f]) for f in varying) or "all", []).append(run)
        for name in sorted(groups):
            counts = outcome_counts(groups[name])
            result = ""
            if not counts[LEARNED]:
                result = "all diverged" if counts[DIVERGED] == len(groups[name]) else "none learned"
            rows.append({"sweep": sweep, "group": name, **counts, "result": result})
    return rows


def method_text() -> str:
    """How the findings are tested and decided, in words."""
    mnist, lines = (LEARNED_FRACTION * c for c in (CHANCE_ERROR["mnist"], OTHER_CHANCE_ERROR))
    return (
        "Each of the paper's conclusions tested across runs. Every finished run learned (best "
        f"error at most {LEARNED_FRACTION:.0%} of chance: {mnist:.0%} on MNIST, {lines:.0%} "
        "on text lines), did not learn, or diverged. Groups are compared on every finished "
        "run, those that did not learn or diverged ranked below every error; claims about how "
        "the error changes with a setting read the runs that learned. A difference: "
        "Mann-Whitney U on log10 best error, two-sided, its direction from the same statistic "
        "(Cliff's delta); where the experiment crosses the compared setting with another "
        "(cell types with output layers, architectures with hidden sizes), runs are compared "
        "within each value of the other (van Elteren's stratified test). No difference: "
        f"equivalence within a margin of x{10**EQUIVALENCE:.2f} on the error ratio either way "
        "(two one-sided shifted Mann-Whitney tests, TOST); for batch size and momentum, the "
        "slope of log10 error along the setting (per tenfold batch size, or tenfold "
        "1/(1-momentum)) at equal lr/(1-momentum), from one least-squares fit over the runs "
        f"that learned, differs from 0, or lies within x{10**EQUIVALENCE:.2f} per tenfold "
        "(bootstrap); for the 1/(1-momentum) scaling, the "
        f"log-log slope within 1 +- {SLOPE_MARGIN:g} (bootstrap). Each p-value says how many "
        "sides it has. Each claim is one family: its own p-values are corrected together by "
        f"Holm-Bonferroni at {ALPHA:g}, a comparison's difference and margin tests counted "
        "once (their null hypotheses cannot both be true), so a claim is decided on its "
        "experiment's runs alone. Verdicts: confirmed "
        "(in every comparison a test decides for the claim), contradicted (a test decides "
        "against it), inconclusive (nothing decided, or too few runs learned to measure), "
        "no data (too few runs)."
    )


def versions() -> dict[str, str]:
    """Versions of Python and of the libraries that produced the numbers."""
    found = {"lstmbench": __version__, "python": platform.python_version()}
    for name in ("torch", "numpy", "scipy", "matplotlib", "optuna"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def provenance(all_runs: list[dict]) -> dict[str, str]:
    """Hosts, package versions and git revisions recorded with the runs."""
    runs = [r for r in all_runs if r["status"] in FINISHED]
    return {
        key: ", ".join(sorted({str(r[key]) for r in runs if r[key]})) or "-"
        for key in ("host", "version", "git_rev")
    }


def write_report(
    store,
    out_dir: str | Path,
    command: list[str] | None = None,
    sections=None,
    scope: Scope | None = None,
    unrun: Mapping[str, str] | None = None,
) -> Report:
    """Write DIR/report.html, DIR/report.md and the figures (DIR/figures/*.png|svg).

    `sections`, if given, makes sections of preformatted text from the findings (a budgeted
    reproduction's plan, pilot and runs needed): a function of the findings returning
    (title, text) pairs, shown after the findings. `scope`, if given, reports its findings
    in place of the paper's claims, figures and numbers. `unrun`, if given, says for the
    experiments a budget did not run why not (spec -> why), where their figures and claims
    would otherwise name the command that fills them."""
    out_dir = Path(out_dir)
    all_runs, sweeps = store.runs(), store.sweeps()  # read once; everything below uses these
    if scope is None:
        data = read_experiments(store, all_runs)
        figures, absent = draw_figures(data, out_dir / "figures", unrun)
        findings, numbers = evaluate(data, unrun=unrun), our_numbers(data)
    else:
        figures, absent, findings, numbers = [], {}, scope.findings(all_runs), None
    command = command if command is not None else sys.argv
    by_sweep = finished_by_sweep(all_runs, sweeps)
    context = {
        "title": scope.title if scope else PAPER_TITLE,
        "method": scope.method if scope else method_text(),
        "column": scope.column if scope else "paper's claim",
        "paper": scope is None,
        "database": str(store.path),
        "generated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["lstmbench", *command[1:]] if command else ["lstmbench"]),
        "sweeps": sweep_summary(all_runs, sweeps),
        "numbers": numbers,
        "outcomes": outcome_rows(by_sweep),
        "importance": {name: importance(runs) for name, runs in by_sweep.items()},
        "versions": versions(),
        "provenance": provenance(all_runs),
        "sections": sections(findings) if sections else [],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, md_path = out_dir / "report.html", out_dir / "report.md"
    html_path.write_text(render_html(figures, absent, findings, context))
    md_path.write_text(render_markdown(figures, absent, findings, context))
    return Report(html_path, md_path, figures, absent, findings)


# -- HTML -----------------------------------------------------------------------------------

_STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #eee; }
figure { margin: 2em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #444; }
.missing { background: #fff4e0; border: 1px solid #e0b060; padding: 0.6em; }
.confirmed { background: #e3f6e3; } .contradicted { background: #fbe3e3; }
.inconclusive { background: #fff6d5; } .no-data { color: #888; }
.better { background: #e3f6e3; } .worse { background: #fbe3e3; }
.equivalent { background: #e3eef9; }
code, pre { background: #f4f4f4; }
"""
# Marks each figure once the browser has decoded it, so a check can see every one rendered.
_SCRIPT = """
window.addEventListener('load', () => {
  const images = Array.from(document.querySelectorAll('img.figure'));
  const shown = images.filter(i => i.complete && i.naturalWidth > 0);
  shown.forEach(i => i.setAttribute('data-rendered', String(i.naturalWidth)));
  document.body.setAttribute('data-figures', shown.length + '/' + images.length);
});
"""


def _table(rows: list[dict] | list[tuple], header: list[str] | None = None) -> str:
    if not rows:
        return "<p>(none)</p>"
    if isinstance(rows[0], dict):
        header = header or list(rows[0])
        rows = [[row[h] for h in header] for row in rows]
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _findings_html(findings: list[Finding], column: str) -> str:
    rows = []
    for f in findings:
        css = f.verdict.replace(" ", "-")
        rows.append(
            f"<tr class='{css}'><td>{html.escape(f.claim)}</td><td>{html.escape(f.sweep)}</td>"
            f"<td><b>{html.escape(f.verdict)}</b></td><td>{html.escape(f.evidence)}</td></tr>"
        )
    return (
        f"<table><tr><th>{html.escape(column)}</th><th>sweep</th><th>our verdict</th>"
        f"<th>evidence</th></tr>{''.join(rows)}</table>"
    )


def render_html(figures, absent, findings, context) -> str:
    """The whole report as one HTML page with the figures inlined as PNG data."""
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        "<title>lstmbench report</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(context['title'])}</h1>",
        f"<p>Results database <code>{html.escape(context['database'])}</code>; generated "
        f"{html.escape(context['generated'])}.</p>",
        "<h2>Findings</h2>",
        f"<p>{html.escape(context['method'])}</p>",
        _findings_html(findings, context["column"]),
        *(
            f"<h2>{html.escape(title)}</h2><pre>{html.escape(text)}</pre>"
            for title, text in context["sections"]
        ),
        "<h2>What the runs came to</h2>",
        _table(context["outcomes"]),
        *(
            [
                "<h2>The paper's numbers beside ours</h2>",
                _table(context["numbers"], ["quantity", "sweep", "paper", "ours"]),
            ]
            if context["paper"]
            else []
        ),
        "<h2>Sweeps and time taken</h2>",
        _table(context["sweeps"]),
        "<h2>Hyperparameter importance (fANOVA)</h2>",
        "<p>Share of the variance of log10 best error explained by each setting, by optuna's "
        "fANOVA evaluator over the finished runs of each sweep (as in Greff et al., "
        "<i>LSTM: A Search Space Odyssey</i>).</p>",
        _table(
            [
                (sweep, ", ".join(f"{k} {v:.0%}" for k, v in found.items()) or "too few runs")
                for sweep, found in context["importance"].items()
            ],
            ["sweep", "importance"],
        ),
        *(["<h2>Figures</h2>"] if context["paper"] else []),
    ]
    for figure in figures:
        data = base64.b64encode(figure.png.read_bytes()).decode()
        parts.append(
            f"<figure id='{figure.key}'><img class='figure' alt='{html.escape(figure.title)}' "
            f"src='data:image/png;base64,{data}'><figcaption><b>{html.escape(figure.title)}."
            f"</b> {html.escape(figure.caption)}</figcaption></figure>"
        )
        if figure.table:
            parts.append(_table(figure.table))
    for key, message in absent.items():
        parts.append(f"<div class='missing' id='{key}'>{key}: {html.escape(message)}</div>")
    parts += [
        "<h2>How this was made</h2>",
        f"<pre>{html.escape(context['command'])}</pre>",
        _table(list(context["versions"].items()), ["package", "version"]),
        _table(list(context["provenance"].items()), ["recorded with the runs", "values"]),
    ]
    if context["paper"]:
        parts += [
            "<p>Expected of each sweep (one spec per experiment, "
            "lstmbench/sweep/specs/NAME.toml):</p>",
            _table([(e.spec, e.description) for e in EXPERIMENTS], ["sweep", "paper experiment"]),
        ]
    parts += [
        f"<script>{_SCRIPT}</script></body></html>",
    ]
    return "\n".join(parts)


# -- Markdown -------------------------------------------------------------------------------


def _md_table(rows, header: list[str] | None = None) -> str:
    if not rows:
        return "(none)\n"
    if isinstance(rows[0], dict):
        header = header or list(rows[0])
        rows = [[row[h] for h in header] for row in rows]

    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def render_markdown(figures, absent, findings, context) -> str:
    """A Markdown summary: findings, numbers, time, figures (as files), provenance."""
    findings_rows = [(f.claim, f.sweep, f"**{f.verdict}**", f.evidence) for f in findings]
    parts = [
        "# lstmbench report\n" if context["paper"] else f"# {context['title']}\n",
        f"Results database `{context['database']}`, generated {context['generated']}.\n",
        "## Findings\n",
        context["method"] + "\n",
        _md_table(findings_rows, [context["column"], "sweep", "our verdict", "evidence"]),
        *(f"## {title}\n\n```\n{text}\n```\n" for title, text in context["sections"]),
        "## What the runs came to\n",
        _md_table(context["outcomes"]),
        *(
            [
                "## The paper's numbers beside ours\n",
                _md_table(context["numbers"], ["quantity", "sweep", "paper", "ours"]),
            ]
            if context["paper"]
            else []
        ),
        "## Sweeps and time taken\n",
        _md_table(context["sweeps"]),
        "## Hyperparameter importance (fANOVA)\n",
        _md_table(
            [
                (sweep, ", ".join(f"{k} {v:.0%}" for k, v in found.items()) or "too few runs")
                for sweep, found in context["importance"].items()
            ],
            ["sweep", "importance"],
        ),
        *(["## Figures\n"] if context["paper"] else []),
    ]
    for figure in figures:
        parts.append(f"![{figure.title}](figures/{figure.png.name})\n\n{figure.caption}\n")
        if figure.table:
            parts.append(_md_table(figure.table))
    for key, message in absent.items():
        parts.append(f"- {key}: not drawn: {message}")
    parts += [
        "\n## How this was made\n",
        f"    {context['command']}\n",
        _md_table(list(context["versions"].items()), ["package", "version"]),
        _md_table(list(context["provenance"].items()), ["recorded with the runs", "values"]),
    ]
    return "\n".join(parts) + "\n"
