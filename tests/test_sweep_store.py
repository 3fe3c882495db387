"""The results store: round trip, several writer processes, merge and export."""

import dataclasses
import json
import math
import multiprocessing
import platform
import sqlite3
import subprocess
import sys
import time

import pytest

from lstmbench.errors import UserError
from lstmbench.sweep.store import SCHEMA_VERSION, ResultsStore, runner_id
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
    assert store.claim("lr_hidden", [TINY.run_id], runner_id(), 60) == [TINY.run_id]
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
    store.claim("s", [TINY.run_id], runner_id(), 60)
    assert store.release(runner_id()) == 1
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
        store.claim("s", [result_k.config.run_id], runner_id(), 60)
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
    there.claim("s", [c.config.run_id], runner_id(), 60)
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


def configs(count):
    return [dataclasses.replace(TINY, seed=seed) for seed in range(count)]


def ended_pid() -> int:
    """The id of a process of this host that has ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_run_is_claimed_once_and_only_a_gone_holder_loses_it(tmp_path):
    store = ResultsStore(tmp_path / "results.db")
    a, b, c, d, e = (config.run_id for config in configs(5))
    store.add_runs("s", configs(5))
    host = platform.node()
    assert store.claim("s", [a, b], "me:1", 60) == [a, b]
    # A task partly claimed by another runner: only the runs still queued are taken.
    assert store.claim("s", [b, c], "you:2", 60) == [c]
    assert store.claim("s", [a, b, c], "you:2", 60) == []
    live = runner_id()  # this very process, on this host
    dead = f"{host}:{ended_pid()}"
    assert store.claim("s", [d], live, 60) == [d]
    assert store.claim("s", [e], dead, 60) == [e]
    holders = {run["run_id"]: run["holder"] for run in store.runs("s")}
    assert holders == {a: "me:1", b: "me:1", c: "you:2", d: live, e: dead}
    # Held by live runners (or by another host's runners whose lease runs): left alone.
    # Held by a process of this host that has ended: back in the queue at once.
    assert store.requeue_interrupted("s") == 1
    assert [config.run_id for config in store.queued("s")] == [e]
    # Another host's runner that stopped renewing loses its runs when the lease runs out.
    assert store.claim("s", [e], "far:3", 0.2) == [e]
    assert store.renew("me:1", 0.2) == 2
    assert store.renew("far:3", 0.2) == 1
    time.sleep(0.4)
    assert store.renew("me:1", 60) == 2  # still running: its lease goes on
    assert store.requeue_interrupted("s") == 1
    assert [config.run_id for config in store.queued("s")] == [e]
    assert store.counts("s")["running"] == 4
    assert {run["attempts"] for run in store.runs("s")} == {1, 2}  # e was claimed twice


# The results file as version 1 of lstmbench wrote it (no claim columns).
VERSION_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
CREATE TABLE sweeps (name TEXT PRIMARY KEY, scale TEXT NOT NULL, spec TEXT NOT NULL,
    created TEXT NOT NULL);
CREATE TABLE runs (sweep TEXT NOT NULL, run_id TEXT NOT NULL, status TEXT NOT NULL,
    config TEXT NOT NULL, best_error REAL, final_error REAL, best_samples INTEGER,
    samples_seen INTEGER, wall_time REAL, error TEXT, reason TEXT, host TEXT, version TEXT,
    git_rev TEXT, started TEXT, finished TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sweep, run_id));
CREATE INDEX runs_by_status ON runs (sweep, status);
CREATE TABLE curve_points (run_id TEXT NOT NULL, samples INTEGER NOT NULL, test_error REAL,
    train_loss REAL, wall_time REAL, PRIMARY KEY (run_id, samples));
"""


def test_a_version_1_file_opens_and_gains_the_claim_columns(tmp_path):
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(VERSION_1)
    first, second = configs(2)
    rows = [
        ("s", config.run_id, status, json.dumps(config.to_dict(), sort_keys=True), 1)
        for config, status in ((first, "done"), (second, "running"))
    ]
    old.executemany(
        "INSERT INTO runs (sweep, run_id, status, config, attempts) VALUES (?, ?, ?, ?, ?)", rows
    )
    old.commit()
    old.close()
    store = ResultsStore(path)
    [[version]] = store._db().execute("SELECT value FROM meta WHERE key = 'schema_version'")
    assert version == str(SCHEMA_VERSION) == "2"
    runs = store.runs("s")
    assert [run["status"] for run in runs] == ["done", "running"]
    assert runs[1]["holder"] is None and runs[1]["lease_until"] is None
    # A run a version-1 runner left 'running' has no holder: it was interrupted.
    assert store.requeue_interrupted("s") == 1
    assert store.claim("s", [second.run_id], runner_id(), 60) == [second.run_id]
    ResultsStore(path)  # opening it again changes nothing
    assert store.runs("s")[1]["holder"] == runner_id()


def test_a_newer_file_is_refused(tmp_path):
    path = tmp_path / "new.db"
    ResultsStore(path)._db().execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    with pytest.raises(UserError, match="schema version 3, this lstmbench reads version 2"):
        ResultsStore(path)


OPEN_TOGETHER = """
import sys, time
from lstmbench.sweep.store import ResultsStore
while time.time() < float(sys.argv[2]):  # start together
    pass
ResultsStore(sys.argv[1]).sweeps()
"""


def test_processes_opening_a_new_file_at_once_all_get_it(tmp_path):
    """Two runners started together on a new results file (the usual way to add workers)
    both open it: the first creates it, the other waits rather than failing."""
    path = tmp_path / "new.db"
    start = time.time() + 3.0  # past every process's start-up
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_TOGETHER, str(path), str(start)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=120)[1] for p in processes]
    assert [p.returncode for p in processes] == [0] * 4, errors
