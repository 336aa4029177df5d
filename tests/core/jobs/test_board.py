"""JobBoard: background jobs whose progress a second board (another tab or process) reads."""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.errors import InputError, NotFoundError
from core.jobs import INTERRUPTED_MESSAGE, Job, JobBoard, JobContext
from core.jobs.liveness import process_owner
from core.jobs.records import JobTable, new_job

WAIT = 5.0  # seconds an event may take before the test fails (never reached when green)


@pytest.fixture
def gate():
    """An event the work waits on; always opened at teardown so no job hangs the pool."""
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def board(home: Path, gate: threading.Event):
    jobs = JobBoard(home)
    yield jobs
    gate.set()
    jobs.shutdown()


def blocked_work(gate: threading.Event, started: threading.Event, result: dict | None = None):
    def work(ctx: JobContext) -> dict | None:
        started.set()
        assert gate.wait(WAIT)
        return result
    return work


def test_progress_is_visible_from_a_second_board_and_the_result_round_trips(home, board, gate):
    staged, reported = threading.Event(), threading.Event()
    go_on = threading.Event()
    names: list[str] = []

    def work(ctx: JobContext) -> dict:
        names.append(threading.current_thread().name)
        ctx.stage("reading images", unit="images")
        staged.set()
        assert go_on.wait(WAIT)
        ctx.progress(312, 1797)
        reported.set()
        assert gate.wait(WAIT)
        return {"rows": 1797, "labels": ["0", "1"], "score": 0.5, "where": Path("a/b")}

    job = board.submit("digits", "embed", work, label="Embedding digits with image:efficientnet-lite0",
                       params={"encoder": "image:efficientnet-lite0", "batch": 64})
    assert job.status == "queued" and job.eta_seconds is None

    other = JobBoard(home)  # a second tab / process reading the same sqlite file
    try:
        assert staged.wait(WAIT)
        seen = other.get(job.id)
        assert (seen.status, seen.stage, seen.done, seen.total) == ("running", "reading images", 0, 0)
        assert seen.eta_seconds is None and seen.fraction == 0.0
        go_on.set()
        assert reported.wait(WAIT)
        seen = other.get(job.id)
        assert (seen.done, seen.total, seen.active) == (312, 1797, True)
        assert seen.fraction == pytest.approx(312 / 1797)
        assert seen.eta_seconds is not None and seen.eta_seconds > 0
        assert seen.describe_progress().startswith("312 of 1,797 images")
        assert seen.label == "Embedding digits with image:efficientnet-lite0"
        assert seen.params == {"encoder": "image:efficientnet-lite0", "batch": 64}
        assert [j.id for j in other.jobs("digits", active=True)] == [job.id]

        gate.set()
        final = board.wait(job.id, timeout=WAIT)
        assert final.status == "done" and final.error is None and not final.active
        read = other.get(job.id)
        assert read.result == {"rows": 1797, "labels": ["0", "1"], "score": 0.5, "where": "a/b"}
        assert read.finished is not None and read.eta_seconds is None
        assert read.describe_progress().startswith("finished in ")
        assert other.jobs("digits", active=True) == []
    finally:
        other.shutdown()
    assert names and names[0].startswith("catalog-job")
    # daemon threads: a running job never keeps a stopped server (Ctrl-C) alive
    assert all(t.daemon for t in threading.enumerate() if t.name.startswith("catalog-job"))


def test_the_same_dataset_and_kind_twice_while_running_is_one_job_run_once(board, gate):
    started = threading.Event()
    calls: list[str] = []

    def work(ctx: JobContext) -> dict:
        calls.append(ctx.job_id)
        started.set()
        assert gate.wait(WAIT)
        return {"n": len(calls)}

    first = board.submit("digits", "embed", work, label="Embedding digits")
    assert started.wait(WAIT)
    second = board.submit("digits", "embed", work, label="Embedding digits again")
    assert second.id == first.id and second.status == "running"
    gate.set()
    assert board.wait(first.id, timeout=WAIT).result == {"n": 1}
    assert calls == [first.id]

    again = board.submit("digits", "embed", work, label="Embedding digits later")
    assert again.id != first.id
    assert board.wait(again.id, timeout=WAIT).status == "done"
    assert [j.id for j in board.jobs("digits")] == [again.id, first.id]  # newest first
    assert board.latest("digits", "embed").id == again.id


