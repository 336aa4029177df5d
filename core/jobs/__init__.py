"""Work that outlives a click: background jobs whose progress every session, tab and
process of the workspace can see.

- :mod:`core.jobs.board`: :class:`JobBoard` (submit work, read jobs, wait) and the
  :class:`JobContext` a job's work reports through (``ctx.progress(done, total)``,
  ``ctx.stage(text)``).
- :mod:`core.jobs.records`: the jobs table ``<home>/jobs.sqlite`` and the :class:`Job`
  value (status, stage, counts, ``fraction``, ``eta_seconds``, ``describe_progress()``).
- :mod:`core.jobs.eta`: remaining-time estimate and duration texts.
- :mod:`core.jobs.liveness`: which process owns a job and whether it still runs.

Typical use::

    board = JobBoard(ws.home)
    job = board.submit("digits", "embed", lambda ctx: run(progress=ctx.progress),
                       label="Embedding digits with image:efficientnet-lite0")
    board.get(job.id).describe_progress()   # "312 of 1,797 rows · about 40 s left"
"""

from __future__ import annotations

from core.jobs.board import (
    INTERRUPTED_MESSAGE,
    STALE_SECONDS,
    JobBoard,
    JobContext,
    Work,
)
from core.jobs.eta import estimate_eta, format_duration, format_eta
from core.jobs.records import ACTIVE_STATUSES, JOBS_FILE, STATUSES, Job

__all__ = ["ACTIVE_STATUSES", "INTERRUPTED_MESSAGE", "JOBS_FILE", "STALE_SECONDS", "STATUSES",
           "Job", "JobBoard", "JobContext", "Work", "estimate_eta", "format_duration", "format_eta"]
