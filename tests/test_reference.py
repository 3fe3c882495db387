"""The reference run kept in the repository: a clean clone can rebuild its report."""

import json
import shutil
from pathlib import Path

from lstmbench.analysis.paper import EXPERIMENTS, read_experiments
from lstmbench.sweep.budget import Plan
from lstmbench.sweep.store import ResultsStore

REFERENCE = Path(__file__).resolve().parent.parent / "reference" / "budget-2h"


def test_the_reference_database_and_plan_are_there_and_read(tmp_path):
    copy = tmp_path / "results.db"  # a copy: reading must not touch the kept file
    shutil.copy(REFERENCE / "results.db", copy)
    runs = read_experiments(ResultsStore(copy))
    planned = Plan.from_dict(json.loads((REFERENCE / "results.plan.json").read_text()))
    assert {e.spec for e in EXPERIMENTS} == set(planned.specs)
    # every experiment the plan ran has its finished runs in the database
    for experiment in planned.experiments:
        if experiment.planned:
            assert len(runs[experiment.spec]) >= sum(g.runs for g in experiment.groups)
