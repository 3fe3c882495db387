"""`compare --cell X --budget`: the spec it plans, the verdicts it gives (better, worse,
equivalent) on constructed runs, rounds that stop once every comparison is decided, a report
of the comparison alone, the refusals, and one real run on MNIST that resumes."""

import json
import math
import sqlite3

import numpy as np
import pytest

from lstmbench.analysis import findings as F
from lstmbench.analysis.comparison import comparison_findings, comparison_scope, speed_text
from lstmbench.analysis.paper import EXPERIMENTS
from lstmbench.analysis.power import runs_needed
from lstmbench.analysis.report import write_report
from lstmbench.cli.budget import open_experiments
from lstmbench.cli.compare_budget import comparison_work
from lstmbench.cli.main import main
from lstmbench.sweep import comparison
from lstmbench.sweep.budget import (
    PILOT_POINTS,
    ExperimentPlan,
    Plan,
    allocate_round,
    base_scale,
    lr_groups,
    plan_path,
)
from lstmbench.sweep.comparison import comparison_name, comparison_spec
from lstmbench.sweep.spec import load_spec
from lstmbench.sweep.store import ResultsStore
from lstmbench.training.config import RunConfig
from lstmbench.training.record import RunResult

MNIST = "cell_types_mnist"
SWEEP = comparison_name(MNIST, "RELULSTM")
REFERENCES = ["NPLSTM", "LSTM", "GRU"]

# -- the spec ------------------------------------------------------------------------------


def test_the_spec_is_the_protocol_with_four_cells_and_softmax_output():
    protocol = load_spec(MNIST)
    spec = comparison_spec(protocol, "RELULSTM")
    assert spec.name == SWEEP
    assert spec.sweep["cell"].values == ("RELULSTM", "NPLSTM", "LSTM", "GRU")
    assert "output" not in spec.sweep and spec.fixed["output"] == "softmax"
    assert lr_groups(spec) == [{"cell": c} for c in ("RELULSTM", *REFERENCES)]
    ours, theirs = base_scale(spec), base_scale(protocol)
    # everything else is the protocol's budget settings
    assert {k: v for k, v in ours.fixed.items() if k != "output"} == theirs.fixed
    assert {k: v for k, v in ours.sweep.items() if k != "cell"} == {
        k: v for k, v in theirs.sweep.items() if k not in ("cell", "output")
    }
    for scale in ("tiny", "small", "paper"):
        assert {c.output for c in spec.expand(scale)} == {"softmax"}


def test_a_reference_named_as_the_cell_is_not_compared_with_itself():
    spec = comparison_spec(load_spec(MNIST), "LSTM")
    assert spec.sweep["cell"].values == ("LSTM", "NPLSTM", "GRU")
    lines = comparison_spec(load_spec("cell_types_lines"), "GRU")
    assert lines.sweep["cell"].values == ("GRU", "NPLSTM", "LSTM")
    assert base_scale(lines).fixed["dataset"].startswith("uw3like")


def test_cells_are_timed_at_one_hidden_size():
    spec = comparison.speed_spec(comparison_spec(load_spec(MNIST), "RELULSTM"))
    configs = spec.expand("budget")
    assert [c.cell for c in configs] == ["RELULSTM", *REFERENCES]
    assert len({c.hidden for c in configs}) == 1 and 25 <= configs[0].hidden <= 100


# -- the verdicts on constructed runs -------------------------------------------------------


def runs_of(cell: str, errors, failures: int = 0, sweep: str = SWEEP) -> list[dict]:
    """Finished runs of a cell with these best errors, then `failures` runs that did not
    learn (at chance) and one that diverged, if failures > 0."""
    rows = [{"cell": cell, "best_error": float(e), "status": "done"} for e in errors]
    rows += [{"cell": cell, "best_error": 0.89, "status": "done"}] * failures
    if failures:
        rows.append({"cell": cell, "best_error": math.nan, "status": "diverged"})
    return [{**r, "sweep": sweep, "dataset": "mnist", "reason": ""} for r in rows]


def lognormal(rng, median: float, n: int, spread: float = 0.1) -> np.ndarray:
    return median * np.exp(rng.normal(0, spread, n))