def test_different_kinds_and_datasets_run_side_by_side(board, gate):
    embed_started, map_started = threading.Event(), threading.Event()
    embed = board.submit("digits", "embed", blocked_work(gate, embed_started, {"k": "embed"}), label="embed")
    mapped = board.submit("digits", "map", blocked_work(gate, map_started, {"k": "map"}), label="map")
    assert embed.id != mapped.id
    assert embed_started.wait(WAIT) and map_started.wait(WAIT)  # both run at once (2 workers)
    assert {j.kind for j in board.jobs("digits", active=True)} == {"embed", "map"}
    gate.set()
    assert board.wait(embed.id, timeout=WAIT).result == {"k": "embed"}
    assert board.wait(mapped.id, timeout=WAIT).result == {"k": "map"}
    assert board.latest("digits", "quality") is None
    assert board.latest("photos", "embed") is None


def test_a_catalog_error_fails_the_job_with_its_first_line(board):
    def work(ctx: JobContext) -> dict:
        ctx.progress(4, 10)
        raise InputError("column 'label' is missing; columns: id, text\nsecond line of detail")

    job = board.wait(board.submit("digits", "ingest", work, label="Ingesting digits").id, timeout=WAIT)
    assert job.status == "failed" and not job.active
    assert job.error == "column 'label' is missing; columns: id, text"
    assert (job.done, job.total, job.result) == (4, 10, None)
    assert job.describe_progress().startswith("failed after ")


def test_an_oserror_fails_the_job_with_a_short_line(board):
    def work(ctx: JobContext) -> None:
        raise FileNotFoundError(2, "No such file or directory", "x" * 1000)

    job = board.wait(board.submit("digits", "ingest", work, label="Ingesting").id, timeout=WAIT)
    assert job.status == "failed"
    assert job.error.startswith("[Errno 2] No such file or directory") and len(job.error) <= 300


def test_an_unexpected_exception_is_an_internal_error_and_logged(board, caplog):
    def work(ctx: JobContext) -> dict:
        return {"ratio": 1 / 0}

    with caplog.at_level(logging.ERROR, logger="core.jobs.board"):
        job = board.wait(board.submit("digits", "quality", work, label="Finding issues").id, timeout=WAIT)
    assert job.status == "failed"
    assert job.error == "internal error: ZeroDivisionError: division by zero"
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)


def test_work_that_returns_no_dict_is_an_internal_error(board):
    job = board.wait(board.submit("digits", "index", lambda ctx: [1, 2], label="Indexing").id, timeout=WAIT)
    assert job.error == "internal error: TypeError: job work must return a dict or None, got list"


def test_the_last_progress_value_is_written_even_when_paced(board):
    def work(ctx: JobContext) -> None:
        for i in range(1, 501):
            ctx.progress(i, 1000)  # hundreds of calls in well under the pacing interval

    job = board.wait(board.submit("digits", "embed", work, label="Embedding").id, timeout=WAIT)
    assert (job.status, job.done, job.total, job.result) == ("done", 500, 1000, None)


def test_progress_writes_are_paced_but_the_final_value_always_lands(home):
    table = JobTable(home / "jobs.sqlite")
    job = new_job("digits", "embed", "Embedding", pid=os.getpid())
    table.insert(job, process_owner())
    table.mark_running(job.id)
    now = [100.0]
    ctx = JobContext(table, job.id, interval=0.25, clock=lambda: now[0])

    ctx.progress(1, 100)
    ctx.progress(2, 100)  # same instant: held back
    assert table.get(job.id).done == 1
    now[0] += 0.3
    ctx.progress(3, 100)
    assert table.get(job.id).done == 3
    ctx.progress(100, 100)  # the final value is never held back
    assert table.get(job.id).done == 100
    ctx.stage("writing index")
    ctx.progress(5, 50)
    ctx.progress(6, 50)
    assert (table.get(job.id).stage, table.get(job.id).done) == ("writing index", 5)
    ctx.flush()  # the heartbeat writes what pacing held back
    assert table.get(job.id).done == 6
    table.close()


