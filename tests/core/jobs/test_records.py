"""Job values: fraction, elapsed time, ETA and the progress line people read."""

from __future__ import annotations

import dataclasses
import time

import pytest

from core.jobs import Job, estimate_eta, format_duration, format_eta


def job(**changes) -> Job:
    return dataclasses.replace(Job(id="j1", dataset="digits", kind="embed", label="Embedding"), **changes)


def test_a_queued_job_has_no_eta_and_waits():
    queued = job()
    assert queued.active and queued.fraction == 0.0 and queued.eta_seconds is None
    assert queued.elapsed_seconds == 0.0
    assert queued.describe_progress() == "waiting to start"


def test_a_running_job_estimates_the_time_left_from_its_rate():
    now = time.time()
    running = job(status="running", done=312, total=1797, started_epoch=now - 10, stage_epoch=now - 10)
    assert running.fraction == pytest.approx(312 / 1797)
    assert running.eta_at(now) == pytest.approx(10 * (1797 - 312) / 312)
    assert running.describe_progress() == "312 of 1,797 rows · about 50 s left"
    assert job(status="running", done=0, total=1797, stage_epoch=now - 10).eta_seconds is None
    assert job(status="running", done=5, total=0, started_epoch=now - 3).describe_progress() == "5 rows"
    assert job(status="running", started_epoch=now - 3).describe_progress() == "working for 3 s"


def test_finished_jobs_describe_how_they_ended():
    finished = job(status="done", done=10, total=10, started_epoch=0.0, finished_epoch=72.0)
    assert not finished.active and finished.fraction == 1.0 and finished.eta_seconds is None
    assert finished.elapsed_seconds == 72.0
    assert finished.describe_progress() == "finished in 1 min 12 s"
    assert job(status="failed", started_epoch=0.0, finished_epoch=3.0).describe_progress() == "failed after 3 s"
    assert job(status="interrupted").describe_progress() == "interrupted"
    assert job(done=20, total=10).fraction == 1.0


def test_eta_helpers():
    assert estimate_eta(0, 10, 5.0) is None
    assert estimate_eta(10, 10, 5.0) is None
    assert estimate_eta(5, 0, 5.0) is None
    assert estimate_eta(5, 10, 0.0) is None
    assert estimate_eta(5, 10, 5.0) == 5.0
    assert format_eta(None) == ""
    assert format_eta(2) == "a few seconds left"
    assert format_eta(42) == "about 40 s left"
    assert format_eta(59) == "about 1 min left"
    assert format_eta(4000) == "about 1 h 7 min left"
    assert format_duration(0.2) == "0 s"
    assert format_duration(600) == "10 min"
    assert format_duration(7200) == "2 h"
