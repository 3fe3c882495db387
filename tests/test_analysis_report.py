"""Figures, findings and the report, built from a database written by a real tiny sweep."""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path

import pytest

from lstmbench.analysis import paper
from lstmbench.analysis import report as report_module
from lstmbench.analysis.figures_mnist import fig_lr_hidden
from lstmbench.analysis.figures_types import fig_types_mnist, type_order
from lstmbench.analysis.findings import VERDICTS
from lstmbench.analysis.runs import MissingData, diverged, learned, measured, not_diverged
from lstmbench.cli.main import main
from lstmbench.sweep.store import ResultsStore


def tiny_database(directory: Path, mnist_dir: Path) -> Path:
    """`lstmbench reproduce --scale tiny`: every paper spec trained for real into one database,
    and its report in directory/report. Built once per test session and shared."""
    path = directory / "results.db"
    if not path.exists():
        # A copy of the MNIST folder, to check that nothing else is written into it.
        data = directory / "mnist"
        data.mkdir(parents=True)
        for file in mnist_dir.iterdir():
            if file.is_file():
                shutil.copy(file, data)
        files = sorted(p.name for p in data.iterdir())
        status = main(
            ["reproduce", "--scale", "tiny", "--db", str(path), "-o", str(directory / "report")]
            + ["--data", str(data), "--quiet"]
        )
        assert status == 0
        assert sorted(p.name for p in data.iterdir()) == files  # no lines cache written there
    return path


@pytest.fixture(scope="session")
def tiny_db(tmp_path_factory, mnist_dir) -> Path:
    return tiny_database(tmp_path_factory.getbasetemp() / "analysis", mnist_dir)


