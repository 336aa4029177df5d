"""Streamlit glue of the Smart select page: the rows, scope choices, the cached selection
call, the preview.

The rows are a :class:`core.rows.RowsView` (DuckDB over ``rows.parquet``; no table in
memory, at any size): :func:`page_rows` builds it, with the quality columns of the active
embedding only when the request needs them (:func:`needs_quality_columns`: ordering or a
Catalog filter on one), so opening the page never starts the kNN pass. The logic is in
:mod:`core.select` (the one code path ``catalog select`` runs too): :func:`page_scope`
turns the scope selectbox into :func:`core.select.resolve_scope` (ids from SQL),
:func:`run_selection` calls :func:`core.select.select_rows` (ordered: the first N sorted
by the database) through an ``st.cache_data`` wrapper keyed by plain values (dataset, rows
stamp + label edits for ordered, the embedding the selection depends on and its file
stamp, the request, the hash of the scope ids and the scope's recipe); the workspace, the
rows and the scope start with ``_`` and are not hashed. A rerun with the same inputs
never clusters again, and a relabel never reclusters. The preview grid fetches the rows
of the selected ids only (:func:`selection_view`).

A selection depends on an embedding when its method clusters vectors (cluster, diverse)
or when it orders by a quality column the rows table gets from the active embedding:
:func:`selection_embedding` names it; its file stamp is part of the cache key and of the
preview :func:`signature`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, replace

import pandas as pd
import streamlit as st

from core.errors import InputError, NotFoundError
from core.filters import RowFilter
from core.quality import QUALITY_COLUMNS
from core.rows import RowsView, needs_quality
from core.select import (
    VECTOR_METHODS,
    Scope,
    Selection,
    SelectRequest,
    resolve_scope,
    select_rows,
    source_columns,
)
from core.select import selection_embedding as _depends_on
from core.workspace import Workspace
from ui import loaders, state
from ui.filter_panel import catalog_view, rename_slice_in_filter
from ui.grid import safe_text

SCOPE_ALL = "all"
SCOPE_FILTER = "filter"
SLICE_PREFIX = "slice:"
METHOD_NAMES = {
    "random": "Random: a seeded uniform draw",
    "ordered": "Ordered: the first N rows sorted by a column",
    "cluster": "Cluster: spread over KMeans clusters of the embedding",
    "diverse": "Diverse: farthest-point sampling of the embedding",
}
PREVIEW_KEY = "sel:preview"


# ---- the rows ---------------------------------------------------------------------------
Rows = pd.DataFrame | RowsView


def _columns(rows: Rows) -> list[str]:
    return list(rows.schema()) if isinstance(rows, RowsView) else [str(c) for c in rows.columns]


def _count(rows: Rows) -> int:
    if isinstance(rows, RowsView):
        return (replace(rows, flt=RowFilter()) if rows.flt.active else rows).count()
    return len(rows)


def page_rows(ws: Workspace, dataset: str, embedding: str | None = None) -> RowsView:
    """The dataset's rows as a :class:`core.rows.RowsView` (effective labels; no filter),
    plus the quality columns of ``embedding`` (None: without them) once they are computed:
    a large first pass runs as a job, watched here (:func:`ui.filter_panel.catalog_view`);
    until it ends the view has no quality columns (``view.quality`` is None)."""
    return catalog_view(ws, dataset, embedding, RowFilter())


def order_columns(rows: Rows, embedding: str | None) -> list[str]:
    """The columns "Order by" offers: the rows' columns, plus the quality columns of the
    active embedding (computed only when one is chosen)."""
    columns = _columns(rows)
    return columns + ([c for c in QUALITY_COLUMNS if c not in columns] if embedding else [])


def needs_quality_columns(dataset: str, embedding: str | None, params: SelectRequest,
                          choice: str, rows: Rows) -> bool:
    """Whether the request needs quality columns ``rows`` lacks: ordered by one, or the
    Catalog filter scope filtering on one (False without an embedding)."""
    if embedding is None:
        return False
    columns = _columns(rows)
    if params.method == "ordered" and params.by in QUALITY_COLUMNS and params.by not in columns:
        return True
    return choice == SCOPE_FILTER and needs_quality(state.row_filter(dataset), columns)


# ---- scope ----------------------------------------------------------------------------
def scope_choices(ws: Workspace, dataset: str) -> list[str]:
    """``["all", "filter", "slice:<name>", ...]`` for the scope selectbox."""
    return [SCOPE_ALL, SCOPE_FILTER] + [SLICE_PREFIX + s.name for s in ws.store.list_slices(dataset)]


def describe_choice(choice: str) -> str:
    """Human label of a scope choice (fixed text: the filter itself is described by
    :attr:`Scope.description`, so the selectbox keeps its value when the filter changes)."""
    if choice == SCOPE_ALL:
        return "Whole dataset"
    if choice == SCOPE_FILTER:
        return "Current Catalog filter"
    return f"Slice '{choice[len(SLICE_PREFIX):]}'"


def usable_filter(ws: Workspace, dataset: str, rows: Rows) -> RowFilter:
    """The Catalog filter as this page can apply it to ``rows``: a slice that no longer
    exists is dropped (from the saved filter too) and conditions on columns ``rows`` lacks
    are left out, each with a warning, as the other pages do."""
    flt = state.row_filter(dataset)
    if flt.slice_name:
        try:
            ws.store.get_slice(dataset, flt.slice_name)
        except NotFoundError:
            st.warning(f"The filter's slice '{safe_text(flt.slice_name)}' no longer exists "
                       "(deleted or renamed): its condition was removed from the filter.")
            rename_slice_in_filter(dataset, flt.slice_name, None)
            flt = replace(flt, slice_name=None)
    usable = flt.applicable_to(_columns(rows))
    if usable != flt:
        skipped = RowFilter(categories=tuple(c for c in flt.categories if c not in usable.categories),
                            ranges=tuple(r for r in flt.ranges if r not in usable.ranges))
        st.warning(f"Not applied on this page (no such column here): {safe_text(skipped.describe())}.")
    return usable


def page_scope(ws: Workspace, dataset: str, rows: Rows, choice: str,
               exclude_slices: Sequence[str] = (), exclude_tags: Sequence[str] = ()) -> Scope:
    """:func:`core.select.resolve_scope` of the scope selectbox's ``choice`` over ``rows``
    (the page's :class:`core.rows.RowsView`, or a DataFrame). Raises NotFoundError (a slice or tag that no longer
    exists) and InputError (unknown choice)."""
    kwargs = {"exclude_slices": tuple(exclude_slices), "exclude_tags": tuple(exclude_tags)}
    if choice == SCOPE_ALL:
        return resolve_scope(ws, dataset, rows, "all", **kwargs)
    if choice == SCOPE_FILTER:
        return resolve_scope(ws, dataset, rows, "filter",
                             row_filter=usable_filter(ws, dataset, rows), **kwargs)
    if choice.startswith(SLICE_PREFIX):
        return resolve_scope(ws, dataset, rows, "slice", slice_name=choice[len(SLICE_PREFIX):],
                             **kwargs)
    raise InputError(f"unknown scope {choice!r}; choose one of all, filter, slice:<name>")


# ---- cached selection ------------------------------------------------------------------
rows_key = loaders.labels_key  # rows stamp + label edits (ordered-by-label changes)


def _emb_key(ws: Workspace, dataset: str, embedding: str | None) -> str:
    """File stamp of ``embedding`` (meta.json and index.json), "none" without one."""
    if embedding is None:
        return "none"
    return loaders.embedding_stamp(ws, dataset, embedding)


def selection_embedding(ws: Workspace, dataset: str, embedding: str | None,
                        params: SelectRequest) -> str | None:
    """:func:`core.select.selection_embedding` with the columns of the cached source rows."""
    if embedding is None:
        return None
    return _depends_on(params, embedding, source_columns(ws, dataset))


def signature(ws: Workspace, dataset: str, embedding: str | None, params: SelectRequest,
              scope: Scope) -> tuple:
    """What a preview was made with: the parameters, the scope ids hash, and the embedding
    the selection depends on with its file stamp (a preview made with another embedding,
    or before the embedding was rewritten, is stale)."""
    emb = selection_embedding(ws, dataset, embedding, params)
    return (params, scope.key, emb, _emb_key(ws, dataset, emb))


@st.cache_data(show_spinner="Selecting…", max_entries=32)
def _select(home: str, dataset: str, rows_key: str, embedding: str | None, emb_key: str,
            params: tuple, scope_key: str, scope_recipe: str, dataset_rows: int,
            _ws: Workspace, _rows: Rows, _scope: Scope) -> Selection:
    """:func:`core.select.select_rows` of ``params`` (SelectRequest fields) in ``_scope``."""
    request = SelectRequest(**dict(params))
    vectors = (loaders.embedding(_ws, dataset, embedding)
               if embedding is not None and request.method in VECTOR_METHODS else None)
    return select_rows(_ws, dataset, request, _scope, table=_rows, embedding=embedding,
                       vectors=vectors)


def run_selection(ws: Workspace, dataset: str, rows: Rows, embedding: str | None,
                  params: SelectRequest, scope: Scope) -> Selection:
    """Cached :func:`core.select.select_rows` of ``params`` inside ``scope`` over ``rows``,
    with ``embedding`` the active one: the ids and the full recipe ``catalog select``
    gives. Raises CatalogError (n larger than the scope, unknown column, no embedding...)."""
    emb = selection_embedding(ws, dataset, embedding, params)
    table_key = rows_key(ws, dataset) if params.method == "ordered" else "-"
    scope_recipe = json.dumps(scope.to_recipe(), sort_keys=True, default=str)
    return _select(str(ws.home), dataset, table_key, emb, _emb_key(ws, dataset, emb),
                   tuple(sorted(asdict(params).items())), scope.key, scope_recipe, _count(rows),
                   ws, rows, scope)


def selection_view(rows: Rows, ids: Sequence[str]) -> pd.DataFrame:
    """The rows of ``ids`` in selection order (ids without a row dropped): one query of
    those rows for a view."""
    if isinstance(rows, RowsView):
        return rows.rows_of(list(ids))
    pos = pd.Index(rows["id"].astype(str)).get_indexer(list(ids))
    return rows.iloc[pos[pos >= 0]]


# ---- preview kept per session and dataset ------------------------------------------------
def set_preview(dataset: str, selection: Selection, signature: tuple) -> None:
    st.session_state.setdefault(PREVIEW_KEY, {})[dataset] = (selection, signature)


def preview(dataset: str) -> tuple[Selection, tuple] | None:
    """(last previewed selection, the settings signature it was made with) or None."""
    return st.session_state.get(PREVIEW_KEY, {}).get(dataset)


def counts_line(selection: Selection) -> str:
    """Markdown summary: selected, in scope, excluded, without a vector."""
    r = selection.recipe
    parts = [(f"**{len(selection):,} rows selected** from {r['rows_in_scope']:,} in scope "
              f"({r['dataset_rows']:,} in the dataset)")]
    if r.get("excluded_rows"):
        parts.append(f"{r['excluded_rows']:,} excluded")
    if r.get("not_covered"):
        parts.append(f"{r['not_covered']:,} without a vector in {r['embedding']} left out")
    return " · ".join(parts)


__all__ = [
    "METHOD_NAMES", "PREVIEW_KEY", "SCOPE_ALL", "SCOPE_FILTER", "SLICE_PREFIX", "VECTOR_METHODS",
    "SelectRequest", "counts_line", "describe_choice", "needs_quality_columns", "order_columns",
    "page_rows", "page_scope", "preview", "rows_key", "run_selection", "scope_choices",
    "selection_embedding", "selection_view", "set_preview", "signature", "usable_filter",
]
