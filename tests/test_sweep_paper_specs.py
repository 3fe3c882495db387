"""Every paper spec runs at tiny scale: real training on real MNIST and generated lines."""

import math

from lstmbench.analysis.paper import SPECS
from lstmbench.cli.analysis import options_for
from lstmbench.sweep.runner import SweepOptions, make_executor, run_sweep
from lstmbench.sweep.spec import load_spec, spec_names
from lstmbench.sweep.store import ResultsStore


def test_every_paper_spec_runs_at_tiny_scale(tmp_path, mnist_dir):
    store = ResultsStore(tmp_path / "results.db")
    options = SweepOptions(scale="tiny", workers=2, data_path=str(mnist_dir), progress=False)
    names = list(SPECS)  # the paper's experiments, as `lstmbench reproduce` runs them
    assert len(names) == 7 and sorted(names) == sorted(spec_names())
    executor = make_executor(options)  # one pool of workers for all seven sweeps
    try:
        # --data is the MNIST folder: the line specs must not write their cache into it.
        summaries = {
            name: run_sweep(load_spec(name), store, options_for(load_spec(name), options), executor)
            for name in names
        }
    finally:
        executor.shutdown()
    for name, summary in summaries.items():
        spec = load_spec(name)
        runs = store.runs(name)
        assert len(runs) == spec.scale("tiny").runs, name
        assert summary.counts["failed"] == 0 and summary.counts["queued"] == 0, name
        for run in runs:
            assert run["status"] in ("done", "diverged"), (name, run["error"])
            curve = store.curve(run["run_id"])
            if run["status"] == "done":  # a diverged run may stop before its first evaluation
                assert curve and curve[-1]["samples"] == run["samples_seen"]
            errors = [p["test_error"] for p in curve if math.isfinite(p["test_error"])]
            assert all(e >= 0 for e in errors), name
            if spec.fixed.get("dataset", "mnist") == "mnist":
                # a share of digits; a character error rate may pass 1 where a network that
                # has not learned emits more characters than a line holds
                assert all(e <= 1 for e in errors), name
    assert sorted(s["name"] for s in store.sweeps()) == sorted(names)
