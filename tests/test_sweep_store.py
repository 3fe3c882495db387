"""The results store: round trip, several writer processes, merge and export."""

import dataclasses
import math
import multiprocessing

import pytest

from lstmbench.errors import UserError
from lstmbench.sweep.store import ResultsStore
from lstmbench.training.config import RunConfig
from lstmbench.training.loop import train_run

TINY = RunConfig(
    dataset="mnist",
    cell="LSTM",
    direction="uni",
    target="end",
    hidden=8,
    lr=0.05,
    batch_size=20,
    samples=200,
    eval_every=100,
    eval_samples=100,
)


@pytest.fixture(scope="module")
def trained(small_mnist):
    """A real, short training run on real MNIST."""
    return train_run(TINY, progress=False, datasets=small_mnist)


def variant(result, seed):
    """The same result filed under another config (a distinct run id)."""
    copy = dataclasses.replace(result, config=dataclasses.replace(result.config, seed=seed))
    copy.model = None
    return copy


def test_round_trip_of_a_real_run(tmp_path, trained):
    store = ResultsStore(tmp_path / "results.db")
    store.ensure_sweep("lr_hidden", {"name": "lr_hidden", "fixed": {"hidden": 8}}, "tiny")
    store.ensure_sweep("lr_hidden", {"other": True}, "paper")  # an existing sweep is kept
    store.add_runs("lr_hidden", [TINY])
    assert [r["status"] for r in store.runs("lr_hidden")] == ["queued"]
    store.mark_running("lr_hidden", TINY.run_id)
    assert store.counts("lr_hidden")["running"] == 1
    store.record_result("lr_hidden", trained)

    [sweep] = store.sweeps()
    assert sweep["name"] == "lr_hidden" and sweep["scale"] == "tiny"
    assert sweep["spec"] == {"name": "lr_hidden", "fixed": {"hidden": 8}}
    [run] = store.runs("lr_hidden", "done")
    assert run["run_id"] == TINY.run_id and run["sweep"] == "lr_hidden"
    assert run["best_error"] == trained.best_error
    assert run["final_error"] == trained.final_error
    assert run["samples_seen"] == 200 and run["best_samples"] == trained.best_samples
    assert run["attempts"] == 1 and run["error"] is None
    assert run["host"] and run["version"] and run["git_rev"] and run["finished"]
    for name, value in TINY.to_dict().items():
        assert run[name] == value, name
    curve = store.curve(TINY.run_id)
    assert [p["samples"] for p in curve] == [100, 200]
    for stored, measured in zip(curve, trained.curve, strict=True):
        assert stored == pytest.approx(measured)
    assert store.runs("lr_hidden", "failed") == [] and store.runs("other") == []
    assert store.best_error("lr_hidden") == trained.best_error
    assert math.isnan(store.best_error("other"))


def test_failure_and_requeue(tmp_path):
    store = ResultsStore(tmp_path / "results.db")
    store.add_runs("s", [TINY])
    store.mark_running("s", TINY.run_id)
    assert store.requeue_interrupted("s") == 1
    assert store.queued("s") == [TINY]
    store.record_failure("s", TINY, "RuntimeError: boom")
    [run] = store.runs("s")
    assert run["status"] == "failed" and run["error"] == "RuntimeError: boom"
    assert math.isnan(run["best_error"])
    assert store.requeue_failed("s") == 1 and store.counts("s")["queued"] == 1


def _write_many(path, result, first, count):
    store = ResultsStore(path)
    for seed in range(first, first + count):
        result_k = variant(result, seed)
        store.add_runs("s", [result_k.config])
        store.mark_running("s", result_k.config.run_id)
        store.record_result("s", result_k)


def test_several_processes_write_at_once(tmp_path, trained):
    path = tmp_path / "results.db"
    ResultsStore(path)
    light = variant(trained, 0)
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_write_many, args=(path, light, 1000 * w, 30)) for w in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    store = ResultsStore(path)
    runs = store.runs("s")
    assert len(runs) == 120 and {r["status"] for r in runs} == {"done"}
    assert len({r["run_id"] for r in runs}) == 120
    for run in runs[::17]:
        assert len(store.curve(run["run_id"])) == len(trained.curve)


def test_merge_adds_without_duplicates(tmp_path, trained):
    here = ResultsStore(tmp_path / "here.db")
    there = ResultsStore(tmp_path / "there.db")
    a, b, c = (variant(trained, seed) for seed in (1, 2, 3))
    here.add_runs("s", [a.config, b.config, c.config])
    here.record_result("s", a)
    there.ensure_sweep("s", {"name": "s"}, "tiny")
    there.add_runs("s", [a.config, b.config, c.config])
    there.record_result("s", a)
    there.record_result("s", b)
    there.mark_running("s", c.config.run_id)
    counts = here.merge(tmp_path / "there.db")
    assert counts == {"added": 0, "updated": 1, "kept": 2}
    assert here.counts("s") == {"queued": 1, "running": 0, "done": 2, "failed": 0, "diverged": 0}
    assert len(here.curve(b.config.run_id)) == len(trained.curve)
    assert here.merge(tmp_path / "there.db") == {"added": 0, "updated": 0, "kept": 3}
    assert [s["name"] for s in here.sweeps()] == ["s"]
    with pytest.raises(UserError, match="does not exist"):
        here.merge(tmp_path / "missing.db")


def test_export_csv_and_parquet(tmp_path, trained):
    import csv

    import pyarrow.parquet as pq

    store = ResultsStore(tmp_path / "results.db")
    store.add_runs("s", [TINY, variant(trained, 5).config])
    store.record_result("s", trained)
    assert store.export(tmp_path / "runs.csv", "s") == 2
    rows = list(csv.DictReader((tmp_path / "runs.csv").open()))
    assert {r["status"] for r in rows} == {"done", "queued"}
    assert float(rows[0]["best_error"]) == trained.best_error and rows[0]["hidden"] == "8"
    assert store.export(tmp_path / "curves.parquet", "s", curves=True) == len(trained.curve)
    table = pq.read_table(tmp_path / "curves.parquet").to_pylist()
    assert [p["samples"] for p in table] == [p["samples"] for p in trained.curve]
    store.export(tmp_path / "runs.parquet")
    assert pq.read_table(tmp_path / "runs.parquet").num_rows == 2
    with pytest.raises(UserError, match=r"\.csv or \.parquet"):
        store.export(tmp_path / "runs.xlsx")


def test_a_file_that_is_not_a_database_is_named(tmp_path):
    bad = tmp_path / "notes.db"
    bad.write_text("these are not results " * 100)
    with pytest.raises(UserError, match="notes.db is not a usable results database"):
        ResultsStore(bad)
    with pytest.raises(UserError, match="does not exist"):
        ResultsStore(tmp_path / "nowhere" / "r.db")
    # Refusing must not harm: the file is left as it was and no folder is made.
    assert bad.read_text() == "these are not results " * 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]
