"""The reference run kept in the repository: a clean clone can rebuild its report."""

import json
import shutil
from pathlib import Path

import pytest

from lstmbench.analysis.paper import EXPERIMENTS, read_experiments
from lstmbench.cli.main import main
from lstmbench.sweep.budget import Plan
from lstmbench.sweep.store import ResultsStore

REFERENCE = Path(__file__).resolve().parent.parent / "reference" / "budget-2h"


KEPT = sorted(path.parent for path in REFERENCE.parent.glob("*/results.db"))


@pytest.mark.parametrize("kept", KEPT, ids=[path.name for path in KEPT])
def test_the_reference_database_and_plan_are_there_and_read(tmp_path, kept):
    copy = tmp_path / "results.db"  # a copy: reading must not touch the kept file
    shutil.copy(kept / "results.db", copy)
    runs = read_experiments(ResultsStore(copy))
    planned = Plan.from_dict(json.loads((kept / "results.plan.json").read_text()))
    assert {e.spec for e in EXPERIMENTS} == set(planned.specs)
    # every experiment the plan ran has its finished runs in the database
    for experiment in planned.experiments:
        if experiment.planned:
            assert len(runs[experiment.spec]) >= sum(g.runs for g in experiment.groups)


def test_the_report_rebuilt_from_the_reference_has_the_budgets_sections(tmp_path, capsys):
    # `lstmbench report` reads the plan beside the database: the rebuilt report says what each
    # open claim still needs, as the budgeted run's own report did.
    for name in ("results.db", "results.plan.json"):
        shutil.copy(REFERENCE / name, tmp_path / name)
    assert main(["report", str(tmp_path / "results.db"), "-o", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    for title in ("Budget plan", "Learning-rate pilot", "Runs needed to decide the open claims"):
        assert f"## {title}" in report
    # and without a plan beside it, a database gives the report of its runs alone
    (tmp_path / "results.plan.json").unlink()
    assert main(["report", str(tmp_path / "results.db"), "-o", str(tmp_path / "plain")]) == 0
    assert "## Budget plan" not in (tmp_path / "plain" / "report.md").read_text()
    # a plan that cannot be read is named, and the runs still get their report
    (tmp_path / "results.plan.json").write_text("{not json")
    assert main(["report", str(tmp_path / "results.db"), "-o", str(tmp_path / "broken")]) == 0
    assert "results.plan.json cannot be read" in capsys.readouterr().err
    assert (tmp_path / "broken" / "report.md").is_file()


EXTENDED = REFERENCE.parent / "budget-2h-extended"


def test_the_extended_reference_keeps_every_run_and_round_of_the_one_it_extends(tmp_path):
    def plan_of(folder: Path) -> Plan:
        return Plan.from_dict(json.loads((folder / "results.plan.json").read_text()))

    def runs_of(folder: Path) -> dict[str, dict]:
        shutil.copy(folder / "results.db", tmp_path / "copy.db")
        return {r["run_id"]: r for r in ResultsStore(tmp_path / "copy.db").runs()}

    before, after = plan_of(REFERENCE), plan_of(EXTENDED)
    assert (after.planned_for, after.budget) == (before.budget, 12600)
    assert after.rounds[: len(before.rounds)] == before.rounds
    assert [e.samples for e in after.experiments] == [e.samples for e in before.experiments]
    assert all(r.number > 2 and r.done for r in after.rounds[len(before.rounds) :])
    old, new = runs_of(REFERENCE), runs_of(EXTENDED)
    assert len(new) > len(old)
    # none of them trained again: each kept as it finished
    assert all(new[i]["finished"] == run["finished"] for i, run in old.items())
    # the report says the plan was extended, and what a longer budget would pay for
    for name in ("results.db", "results.plan.json"):
        shutil.copy(EXTENDED / name, tmp_path / name)
    assert main(["report", str(tmp_path / "results.db"), "-o", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "budget 3h30m (extended from 2h" in report
    assert "run the same command with --budget" in report


def test_a_report_says_why_a_budget_ran_none_of_an_experiment(tmp_path):
    """Where the plan deferred an experiment, its claims and figures say so, and name the
    budget that would plan it, not a sweep command to run by hand into the same database."""
    plan = Plan.from_dict(json.loads((REFERENCE / "results.plan.json").read_text()))
    deferred = plan.experiment("batch_momentum")
    deferred.samples = 0
    deferred.note = "deferred: its 39 runs need 1 core-hours; about --budget 51m29s plans it"
    plan.save(tmp_path / "results.plan.json")
    ResultsStore(tmp_path / "results.db")  # no runs at all
    assert main(["report", str(tmp_path / "results.db"), "-o", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    why = f"has no runs of the 'batch_momentum' sweep: none in this budget ({deferred.note})"
    claims = [line for line in report.splitlines() if "| batch_momentum | **" in line]
    assert len(claims) == 3 and all(why in line for line in claims)
    assert f"fig4: not drawn: Fig. 4 {why}" in report
    assert "lstmbench sweep run batch_momentum" not in report
    # an experiment the plan ran, whose runs are missing, still names the command
    assert "run `lstmbench sweep run lr_hidden --db DB`" in report
