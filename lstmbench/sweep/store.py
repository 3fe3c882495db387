"""The results store: sweeps, runs and curve points in one SQLite file.

Several processes may write at once: the file is in WAL mode, every write is one short
`BEGIN IMMEDIATE` transaction, and a writer waits (up to a minute) for another to finish.

Several runners may share one file's queue: a runner claims queued runs in one transaction
(only runs still queued become its own), names itself in the run's `holder` column
("host:pid") and keeps renewing a lease (`lease_until`, Unix time). A run left 'running'
goes back in the queue only once its holder is known to be gone: its lease ran out, or
its holder was a process on this host that no longer exists.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import platform
import sqlite3
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from lstmbench import __version__
from lstmbench.errors import UserError
from lstmbench.training.config import RunConfig

STATUSES = ("queued", "running", "done", "failed", "diverged")
FINISHED = ("done", "diverged")
SCHEMA_VERSION = 2  # 2: runs.holder and runs.lease_until, added to version-1 files on open
OPEN_WAIT = 60.0  # seconds to wait for another process's lock when opening

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sweeps (
    name TEXT PRIMARY KEY,
    scale TEXT NOT NULL,
    spec TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    sweep TEXT NOT NULL,
    run_id TEXT NOT NULL,
    status TEXT NOT NULL,
    config TEXT NOT NULL,
    best_error REAL,
    final_error REAL,
    best_samples INTEGER,
    samples_seen INTEGER,
    wall_time REAL,
    error TEXT,
    reason TEXT,
    host TEXT,
    version TEXT,
    git_rev TEXT,
    started TEXT,
    finished TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    holder TEXT,
    lease_until REAL,
    PRIMARY KEY (sweep, run_id)
);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (sweep, status);
CREATE TABLE IF NOT EXISTS curve_points (
    run_id TEXT NOT NULL,
    samples INTEGER NOT NULL,
    test_error REAL,
    train_loss REAL,
    wall_time REAL,
    PRIMARY KEY (run_id, samples)
);
"""

# Run columns besides the config, in the order runs() and exports list them.
RUN_COLUMNS = (
    "run_id",
    "sweep",
    "status",
    "best_error",
    "final_error",
    "best_samples",
    "samples_seen",
    "wall_time",
    "error",
    "reason",
    "host",
    "version",
    "git_rev",
    "started",
    "finished",
    "attempts",
    "holder",
    "lease_until",
)
# Columns that version 2 added to the runs table, with their types.
_ADDED_RUN_COLUMNS = {"holder": "TEXT", "lease_until": "REAL"}
_FLOAT_COLUMNS = ("best_error", "final_error", "wall_time")
CURVE_COLUMNS = ("samples", "test_error", "train_loss", "wall_time")


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


_GIT_REV: str | None = None


def git_revision() -> str:
    """The git commit of the code that is running, or "unknown" outside a checkout."""
    global _GIT_REV
    if _GIT_REV is None:
        try:
            found = subprocess.run(
                ["git", "rev-parse", "--short=12", "HEAD"],
                cwd=Path(__file__).resolve().parent,
                capture_output=True,
                text=True,
                timeout=10,
            )
            _GIT_REV = found.stdout.strip() if found.returncode == 0 else "unknown"
        except (OSError, subprocess.SubprocessError):
            _GIT_REV = "unknown"
    return _GIT_REV


def _number(value) -> float:
    """SQLite stores NaN as NULL; give it back as NaN so metric columns stay floats."""
    return float("nan") if value is None else float(value)


def _storable(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def runner_id() -> str:
    """This process as the holder of the runs it claims: "host:pid"."""
    return f"{platform.node()}:{os.getpid()}"


def holder_gone(holder: str | None) -> bool:
    """Whether a holder is known to be gone: no holder, or a process of this host that has
    ended. Another host's processes cannot be seen from here; their leases tell."""
    if not holder:
        return True
    host, _, pid = holder.rpartition(":")
    if host != platform.node() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)  # signal 0 only checks that the process exists
    except (ProcessLookupError, OverflowError):  # no such process (or no such pid at all)
        return True
    except PermissionError:  # another user's process: alive
        return False
    return False


