"""Background jobs in the app: one :class:`core.jobs.JobBoard` per workspace (shared by
every session and tab), the work the pages start (ingest, embed), and the panel that
shows running jobs with progress and an estimate.

The panel polls the jobs table once a second while a job runs; when a job changes stage
or ends, the whole page reruns, so finished work appears without a manual refresh. A
failed job shows its one-line reason until dismissed.
"""

from __future__ import annotations

import logging

import streamlit as st

from core.jobs import Job, JobBoard, JobContext
from core.workspace import Workspace
from ui.grid import safe_text
from ui.messages import show_error

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0
_SEEN = "jobs:seen"          # {job id: (status, stage)} last drawn in this session
_DISMISSED = "jobs:dismissed"


@st.cache_resource(show_spinner=False)
def job_board(home: str) -> JobBoard:
    """The process-wide job board of workspace ``home`` (two workers: 2 cores here)."""
    return JobBoard(home, max_workers=2)


def board(ws: Workspace) -> JobBoard:
    return job_board(str(ws.home))


def _embed_work(ws: Workspace, dataset: str, encoder: str | None, name: str | None,
                replace: bool):
    def work(ctx: JobContext) -> dict:
        from core.embeddings import compute_embeddings

        ctx.stage(f"loading {encoder or 'the default encoder'}")
        started = [False]

        def progress(done: int, total: int) -> None:
            if not started[0]:
                started[0] = True
                ctx.stage("embedding rows")
            ctx.progress(done, total)

        report = compute_embeddings(ws.dataset(dataset), encoder, name, replace=replace,
                                    progress=progress)
        return {"embeddings": [e.name for e in report.embeddings], "skipped": report.skipped}
    return work


def start_embedding(ws: Workspace, dataset: str, encoder: str | None = None,
                    name: str | None = None, *, replace: bool = False) -> Job:
    """Start (or join) the embedding job of ``dataset``: ``compute_embeddings`` as
    ``catalog embed`` runs it."""
    label = f"Embedding {dataset}" + (f" with {encoder}" if encoder else "")
    return board(ws).submit(dataset, "embed", _embed_work(ws, dataset, encoder, name, replace),
                            label=label, params={"encoder": encoder, "name": name})


def start_unless_failed(ws: Workspace, dataset: str, kind: str, work, *, label: str,
                        params: dict | None = None) -> Job:
    """Submit the job, unless the last job of ``(dataset, kind)`` with the same ``params``
    failed: that one is returned (its error is shown; the page does not retry in a loop
    on every rerun)."""
    last = board(ws).latest(dataset, kind)
    if last is not None and last.status == "failed" and last.params == (params or {}):
        return last
    return board(ws).submit(dataset, kind, work, label=label, params=params)


def start_quality(ws: Workspace, dataset: str, embedding: str, k: int | None = None) -> Job:
    """Start (or join) the stored neighbours pass of ``embedding`` (``catalog quality``:
    chunked, resumable; ``k`` (default: the label issues' k, 30) wide, at least 16) that
    Label review and the Catalog's quality columns score from. Started by the user: a failed
    one is retried."""
    from core.quality import pass_width

    width = pass_width(k)

    def work(ctx: JobContext) -> dict:
        from core.quality import compute_neighbours

        ctx.stage("finding the nearest neighbours of every row")
        shared = compute_neighbours(ws.dataset(dataset), embedding, k=width, progress=ctx.progress)
        return {"rows": len(shared.ids), "k": shared.k}
    return board(ws).submit(dataset, "quality", work, label=f"Finding nearest neighbours in {dataset}",
                            params={"embedding": embedding, "k": width})


def start_derived_text_embedding(ws: Workspace, dataset: str) -> Job:
    """Start (or join) the job that builds the row-text embedding text search needs on a
    dataset whose embedding cannot read text (``core.search.ensure_row_text_embedding``)."""
    def work(ctx: JobContext) -> dict:
        from core.search import ensure_row_text_embedding

        ctx.stage("indexing each row's text")
        info = ensure_row_text_embedding(ws.dataset(dataset), progress=ctx.progress)
        return {"embedding": info.name, "rows": info.rows}
    return start_unless_failed(ws, dataset, "derive", work,
                               label=f"Indexing the row text of {dataset} for text search")