def constructed(rng) -> list[dict]:
    """RELULSTM at 5% error; NPLSTM at 20% (RELULSTM better), LSTM alike, GRU at 1%."""
    return (
        runs_of("RELULSTM", lognormal(rng, 0.05, 40), failures=2)
        + runs_of("NPLSTM", lognormal(rng, 0.20, 40), failures=2)
        + runs_of("LSTM", lognormal(rng, 0.05, 40))
        + runs_of("GRU", lognormal(rng, 0.01, 40))
    )


def test_better_worse_and_equivalent_with_size_direction_and_counts():
    found = comparison_findings(
        constructed(np.random.default_rng(1)), SWEEP, "RELULSTM", REFERENCES, MNIST
    )
    verdicts = {f.key: f.verdict for f in found}
    assert verdicts == {
        "versus_NPLSTM": "better",
        "versus_LSTM": "equivalent",
        "versus_GRU": "worse",
    }
    by_key = {f.key: f for f in found}
    better, alike, worse = (by_key[f"versus_{c}"] for c in REFERENCES)
    assert better.evidence.startswith("RELULSTM lower error than NPLSTM")
    assert worse.evidence.startswith("RELULSTM higher error than GRU")
    assert alike.evidence.startswith("RELULSTM within x1.25 of LSTM")
    for finding in found:
        assert "error ratio (Hodges-Lehmann)" in finding.evidence
        assert "Cliff's delta" in finding.evidence
        assert "two-sided; Holm-adjusted" in finding.evidence
        assert "two one-sided tests; Holm-adjusted" in finding.evidence
        # every group's outcomes: 40 learned, 2 at chance, 1 diverged
        assert "RELULSTM: 40 of 43 learned, 2 did not learn, 1 diverged" in finding.evidence
    assert "NPLSTM: 40 of 43 learned, 2 did not learn, 1 diverged" in better.evidence
    # by how much: the Hodges-Lehmann ratio of the errors, 5% against 20% and 1%
    ratio = float(better.evidence.split("error ratio (Hodges-Lehmann) ")[1].split(" ")[0])
    assert ratio == pytest.approx(0.25, rel=0.1)
    ratio = float(worse.evidence.split("error ratio (Hodges-Lehmann) ")[1].split(" ")[0])
    assert ratio == pytest.approx(5, rel=0.1)
    among = better.evidence.split("error ratio (Hodges-Lehmann) ")[1].split(" among")[0]
    assert float(among.split("(")[1]) == pytest.approx(0.25, rel=0.1)  # 3 of 43 failed
    assert all(f.verdict in F.DECIDED for f in found)


def test_a_difference_within_the_margin_is_a_difference_said_to_be_small():
    rng = np.random.default_rng(2)
    rows = runs_of("RELULSTM", lognormal(rng, 0.050, 200, 0.02))
    rows += runs_of("NPLSTM", lognormal(rng, 0.046, 200, 0.02))
    [finding] = comparison_findings(rows, SWEEP, "RELULSTM", ["NPLSTM"], MNIST)
    assert finding.verdict == "worse", finding.evidence
    assert finding.evidence.startswith(
        "RELULSTM higher error than NPLSTM, though RELULSTM within x1.25 of NPLSTM"
    )


def test_an_open_comparison_carries_the_runs_it_needs_either_way():
    rng = np.random.default_rng(3)
    rows = runs_of("RELULSTM", lognormal(rng, 0.05, 4, 0.3))
    rows += runs_of("NPLSTM", lognormal(rng, 0.06, 4, 0.3))
    rows += runs_of("LSTM", lognormal(rng, 0.05, 2))  # too few
    found = comparison_findings(rows, SWEEP, "RELULSTM", ["NPLSTM", "LSTM"], MNIST)
    open_, empty = found
    assert open_.verdict == F.INCONCLUSIVE and empty.verdict == F.NO_DATA
    assert "neither a difference nor equivalence" in open_.evidence
    assert "LSTM: 2 finished runs, need 3" in empty.evidence
    needs = runs_needed(found, {SWEEP: 10.0})
    assert {n.claim for n in needs} == {"versus_NPLSTM"}
    assert {n.test.split(", ")[1].split(" ")[0] for n in needs} == {"difference", "equivalence"}
    assert all(n.have == (4, 4) for n in needs)


