"""First start: add the demo datasets as background jobs when the workspace is empty.

digits is ingested first (seconds), so its rows are in the grid at once; then, on the
job board's two workers, digits is embedded while api-docs is ingested, then api-docs
is embedded. Each step is a job of :mod:`ui.jobs` (progress in the sidebar of every
session); each job starts the next, so the chain goes on without any open page. A
workspace holding only demo datasets that a stopped server left half built is resumed.
"""

from __future__ import annotations

import os

from core.demo import DEMOS, ingest_demo
from core.jobs import JobContext
from core.workspace import Workspace
from ui import jobs

NO_DEMO_ENV = "CATALOG_NO_DEMO"
FIRST_DEMO = DEMOS[0]


def _ingest_demo_work(ws: Workspace, name: str):
    def work(ctx: JobContext) -> dict:
        ctx.stage("writing and checking the demo rows")
        report = ingest_demo(ws, name, progress=ctx.progress)
        jobs.start_embedding(ws, name)
        following = DEMOS[DEMOS.index(name) + 1:]
        if following and not ws.has_dataset(following[0]):
            _start_demo(ws, following[0])
        return {"summary": report.summary(), "rows": report.rows}
    return work


def _start_demo(ws: Workspace, name: str) -> None:
    jobs.board(ws).submit(name, "ingest", _ingest_demo_work(ws, name),
                          label=f"Adding the demo dataset {name}", params={"demo": name})


def _demos_only(ws: Workspace) -> bool:
    names = ws.dataset_names()
    return all(n in DEMOS for n in names)


def ensure_demo(ws: Workspace) -> None:
    """Start (or resume) the demo jobs on a workspace that holds no data of the user's."""
    if os.environ.get(NO_DEMO_ENV) or not _demos_only(ws):
        return
    board = jobs.board(ws)
    for name in DEMOS:
        if not ws.has_dataset(name):
            if board.latest(name, "ingest") is None:  # never tried here: start the chain
                _start_demo(ws, name)
            return  # the chain adds the rest
        if not ws.dataset(name).embedding_names():
            last = board.latest(name, "embed")
            if last is None or last.status == "interrupted":
                jobs.start_embedding(ws, name)
