"""Cached quality data for the Label review page and the pages that use quality columns.

One kNN pass per (dataset, embedding file stamp, width) is kept with
``st.cache_resource`` (:func:`neighbours`, shared, read-only): the stored pass when it is
current (memory-mapped), else one computed in memory up to ``IN_MEMORY_MAX_ROWS`` rows;
above that nothing is computed on a page load: the quality columns are absent until the
pass runs as a background job (:func:`ui.jobs.start_quality`, from Label review); the label-dependent
scoring on top of it (:func:`label_issues`, :func:`duplicates`, :func:`quality_table`)
is ``st.cache_data`` keyed by the embedding stamp and :func:`labels_key` (rows file
stamp + hash of the label edits), so a relabel rescores labels without searching the
index again, and a plain rerun computes nothing. :func:`rows_with_quality` and
:func:`quality_profile` give the Catalog and Smart select pages the quality columns.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import pandas as pd
import streamlit as st

from core.errors import CatalogError, IndexStateError
from core.filters import ColumnProfile
from core.quality import (
    IN_MEMORY_MAX_ROWS,
    Duplicates,
    LabelIssues,
    Neighbours,
    closest_partners,
    find_label_issues,
    find_near_duplicates,
    load_neighbours,
    nearest_neighbours,
    neighbours_of,
    pass_width,
    quality_columns,
    stored_pass_file,
)
from core.rows import join_quality, labels_by_id, open_rows, quality_arrow
from core.workspace import Workspace
from ui import loaders

log = logging.getLogger(__name__)

__all__ = [
    "NEAREST_SHOWN",
    "SCORE_COLUMNS",
    "duplicate_partners",
    "duplicates",
    "label_choices",
    "label_issues",
    "nearest_of",
    "needs_stored_pass",
    "neighbours",
    "outlier_view",
    "quality_or_none",
    "quality_profile",
    "quality_table",
    "rows_with_quality",
    "vector_rows",
]

SCORE_COLUMNS = ("label_issue_score", "uniqueness")  # both in [0, 1]
NEAREST_SHOWN = 5  # neighbours shown with a flagged row


# ---- cache keys ---------------------------------------------------------------------
labels_key = loaders.labels_key  # rows stamp + hash of the label edits


def embedding_stamp(ws: Workspace, dataset: str, embedding: str) -> str:
    """meta.json + index.json stamps, and the stored neighbours pass's: everything scored
    from an embedding's neighbours is recomputed when any of them is rewritten."""
    pass_file = stored_pass_file(ws.dataset(dataset), embedding)
    return f"{loaders.embedding_stamp(ws, dataset, embedding)}|{loaders.file_stamp(pass_file)}"


def vector_rows(ws: Workspace, dataset: str, embedding: str) -> int:
    """Rows of ``embedding`` (from its meta file; 0 if unknown)."""
    return next((i.rows for i in loaders.embeddings(ws, dataset) if i.name == embedding), 0)


# ---- cached computations --------------------------------------------------------------
@st.cache_resource(show_spinner=False, max_entries=8)
def _stored(home: str, dataset: str, embedding: str, stamp: str, width: int,
            _ws: Workspace) -> Neighbours | None:
    return load_neighbours(_ws.dataset(dataset), embedding, width)


@st.cache_resource(show_spinner="Finding nearest neighbours…", max_entries=8)
def _in_memory(home: str, dataset: str, embedding: str, stamp: str, width: int,
               _ws: Workspace) -> Neighbours:
    return nearest_neighbours(loaders.vector_index(_ws, dataset, embedding), k=width)


def neighbours(ws: Workspace, dataset: str, embedding: str, k: int | None = None) -> Neighbours | None:
    """The shared kNN pass (width :func:`core.quality.pass_width` of ``k``) of ``embedding``: the
    stored pass when current (memory-mapped), else computed in memory once per file stamp if
    the embedding has at most IN_MEMORY_MAX_ROWS rows; None above that (start :func:`ui.jobs.start_quality`)."""
    width = pass_width(k)
    key = (str(ws.home), dataset, embedding, embedding_stamp(ws, dataset, embedding), width, ws)
    stored = _stored(*key)
    if stored is not None or vector_rows(ws, dataset, embedding) > IN_MEMORY_MAX_ROWS:
        return stored
    return _in_memory(*key)


