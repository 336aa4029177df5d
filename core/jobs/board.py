"""The job runner: :class:`JobBoard` runs work on a thread pool and writes its progress
to the jobs table, where every session, tab and process of the workspace reads it.

One board per workspace home per process (the UI caches it). At most one active job
per ``(dataset, kind)`` in a board. Opening a board (and reading from it, every few
seconds at most) marks jobs of dead or silent other processes interrupted.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import os
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from core._shared import check_positive_int
from core.errors import CatalogError, InputError, NotFoundError
from core.jobs.liveness import owner_alive, process_owner
from core.jobs.records import JOBS_FILE, Job, JobTable, new_job, to_json
from core.workspace import check_name

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.25     # seconds between progress writes (at most ~4 a second)
HEARTBEAT_SECONDS = 5.0      # how often a board beats the heartbeat of its own jobs
STALE_SECONDS = 30.0         # another process's job silent this long is interrupted
RECOVER_EVERY_SECONDS = 5.0  # reads look for dead other processes at most this often
POLL_SECONDS = 0.25          # wait() on a job run by another process re-reads this often
MAX_ERROR_CHARS = 300
INTERRUPTED_MESSAGE = "the server stopped before this job finished"
KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")

Work = Callable[["JobContext"], "dict | None"]


def one_line(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """The first non-blank line of ``text``, stripped, cut to ``limit`` chars (``…`` marks a cut)."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


class JobContext:
    """What a job's work gets: :attr:`job_id`, :meth:`progress` and :meth:`stage`.

    Made by :class:`JobBoard` (tests may make one over a :class:`JobTable`). ``clock``
    (monotonic seconds) paces progress writes to one per ``interval`` seconds.
    """

    def __init__(self, table: JobTable, job_id: str, *, interval: float = PROGRESS_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._table = table
        self._job_id = job_id
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._done = 0
        self._total = 0
        self._pending = False
        self._closed = False
        self._last_write = -math.inf

    @property
    def job_id(self) -> str:
        """The id of the job this context reports for (uuid4 hex)."""
        return self._job_id

    def progress(self, done: int, total: int) -> None:
        """Report ``done`` of ``total`` units (a ``core._shared.ProgressFn``; ``total`` 0:
        unknown). Written at most once per interval, but always when ``done >= total > 0``;
        a skipped value is written by the next heartbeat or when the job ends."""
        done, total = max(0, int(done)), max(0, int(total))
        with self._lock:
            if self._closed:
                return
            self._done, self._total = done, total
            now = self._clock()
            if (total > 0 and done >= total) or now - self._last_write >= self._interval:
                self._write(now)
            else:
                self._pending = True

    def stage(self, text: str, *, unit: str = "rows") -> None:
        """Start a new stage named ``text`` (e.g. ``"reading images"``), counted in ``unit``;
        done and total go back to 0. Written at once, as is the stage's first progress."""
        with self._lock:
            if self._closed:
                return
            self._done = self._total = 0
            self._pending = False
            self._last_write = -math.inf  # the new stage's first count shows at once
            self._table.write_stage(self._job_id, one_line(str(text), 200), one_line(str(unit), 40))

    def flush(self) -> None:
        """Write a progress value that pacing held back (no-op when there is none)."""
        with self._lock:
            if self._pending and not self._closed:
                self._write(self._clock())

    def close(self) -> tuple[int, int]:
        """Stop reporting; returns the last ``(done, total)`` for the final write."""
        with self._lock:
            self._closed = True
            return self._done, self._total

    def _write(self, now: float) -> None:
        self._table.write_progress(self._job_id, self._done, self._total)
        self._last_write = now
        self._pending = False


class _DaemonPool:
    """``max_workers`` daemon threads taking ``(future, fn, args)`` from a queue.

    Not a ``ThreadPoolExecutor``: its threads are joined at interpreter exit, so a running
    embedding would keep a stopped server (Ctrl-C) alive until it ends. A job cut short
    this way is marked interrupted by the next board (and resumable work resumes)."""

    def __init__(self, max_workers: int, name: str) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._loop, name=name, daemon=True)
                         for _ in range(max_workers)]
        for thread in self._threads:
            thread.start()

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            future, fn, args = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as err:  # noqa: BLE001 -- handed to the future, re-raised by .result()
                    future.set_exception(err)

    def submit(self, fn: Callable, *args) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put((future, fn, args))
        return future

    def shutdown(self, wait: bool = True) -> None:
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            for thread in self._threads:
                thread.join()