def test_no_runs_yet_points_to_the_plan_not_to_a_paper_spec():
    [finding] = comparison_findings([], SWEEP, "RELULSTM", ["NPLSTM"], MNIST)
    assert finding.verdict == F.NO_DATA
    assert "budget plan" in finding.evidence and "sweep run" not in finding.evidence


class RunsOnly:
    """A store that lists constructed runs."""

    def __init__(self, runs):
        self.rows = runs

    def runs(self, sweep=None):
        return [r for r in self.rows if sweep is None or r["sweep"] == sweep]


@pytest.mark.parametrize("decided", [True, False])
def test_rounds_stop_once_every_comparison_is_decided(decided):
    rng = np.random.default_rng(1)
    rows = constructed(rng)
    if not decided:  # GRU left with too few runs: that comparison is open
        rows = [r for r in rows if r["cell"] != "GRU"] + runs_of("GRU", [0.01, 0.02])
    spec = comparison_spec(load_spec(MNIST), "RELULSTM")
    work = comparison_work(spec, "RELULSTM", MNIST)
    plan = Plan(900, 2, 1, [spec.name])
    experiment = ExperimentPlan(spec.name, samples=1000, groups=[])
    plan.experiments.append(experiment)
    still = open_experiments(plan, work, RunsOnly(rows))
    assert still == ({} if decided else {spec.name: 1})
    assert set(experiment.verdicts) == {"versus_NPLSTM", "versus_LSTM", "versus_GRU"}
    if decided:
        assert not allocate_round(plan, 3, 1e6, still).added


# -- the report -------------------------------------------------------------------------------


def record(store: ResultsStore, rows: list[dict]) -> None:
    """Constructed runs into a real store, each its own RunConfig (seeds told apart)."""
    for seed, row in enumerate(rows):
        store.ensure_sweep(row["sweep"], {"name": row["sweep"]}, "budget")
        config = RunConfig(cell=row["cell"], output="softmax", seed=seed, lr=1e-3)
        result = RunResult(config, status=row["status"], best_error=row["best_error"])
        error = row["best_error"]
        result.curve = [{"samples": 100, "test_error": error, "train_loss": 1.0, "wall_time": 1.0}]
        result.samples_seen, result.wall_time, result.best_samples = 100, 1.0, 100
        store.record_result(row["sweep"], result)


def test_the_report_holds_the_comparison_and_none_of_the_papers_claims(tmp_path):
    store = ResultsStore(tmp_path / "compare.db")
    rng = np.random.default_rng(1)
    record(store, constructed(rng))
    # runs the paper's claims could read are in the same database, and stay out of it
    paper = runs_of("NPLSTM", lognormal(rng, 0.05, 5), sweep=MNIST)
    record(store, paper + runs_of("LSTM", lognormal(rng, 0.05, 5), sweep=MNIST))
    scope = comparison_scope(SWEEP, "RELULSTM", REFERENCES, MNIST)
    written = write_report(
        store,
        tmp_path / "report",
        ["lstmbench", "compare"],
        lambda found: [("Budget plan", f"{len(found)} findings planned")],
        scope,
    )
    assert [f.key for f in written.findings] == [f"versus_{c}" for c in REFERENCES]
    assert written.figures == [] and written.missing == {}
    for path in (written.markdown, written.html):
        text = path.read_text()
        for claim in (c for e in EXPERIMENTS for c in e.claims):
            assert claim.claim not in text
        assert "paper's numbers" not in text and "Figures" not in text
        assert "RELULSTM against NPLSTM" in text and "3 findings planned" in text
    markdown = written.markdown.read_text()
    assert all(f"**{v}**" in markdown for v in ("better", "equivalent", "worse"))
    assert "# lstmbench: RELULSTM against NPLSTM, LSTM, GRU" in markdown
    assert "<tr class='better'>" in written.html.read_text()


def test_speed_is_the_ratio_to_nplstm_per_training_sample():
    text = speed_text("RELULSTM", {"RELULSTM": 3e-4, "NPLSTM": 2e-4, "GRU": 8e-3}, "NPLSTM")
    assert text.startswith("speed ratio RELULSTM / NPLSTM: 1.50")
    assert "GRU: 8 ms (40.00x NPLSTM)" in text
    assert "not timed" in speed_text("RELULSTM", {}, "NPLSTM")