@pytest.fixture(scope="module")
def written(tiny_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return report_module.write_report(ResultsStore(tiny_db), out, ["lstmbench", "report"])


def test_reproduce_ran_every_paper_spec_and_wrote_the_report(tiny_db):
    store = ResultsStore(tiny_db)
    assert [s["name"] for s in store.sweeps()] == list(paper.SPECS)
    assert all(s["scale"] == "tiny" for s in store.sweeps())
    assert store.counts()["queued"] == 0 and store.counts()["failed"] == 0
    report = tiny_db.parent / "report"
    assert (report / "report.html").is_file() and (report / "report.md").is_file()


def test_every_figure_is_drawn_as_png_and_svg_with_its_caption(written, tiny_db):
    store = ResultsStore(tiny_db)
    assert written.missing == {}
    sweeps = [e.spec for e in paper.EXPERIMENTS for _ in e.figures]
    assert [f.key for f in written.figures] == list(paper.FIGURE_KEYS)
    for figure, sweep in zip(written.figures, sweeps, strict=True):
        assert figure.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "<svg" in figure.svg.read_text()[:2000]
        assert f"Sweep {sweep} (scale tiny)" in figure.caption
        finished = [r for r in store.runs(sweep) if r["status"] in ("done", "diverged")]
        assert f"{len(measured(finished))} runs" in figure.caption or (
            f"{len(finished)} runs" in figure.caption
        )


def test_report_holds_every_figure_and_every_finding(written):
    html = written.html.read_text()
    assert html.count("data:image/png;base64,") == len(paper.FIGURE_KEYS)
    for key in paper.FIGURE_KEYS:
        assert f"id='{key}'" in html
    for finding in written.findings:
        assert finding.claim in html
        assert finding.verdict in VERDICTS and f"<b>{finding.verdict}</b>" in html
    assert "0.73%" in html  # the paper's number beside ours
    markdown = written.markdown.read_text()
    assert "| paper's claim | sweep | our verdict | evidence |" in markdown
    assert "| sweep | group | learned | did not learn | diverged | result |" in markdown
    assert "<h2>What the runs came to</h2>" in html
    assert markdown.count("](figures/") == len(paper.FIGURE_KEYS)
    assert "torch" in markdown and "lstmbench report" in markdown


def test_a_figure_without_its_sweep_names_the_spec_to_run(tmp_path):
    data = paper.read_experiments(ResultsStore(tmp_path / "empty.db"))
    for experiment in paper.EXPERIMENTS:
        assert data[experiment.spec] == []
        for figure in experiment.figures:
            with pytest.raises(MissingData, match=f"sweep/specs/{experiment.spec}.toml"):
                report_module.draw_figure(figure, experiment, [], tmp_path / "figures")
    assert not list(tmp_path.rglob("*.png"))


def test_a_figure_with_too_few_runs_says_what_is_lacking(tiny_db, tmp_path):
    data = paper.read_experiments(ResultsStore(tiny_db))
    experiment = paper.EXPERIMENTS[0]
    diverged = [dict(r, status="diverged") for r in data[experiment.spec]]
    with pytest.raises(MissingData, match="every run diverged"):
        report_module.draw_figure(experiment.figures[0], experiment, diverged, tmp_path)


def test_the_paper_table_names_shipped_specs_and_functions_that_take_runs():
    from lstmbench.sweep.spec import spec_names

    assert sorted(paper.SPECS) == sorted(spec_names())
    assert len(set(paper.FIGURE_KEYS)) == len(paper.FIGURE_KEYS)
    for experiment in paper.EXPERIMENTS:
        for figure in experiment.figures:
            assert list(inspect.signature(figure.draw).parameters) == ["runs", "out_dir"]
        for claim in experiment.claims:
            assert list(inspect.signature(paper.resolve(claim.function)).parameters) == ["runs"]


def test_the_tiny_report_gives_one_of_four_verdicts_and_counts_outcomes(written, tiny_db):
    data = paper.read_experiments(ResultsStore(tiny_db))
    assert {f.verdict for f in written.findings} <= set(VERDICTS)
    for finding in written.findings:
        if finding.sweep in data and not learned(data[finding.sweep]):  # all failed
            assert finding.verdict in ("inconclusive", "no data"), finding.evidence
        if finding.verdict == "no data":
            assert not finding.tests and "too few runs" in finding.evidence
        if finding.tests:
            assert "learned" in finding.evidence and "-sided" in finding.evidence


def packed(task: int, k: int, wall: float, samples: int = 300, status: str = "done") -> dict:
    return {
        "run_id": f"{task}-{k}",
        "sweep": "s",
        "status": status,
        "host": "h",
        "wall_time": wall,
        "samples_seen": samples,
        "started": "2026-01-01T00:00:00+00:00",
        "finished": "2026-01-01T00:01:30+00:00",
    }


def test_compute_counts_the_shared_time_of_packed_runs_once():
    # Two packs of four runs, 65 s each (as with a cold kernel cache), one run alone, and a
    # packed run stopped early: 65 + 65 + 10 + 20 s, not 8 x 65 + 10 + 20.
    runs = [packed(1, k, 65.182) for k in range(4)] + [packed(2, k, 64.434) for k in range(4)]
    runs += [packed(3, 0, 10.0), packed(2, 4, 20.0, samples=100, status="diverged")]
    assert report_module.compute_seconds(runs) == pytest.approx(65.182 + 64.434 + 10 + 20)
    (row,) = report_module.sweep_summary(runs, [{"name": "s", "scale": "tiny"}])
    assert row["compute"] == "2m40s" and row["elapsed"] == "1m30s"


def test_report_command_on_a_partial_database_says_what_to_run(tiny_db, tmp_path, capsys):
    partial = ResultsStore(tmp_path / "partial.db")
    partial.merge(tiny_db)
    partial._write(lambda db: db.execute("DELETE FROM runs WHERE sweep = 'long_lines'"))
    assert main(["report", str(partial.path), "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "fig16 not drawn" in out and "lstmbench sweep run long_lines" in out
    assert "fig15 not drawn" not in out
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(paper.FIGURE_KEYS) - 1
    assert "sweep/specs/long_lines.toml" in html


def test_report_command_refuses_a_missing_database(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope.db"), "-o", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "nope.db" in err and "Traceback" not in err


def test_compare_puts_a_users_cell_on_the_paper_figures(tiny_db, tmp_path, mnist_dir):
    db = tmp_path / "compare.db"
    ResultsStore(db).merge(tiny_db)  # the paper's protocol runs are there already
    status = main(
        ["compare", "--cell", "GRU", "--db", str(db), "-o", str(tmp_path / "r")]
        + ["--data", str(mnist_dir), "--quiet"]
    )
    assert status == 0
    store = ResultsStore(db)
    runs = store.runs("compare-cell_types_mnist-GRU")
    assert {r["cell"] for r in runs} == {"GRU"}
    assert {r["output"] for r in runs} == {"logistic", "softmax"}
    assert all(r["status"] in ("done", "diverged") for r in runs)
    html = (tmp_path / "r" / "report.html").read_text()
    assert "GRU matches NPLSTM on the cell_types_mnist protocol" in html
    runs = paper.read_experiments(store)["cell_types_mnist"]
    drawn = measured(runs)
    assert {"logistic GRU", "softmax GRU"} & set(type_order(drawn))
    figure = fig_types_mnist(runs, tmp_path / "figs")
    assert f"{len(drawn)} runs" in figure.caption and "compare`: GRU." in figure.caption


def test_compare_refuses_an_unknown_cell(tmp_path, capsys):
    assert main(["compare", "--cell", "NOSUCHCELL", "--db", str(tmp_path / "x.db")]) == 2
    err = capsys.readouterr().err
    assert "NOSUCHCELL" in err and "Traceback" not in err


def test_figures_draw_runs_stopped_at_chance_as_runs_that_did_not_learn(tmp_path):
    """A run the loop stopped at chance has status "diverged" but did not blow up: it is a
    dot at its error, not a red cross, and the caption counts it as not learned."""
    base = {"lr": 1e-2, "hidden": 25, "dataset": "mnist", "sweep": "lr_hidden", "scale": "t"}
    learned_run = {**base, "best_error": 0.05, "status": "done", "reason": ""}
    at_chance = {**base, "best_error": 0.9, "status": "diverged", "reason": "stuck at chance"}
    blown = {**base, "best_error": float("nan"), "status": "diverged", "reason": "loss nan"}
    runs = [learned_run, at_chance, blown]
    assert not_diverged(runs) == [learned_run, at_chance] and diverged(runs) == [blown]
    figure = fig_lr_hidden(runs, tmp_path)
    assert "3 runs: 1 of 3 learned, 1 did not learn, 1 diverged." in figure.caption


def test_the_tenth_best_error_says_how_many_of_the_ten_learned():
    run = {"dataset": "mnist", "status": "done", "reason": ""}
    some = [{**run, "best_error": 0.01}] * 4 + [{**run, "best_error": 0.9}] * 8
    assert paper.tenth_best_error(some) == "90.00% (4 of the ten best learned)"
    all_learned = [{**run, "best_error": 0.01 * (k + 1)} for k in range(12)]
    assert paper.tenth_best_error(all_learned) == "10.00%"
    assert paper.tenth_best_error(some[:5]) == "- (5 runs)"