def needs_stored_pass(ws: Workspace, dataset: str, embedding: str, k: int | None = None) -> bool:
    """Whether ``embedding`` is too large (> IN_MEMORY_MAX_ROWS rows) to score before its
    stored pass (``pass_width(k)`` wide) is computed. Computes nothing."""
    if vector_rows(ws, dataset, embedding) <= IN_MEMORY_MAX_ROWS:
        return False
    width = pass_width(k)
    return _stored(str(ws.home), dataset, embedding, embedding_stamp(ws, dataset, embedding), width, ws) is None


def _required(ws: Workspace, dataset: str, embedding: str, k: int | None = None) -> Neighbours:
    shared = neighbours(ws, dataset, embedding, k)
    if shared is None:
        raise IndexStateError(
            f"{embedding!r} of {dataset!r} has {vector_rows(ws, dataset, embedding):,} rows: its "
            f"neighbours pass (k = {pass_width(k)}) is computed once, in the "
            f"background (Label review) or with `catalog quality {dataset}`")
    return shared


def nearest_of(ws: Workspace, dataset: str, embedding: str, ids: list[str],
               n: int = NEAREST_SHOWN) -> list[tuple[tuple[str, float], ...]]:
    """The ``n`` nearest neighbours ``(id, cosine)`` of each of ``ids``, best first, read
    from the shared kNN pass (:func:`neighbours`: no new search); ``()`` for an id without
    a vector."""
    shared = neighbours(ws, dataset, embedding)
    return [() for _ in ids] if shared is None else neighbours_of(shared, ids, n)


@st.cache_data(show_spinner="Scoring labels…", max_entries=16)
def _label_issues(home: str, dataset: str, embedding: str, stamp: str, k: int | None, labels: str,
                  _ws: Workspace) -> LabelIssues:
    shared = _required(_ws, dataset, embedding, k)  # before loading anything large
    index = loaders.vector_index(_ws, dataset, embedding)
    return find_label_issues(index, labels_by_id(_ws, dataset), k=k, neighbours=shared)


def label_issues(ws: Workspace, dataset: str, embedding: str, k: int | None = None) -> LabelIssues:
    """Labelled rows worst first (cached by embedding stamp, k and label edits).
    Raises InputError (k < 1, < 2 rows or < 2 distinct labels), IndexStateError (a large
    embedding without its stored pass)."""
    return _label_issues(str(ws.home), dataset, embedding, embedding_stamp(ws, dataset, embedding),
                         None if k is None else int(k), labels_key(ws, dataset), ws)


@st.cache_data(show_spinner="Finding near-duplicates…", max_entries=16)
def _duplicates(home: str, dataset: str, embedding: str, stamp: str, threshold: float,
                labels: str, _ws: Workspace) -> Duplicates:
    shared = _required(_ws, dataset, embedding)  # before loading anything large
    index = loaders.vector_index(_ws, dataset, embedding)
    return find_near_duplicates(index, threshold, labels_by_id(_ws, dataset), neighbours=shared)


def duplicates(ws: Workspace, dataset: str, embedding: str, threshold: float) -> Duplicates:
    """Near-duplicate pairs and groups at cosine ≥ ``threshold`` (cached).
    Raises InputError for a threshold outside (0, 1]."""
    return _duplicates(str(ws.home), dataset, embedding, embedding_stamp(ws, dataset, embedding),
                       round(float(threshold), 6), labels_key(ws, dataset), ws)


@st.cache_data(show_spinner=False, max_entries=16)
def _partners(home: str, dataset: str, embedding: str, stamp: str, threshold: float, labels: str,
              _ws: Workspace) -> dict[str, tuple[str, float]]:
    return closest_partners(duplicates(_ws, dataset, embedding, threshold))


