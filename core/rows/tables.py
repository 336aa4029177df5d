"""The rows a user sees and filters: effective rows (label edits applied) plus, with an
embedding, the quality columns; and the rows of that table that pass a :class:`RowFilter`.

The Catalog filter panel and the CLI's ``--where`` both go through :func:`matching_rows`
(and :func:`filter_ids`), which run the one compiled SQL filter of :mod:`core.rows.sql`
(DuckDB, :mod:`core.rows.query`), so a filter means the same thing in the app and on the
command line.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from core.errors import CatalogError, InputError, NotFoundError, format_list
from core.filters import RowFilter, filter_columns
from core.labels import effective_labels, effective_rows
from core.rows.query import open_frame, open_rows
from core.workspace import Workspace

log = logging.getLogger(__name__)


def quality_table(ws: Workspace, dataset: str, embedding: str) -> pd.DataFrame:
    """``id``, ``label_issue_score``, ``suggested_label``, ``uniqueness`` for every row of
    ``embedding`` (one kNN pass over its index, k = 10, edited labels). Raises
    CatalogError (no such embedding; fewer than 2 rows)."""
    from core.embeddings import load_index
    from core.quality import quality_columns

    return quality_columns(load_index(ws.dataset(dataset), embedding), effective_labels(ws, dataset))


def join_quality(rows: pd.DataFrame, quality: pd.DataFrame | None, dataset: str = "") -> pd.DataFrame:
    """``rows`` (row order kept, not mutated) plus the quality columns of ``quality`` joined on
    id (NaN / None for rows without a vector). A user column of the same name is kept and
    the quality column skipped; ``quality`` None adds all-NaN columns."""
    from core.quality import QUALITY_COLUMNS

    out = rows.copy(deep=False)
    if quality is None:
        quality = pd.DataFrame(columns=["id", *QUALITY_COLUMNS], dtype=float)
    extra = quality.set_index("id").reindex(rows["id"].astype(str).to_numpy())
    for col in QUALITY_COLUMNS:
        if col in rows.columns:
            log.warning("%s already has a column %r; the quality column is not added", dataset, col)
            continue
        out[col] = extra[col].to_numpy()
    return out


def catalog_table(ws: Workspace, dataset: str, embedding: str | None = None) -> pd.DataFrame:
    """The table the Catalog shows and filters: effective rows plus, with ``embedding``, its
    quality columns (all NaN if it cannot be scored, e.g. one row). Raises NotFoundError
    for an unknown dataset or embedding."""
    rows = effective_rows(ws, dataset)
    if embedding is None:
        return rows
    ws.dataset(dataset).require_embedding(embedding)
    try:
        quality = quality_table(ws, dataset, embedding)
    except NotFoundError:
        raise
    except CatalogError as err:
        log.warning("no quality columns for %s/%s: %s", dataset, embedding, err)
        quality = None
    return join_quality(rows, quality, dataset)


def check_filter_names(ws: Workspace, dataset: str, flt: RowFilter) -> None:
    """Raise NotFoundError if ``flt`` names a slice or tag ``dataset`` does not have."""
    if flt.slice_name:
        ws.store.get_slice(dataset, flt.slice_name)
    if flt.tags:
        known = ws.store.tags(dataset)
        unknown = [t for t in flt.tags if t not in known]
        if unknown:
            raise NotFoundError(f"unknown tag(s) {format_list(unknown)} in {dataset!r}; tags: "
                                f"{format_list(sorted(known), 10) or 'none yet'}")


def needs_quality(flt: RowFilter, columns: Sequence[str]) -> bool:
    """Whether ``flt`` filters on a quality column that a table with ``columns`` lacks."""
    from core.quality import QUALITY_COLUMNS

    return any(c in QUALITY_COLUMNS and c not in columns for c in filter_columns(flt))


def matching_rows(ws: Workspace, dataset: str, flt: RowFilter, *, table: pd.DataFrame | None = None,
                  embedding: str | None = None) -> pd.DataFrame:
    """The rows of ``table`` (default: the dataset's effective rows, with the quality
    columns of ``embedding`` only if ``flt`` needs them) that pass ``flt``, in table order.
    Raises NotFoundError (unknown slice) and SchemaError (a column the table does not
    have, listing those it has)."""
    if not flt.active:
        return table if table is not None else effective_rows(ws, dataset)
    if flt.slice_name:
        ws.store.get_slice(dataset, flt.slice_name)  # NotFoundError naming the slices
    if table is not None:
        with open_frame(table, ws=ws, dataset=dataset, only_for=flt) as query:
            return table.iloc[query.positions(flt)]
    quality = None
    if embedding is not None and needs_quality(flt, effective_rows_columns(ws, dataset)):
        ws.dataset(dataset).require_embedding(embedding)
        quality = _quality_or_none(ws, dataset, embedding)
        if quality is None:  # cannot be scored: no row has a quality score to pass
            return effective_rows(ws, dataset).iloc[:0]
    with open_rows(ws, dataset, quality=quality) as query:
        return query.rows(flt)


def effective_rows_columns(ws: Workspace, dataset: str) -> list[str]:
    """The columns of ``dataset``'s effective rows (``label`` always among them)."""
    import pyarrow.parquet as pq

    names = list(pq.read_schema(ws.dataset(dataset).rows_path).names)
    return names if "label" in names else [*names, "label"]


