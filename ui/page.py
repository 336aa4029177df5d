"""The preamble of every page: :func:`start_page`.

It opens the workspace first (on a deep link that runs the page inside the app shell,
see :func:`ui.loaders.get_workspace`), draws the title and the message left by the last
action (:func:`ui.messages.show_flash`), and reads the active dataset and embedding
chosen in the sidebar. When the page cannot run it draws ONE message saying what to do
and stops the run (``st.stop()``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import streamlit as st

from core.workspace import Workspace
from ui import loaders, state
from ui.grid import safe_code, safe_text
from ui.messages import show_flash

NO_DATASET = "No dataset yet: add a folder of images or a table on the Add data page."
ADD_DATA_PAGE = "pages/add_data.py"
EMBEDDINGS_PAGE = "pages/embeddings.py"


def no_embedding_message(what: str, dataset: str) -> str:
    """``'<what> needs an embedding of <dataset>: compute one here, on the Embeddings page,
    or with `catalog embed <dataset>`.'`` (markdown, the command as an inline code span)."""
    return (f"{what} needs an embedding of {safe_text(dataset)}: compute one here, on the "
            f"Embeddings page, or with {safe_code(f'catalog embed {dataset}')}.")


def _embedding_needed(ws: Workspace, dataset: str, what: str) -> None:
    """The empty state of a page without an embedding: the message, the running job (if
    any) or a button that starts one (the default encoder, as ``catalog embed``)."""
    from ui import jobs

    running = jobs.board(ws).latest(dataset, "embed")
    if running is not None and running.active:
        st.info(f"{safe_text(dataset)} is being embedded; this page fills in when it is done.")
        jobs.watch_job(ws, running)
        return
    st.info(no_embedding_message(what, dataset))
    left, right = st.columns([1, 3])
    if left.button(f"Embed {dataset} now", key="page:embed_now", icon=":material/play_arrow:"):
        jobs.start_embedding(ws, dataset)
        st.rerun()
    right.page_link(EMBEDDINGS_PAGE, label="Choose an encoder on the Embeddings page",
                    icon=":material/hub:")


@dataclass(frozen=True)
class PageStart:
    """What a page works on: the workspace, the active dataset and the active embedding
    (None when the dataset has none and the page did not require one)."""

    ws: Workspace
    dataset: str
    embedding: str | None

    def __iter__(self) -> Iterator[Any]:
        """``ws, dataset, embedding = start_page(...)``."""
        return iter((self.ws, self.dataset, self.embedding))

    def require_embedding(self, what: str) -> str:
        """The active embedding, or stop the run with ``'<what> needs an embedding: run
        `catalog embed <dataset>`.'`` (e.g. a method of the page that needs vectors)."""
        if self.embedding is None:
            _embedding_needed(self.ws, self.dataset, what)
            st.stop()
        return self.embedding


def start_page(title: str, *, needs_embedding: bool = False) -> PageStart:
    """Open the workspace, draw ``title`` and the last action's message, and return the
    active dataset and embedding. Every page needs a dataset: without one the run stops
    with :data:`NO_DATASET` and a link to Add data; ``needs_embedding`` True stops it too
    when the dataset has no active embedding, with :func:`no_embedding_message` and a
    button that starts the embedding job."""
    ws = loaders.get_workspace()  # first: on a deep link it runs the page inside the app shell
    st.title(title)
    show_flash()
    dataset = state.active_dataset()
    if dataset is None:
        from ui import jobs

        if jobs.active_jobs(ws):
            st.info("Your first dataset is being added (progress in the sidebar); its rows "
                    "appear here as soon as it is read.")
            st.stop()
        st.info(NO_DATASET)
        st.page_link(ADD_DATA_PAGE, label="Add data", icon=":material/add:")
        st.stop()
    page = PageStart(ws, dataset, state.active_embedding())
    if needs_embedding:
        page.require_embedding(title)
    return page


__all__ = ["NO_DATASET", "PageStart", "no_embedding_message", "start_page"]