# -- refusals -------------------------------------------------------------------------------


def compare(db, *extra) -> list[str]:
    return ["compare", "--cell", "RELULSTM", "--db", str(db), "--quiet", *extra]


@pytest.mark.parametrize(
    "extra, says",
    [
        (["--budget", "soon"], "--budget 'soon' is not a duration"),
        (["--budget", "5m", "--scale", "tiny"], "not both"),
        (["--budget", "5m", "--cell", "NOSUCHCELL"], "NOSUCHCELL"),
    ],
)
def test_bad_input_is_one_message_and_makes_no_database(tmp_path, capsys, extra, says):
    db = tmp_path / "c.db"
    assert main(compare(db, *extra)) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not db.exists()


@pytest.mark.parametrize("cell, budget", [("LSTM", 300.0), ("RELULSTM", 600.0)])
def test_a_plan_for_another_cell_or_budget_is_refused(tmp_path, capsys, cell, budget):
    db = tmp_path / "c.db"
    Plan(budget, 2, 1, [comparison_name(MNIST, cell)]).save(plan_path(db))
    assert main(compare(db, "--budget", "5m")) == 2
    err = capsys.readouterr().err
    assert f"made for --budget {budget / 60:.0f}m and versus-{cell}-cell_types_mnist" in err
    assert "same --budget, --cell and --protocol" in err and "another --db" in err
    assert "Traceback" not in err


# -- one real run on MNIST -------------------------------------------------------------------


def test_a_budgeted_comparison_runs_reports_and_resumes(tmp_path, mnist_dir, capsys, monkeypatch):
    # GRU trains step by step in Python, about 25 times slower per sample than the fused
    # LSTM cells: with it, minutes plan no run at all. The references are cut to NPLSTM so
    # that 90 s train a pilot and rounds on a busy machine; the machinery is the same.
    monkeypatch.setattr(comparison, "REFERENCE_CELLS", ("NPLSTM",))
    db = tmp_path / "compare.db"
    command = compare(db, "--budget", "90s", "--data", str(mnist_dir), "-o", str(tmp_path / "r"))
    assert main(command) == 0
    out = capsys.readouterr().out
    assert "plan written to" in out and "speed ratio RELULSTM / NPLSTM" in out
    plan = json.loads(plan_path(db).read_text())
    [experiment] = plan["experiments"]
    assert plan["specs"] == [SWEEP] and experiment["samples"] > 0, experiment["note"]
    assert set(experiment["cell_seconds"]) == {"RELULSTM", "NPLSTM"}
    assert set(experiment["verdicts"]) == {"versus_NPLSTM"}
    with sqlite3.connect(db) as connection:
        first = connection.execute("SELECT run_id, finished FROM runs ORDER BY run_id").fetchall()
    cells = {r["cell"] for r in ResultsStore(db).runs(SWEEP)}
    assert len(first) >= 2 * PILOT_POINTS and cells == {"RELULSTM", "NPLSTM"}
    # each cell is compared at its best rate: a group whose first stage learned had a second
    # stage around its best rate, and draws from a band narrower than one first-stage step
    assert experiment["refine"]
    for group in experiment["groups"]:
        if group["learned_in_pilot"]:
            assert len(group["pilot"]) > PILOT_POINTS and "refined" in group["band_note"]
            low, high = group["band"]
            assert high / low <= 10 ** (5 / (PILOT_POINTS - 1)) + 1e-9
    report = (tmp_path / "r" / "report.md").read_text()
    for section in ("Budget plan", "Learning-rate pilot", "Runs needed", "Speed"):
        assert f"## {section}" in report
    assert "RELULSTM against NPLSTM" in report and "Peepholes" not in report

    assert main(command) == 0
    assert "resuming the plan" in capsys.readouterr().out
    with sqlite3.connect(db) as connection:
        again = connection.execute("SELECT run_id, finished FROM runs ORDER BY run_id").fetchall()
    assert again == first  # no run added, none trained again

    other = ["compare", "--cell", "LSTM", *command[3:]]
    assert main(other) == 2
    assert "versus-RELULSTM-cell_types_mnist" in capsys.readouterr().err