class ResultsStore:
    """One SQLite results file: open or create it; safe for several processes at once."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.is_dir():
            raise UserError(f"results database {self.path} is a directory; give a file path")
        if not self.path.parent.exists():
            raise UserError(
                f"folder {self.path.parent} for the results database does not exist; create it"
            )
        self._connection: sqlite3.Connection | None = None
        self._pid = -1
        try:
            self._create_waiting()
        except sqlite3.DatabaseError as error:
            raise UserError(
                f"{self.path} is not a usable results database ({error}); "
                "give another --db file or move this one away"
            ) from None

    # -- connection -------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        """This process's connection (a forked child opens its own)."""
        if self._connection is None or self._pid != os.getpid():
            connection = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA busy_timeout = 60000")
            # In WAL mode this survives any process crash; only a power cut may lose the
            # last commits, which a resumed sweep simply runs again.
            connection.execute("PRAGMA synchronous = NORMAL")
            self._connection, self._pid = connection, os.getpid()
        return self._connection

    def _write(self, statements):
        """Run `statements(connection)` as one transaction that excludes other writers;
        returns what it returns."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            value = statements(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return value

    def _create_waiting(self) -> None:
        """Create or open the file, waiting while another process holds it. Some of SQLite's
        locks (switching to WAL, recovering a WAL file a crashed process left) answer "database
        is locked" at once instead of waiting out the busy timeout, so runners started
        together on one new file would otherwise fail; they retry for up to a minute."""
        deadline = time.monotonic() + OPEN_WAIT
        while True:
            try:
                return self._create()
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _create(self) -> None:
        db = self._db()
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.execute("PRAGMA journal_mode = WAL")

        def create(db):
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if int(version[0]) == 1:  # a version-1 file only lacks the claim columns
                present = {row["name"] for row in db.execute("PRAGMA table_info(runs)")}
                for name, kind in _ADDED_RUN_COLUMNS.items():
                    if name not in present:
                        db.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
                db.execute(
                    "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
                )

        self._write(create)
        version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        if int(version) != SCHEMA_VERSION:
            raise UserError(
                f"{self.path} has results schema version {version}, this lstmbench reads "
                f"version {SCHEMA_VERSION}; use a matching lstmbench or a new --db file"
            )

    def close(self) -> None:
        """Close this process's connection."""
        if self._connection is not None and self._pid == os.getpid():
            self._connection.close()
        self._connection = None

    def __getstate__(self):
        return {"path": self.path}

    def __setstate__(self, state):
        self.path, self._connection, self._pid = state["path"], None, -1

    # -- sweeps -----------------------------------------------------------------------

    def ensure_sweep(self, name: str, spec: dict, scale: str) -> None:
        """Register a sweep (its spec and scale); an existing sweep of that name is kept."""
        spec_text = json.dumps(spec, sort_keys=True)

        def insert(db):
            db.execute(
                "INSERT OR IGNORE INTO sweeps (name, scale, spec, created) VALUES (?, ?, ?, ?)",
                (name, scale, spec_text, now()),
            )

        self._write(insert)

    def sweeps(self) -> list[dict]:
        """Every sweep: {name, scale, spec (dict), created}."""
        rows = self._db().execute("SELECT * FROM sweeps ORDER BY created, name").fetchall()
        return [
            {
                "name": row["name"],
                "scale": row["scale"],
                "spec": json.loads(row["spec"]),
                "created": row["created"],
            }
            for row in rows
        ]

    # -- runs -------------------------------------------------------------------------

    def add_runs(self, sweep: str, configs: Iterable[RunConfig]) -> int:
        """Queue these runs in a sweep unless already there; returns how many were new."""
        rows = [
            (sweep, c.run_id, "queued", json.dumps(c.to_dict(), sort_keys=True)) for c in configs
        ]

        def insert(db):
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO runs (sweep, run_id, status, config) VALUES (?, ?, ?, ?)",
                rows,
            )
            return db.total_changes - before

        return self._write(insert)

    def claim(self, sweep: str, run_ids: Iterable[str], holder: str, lease: float) -> list[str]:
        """Take those of these runs that are still queued, for `holder`, for `lease` seconds.

        One transaction: of several runners claiming the same runs, each run goes to exactly
        one. Returns the run ids claimed, in the order given.
        """
        claimed = []
        started, host, until = now(), platform.node(), time.time() + lease

        def update(db):
            for run_id in run_ids:
                cursor = db.execute(
                    "UPDATE runs SET status = 'running', started = ?, host = ?, error = NULL, "
                    "attempts = attempts + 1, holder = ?, lease_until = ? "
                    "WHERE sweep = ? AND run_id = ? AND status = 'queued'",
                    (started, host, holder, until, sweep, run_id),
                )
                if cursor.rowcount:
                    claimed.append(run_id)

        self._write(update)
        return claimed

    def renew(self, holder: str, lease: float) -> int:
        """Extend the lease of every run `holder` is running; returns how many."""

        def update(db):
            return db.execute(
                "UPDATE runs SET lease_until = ? WHERE holder = ? AND status = 'running'",
                (time.time() + lease, holder),
            ).rowcount

        return self._write(update)

    def release(self, holder: str) -> int:
        """Put the runs `holder` is still running back in the queue; returns how many."""

        def update(db):
            return db.execute(
                "UPDATE runs SET status = 'queued', lease_until = NULL "
                "WHERE holder = ? AND status = 'running'",
                (holder,),
            ).rowcount

        return self._write(update)

    def requeue_interrupted(self, sweep: str) -> int:
        """Put runs whose runner is gone back in the queue; returns how many.

        A run 'running' for a live runner (its lease not expired, or its holder a live
        process on this host) is left alone: that runner is training it right now.
        """

        def update(db):
            rows = db.execute(
                "SELECT run_id, holder, lease_until FROM runs "
                "WHERE sweep = ? AND status = 'running'",
                (sweep,),
            ).fetchall()
            clock = time.time()
            gone = [
                (sweep, row["run_id"])
                for row in rows
                if row["lease_until"] is None
                or row["lease_until"] < clock
                or holder_gone(row["holder"])
            ]
            db.executemany(
                "UPDATE runs SET status = 'queued', lease_until = NULL "
                "WHERE sweep = ? AND run_id = ? AND status = 'running'",
                gone,
            )
            return len(gone)

        return self._write(update)

    def requeue_failed(self, sweep: str) -> int:
        """Give failed runs another try; returns how many."""

        def update(db):
            cursor = db.execute(
                "UPDATE runs SET status = 'queued' WHERE sweep = ? AND status = 'failed'", (sweep,)
            )
            return cursor.rowcount

        return self._write(update)

    def record_result(self, sweep: str, result) -> None:
        """Store a finished run (done or diverged) with its whole curve."""
        config: RunConfig = result.config
        if result.status not in FINISHED:
            raise ValueError(f"record_result takes finished runs, not status {result.status!r}")
        values = (
            result.status,
            json.dumps(config.to_dict(), sort_keys=True),
            _storable(result.best_error),
            _storable(result.final_error),
            result.best_samples,
            result.samples_seen,
            result.wall_time,
            result.reason or None,
            result.host,
            __version__,
            git_revision(),
            now(),
        )
        points = [
            (
                config.run_id,
                int(p["samples"]),
                _storable(p["test_error"]),
                _storable(p["train_loss"]),
                _storable(p["wall_time"]),
            )
            for p in result.curve
        ]

        def store(db):
            db.execute(
                "INSERT OR IGNORE INTO runs (sweep, run_id, status, config) VALUES (?, ?, ?, ?)",
                (sweep, config.run_id, "running", values[1]),
            )
            db.execute(
                "UPDATE runs SET status = ?, config = ?, best_error = ?, final_error = ?, "
                "best_samples = ?, samples_seen = ?, wall_time = ?, error = NULL, reason = ?, "
                "host = ?, version = ?, git_rev = ?, finished = ?, "
                "started = COALESCE(started, ?) WHERE sweep = ? AND run_id = ?",
                (*values, values[-1], sweep, config.run_id),
            )
            db.execute("DELETE FROM curve_points WHERE run_id = ?", (config.run_id,))
            db.executemany("INSERT INTO curve_points VALUES (?, ?, ?, ?, ?)", points)

        self._write(store)

    def record_failure(self, sweep: str, config: RunConfig, error: str) -> None:
        """Store a run that raised, with its error text."""
        config_text = json.dumps(config.to_dict(), sort_keys=True)

        def store(db):
            db.execute(
                "INSERT OR IGNORE INTO runs (sweep, run_id, status, config) VALUES (?, ?, ?, ?)",
                (sweep, config.run_id, "failed", config_text),
            )
            db.execute(
                "UPDATE runs SET status = 'failed', error = ?, version = ?, git_rev = ?, "
                "finished = ? WHERE sweep = ? AND run_id = ?",
                (error, __version__, git_revision(), now(), sweep, config.run_id),
            )

        self._write(store)

    def queued(self, sweep: str) -> list[RunConfig]:
        """The configs of a sweep's runs still waiting, in the order they were added."""
        rows = (
            self._db()
            .execute(
                "SELECT config FROM runs WHERE sweep = ? AND status = 'queued' ORDER BY rowid",
                (sweep,),
            )
            .fetchall()
        )
        return [RunConfig.from_dict(json.loads(row["config"])) for row in rows]

    def counts(self, sweep: str | None = None) -> dict[str, int]:
        """How many runs have each status (all five statuses are keys)."""
        query = "SELECT status, COUNT(*) FROM runs"
        args: tuple = ()
        if sweep is not None:
            query, args = query + " WHERE sweep = ?", (sweep,)
        found = dict(self._db().execute(query + " GROUP BY status", args).fetchall())
        return {status: found.get(status, 0) for status in STATUSES}

    def best_error(self, sweep: str) -> float:
        """The lowest best error of a sweep's finished runs (NaN before any)."""
        query = "SELECT MIN(best_error) FROM runs WHERE sweep = ? AND status = 'done'"
        return _number(self._db().execute(query, (sweep,)).fetchone()[0])

    def runs(self, sweep: str | None = None, status: str | None = None) -> list[dict]:
        """One flat dict per run: its results, host and version, and every RunConfig field."""
        if status is not None and status not in STATUSES:
            raise UserError(f"unknown run status {status!r}; valid statuses: {', '.join(STATUSES)}")
        conditions, args = [], []
        if sweep is not None:
            conditions.append("sweep = ?")
            args.append(sweep)
        if status is not None:
            conditions.append("status = ?")
            args.append(status)
        where = " WHERE " + " AND ".join(conditions) if conditions else ""
        rows = self._db().execute(f"SELECT * FROM runs{where} ORDER BY rowid", args).fetchall()
        return [self._flatten(row) for row in rows]

    @staticmethod
    def _flatten(row: sqlite3.Row) -> dict:
        run = {name: row[name] for name in RUN_COLUMNS}
        for name in _FLOAT_COLUMNS:
            run[name] = _number(run[name])
        defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
        config = {**defaults, **json.loads(row["config"])}
        for name, value in config.items():
            run.setdefault(name, value)
        return run

    def curve(self, run_id: str) -> list[dict]:
        """A run's curve points in order: {samples, test_error, train_loss, wall_time}."""
        rows = (
            self._db()
            .execute("SELECT * FROM curve_points WHERE run_id = ? ORDER BY samples", (run_id,))
            .fetchall()
        )
        return [self.curve_point(row) for row in rows]

    def curves(self, sweep: str | None = None) -> list[dict]:
        """Every curve point (of one sweep's runs, if given), each with its run_id."""
        query = "SELECT * FROM curve_points"
        args: tuple = ()
        if sweep is not None:
            query += " WHERE run_id IN (SELECT run_id FROM runs WHERE sweep = ?)"
            args = (sweep,)
        rows = self._db().execute(query + " ORDER BY run_id, samples", args).fetchall()
        return [{"run_id": row["run_id"], **self.curve_point(row)} for row in rows]

    @staticmethod
    def curve_point(row: sqlite3.Row) -> dict:
        """One stored curve point as a dict of floats (NaN where not measured)."""
        return {
            "samples": row["samples"],
            "test_error": _number(row["test_error"]),
            "train_loss": _number(row["train_loss"]),
            "wall_time": _number(row["wall_time"]),
        }

    # -- merge ------------------------------------------------------------------------

    def merge(self, other_path: str | Path) -> dict[str, int]:
        """Merge another results file into this one, without duplicates.

        A run present in both keeps the more advanced record (finished over failed over
        queued); runs are deterministic, so two finished records of one config agree.
        Returns counts: {"added", "updated", "kept"}.
        """
        other_path = Path(other_path)
        if not other_path.is_file():
            raise UserError(f"results file {other_path} does not exist; give an existing file")
        try:
            other = sqlite3.connect(f"file:{other_path}?mode=ro", uri=True)
            other.row_factory = sqlite3.Row
            sweeps = other.execute("SELECT * FROM sweeps").fetchall()
            runs = other.execute("SELECT * FROM runs").fetchall()
        except sqlite3.DatabaseError as error:
            raise UserError(
                f"{other_path} is not a results database ({error}); give a file written by "
                "`lstmbench sweep run`"
            ) from None
        counts = {"added": 0, "updated": 0, "kept": 0}

        def merge(db):
            db.executemany(
                "INSERT OR IGNORE INTO sweeps (name, scale, spec, created) VALUES (?, ?, ?, ?)",
                [(s["name"], s["scale"], s["spec"], s["created"]) for s in sweeps],
            )
            for run in runs:
                key = (run["sweep"], run["run_id"])
                mine = db.execute(
                    "SELECT status FROM runs WHERE sweep = ? AND run_id = ?", key
                ).fetchone()
                if mine is not None and _rank(run["status"]) <= _rank(mine["status"]):
                    counts["kept"] += 1
                    continue
                counts["added" if mine is None else "updated"] += 1
                values = {name: run[name] for name in run.keys()}
                if values["status"] == "running":  # interrupted over there: run it again here
                    values["status"] = "queued"
                    values.pop("lease_until", None)
                columns = ", ".join(values)
                marks = ", ".join("?" for _ in values)
                db.execute(
                    f"INSERT OR REPLACE INTO runs ({columns}) VALUES ({marks})",
                    tuple(values.values()),
                )
                if values["status"] in FINISHED:
                    points = other.execute(
                        "SELECT run_id, samples, test_error, train_loss, wall_time "
                        "FROM curve_points WHERE run_id = ?",
                        (run["run_id"],),
                    ).fetchall()
                    db.execute("DELETE FROM curve_points WHERE run_id = ?", (run["run_id"],))
                    db.executemany(
                        "INSERT INTO curve_points VALUES (?, ?, ?, ?, ?)",
                        [tuple(p) for p in points],
                    )

        try:
            self._write(merge)
        finally:
            other.close()
        return counts

    # -- export -----------------------------------------------------------------------

    def export(self, path: str | Path, sweep: str | None = None, curves: bool = False) -> int:
        """Write the runs (or, with curves, the curve points) to .csv or .parquet; returns rows."""
        path = Path(path)
        rows = self.curves(sweep) if curves else self.runs(sweep)
        if curves:
            columns = ["run_id", *CURVE_COLUMNS]
        else:
            columns = [*RUN_COLUMNS, *(f.name for f in dataclasses.fields(RunConfig))]
        if path.suffix == ".csv":
            import csv

            with path.open("w", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=columns, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)
        elif path.suffix == ".parquet":
            try:
                import pyarrow as pa
                import pyarrow.parquet as pq
            except ImportError:
                raise UserError(
                    "Parquet export needs pyarrow: pip install 'lstmbench[parquet]', or export "
                    "to a .csv file"
                ) from None
            table = pa.table({name: [row.get(name) for row in rows] for name in columns})
            pq.write_table(table, path)
        else:
            raise UserError(f"cannot export to {path.name}: give a file ending in .csv or .parquet")
        return len(rows)


def _rank(status: str) -> int:
    """How far a run record got: finished beats failed beats queued or interrupted."""
    return {"done": 3, "diverged": 3, "failed": 2}.get(status, 0)