def duplicate_partners(ws: Workspace, dataset: str, embedding: str,
                       threshold: float) -> dict[str, tuple[str, float]]:
    """Row id → (its most similar near-duplicate, their cosine) at ``threshold`` (cached
    like :func:`duplicates`)."""
    return _partners(str(ws.home), dataset, embedding, embedding_stamp(ws, dataset, embedding),
                     round(float(threshold), 6), labels_key(ws, dataset), ws)


@st.cache_data(show_spinner="Scoring label issues and uniqueness…", max_entries=16)
def _quality_table(home: str, dataset: str, embedding: str, stamp: str, labels: str,
                   _ws: Workspace) -> pd.DataFrame:
    shared = _required(_ws, dataset, embedding)  # before loading anything large
    index = loaders.vector_index(_ws, dataset, embedding)
    return quality_columns(index, labels_by_id(_ws, dataset), neighbours=shared)


def quality_table(ws: Workspace, dataset: str, embedding: str) -> pd.DataFrame:
    """One row per vector: ``id``, ``label_issue_score``, ``suggested_label``, ``uniqueness``
    (k = 10; cached by embedding stamp + label-edits version). Raises InputError (< 2 rows)."""
    return _quality_table(str(ws.home), dataset, embedding, embedding_stamp(ws, dataset, embedding),
                          labels_key(ws, dataset), ws)


def quality_or_none(ws: Workspace, dataset: str, embedding: str) -> pd.DataFrame | None:
    """:func:`quality_table`, or None (logged) when ``embedding`` cannot be scored (e.g.
    fewer than 2 rows): the quality columns are then all NaN."""
    try:
        return quality_table(ws, dataset, embedding)
    except CatalogError as err:
        log.warning("no quality columns for %s/%s: %s", dataset, embedding, err)
        return None


@st.cache_resource(show_spinner=False, max_entries=8)
def _quality_arrow(home: str, dataset: str, embedding: str, stamp: str, labels: str,
                   _ws: Workspace):
    quality = quality_or_none(_ws, dataset, embedding)
    return quality_arrow(quality) if quality is not None else None


def quality_scores(ws: Workspace, dataset: str, embedding: str):
    """:func:`quality_or_none` as a shared Arrow table (``pyarrow.Table``, or None), what
    :class:`core.rows.RowsView` joins without copying (cached; never mutate)."""
    return _quality_arrow(str(ws.home), dataset, embedding, embedding_stamp(ws, dataset, embedding),
                          labels_key(ws, dataset), ws)


@st.cache_resource(show_spinner=False, max_entries=8)
def _merged(home: str, dataset: str, embedding: str, stamp: str, labels: str,
            _ws: Workspace) -> pd.DataFrame:
    rows = loaders.effective_rows(_ws, dataset)
    if needs_stored_pass(_ws, dataset, embedding):  # a large embedding not scored yet: no columns
        return rows
    return join_quality(rows, quality_or_none(_ws, dataset, embedding), dataset)


def rows_with_quality(ws: Workspace, dataset: str, embedding: str) -> pd.DataFrame:
    """The effective rows (label edits applied, row order kept) plus ``label_issue_score``,
    ``suggested_label`` and ``uniqueness`` joined on id: NaN for rows without a vector (or
    all NaN if the embedding cannot be scored). A user column of the same name is kept
    and the quality column skipped. Without the columns while a large embedding's stored
    pass is not computed. Cached and shared: never mutate it."""
    return _merged(str(ws.home), dataset, embedding, embedding_stamp(ws, dataset, embedding),
                   labels_key(ws, dataset), ws)


