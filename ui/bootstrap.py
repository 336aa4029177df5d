"""First start: build the demo datasets in a background thread when the workspace is empty.

The page keeps rendering (it shows a message and a progress bar that refreshes
itself) while the demos are built; one job per workspace, shared by all sessions.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field

import streamlit as st

from core.demo import DEMOS, build_demo
from core.errors import CatalogError
from core.workspace import Workspace
from ui.messages import show_error

log = logging.getLogger(__name__)
NO_DEMO_ENV = "CATALOG_NO_DEMO"


@dataclass
class DemoJob:
    """Progress of the background demo build (written by the worker thread only)."""

    stage: str = "starting"
    done: int = 0
    total: int = 0
    finished: bool = False
    error: str | None = None
    built: list = field(default_factory=list)

    def run(self, ws: Workspace) -> None:
        try:
            for name in DEMOS:
                if ws.has_dataset(name):
                    continue
                self.stage, self.done, self.total = name, 0, 0
                build_demo(ws, name, progress=self._progress)
                self.built.append(name)
        except (CatalogError, OSError) as err:  # shown on the page; the app stays usable
            log.exception("demo build failed")
            self.error = str(err)
        finally:
            self.finished = True

    def _progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total


@st.cache_resource(show_spinner=False)
def _demo_job(home: str) -> DemoJob:
    from core.workspace import open_workspace

    job = DemoJob()
    threading.Thread(target=job.run, args=(open_workspace(home),), daemon=True,
                     name="catalog-demo-build").start()
    return job


def ensure_demo(ws: Workspace) -> None:
    """Start the demo build if the workspace is empty; draw its progress while it runs."""
    if os.environ.get(NO_DEMO_ENV):
        return
    if ws.dataset_names() and all(ws.has_dataset(n) for n in DEMOS):
        return
    if ws.dataset_names() and not st.session_state.get("demo_started"):
        return  # a workspace with the user's own data: never add demos to it
    st.session_state["demo_started"] = True
    job = _demo_job(str(ws.home))
    if job.finished and not job.error:
        return
    _progress_fragment(str(ws.home))


@st.fragment(run_every=1.0)
def _progress_fragment(home: str) -> None:
    job = _demo_job(home)
    if job.error:
        show_error(f"Building the demo datasets failed: {job.error}")
        return
    if job.finished:
        st.rerun()
    with st.sidebar:
        st.info("Building the demo datasets (digits, api-docs) on first start; "
                "this takes a few minutes on a laptop CPU.")
        frac = job.done / job.total if job.total else 0.0
        st.progress(frac, text=f"{job.stage}: {job.done:,} of {job.total:,} rows embedded")
