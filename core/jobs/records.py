"""The jobs table (``<home>/jobs.sqlite``) and the :class:`Job` value read from it.

One row per job, written by the process that runs it and read by every process and
browser session of the workspace. SQLite in WAL mode with a busy timeout, so readers
never block the runner; each statement is its own transaction.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from core._shared import now_iso
from core.jobs.eta import estimate_eta, format_duration, format_eta

log = logging.getLogger(__name__)

JOBS_FILE = "jobs.sqlite"
BUSY_TIMEOUT_MS = 30_000
STATUSES = ("queued", "running", "done", "failed", "interrupted")
ACTIVE_STATUSES = ("queued", "running")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, dataset TEXT NOT NULL, kind TEXT NOT NULL, label TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}', status TEXT NOT NULL, stage TEXT NOT NULL DEFAULT '',
    unit TEXT NOT NULL DEFAULT 'rows', done INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0, result TEXT, error TEXT,
    pid INTEGER NOT NULL, owner TEXT NOT NULL,
    created TEXT NOT NULL, started TEXT, finished TEXT, updated TEXT NOT NULL,
    created_epoch REAL NOT NULL, started_epoch REAL, stage_epoch REAL, finished_epoch REAL,
    updated_epoch REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_dataset ON jobs (dataset, kind, created_epoch);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status);
"""