@st.cache_data(show_spinner=False, max_entries=16)
def _profile(home: str, dataset: str, embedding: str, stamp: str, labels: str,
             _ws: Workspace) -> ColumnProfile:
    with open_rows(_ws, dataset, quality=quality_scores(_ws, dataset, embedding)) as query:
        profile = query.profile()  # aggregates in the database, no table in memory
    first = {c: (0.0, 1.0) for c in SCORE_COLUMNS if c in profile.numeric}
    numeric = {**first, **{c: v for c, v in profile.numeric.items() if c not in first}}
    cats = dict(profile.categorical)
    if "suggested_label" in cats:
        cats = {"suggested_label": cats.pop("suggested_label"), **cats}
    return replace(profile, categorical=cats, numeric=numeric)


def quality_profile(ws: Workspace, dataset: str, embedding: str) -> ColumnProfile:
    """Filter-panel profile of :func:`rows_with_quality`: the quality columns come first,
    score ranges fixed to 0-1 (so sliders keep their range when labels change)."""
    return _profile(str(ws.home), dataset, embedding, embedding_stamp(ws, dataset, embedding),
                    labels_key(ws, dataset), ws)


def label_choices(ws: Workspace, dataset: str) -> list[str]:
    """Labels offered by "set another label": source and edited labels, sorted."""
    rows = loaders.effective_rows(ws, dataset)
    edited = set(rows["label"].dropna().astype(str)) if "label" in rows.columns else set()
    return sorted(set(loaders.column_profile(ws, dataset).labels) | edited)


@st.cache_resource(show_spinner=False, max_entries=8)
def _outliers(home: str, dataset: str, embedding: str, stamp: str, labels: str,
              _ws: Workspace) -> tuple[pd.DataFrame, dict[str, float]]:
    table = rows_with_quality(_ws, dataset, embedding)
    if "uniqueness" not in table.columns:
        return table.iloc[:0], {}
    view = table[table["uniqueness"].notna()].sort_values(
        ["uniqueness", "id"], ascending=[False, True], kind="stable")
    return view, dict(zip(view["id"].astype(str), view["uniqueness"].astype(float)))


def outlier_view(ws: Workspace, dataset: str, embedding: str) -> tuple[pd.DataFrame, dict[str, float]]:
    """Rows with a vector, most unique first, and id → uniqueness (cached; do not mutate)."""
    return _outliers(str(ws.home), dataset, embedding, embedding_stamp(ws, dataset, embedding),
                     labels_key(ws, dataset), ws)


# ---- the first kNN pass of a large embedding: a background job ---------------------------
QUALITY_INLINE_ROWS = 10_000  # up to here the first pass takes about a second: run inline


@st.cache_resource(show_spinner=False)
def _warm_passes() -> set:
    """Keys (home, dataset, embedding, stamp) whose quality table a job has computed."""
    return set()


def pending_quality_job(ws: Workspace, dataset: str, embedding: str):
    """None when the quality columns of ``embedding`` can be read now (already computed,
    small enough to compute inline, or not computable yet: a large embedding without its
    stored pass and no job running); else the background job computing them, a
    :class:`core.jobs.Job`: the scoring job (started here if needed; a failed one is
    returned, not retried) or a running :func:`ui.jobs.start_quality` pass."""
    from ui import jobs

    stamp = embedding_stamp(ws, dataset, embedding)
    key = (str(ws.home), dataset, embedding, stamp)
    if key in _warm_passes():
        return None
    vectors = vector_rows(ws, dataset, embedding)
    if vectors <= QUALITY_INLINE_ROWS:
        return None
    if needs_stored_pass(ws, dataset, embedding):
        running = jobs.board(ws).latest(dataset, "quality")
        return running if running is not None and running.active else None

    def work(ctx) -> dict:
        ctx.stage("finding nearest neighbours and scoring labels")
        table = rows_with_quality(ws, dataset, embedding)
        quality_profile(ws, dataset, embedding)
        _warm_passes().add(key)
        return {"rows": len(table)}

    job = jobs.start_unless_failed(ws, dataset, "quality", work,
                                   label=f"Scoring label issues and uniqueness of {dataset}",
                                   params={"embedding": embedding, "stamp": stamp})
    if job.status == "done":  # computed by a job of this process with the same stamp
        _warm_passes().add(key)
        return None
    return job
