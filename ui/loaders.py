"""Cached loaders: the only place Streamlit caches wrap ``core``.

``st.cache_resource`` holds shared read-only objects (workspace, encoders, indexes);
``st.cache_data`` holds tables. Cache keys carry a file stamp (mtime and size) so a
changed file is reloaded without clearing anybody else's cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import runpy
from pathlib import Path

import pandas as pd
import streamlit as st

from core.embeddings import EmbeddingInfo, list_embeddings
from core.embeddings import load_embedding as _load_embedding
from core.embeddings import load_index as _load_index
from core.encoders import load_encoder
from core.filters import ColumnProfile, profile_columns
from core.labels import apply_label_edits
from core.workspace import Dataset, Workspace, open_workspace, resolve_home


def file_stamp(path: Path) -> str:
    """mtime_ns and size of ``path`` (or 'absent'), used as a cache key part."""
    try:
        st_ = path.stat()
    except FileNotFoundError:
        return "absent"
    return f"{st_.st_mtime_ns}-{st_.st_size}"


@st.cache_resource(show_spinner=False)
def _workspace(home: str) -> Workspace:
    return open_workspace(home)


def _leave_pages_folder_mode() -> None:
    """Run app.py (the shell: sidebar and navigation) when Streamlit ran a page alone.

    Streamlit treats an app with a ``pages/`` folder in its legacy mode until a session
    has called ``st.navigation``: a deep link such as ``/catalog`` on a fresh server (and
    every AppTest rerun) runs ``pages/catalog.py`` by itself, without the sidebar. When
    that happens we switch the server to ``st.navigation`` mode, run app.py in place (it
    runs the requested page inside its shell) and stop the bare run. No rerun is needed,
    so a click that triggered this run is not lost.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
        from streamlit.runtime.scriptrunner import get_script_run_ctx
    except ImportError:  # a Streamlit without these internals: nothing to repair
        return
    if not getattr(PagesManager, "uses_pages_directory", False):
        return
    PagesManager.uses_pages_directory = False
    ctx = get_script_run_ctx()
    if ctx is None:
        return
    runpy.run_path(str(ctx.pages_manager.main_script_path), run_name="__main__")
    st.stop()


def get_workspace() -> Workspace:
    """The workspace of this server (``$CATALOG_HOME`` or ./catalog-data).

    Every page calls this first (through :func:`ui.page.start_page`), so it also repairs
    a deep link on a fresh server.
    """
    _leave_pages_folder_mode()
    return _workspace(str(resolve_home(os.environ.get("CATALOG_HOME"))))


# cache_resource, not cache_data: cache_data unpickles a fresh copy on every hit
# (~15 ms per rerun at 100k rows, linear in rows); callers never mutate the table.
@st.cache_resource(show_spinner="Loading rows…", max_entries=16)
def _rows(home: str, dataset: str, stamp: str) -> pd.DataFrame:
    return open_workspace(home).dataset(dataset).rows()


def source_rows(ws: Workspace, dataset: str) -> pd.DataFrame:
    """Rows as ingested (cached, shared by all sessions: never mutate it)."""
    ds = ws.dataset(dataset)
    return _rows(str(ws.home), dataset, file_stamp(ds.rows_path))


def effective_rows(ws: Workspace, dataset: str) -> pd.DataFrame:
    """The rows with their effective labels (label edits applied; :func:`source_rows` when
    there are none). Cached and shared: do not mutate."""
    table = source_rows(ws, dataset)
    overrides = ws.store.label_overrides(dataset)
    return apply_label_edits(table, overrides) if overrides else table


@st.cache_data(show_spinner=False, max_entries=16)
def _profile(home: str, dataset: str, stamp: str) -> ColumnProfile:
    return profile_columns(open_workspace(home).dataset(dataset).rows())


def column_profile(ws: Workspace, dataset: str) -> ColumnProfile:
    """Labels, categorical and numeric columns offered by the filter panel (cached)."""
    ds = ws.dataset(dataset)
    return _profile(str(ws.home), dataset, file_stamp(ds.rows_path))


def labels_key(ws: Workspace, dataset: str) -> str:
    """Rows file stamp plus a hash of the live label edits: changes whenever the effective
    labels (:func:`effective_rows`) do. The cache key part of everything that depends on labels."""
    edits = json.dumps(sorted(ws.store.label_overrides(dataset).items()), default=str)
    digest = hashlib.sha256(edits.encode()).hexdigest()[:16]
    return f"{file_stamp(ws.dataset(dataset).rows_path)}-{digest}"


@st.cache_data(show_spinner=False, max_entries=16)
def _effective_profile(home: str, dataset: str, labels: str, _ws: Workspace) -> ColumnProfile:
    from core.rows import open_rows

    with open_rows(_ws, dataset) as query:  # aggregates in the database, no table in memory
        return query.profile()


def effective_profile(ws: Workspace, dataset: str) -> ColumnProfile:
    """:func:`column_profile` of the effective rows (edited labels included, labels no
    row carries any more left out): what the filter panel offers without quality columns.
    Cached by :func:`labels_key`."""
    return _effective_profile(str(ws.home), dataset, labels_key(ws, dataset), ws)


def _embedding_stamp(ds: Dataset, name: str) -> str:
    """Changes when the vectors (meta.json) or the index (index.json) are rewritten."""
    path = ds.embedding_dir(name)
    return f'{file_stamp(path / "meta.json")}/{file_stamp(path / "index.json")}'


def embedding_stamp(ws: Workspace, dataset: str, embedding: str) -> str:
    """File stamps of an embedding's meta.json and index.json (change whenever its vectors
    or its index are rewritten): the cache key part of everything built on an embedding."""
    return _embedding_stamp(ws.dataset(dataset), embedding)


@st.cache_resource(show_spinner="Loading index…", max_entries=8)
def _index(home: str, dataset: str, embedding: str, stamp: str):
    return _load_index(open_workspace(home).dataset(dataset), embedding)


def vector_index(ws: Workspace, dataset: str, embedding: str):
    """The persisted VectorIndex of an embedding (shared, read-only)."""
    ds = ws.dataset(dataset)
    return _index(str(ws.home), dataset, embedding, _embedding_stamp(ds, embedding))


@st.cache_resource(show_spinner=False, max_entries=8)
def _embedding(home: str, dataset: str, embedding: str, stamp: str):
    return _load_embedding(open_workspace(home).dataset(dataset), embedding)


def embedding(ws: Workspace, dataset: str, name: str):
    """The loaded Embedding (memory-mapped vectors; shared, read-only)."""
    ds = ws.dataset(dataset)
    return _embedding(str(ws.home), dataset, name, _embedding_stamp(ds, name))


def embeddings(ws: Workspace, dataset: str) -> list[EmbeddingInfo]:
    """Summaries of the dataset's embeddings (cheap: reads meta files)."""
    return list_embeddings(ws.dataset(dataset))


@st.cache_resource(show_spinner="Loading model…")
def encoder(spec: str):
    """A loaded encoder, shared by every session."""
    return load_encoder(spec)


def derived_embeddings(ws: Workspace, dataset: str) -> list[str]:
    """Embeddings Catalog derived for a feature (the row-text embedding text search uses on
    image datasets), not chosen by the user: listed as derived, never in the picker."""
    from core.search import FALLBACK_EMBEDDING

    return [name for name in ws.dataset(dataset).embedding_names() if name == FALLBACK_EMBEDDING]
