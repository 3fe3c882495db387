"""Figures, findings and the report, built from a database written by a real tiny sweep."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lstmbench.analysis import report as report_module
from lstmbench.analysis.figures_types import fig_types_mnist, type_order
from lstmbench.analysis.runs import PAPER_SPECS, MissingData, measured, with_compared
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
    assert [s["name"] for s in store.sweeps()] == list(PAPER_SPECS)
    assert all(s["scale"] == "tiny" for s in store.sweeps())
    assert store.counts()["queued"] == 0 and store.counts()["failed"] == 0
    report = tiny_db.parent / "report"
    assert (report / "report.html").is_file() and (report / "report.md").is_file()


def test_every_figure_is_drawn_as_png_and_svg_with_its_caption(written, tiny_db):
    store = ResultsStore(tiny_db)
    assert written.missing == {}
    assert [f.key for f in written.figures] == [key for key, _, _ in report_module.FIGURES]
    for figure, (_, sweep, _) in zip(written.figures, report_module.FIGURES, strict=True):
        assert figure.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "<svg" in figure.svg.read_text()[:2000]
        assert f"Sweep {sweep} (scale tiny)" in figure.caption
        finished = [r for r in store.runs(sweep) if r["status"] in ("done", "diverged")]
        assert f"{len(measured(finished))} runs" in figure.caption or (
            f"{len(finished)} runs" in figure.caption
        )


def test_report_holds_every_figure_and_every_finding(written):
    html = written.html.read_text()
    assert html.count("data:image/png;base64,") == len(report_module.FIGURES)
    for key, _, _ in report_module.FIGURES:
        assert f"id='{key}'" in html
    for finding in written.findings:
        assert finding.claim in html
        assert finding.verdict in html
    assert "0.73%" in html  # the paper's number beside ours
    markdown = written.markdown.read_text()
    assert "| paper's claim | sweep | our verdict | evidence |" in markdown
    assert markdown.count("](figures/") == len(report_module.FIGURES)
    assert "torch" in markdown and "lstmbench report" in markdown


def test_a_figure_without_its_sweep_names_the_spec_to_run(tmp_path):
    store = ResultsStore(tmp_path / "empty.db")
    for _, sweep, draw in report_module.FIGURES:
        with pytest.raises(MissingData, match=f"sweep/specs/{sweep}.toml"):
            draw(store, tmp_path / "figures")
    assert not list(tmp_path.rglob("*.png"))


def test_report_command_on_a_partial_database_says_what_to_run(tiny_db, tmp_path, capsys):
    partial = ResultsStore(tmp_path / "partial.db")
    partial.merge(tiny_db)
    partial._write(lambda db: db.execute("DELETE FROM runs WHERE sweep = 'long_lines'"))
    assert main(["report", str(partial.path), "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "fig16 not drawn" in out and "lstmbench sweep run long_lines" in out
    assert "fig15 not drawn" not in out
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(report_module.FIGURES) - 1
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
    assert "GRU vs NPLSTM on the cell_types_mnist protocol" in html
    drawn = measured(with_compared(store, "cell_types_mnist", "Fig. 7"))
    assert {"logistic GRU", "softmax GRU"} & set(type_order(drawn))
    figure = fig_types_mnist(store, tmp_path / "figs")
    assert f"{len(drawn)} runs" in figure.caption and "compare`: GRU." in figure.caption


def test_compare_refuses_an_unknown_cell(tmp_path, capsys):
    assert main(["compare", "--cell", "NOSUCHCELL", "--db", str(tmp_path / "x.db")]) == 2
    err = capsys.readouterr().err
    assert "NOSUCHCELL" in err and "Traceback" not in err
