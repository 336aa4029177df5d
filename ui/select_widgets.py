"""Streamlit glue of the Smart select page: scopes, the cached selection call, the preview.

A scope is the whole dataset, the Catalog filter or a slice, minus the rows of the
excluded slices and tags. Selections run through an ``st.cache_data`` wrapper keyed by
plain values (dataset, rows stamp + label edits, embedding stamp, method parameters,
hash of the scope ids); the workspace, the rows table and the scope ids start with
``_`` and are not hashed. A rerun with the same inputs never clusters again.

A selection depends on an embedding when its method clusters vectors (cluster, diverse)
or when it orders by a quality column (``uniqueness``, ``label_issue_score``...), which
the rows table gets from the active embedding: :func:`selection_embedding` names it, and
its file stamp is part of the cache key and of the preview :func:`signature`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import pandas as pd
import streamlit as st

from core._shared import ids_hash
from core.errors import InputError
from core.select import (
    SELECT_METHODS,
    Selection,
    apply_scope,
    scope_vectors,
    select_by_cluster,
    select_diverse,
    select_ordered,
    select_random,
)
from core.workspace import Workspace
from ui import loaders, state
from ui.filter_panel import filtered_rows
from ui.quality_data import QUALITY_COLUMNS

SCOPE_ALL = "all"
SCOPE_FILTER = "filter"
SLICE_PREFIX = "slice:"
VECTOR_METHODS = ("cluster", "diverse")
METHOD_NAMES = {
    "random": "Random: a seeded uniform draw",
    "ordered": "Ordered: the first N rows sorted by a column",
    "cluster": "Cluster: spread over KMeans clusters of the embedding",
    "diverse": "Diverse: farthest-point sampling of the embedding",
}
PREVIEW_KEY = "sel:preview"


@dataclass(frozen=True)
class Scope:
    """Rows a selection may draw from, in dataset order, and how they were chosen."""

    ids: tuple[str, ...]
    kind: str  # "all" | "filter" | "slice"
    description: str  # e.g. "Catalog filter: label in {3}"
    detail: dict  # {"filter": RowFilter json} | {"slice": name} | {}
    excluded_slices: tuple[str, ...] = ()
    excluded_tags: tuple[str, ...] = ()
    excluded_rows: int = 0  # rows of the base scope removed by the exclusions

    @property
    def key(self) -> str:
        """Content hash of the ids (the cache key of selections in this scope)."""
        return ids_hash(list(self.ids))

    def to_recipe(self) -> dict:
        return {"scope": self.description, "scope_detail": {"kind": self.kind, **self.detail},
                "rows_in_scope": len(self.ids), "excluded_slices": list(self.excluded_slices),
                "excluded_tags": list(self.excluded_tags), "excluded_rows": self.excluded_rows}


@dataclass(frozen=True)
class SelectParams:
    """What the page's widgets ask for; ``by``/``descending`` are for ordered, ``k``,
    ``per_cluster``, ``pick`` for cluster."""

    method: str
    n: int
    seed: int = 0
    by: str | None = None
    descending: bool = False
    k: int = 10
    per_cluster: str = "proportional"
    pick: str = "central"

    def relevant(self) -> dict:
        """Only the parameters the method uses (used as cache key and shown to the user)."""
        out = {"method": self.method, "n": self.n}
        if self.method != "ordered":
            out["seed"] = self.seed
        if self.method == "ordered":
            out.update(by=self.by, descending=self.descending)
        if self.method == "cluster":
            out.update(k=self.k, per_cluster=self.per_cluster, pick=self.pick)
        return out


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


def resolve_scope(ws: Workspace, dataset: str, rows: pd.DataFrame, choice: str,
                  exclude_slices: Sequence[str] = (), exclude_tags: Sequence[str] = ()) -> Scope:
    """The ids of ``rows`` (effective rows table) in scope ``choice`` minus the excluded
    slices' and tags' rows. Raises NotFoundError (a slice or tag that no longer exists)
    and InputError (unknown choice)."""
    all_ids = rows["id"].astype(str).tolist()
    store = ws.store
    if choice == SCOPE_ALL:
        base, kind, detail, text = all_ids, "all", {}, "whole dataset"
    elif choice == SCOPE_FILTER:
        flt = state.row_filter(dataset)
        base = filtered_rows(ws, dataset, rows, flt)["id"].astype(str).tolist()
        kind, detail, text = "filter", {"filter": flt.to_json()}, f"Catalog filter: {flt.describe()}"
    elif choice.startswith(SLICE_PREFIX):
        name = choice[len(SLICE_PREFIX):]
        base = apply_scope(all_ids, within=store.get_slice(dataset, name).ids)
        kind, detail, text = "slice", {"slice": name}, f"slice {name!r}"
    else:
        raise InputError(f"unknown scope {choice!r}; choose one of all, filter, slice:<name>")
    excluded: set[str] = set()
    for name in exclude_slices:
        excluded.update(store.get_slice(dataset, name).ids)
    for tag in exclude_tags:
        excluded.update(store.rows_with_tag(dataset, tag))
    ids = apply_scope(base, exclude=excluded) if excluded else base
    if exclude_slices or exclude_tags:
        text += " minus " + ", ".join([f"slice {s!r}" for s in exclude_slices]
                                      + [f"tag {t!r}" for t in exclude_tags])
    return Scope(tuple(ids), kind, text, detail, tuple(exclude_slices), tuple(exclude_tags),
                 len(base) - len(ids))


# ---- cached selection ------------------------------------------------------------------
rows_key = loaders.labels_key  # rows stamp + label edits (ordered-by-label changes)


def _emb_key(ws: Workspace, dataset: str, embedding: str | None) -> str:
    """File stamp of ``embedding`` (meta.json and index.json), "none" without one."""
    if embedding is None:
        return "none"
    return loaders.embedding_stamp(ws, dataset, embedding)


def selection_embedding(ws: Workspace, dataset: str, embedding: str | None,
                        params: SelectParams) -> str | None:
    """The embedding the selection of ``params`` depends on, or None: the active
    ``embedding`` for cluster / diverse, and for ordered by a quality column the rows
    table gets from it (a user column of the same name is kept by
    :func:`ui.quality_data.rows_with_quality`, so ordering by it does not depend on it)."""
    if embedding is None:
        return None
    if params.method in VECTOR_METHODS:
        return embedding
    if (params.method == "ordered" and params.by in QUALITY_COLUMNS
            and params.by not in loaders.source_rows(ws, dataset).columns):
        return embedding
    return None


def signature(ws: Workspace, dataset: str, embedding: str | None, params: SelectParams,
              scope: Scope) -> tuple:
    """What a preview was made with: the parameters, the scope ids hash, and the embedding
    the selection depends on with its file stamp (a preview made with another embedding,
    or before the embedding was rewritten, is stale)."""
    emb = selection_embedding(ws, dataset, embedding, params)
    return (params, scope.key, emb, _emb_key(ws, dataset, emb))


@st.cache_data(show_spinner="Selecting…", max_entries=32)
def _select(home: str, dataset: str, rows_key: str, embedding: str | None, emb_key: str,
            params: tuple, scope_key: str, _ws: Workspace, _rows: pd.DataFrame,
            _scope: tuple[str, ...]) -> tuple[Selection, int]:
    """(selection, scope rows without a vector) for ``params`` = SelectParams fields."""
    p = SelectParams(**dict(params))
    if p.method in VECTOR_METHODS:
        if embedding is None:
            raise InputError(f"method {p.method!r} needs an embedding; this dataset has none "
                             "(run `catalog embed`) or use random / ordered")
        emb = loaders.embedding(_ws, dataset, embedding)
        ids, vectors = scope_vectors(emb.ids, emb.vectors, _scope)
        missing = len(_scope) - len(ids)
        if p.method == "cluster":
            return select_by_cluster(ids, vectors, p.n, p.k, per_cluster=p.per_cluster,
                                     pick=p.pick, seed=p.seed), missing
        return select_diverse(ids, vectors, p.n, seed=p.seed), missing
    if p.method == "random":
        return select_random(_scope, p.n, seed=p.seed), 0
    if p.method == "ordered":
        if not p.by:
            raise InputError("ordered selection needs a column to order by")
        pos = pd.Index(_rows["id"].astype(str)).get_indexer(list(_scope))
        cols = ["id"] + ([p.by] if p.by in _rows.columns and p.by != "id" else [])
        table = _rows[cols] if p.by in _rows.columns else _rows
        return select_ordered(table.iloc[pos].reset_index(drop=True), p.n, p.by, p.descending), 0
    raise InputError(f"unknown method {p.method!r}; choose one of {', '.join(SELECT_METHODS)}")


def run_selection(ws: Workspace, dataset: str, rows: pd.DataFrame, embedding: str | None,
                  params: SelectParams, scope: Scope) -> Selection:
    """Cached selection of ``params`` inside ``scope``, with the full recipe: the core
    recipe plus dataset, dataset_rows, embedding (the one the selection depends on, see
    :func:`selection_embedding`, else None), scope description and counts, and
    ``not_covered`` (scope rows without a vector) for cluster/diverse. Raises
    CatalogError (n larger than the scope, unknown column, no embedding...)."""
    uses_vectors = params.method in VECTOR_METHODS
    emb = selection_embedding(ws, dataset, embedding, params)
    table_key = rows_key(ws, dataset) if params.method == "ordered" else "-"
    sel, missing = _select(str(ws.home), dataset, table_key, emb, _emb_key(ws, dataset, emb),
                           tuple(sorted(asdict(params).items())), scope.key, ws, rows, scope.ids)
    recipe = {**sel.recipe, "dataset": dataset, "dataset_rows": len(rows), "embedding": emb,
              **scope.to_recipe()}
    if uses_vectors:
        recipe["not_covered"] = missing
    return Selection(sel.ids, recipe)


def selection_view(rows: pd.DataFrame, ids: Sequence[str]) -> pd.DataFrame:
    """The rows of ``ids`` in selection order (ids without a row dropped)."""
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
