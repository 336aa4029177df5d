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
from ui.grid import safe_code
from ui.messages import show_flash

NO_DATASET = "Choose or create a dataset to start."


def no_embedding_message(what: str, dataset: str) -> str:
    """``'<what> needs an embedding: run `catalog embed <dataset>`.'`` (markdown, the
    command as an inline code span)."""
    return f"{what} needs an embedding: run {safe_code(f'catalog embed {dataset}')}."


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
            st.info(no_embedding_message(what, self.dataset))
            st.stop()
        return self.embedding


def start_page(title: str, *, needs_embedding: bool = False) -> PageStart:
    """Open the workspace, draw ``title`` and the last action's message, and return the
    active dataset and embedding. Every page needs a dataset: without one the run stops
    with "Choose or create a dataset to start."; ``needs_embedding`` True stops it too
    when the dataset has no active embedding, with "<title> needs an embedding: run
    `catalog embed <dataset>`."."""
    ws = loaders.get_workspace()  # first: on a deep link it runs the page inside the app shell
    st.title(title)
    show_flash()
    dataset = state.active_dataset()
    if dataset is None:
        st.info(NO_DATASET)
        st.stop()
    page = PageStart(ws, dataset, state.active_embedding())
    if needs_embedding:
        page.require_embedding(title)
    return page


__all__ = ["NO_DATASET", "PageStart", "no_embedding_message", "start_page"]