def _insert_foreign(home: Path, *, pid: int, owner: str, age: float, status: str = "running") -> Job:
    table = JobTable(home / "jobs.sqlite")
    beat = time.time() - age
    job = dataclasses.replace(new_job("digits", "embed", "Embedding elsewhere", pid=pid),
                              status=status, done=40, total=100, started_epoch=beat - 10,
                              stage_epoch=beat - 10, updated_epoch=beat)
    table.insert(job, owner)
    table.close()
    return job


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_opening_a_board_interrupts_jobs_of_stopped_processes_only(home):
    parent = os.getppid()  # alive for the whole test, and not this process
    stale = _insert_foreign(home, pid=_dead_pid(), owner="999:1", age=120)
    dead_fresh = _insert_foreign(home, pid=_dead_pid(), owner="998:1", age=1)
    silent_live = _insert_foreign(home, pid=parent, owner=process_owner(parent), age=120)
    queued_stale = _insert_foreign(home, pid=_dead_pid(), owner="997:1", age=120, status="queued")
    live = _insert_foreign(home, pid=parent, owner=process_owner(parent), age=1)
    own_old = _insert_foreign(home, pid=os.getpid(), owner=process_owner(), age=120)

    board = JobBoard(home)
    try:
        for job in (stale, dead_fresh, silent_live, queued_stale):
            seen = board.get(job.id)
            assert (seen.status, seen.error) == ("interrupted", INTERRUPTED_MESSAGE)
            assert not seen.active and seen.describe_progress() == "interrupted at 40 of 100 rows"
        assert board.get(live.id).status == "running"
        assert board.get(own_old.id).status == "running"  # this process's jobs never
    finally:
        board.shutdown()


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs /proc start times")
def test_a_job_of_an_earlier_process_with_this_pid_is_interrupted(home):
    recycled = _insert_foreign(home, pid=os.getpid(), owner=f"{os.getpid()}:0", age=1)
    board = JobBoard(home)
    try:
        assert board.get(recycled.id).status == "interrupted"
    finally:
        board.shutdown()


def test_a_running_job_of_this_process_survives_a_second_board(home, board, gate):
    started = threading.Event()
    job = board.submit("digits", "embed", blocked_work(gate, started), label="Embedding")
    assert started.wait(WAIT)
    other = JobBoard(home)
    try:
        assert other.get(job.id).status == "running"
        assert other.wait(job.id, timeout=0).active  # a timeout returns the job still active
    finally:
        other.shutdown()
    gate.set()
    assert board.wait(job.id, timeout=WAIT).status == "done"


def test_bad_input_and_unknown_ids_are_named(board):
    with pytest.raises(InputError, match="invalid job kind 'Embed!'"):
        board.submit("digits", "Embed!", lambda ctx: None, label="x")
    with pytest.raises(InputError, match="invalid dataset name"):
        board.submit("../etc", "embed", lambda ctx: None, label="x")
    with pytest.raises(InputError, match="label"):
        board.submit("digits", "embed", lambda ctx: None, label="  ")
    with pytest.raises(NotFoundError, match="no job 'nope'"):
        board.get("nope")
    assert board.jobs() == []


def test_forget_finished_keeps_active_jobs(board, gate):
    done = board.wait(board.submit("digits", "demo", lambda ctx: {"ok": True}, label="demo").id,
                      timeout=WAIT)
    started = threading.Event()
    running = board.submit("digits", "embed", blocked_work(gate, started), label="Embedding")
    assert started.wait(WAIT)
    assert board.forget_finished("digits") == 1
    assert [j.id for j in board.jobs()] == [running.id]
    with pytest.raises(NotFoundError):
        board.get(done.id)


def test_a_shut_down_board_takes_no_more_jobs(home):
    board = JobBoard(home)
    board.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        board.submit("digits", "embed", lambda ctx: None, label="Embedding")
