"""The rows table as a query: the effective rows (label edits applied), their quality
columns, and the rows that pass a :class:`~core.filters.RowFilter`.

- :mod:`core.rows.sql`: a RowFilter compiled to a parameterised DuckDB WHERE clause
  (:func:`compile_filter`); user text is only ever a parameter.
- :mod:`core.rows.query`: :func:`open_rows` (a dataset's ``rows.parquet`` + label edits
  + quality scores) and :func:`open_frame` (any DataFrame) give a :class:`RowQuery`:
  ``count``, ``page`` (sorted, offset/limit), ``ids``, ``positions``, ``profile``.
- :mod:`core.rows.view`: :class:`RowsView`, a filtered dataset as a value that holds no
  rows (count, sorted pages, ids, a row and its position): what the Catalog pages through.
- :mod:`core.rows.tables`: the tables the app and the CLI filter (:func:`catalog_table`,
  :func:`matching_rows`, :func:`filter_ids`, :func:`quality_table`, :func:`join_quality`).
"""

from __future__ import annotations

from core.rows.query import RowPage, RowQuery, open_frame, open_rows, quality_arrow
from core.rows.sql import WhereClause, compile_filter, is_numeric_type, quote_ident
from core.rows.tables import (
    catalog_table,
    check_filter_names,
    effective_rows_columns,
    filter_ids,
    join_quality,
    labels_by_id,
    matching_rows,
    needs_quality,
    quality_table,
)
from core.rows.view import RowsView, ViewIds, ViewSummary

__all__ = [
    "RowPage", "RowQuery", "RowsView", "ViewIds", "ViewSummary", "WhereClause", "catalog_table", "check_filter_names", "compile_filter",
    "effective_rows_columns", "filter_ids", "is_numeric_type", "join_quality", "labels_by_id", "matching_rows", "needs_quality",
    "open_frame", "open_rows", "quality_arrow", "quality_table", "quote_ident",
]