@dataclass(frozen=True)
class Job:
    """One job as last written: what it is, how far it got, how it ended.

    ``status`` is one of :data:`STATUSES`; ``done``/``total`` count ``unit`` within the
    current ``stage`` (``total`` 0: unknown); ``result`` is the summary dict the work
    returned (done jobs), ``error`` a one-line message (failed/interrupted jobs). ISO
    times (``created`` ... ``updated``, UTC, seconds) are for people; the ``*_epoch``
    floats (``time.time()``) for rate maths. ``updated`` is the runner's heartbeat.
    """

    id: str
    dataset: str
    kind: str
    label: str
    params: dict = field(default_factory=dict)
    status: str = "queued"
    stage: str = ""
    unit: str = "rows"
    done: int = 0
    total: int = 0
    result: dict | None = None
    error: str | None = None
    pid: int = 0
    created: str = ""
    started: str | None = None
    finished: str | None = None
    updated: str = ""
    created_epoch: float = 0.0
    started_epoch: float | None = None
    stage_epoch: float | None = None
    finished_epoch: float | None = None
    updated_epoch: float = 0.0

    @property
    def active(self) -> bool:
        """True while the job is queued or running."""
        return self.status in ACTIVE_STATUSES

    @property
    def fraction(self) -> float:
        """``done / total`` clipped to [0, 1]; 0.0 when ``total`` is 0 (unknown)."""
        if self.total <= 0:
            return 0.0
        return min(1.0, max(0.0, self.done / self.total))

    @property
    def elapsed_seconds(self) -> float:
        """Seconds since it started: until now while active, until it finished after;
        0.0 if it never started."""
        if self.started_epoch is None:
            return 0.0
        end = self.finished_epoch if self.finished_epoch is not None else (
            time.time() if self.active else self.updated_epoch)
        return max(0.0, end - self.started_epoch)

    def eta_at(self, now: float) -> float | None:
        """Seconds left at epoch ``now`` from the rate of the current stage so far; None
        unless running with 0 < done < total."""
        if self.status != "running" or self.stage_epoch is None:
            return None
        return estimate_eta(self.done, self.total, now - self.stage_epoch)

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left now (see :meth:`eta_at`); None when unknown or too early."""
        return self.eta_at(time.time())

    def count_text(self) -> str:
        """``"312 of 1,797 rows"``, ``"312 rows"`` (total unknown) or ``""`` (nothing yet)."""
        if self.total > 0:
            return f"{self.done:,} of {self.total:,} {self.unit}"
        return f"{self.done:,} {self.unit}" if self.done > 0 else ""

    def describe_progress(self) -> str:
        """One plain line for people (no markdown or HTML); the stage is shown apart.

        ``"waiting to start"``, ``"312 of 1,797 rows · about 40 s left"``,
        ``"working for 12 s"``, ``"finished in 1 min 12 s"``, ``"failed after 3 s"``,
        ``"interrupted at 312 of 1,797 rows"``.
        """
        counts = self.count_text()
        if self.status == "queued":
            return "waiting to start"
        if self.status == "running":
            parts = [counts or f"working for {format_duration(self.elapsed_seconds)}"]
            eta = format_eta(self.eta_seconds)
            return " · ".join(parts + [eta] if eta else parts)
        if self.status == "done":
            return f"finished in {format_duration(self.elapsed_seconds)}"
        if self.status == "failed":
            return f"failed after {format_duration(self.elapsed_seconds)}"
        return f"interrupted at {counts}" if counts else "interrupted"


_COLUMNS = tuple(f.name for f in fields(Job))
_JSON_COLUMNS = ("params", "result")


def to_json(value: dict | None) -> str | None:
    """``value`` as JSON text (keys sorted; paths and other objects as ``str``); None stays None.

    Raises TypeError or ValueError if it cannot be written (e.g. it refers to itself).
    """
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def new_job(dataset: str, kind: str, label: str, params: dict | None = None, *, pid: int) -> Job:
    """A queued :class:`Job` with a fresh uuid4 hex id, created now by process ``pid``."""
    created, epoch = now_iso(), time.time()
    return Job(id=uuid.uuid4().hex, dataset=dataset, kind=kind, label=label,
               params=dict(params or {}), pid=pid, created=created, updated=created,
               created_epoch=epoch, updated_epoch=epoch)


def _row_to_job(row: Sequence[Any]) -> Job:
    values = dict(zip(_COLUMNS, row))
    for name in _JSON_COLUMNS:
        if values[name] is not None:
            values[name] = json.loads(values[name])
    return Job(**values)


class JobTable:
    """The ``jobs`` table of one file; every method is one statement (one transaction).

    Thread-safe: one connection shared under a lock (statements are short). Closed by
    :meth:`close`; the next call reopens it.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._con: sqlite3.Connection | None = None
        with self._lock:
            self._connect().executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        if self._con is None:
            con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                  check_same_thread=False)
            con.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            self._con = con
        return self._con

    def _run(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._lock:
            return self._connect().execute(sql, params).rowcount

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            return self._connect().execute(sql, params).fetchall()

    def close(self) -> None:
        """Close the connection (reopened on the next call)."""
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    # ---- writes -------------------------------------------------------------
    def insert(self, job: Job, owner: str) -> None:
        """Add ``job`` (owned by ``owner``, see :mod:`core.jobs.liveness`)."""
        values = [to_json(getattr(job, c)) if c in _JSON_COLUMNS else getattr(job, c)
                  for c in _COLUMNS]
        marks = ", ".join("?" * (len(_COLUMNS) + 1))
        self._run(f"INSERT INTO jobs ({', '.join(_COLUMNS)}, owner) VALUES ({marks})",
                  [*values, owner])

    def mark_running(self, job_id: str) -> None:
        """Status running, started (and stage started) now."""
        iso, epoch = now_iso(), time.time()
        self._run("UPDATE jobs SET status='running', started=?, started_epoch=?, stage_epoch=?, "
                  "updated=?, updated_epoch=?, error=NULL WHERE id=?",
                  (iso, epoch, epoch, iso, epoch, job_id))

    def write_progress(self, job_id: str, done: int, total: int) -> None:
        """Store ``done`` of ``total`` and beat the heartbeat (a started job only)."""
        iso, epoch = now_iso(), time.time()
        self._run("UPDATE jobs SET done=?, total=?, status='running', error=NULL, finished=NULL, "
                  "finished_epoch=NULL, updated=?, updated_epoch=? "
                  "WHERE id=? AND status IN ('running', 'interrupted')",
                  (done, total, iso, epoch, job_id))

    def write_stage(self, job_id: str, stage: str, unit: str) -> None:
        """Start stage ``stage`` counted in ``unit``: done and total back to 0."""
        iso, epoch = now_iso(), time.time()
        self._run("UPDATE jobs SET stage=?, unit=?, done=0, total=0, stage_epoch=?, status='running', "
                  "error=NULL, finished=NULL, finished_epoch=NULL, updated=?, updated_epoch=? "
                  "WHERE id=? AND status IN ('running', 'interrupted')",
                  (stage, unit, epoch, iso, epoch, job_id))

    def finish(self, job_id: str, status: str, done: int, total: int,
               result: str | None, error: str | None) -> None:
        """Final status (done or failed) with the last counts, ``result`` JSON text, ``error``."""
        iso, epoch = now_iso(), time.time()
        self._run("UPDATE jobs SET status=?, done=?, total=?, result=?, error=?, finished=?, "
                  "finished_epoch=?, updated=?, updated_epoch=? WHERE id=?",
                  (status, done, total, result, error, iso, epoch, iso, epoch, job_id))

    def touch(self, job_ids: Sequence[str]) -> None:
        """Beat the heartbeat of these (live, own) jobs; one taken for interrupted is restored."""
        if not job_ids:
            return
        iso, epoch = now_iso(), time.time()
        marks = ", ".join("?" * len(job_ids))
        self._run("UPDATE jobs SET updated=?, updated_epoch=?, error=NULL, finished=NULL, "
                  "finished_epoch=NULL, "
                  "status=CASE WHEN started IS NULL THEN 'queued' ELSE 'running' END "
                  f"WHERE id IN ({marks}) AND status IN ('queued', 'running', 'interrupted')",
                  (iso, epoch, *job_ids))

    def interrupt(self, job_ids: Sequence[str], message: str) -> int:
        """Mark these still-active jobs interrupted with ``message``, finished at their last
        heartbeat; returns how many changed."""
        if not job_ids:
            return 0
        marks = ", ".join("?" * len(job_ids))
        return self._run("UPDATE jobs SET status='interrupted', error=?, finished=updated, "
                         f"finished_epoch=updated_epoch WHERE id IN ({marks}) "
                         "AND status IN ('queued', 'running')", (message, *job_ids))

    def delete_finished(self, dataset: str | None = None) -> int:
        """Delete jobs that are no longer active (of ``dataset``, or all); returns how many."""
        sql = "DELETE FROM jobs WHERE status NOT IN ('queued', 'running')"
        return self._run(sql + " AND dataset=?", (dataset,)) if dataset is not None else self._run(sql)

    # ---- reads --------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        """The job with id ``job_id``, or None."""
        rows = self._rows(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE id=?", (job_id,))
        return _row_to_job(rows[0]) if rows else None

    def select(self, dataset: str | None = None, kind: str | None = None, *,
               active: bool | None = None, limit: int = 50) -> list[Job]:
        """Jobs newest first, filtered by ``dataset``, ``kind`` and ``active`` when given."""
        where, params = [], []
        if dataset is not None:
            where.append("dataset=?")
            params.append(dataset)
        if kind is not None:
            where.append("kind=?")
            params.append(kind)
        if active is not None:
            where.append(f"status {'IN' if active else 'NOT IN'} ('queued', 'running')")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._rows(f"SELECT {', '.join(_COLUMNS)} FROM jobs{clause} "
                          "ORDER BY created_epoch DESC, rowid DESC LIMIT ?", (*params, limit))
        return [_row_to_job(row) for row in rows]

    def foreign_active(self, owner: str) -> list[tuple[str, int, str, float]]:
        """``(id, pid, owner, updated_epoch)`` of active jobs not owned by ``owner``."""
        return [(str(r[0]), int(r[1]), str(r[2]), float(r[3])) for r in self._rows(
            "SELECT id, pid, owner, updated_epoch FROM jobs "
            "WHERE status IN ('queued', 'running') AND owner != ?", (owner,))]


__all__ = ["ACTIVE_STATUSES", "BUSY_TIMEOUT_MS", "JOBS_FILE", "STATUSES", "Job", "JobTable",
           "new_job", "to_json"]