def labels_by_id(ws: Workspace, dataset: str) -> pd.Series:
    """id (str index) → effective label (edits applied; None when unlabelled), read with one
    query of two columns: what label scoring needs, without the whole table (10M rows: a
    dict from :func:`core.labels.effective_labels` holds 3.5 GB); every label None without a
    label column. Raises NotFoundError (no dataset)."""
    with open_rows(ws, dataset) as query:
        has_labels = "label" in query.schema
        frame = query.rows(columns=["id", "label"] if has_labels else ["id"])
    labels = frame["label"].to_numpy(dtype=object, copy=True) if has_labels else np.full(len(frame), None, object)
    labels[pd.isna(labels)] = None
    return pd.Series(labels, index=frame["id"].astype(str).to_numpy(), dtype=object)


def filter_ids(ws: Workspace, dataset: str, where: str | RowFilter,
               embedding: str | None = None) -> tuple[list[str], RowFilter, str | None]:
    """(ids in row order, the filter, the embedding its quality columns came from or None)
    of the rows of ``dataset`` passing ``where`` (a ``--where`` expression or a RowFilter):
    what ``--where`` means on every command. Raises WhereError (malformed), NotFoundError
    (unknown tag or slice), SchemaError (unknown column) and InputError (a quality column
    without an ``embedding``)."""
    from core.filters import parse_where

    flt = parse_where(where) if isinstance(where, str) else where
    check_filter_names(ws, dataset, flt)
    quality, used = None, None
    if needs_quality(flt, effective_rows_columns(ws, dataset)):
        if embedding is None:
            raise InputError(f"the filter '{flt.describe()}' uses a quality column, which needs an "
                             f"embedding; dataset {dataset!r} has none (run `catalog embed {dataset}`)")
        ws.dataset(dataset).require_embedding(embedding)
        quality, used = _quality_or_none(ws, dataset, embedding), embedding
    with open_rows(ws, dataset, quality=quality) as query:
        if used and quality is None:  # cannot be scored: the quality columns are all NULL
            return [], flt, used
        return query.ids(flt), flt, used


def _quality_or_none(ws: Workspace, dataset: str, embedding: str) -> pd.DataFrame | None:
    try:
        return quality_table(ws, dataset, embedding)
    except NotFoundError:
        raise
    except CatalogError as err:
        log.warning("no quality columns for %s/%s: %s", dataset, embedding, err)
        return None


__all__ = ["catalog_table", "check_filter_names", "effective_rows_columns", "filter_ids",
           "join_quality", "matching_rows", "needs_quality", "quality_table"]