def start_ingest(ws: Workspace, dataset: str, source: str, options: dict, *,
                 embed: bool = True) -> Job:
    """Start the ingest job of ``dataset`` from ``source`` (``core.ingest.ingest`` with
    ``options``, as ``catalog ingest`` runs it), then, if ``embed``, its embedding job."""
    def work(ctx: JobContext) -> dict:
        from core.ingest import ingest

        ctx.stage("reading and checking rows")
        report = ingest(ws, source, dataset, progress=ctx.progress, **options)
        if embed:
            start_embedding(ws, dataset)
        return {"summary": report.summary(), "rows": report.rows}
    return board(ws).submit(dataset, "ingest", work, label=f"Adding {dataset}",
                            params={"source": str(source), **{k: str(v) for k, v in options.items()}})


def watch_job(ws: Workspace, job: Job, text: str = "") -> None:
    """Draw ``job``'s progress here, refreshed every second, and rerun the page when it
    ends: for a page that waits on a job it started in this run (the sidebar's panel was
    drawn before the job existed). ``text`` is put before the progress line."""
    _watch(str(ws.home), job.id, text)


@st.fragment(run_every=POLL_SECONDS)
def _watch(home: str, job_id: str, text: str) -> None:
    job = job_board(home).get(job_id)
    if not job.active:
        st.rerun(scope="app")
    st.progress(job.fraction, text=safe_text(f"{text or job.label}: {job.describe_progress()}"))


def active_jobs(ws: Workspace) -> list[Job]:
    return board(ws).jobs(active=True)


FAILURE_SHOWN_SECONDS = 3600.0  # a failure older than this is no longer news


def _failed_to_show(jobs: list[Job]) -> list[Job]:
    """Of ``jobs`` (newest first), the failed or interrupted ones to report: not dismissed
    in this session, under an hour old, and not followed by a newer job of the same
    dataset and kind (a retry)."""
    import time

    dismissed = st.session_state.setdefault(_DISMISSED, set())
    newest: dict[tuple[str, str], str] = {}
    for job in jobs:
        newest.setdefault((job.dataset, job.kind), job.id)
    now = time.time()
    return [j for j in jobs
            if j.status in ("failed", "interrupted") and j.id not in dismissed
            and newest.get((j.dataset, j.kind)) == j.id
            and now - (j.finished_epoch or j.updated_epoch or now) < FAILURE_SHOWN_SECONDS]


def render_jobs(ws: Workspace) -> None:
    """Draw running jobs (and failed ones not dismissed) in the sidebar; poll while any runs."""
    if active_jobs(ws):
        _jobs_polling(str(ws.home))
    else:
        _jobs_static(str(ws.home))


def _draw(home: str) -> bool:
    """Draw the panel; True if any job is active. Reruns the app when a job this session
    saw changes stage or ends."""
    jobs = job_board(home).jobs(limit=50)  # one read of the jobs table per poll
    seen = st.session_state.setdefault(_SEEN, {})
    changed = False
    for job in jobs:
        before = seen.get(job.id)
        now = (job.status, job.stage)
        if before is not None and before != now and (before[0] in ("queued", "running")):
            changed = True
        seen[job.id] = now
    active = [j for j in jobs if j.active]
    for job in active:
        stage = f" · {job.stage}" if job.stage else ""
        st.progress(job.fraction, text=safe_text(f"{job.label}{stage}: {job.describe_progress()}"))
    for job in _failed_to_show(jobs):
        show_error(f"{job.label} failed: {job.error}")
        if st.button("Dismiss", key=f"jobs:dismiss:{job.id}"):
            st.session_state[_DISMISSED].add(job.id)
            st.rerun()
    if changed:
        st.rerun(scope="app")
    return bool(active)


@st.fragment(run_every=POLL_SECONDS)
def _jobs_polling(home: str) -> None:
    with st.sidebar:
        if not _draw(home):
            st.rerun(scope="app")  # the last job ended: redraw the page with its results


@st.fragment
def _jobs_static(home: str) -> None:
    with st.sidebar:
        _draw(home)
