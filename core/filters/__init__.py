"""Row filters: what a filter is and means, and how a user writes one.

- :mod:`core.filters.rowfilter`: :class:`RowFilter` (plain, JSON-serialisable data),
  :class:`ColumnProfile` / :func:`profile_columns` (what the filter panel offers),
  :func:`filter_mask` (the pandas reference of the semantics; the app runs it as SQL, see
  :mod:`core.rows`).
- :mod:`core.filters.where`: :func:`parse_where` (the ``--where`` expression, or a
  RowFilter JSON object) and :func:`row_filter_from_json`; :class:`WhereError`.
"""

from __future__ import annotations

from core.filters.rowfilter import (
    MAX_CATEGORIES,
    STRUCTURAL_COLUMNS,
    ColumnProfile,
    RowFilter,
    apply_filter,
    filter_columns,
    filter_mask,
    profile_columns,
)
from core.filters.where import WHERE_HELP, WhereError, parse_where, row_filter_from_json

__all__ = [
    "MAX_CATEGORIES", "STRUCTURAL_COLUMNS", "WHERE_HELP", "ColumnProfile", "RowFilter", "WhereError",
    "apply_filter", "filter_columns", "filter_mask", "parse_where", "profile_columns",
    "row_filter_from_json",
]