class JobBoard:
    """Background jobs of the workspace at ``home`` (table ``<home>/jobs.sqlite``).

    Runs work on ``max_workers`` daemon threads named ``catalog-job``. Thread-safe: any number of sessions may share one board. Opening it
    marks jobs left queued/running by another process interrupted when that process is
    gone or its heartbeat is older than :data:`STALE_SECONDS`; this process's jobs never.
    """

    def __init__(self, home: Path | str, *, max_workers: int = 2) -> None:
        check_positive_int(max_workers, "max_workers")
        self.home = Path(home).expanduser()
        self.path = self.home / JOBS_FILE
        self._table = JobTable(self.path)
        self._owner = process_owner()
        self._pid = os.getpid()
        self._executor = _DaemonPool(max_workers, "catalog-job")
        self._lock = threading.Lock()
        self._active: dict[tuple[str, str], str] = {}       # (dataset, kind) -> job id
        self._futures: dict[str, concurrent.futures.Future[None]] = {}
        self._contexts: dict[str, JobContext] = {}
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._closed = False
        self._next_recover = 0.0
        self.recover()

    # ---- running ------------------------------------------------------------
    def submit(self, dataset: str, kind: str, work: Work, *, label: str,
               params: dict | None = None) -> Job:
        """Run ``work(ctx)`` in the background as a job of ``dataset`` and ``kind``; returns
        it queued. If a job of that dataset and kind is already active here, returns that one
        and starts nothing. The dict ``work`` returns becomes ``result``; a CatalogError or
        OSError fails the job with its message, anything else with ``"internal error: ..."``.

        ``kind``: 1-32 of ``a-z 0-9 _ -`` (e.g. ``"embed"``); ``label``: one line for people;
        ``params``: JSON-able dict (paths written as text). Raises InputError naming a bad
        value; RuntimeError after :meth:`shutdown`.
        """
        check_name(dataset, "dataset")
        if not isinstance(kind, str) or not KIND_PATTERN.match(kind):
            raise InputError(f"invalid job kind {kind!r}: use 1-32 lowercase letters, digits, "
                             "'_' or '-', starting with a letter (e.g. 'embed')")
        text = one_line(label, 200) if isinstance(label, str) else ""
        if not text:
            raise InputError(f"job label must be a non-empty line of text, got {label!r}")
        if params is not None and not isinstance(params, dict):
            raise InputError(f"job params must be a dict, got {type(params).__name__}")
        try:
            to_json(params)
        except (TypeError, ValueError) as err:
            raise InputError(f"job params cannot be written as JSON: {err}") from err
        if not callable(work):
            raise TypeError(f"work must be callable, got {type(work).__name__}")
        with self._lock:
            if self._closed:
                raise RuntimeError("this JobBoard is shut down; open a new one")
            running = self._active.get((dataset, kind))
            existing = self._table.get(running) if running is not None else None
            if existing is not None:
                log.info("job %s (%s of %s) is already active; not starting another",
                         existing.id, kind, dataset)
                return existing
            job = new_job(dataset, kind, text, params, pid=self._pid)
            self._table.insert(job, self._owner)
            ctx = JobContext(self._table, job.id)
            self._active[(dataset, kind)] = job.id
            self._contexts[job.id] = ctx
            self._futures[job.id] = self._executor.submit(self._run, job, work, ctx)
            self._start_heartbeat()
        log.info("job %s queued: %s", job.id, job.label)
        return job

    def _run(self, job: Job, work: Work, ctx: JobContext) -> None:
        """The thread boundary: run ``work`` and write how it ended, whatever it raised."""
        written = False
        try:
            status, result, error = "failed", None, None
            try:
                self._table.mark_running(job.id)
                value = work(ctx)
                if value is not None and not isinstance(value, dict):
                    raise TypeError(f"job work must return a dict or None, got {type(value).__name__}")
                result = to_json(value)
                status = "done"
            except (CatalogError, OSError) as err:
                error = one_line(str(err)) or type(err).__name__
                log.warning("job %s (%s of %s) failed: %s", job.id, job.kind, job.dataset, error)
            except Exception as err:  # the thread boundary: record the crash, log its traceback
                error = one_line(f"internal error: {type(err).__name__}: {err}")
                log.exception("job %s (%s of %s) crashed", job.id, job.kind, job.dataset)
            done, total = ctx.close()
            self._table.finish(job.id, status, done, total, result, error)
            written = True
            log.info("job %s %s: %s", job.id, status, job.label)
        except sqlite3.Error:
            log.exception("could not write how job %s (%s of %s) ended to %s",
                          job.id, job.kind, job.dataset, self.path)
        finally:
            if not written:  # a BaseException went through, or the final write failed
                log.error("job %s (%s of %s) stopped without its final state written",
                          job.id, job.kind, job.dataset)
            with self._lock:
                if self._active.get((job.dataset, job.kind)) == job.id:
                    del self._active[(job.dataset, job.kind)]
                self._futures.pop(job.id, None)
                self._contexts.pop(job.id, None)

    def _start_heartbeat(self) -> None:
        """Start the heartbeat thread if it is not running (caller holds the lock)."""
        if self._heartbeat is None or not self._heartbeat.is_alive():
            self._heartbeat = threading.Thread(target=self._beat, name="catalog-job-heartbeat",
                                               daemon=True)
            self._heartbeat.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            with self._lock:
                ids = list(self._futures)
                contexts = list(self._contexts.values())
            try:
                for ctx in contexts:
                    ctx.flush()
                self._table.touch(ids)
            except sqlite3.Error as err:
                log.warning("could not write the heartbeat of %d job(s) to %s: %s",
                            len(ids), self.path, err)

    # ---- reading ------------------------------------------------------------
    def recover(self) -> list[str]:
        """Mark interrupted the active jobs of other processes that are gone or whose
        heartbeat is older than :data:`STALE_SECONDS`; returns their ids."""
        now = time.time()
        gone = [job_id for job_id, pid, owner, beat in self._table.foreign_active(self._owner)
                if now - beat > STALE_SECONDS or owner_alive(owner, pid) is False]
        if gone and self._table.interrupt(gone, INTERRUPTED_MESSAGE):
            log.warning("marked %d job(s) of stopped processes interrupted: %s",
                        len(gone), ", ".join(gone))
        self._next_recover = time.monotonic() + RECOVER_EVERY_SECONDS
        return gone

    def _recover_if_due(self) -> None:
        if time.monotonic() >= self._next_recover:
            self.recover()

    def get(self, job_id: str) -> Job:
        """The job ``job_id`` as last written. Raises NotFoundError if there is none."""
        self._recover_if_due()
        job = self._table.get(job_id)
        if job is None:
            raise NotFoundError(f"no job {job_id!r} in {self.path}")
        return job

    def jobs(self, dataset: str | None = None, *, active: bool | None = None,
             limit: int = 50) -> list[Job]:
        """Up to ``limit`` jobs newest first, of ``dataset`` (None: all) that are active
        (``active=True``), finished (False) or either (None). Raises InputError for a bad limit."""
        limit = check_positive_int(limit, "limit")
        self._recover_if_due()
        return self._table.select(dataset, active=active, limit=limit)

    def latest(self, dataset: str, kind: str) -> Job | None:
        """The newest job of ``dataset`` and ``kind`` in any status, or None."""
        self._recover_if_due()
        found = self._table.select(dataset, kind, limit=1)
        return found[0] if found else None

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until job ``job_id`` is no longer active or ``timeout`` seconds pass
        (None: no limit); returns the job as it then is (still active on a timeout).
        Waits on the job's future when this board runs it, else re-reads the table.
        Raises NotFoundError for an unknown id."""
        with self._lock:
            future = self._futures.get(job_id)
        if future is not None:
            concurrent.futures.wait([future], timeout=timeout)
            return self.get(job_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = threading.Event()  # never set: a sleep that is not time.sleep
        job = self.get(job_id)
        while job.active:
            left = POLL_SECONDS if deadline is None else min(POLL_SECONDS, deadline - time.monotonic())
            if left <= 0:
                break
            pause.wait(left)
            job = self.get(job_id)
        return job

    def forget_finished(self, dataset: str | None = None) -> int:
        """Delete finished jobs (of ``dataset``, or all) from the table; returns how many."""
        return self._table.delete_finished(dataset)

    # ---- closing ------------------------------------------------------------
    def shutdown(self, wait: bool = True) -> None:
        """Accept no more jobs; with ``wait``, block until running and queued jobs end and
        close the table (reads reopen it)."""
        with self._lock:
            self._closed = True
        self._stop.set()
        self._executor.shutdown(wait=wait)
        if wait:
            if self._heartbeat is not None:
                self._heartbeat.join()
            self._table.close()


__all__ = ["HEARTBEAT_SECONDS", "INTERRUPTED_MESSAGE", "PROGRESS_INTERVAL", "STALE_SECONDS",
           "JobBoard", "JobContext", "Work", "one_line"]
