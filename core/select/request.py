"""A smart-select request run inside a scope: method dispatch and the full recipe.

:func:`select_rows` is the one code path of "select N rows": the Smart select page (through
its ``st.cache_data`` wrapper in :mod:`ui.smart_select`) and ``catalog select`` both call
it with a :class:`SelectRequest` and a :class:`~core.select.scope.Scope`, so the same
request gives the same ids and the same recipe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import pandas as pd

from core.errors import InputError, SchemaError, format_list
from core.filters import RowFilter
from core.rows import RowsView
from core.select.methods import (
    SELECT_METHODS,
    Selection,
    _check_n,
    scope_vectors,
    select_by_cluster,
    select_diverse,
    select_ordered,
    select_random,
)
from core.select.scope import Scope
from core.workspace import Workspace

VECTOR_METHODS = ("cluster", "diverse")


@dataclass(frozen=True)
class SelectRequest:
    """What the user asks for. ``by`` / ``descending`` are for ``ordered``; ``k``,
    ``per_cluster`` (proportional | equal) and ``pick`` (central | random) for ``cluster``;
    ``seed`` for every method but ``ordered``."""

    method: str
    n: int
    seed: int = 0
    by: str | None = None
    descending: bool = False
    k: int = 10
    per_cluster: str = "proportional"
    pick: str = "central"

    def relevant(self) -> dict:
        """Only the parameters the method uses (a cache key, and what the user is shown)."""
        out: dict = {"method": self.method, "n": self.n}
        if self.method != "ordered":
            out["seed"] = self.seed
        if self.method == "ordered":
            out.update(by=self.by, descending=self.descending)
        if self.method == "cluster":
            out.update(k=self.k, per_cluster=self.per_cluster, pick=self.pick)
        return out


def _quality_columns() -> tuple[str, ...]:
    from core.quality import QUALITY_COLUMNS

    return tuple(QUALITY_COLUMNS)


def source_columns(ws: Workspace, dataset: str) -> list[str]:
    """Column names of ``dataset``'s rows file as ingested (read from the Parquet schema)."""
    import pyarrow.parquet as pq

    return list(pq.read_schema(ws.dataset(dataset).rows_path).names)


def selection_embedding(request: SelectRequest, embedding: str | None,
                        columns: Sequence[str]) -> str | None:
    """The embedding a selection of ``request`` depends on, or None: the active
    ``embedding`` for cluster / diverse, and for ordered by a quality column
    (``uniqueness``, ``label_issue_score``, ``suggested_label``) that the rows table gets
    from it. ``columns`` are the source rows' columns: a user column of the same name is
    kept in the table, so ordering by it does not depend on the embedding."""
    if embedding is None:
        return None
    if request.method in VECTOR_METHODS:
        return embedding
    if (request.method == "ordered" and request.by in _quality_columns()
            and request.by not in columns):
        return embedding
    return None


def _ordered_table(table: pd.DataFrame, ids: Sequence[str], by: str | None) -> pd.DataFrame:
    """The rows of ``ids`` (in scope order), columns id and ``by`` (all columns when ``by``
    is missing, so the error lists them)."""
    if not by:
        raise InputError("ordered selection needs a column to order by (--by FIELD)")
    pos = pd.Index(table["id"].astype(str)).get_indexer(list(ids))
    cols = ["id"] + ([by] if by in table.columns and by != "id" else [])
    view = table[cols] if by in table.columns else table
    return view.iloc[pos].reset_index(drop=True)


def select_ordered_in_view(view: RowsView, scope: Scope, n: int, by: str | None,
                           descending: bool = False) -> Selection:
    """The first ``n`` rows of ``scope`` sorted by ``by``, asked of the database (DuckDB sorts
    and returns ``n`` ids; nothing is sorted or held here): the rows of ``scope.base_filter``
    in ``view``'s table, ordered by ``by`` (NULLs last in both directions, ties in row
    order, as :func:`core.select.select_ordered`), the first ``n + scope.excluded_rows``
    fetched and the excluded ones dropped. Raises InputError (no ``by``; ``n`` <= 0 or
    larger than the scope) and SchemaError (unknown column, listing the columns)."""
    if not by:
        raise InputError("ordered selection needs a column to order by (--by FIELD)")
    base = replace(view, flt=scope.base_filter or RowFilter())
    columns = list(base.schema())
    if by not in columns:
        raise SchemaError(f"unknown column {by!r}; choose one of {format_list(columns, 30)}")
    n = _check_n(n, len(scope.ids))
    with base.query() as query:
        first = query.page(base.flt, order_by=by, descending=descending,
                           limit=n + scope.excluded_rows, columns=["id"], with_total=False).rows
    ids = first["id"].astype(str).tolist()
    if scope.excluded_rows:
        keep = set(scope.ids)
        ids = [i for i in ids if i in keep]
    recipe = {"method": "ordered", "n": n, "seed": None, "by": str(by),
              "descending": bool(descending), "scope_rows": len(scope.ids)}
    return Selection(tuple(ids[:n]), recipe)


