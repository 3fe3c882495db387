"""The Ray executor: the same sweep on a local Ray cluster, results in the same database."""

from lstmbench.sweep.runner import SweepOptions, run_sweep
from lstmbench.sweep.spec import load_spec
from lstmbench.sweep.store import ResultsStore

SPEC = """
name = "ray_demo"
seed = 11
[fixed]
cell = "NPLSTM"
direction = "uni"
target = "end"
batch_size = 20
samples = 200
eval_every = 100
eval_samples = 100
[sweep]
hidden = { values = [4, 6] }
lr = { log_uniform = [1e-3, 1e-1] }
[scales.tiny]
runs = 6
[scales.small]
runs = 6
[scales.paper]
runs = 6
"""


def test_a_sweep_on_a_local_ray_cluster(tmp_path, mnist_dir):
    path = tmp_path / "ray_demo.toml"
    path.write_text(SPEC)
    spec = load_spec(path)
    store = ResultsStore(tmp_path / "results.db")
    options = SweepOptions(
        executor="ray", workers=2, threads=1, data_path=str(mnist_dir), pack=2, progress=False
    )
    summary = run_sweep(spec, store, options)
    assert summary.finished_now == 6
    runs = store.runs("ray_demo")
    assert len(runs) == 6 and {r["status"] for r in runs} == {"done"}
    assert {r["hidden"] for r in runs} == {4, 6}
    for run in runs:
        curve = store.curve(run["run_id"])
        assert [p["samples"] for p in curve] == [100, 200]
        assert run["best_error"] == min(p["test_error"] for p in curve)
        assert run["host"] and run["git_rev"]
    # Run again: nothing is left to do, and nothing is repeated.
    again = run_sweep(spec, store, options)
    assert again.finished_now == 0 and again.counts["done"] == 6