def _table_rows(table: pd.DataFrame | RowsView) -> int:
    if isinstance(table, RowsView):
        return (replace(table, flt=RowFilter()) if table.flt.active else table).count()
    return len(table)


def select_rows(
    ws: Workspace,
    dataset: str,
    request: SelectRequest,
    scope: Scope,
    *,
    table: pd.DataFrame | RowsView,
    embedding: str | None = None,
    vectors=None,
) -> Selection:
    """Run ``request`` inside ``scope`` and return the selection with its full recipe.

    ``table`` is the table the scope was resolved on (effective rows, plus the quality
    columns when ordering by one): a DataFrame, or a :class:`core.rows.RowsView` (then
    ordered asks the database for the first ``n``: :func:`select_ordered_in_view`; the
    other methods use only the scope's ids; no table is loaded). ``embedding`` is the active embedding (None: the
    dataset has none); ``vectors`` an already loaded :class:`core.embeddings.Embedding`
    of it (the app's cached one), else it is loaded with
    :func:`core.embeddings.load_embedding`. Cluster / diverse draw only from scope rows
    with a vector and record the others as ``not_covered``.

    Recipe: the method's recipe (method, n, seed, scope_rows, ...) + ``dataset``,
    ``dataset_rows`` (rows of ``table``), ``embedding`` (see :func:`selection_embedding`)
    + :meth:`Scope.to_recipe` (+ ``not_covered`` for cluster / diverse).

    Raises InputError (unknown method, listing the choices; a vector method without an
    embedding, saying how to get one; ordered without a column; n larger than the scope),
    SchemaError (unknown column) and NotFoundError (unknown embedding).
    """
    method = request.method
    if method not in SELECT_METHODS:
        raise InputError(f"unknown method {method!r}; choose one of {', '.join(SELECT_METHODS)}")
    if embedding is None and vectors is not None:
        embedding = vectors.name
    missing = None
    if method in VECTOR_METHODS:
        if embedding is None:
            raise InputError(f"method {method!r} needs an embedding; dataset {dataset!r} has none "
                             f"(run `catalog embed {dataset}`) or use random / ordered")
        if vectors is None:
            from core.embeddings import load_embedding

            vectors = load_embedding(ws.dataset(dataset), embedding)
        ids, X = scope_vectors(vectors.ids, vectors.vectors, scope.ids)
        missing = len(scope.ids) - len(ids)
        if method == "cluster":
            sel = select_by_cluster(ids, X, request.n, request.k, per_cluster=request.per_cluster,
                                    pick=request.pick, seed=request.seed)
        else:
            sel = select_diverse(ids, X, request.n, seed=request.seed)
    elif method == "random":
        sel = select_random(scope.ids, request.n, seed=request.seed)
    elif isinstance(table, RowsView):
        sel = select_ordered_in_view(table, scope, request.n, request.by, request.descending)
    else:
        sel = select_ordered(_ordered_table(table, scope.ids, request.by), request.n,
                             request.by, request.descending)
    columns: Sequence[str] = ()
    if method == "ordered" and embedding is not None and request.by in _quality_columns():
        columns = source_columns(ws, dataset)
    recipe = {**sel.recipe, "dataset": dataset, "dataset_rows": _table_rows(table),
              "embedding": selection_embedding(request, embedding, columns), **scope.to_recipe()}
    if missing is not None:
        recipe["not_covered"] = missing
    return Selection(sel.ids, recipe)


__all__ = ["VECTOR_METHODS", "SelectRequest", "select_ordered_in_view", "select_rows",
           "selection_embedding", "source_columns"]
