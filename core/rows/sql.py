"""A :class:`~core.filters.RowFilter` compiled to a parameterised DuckDB ``WHERE`` clause.

Every value the user typed (labels, category values, the text to look for, bounds) is a
``?`` parameter; column names are checked against the table's schema and quoted as
identifiers, so no user text ever becomes SQL. The semantics are those of
:func:`core.filters.filter_mask` (the pandas reference the tests compare with):

- labels / categories: the value as text is one of the chosen ones (NULL never matches);
  on a numeric column the chosen values compare as numbers, on a boolean column as
  ``True`` / ``False``;
- ranges: the value as a number lies in [low, high] (text that is not a number never does);
- text contains: the needle occurs in ``text + " " + id``, case-insensitively (DuckDB's
  per-character ``lower``, which differs from Python's ``str.lower`` only for "İ" and a
  word-final "Σ"; ``%`` and ``_`` are plain characters);
- tags / slice: the id is in the id table the caller registers (``tagged_ids`` /
  ``slice_ids``); modality equals; flagged: ``ingest_issue`` is not NULL.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from core.errors import SchemaError
from core.filters import RowFilter

TAGGED_TABLE = "tagged_ids"  # (id VARCHAR) rows carrying any of the filter's tags
SLICE_TABLE = "slice_ids"  # (id VARCHAR) rows of the filter's slice

_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "REAL")


def quote_ident(name: str) -> str:
    """``name`` as a DuckDB identifier (double quotes, inner quotes doubled)."""
    return '"' + str(name).replace('"', '""') + '"'


def is_numeric_type(sql_type: str) -> bool:
    """Whether a DuckDB column type is a number (DECIMAL included, BOOLEAN not)."""
    return sql_type.upper() in _NUMERIC or sql_type.upper().startswith("DECIMAL")


@dataclass(frozen=True)
class WhereClause:
    """``sql`` (``TRUE`` for no condition) with its ``params`` in order."""

    sql: str
    params: tuple


def _column(schema: Mapping[str, str], name: str) -> str:
    if name not in schema:
        raise SchemaError(f"unknown column {name!r}; columns: {', '.join(map(str, schema))}")
    return quote_ident(name)


def _as_number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return None if math.isnan(number) else number


def _in_values(schema: Mapping[str, str], name: str, values: tuple[str, ...]
               ) -> tuple[str, list]:
    col = _column(schema, name)
    sql_type = schema[name].upper()
    if sql_type == "BOOLEAN":
        wanted = [v for v in values if v in ("True", "False")]
        expr = f"(CASE WHEN {col} THEN 'True' ELSE 'False' END)"
    elif is_numeric_type(sql_type):
        numbers = [n for n in (_as_number(v) for v in values) if n is not None]
        if not numbers:
            return "FALSE", []
        marks = ", ".join("?" for _ in numbers)
        return f"({col} IS NOT NULL AND CAST({col} AS DOUBLE) IN ({marks}))", numbers
    else:
        wanted = list(values)
        expr = f"CAST({col} AS VARCHAR)"
    if not wanted:
        return "FALSE", []
    marks = ", ".join("?" for _ in wanted)
    return f"({col} IS NOT NULL AND {expr} IN ({marks}))", wanted


def compile_filter(flt: RowFilter, schema: Mapping[str, str]) -> WhereClause:
    """The WHERE clause of ``flt`` over a table with ``schema`` (column → DuckDB type, in
    order). Tag and slice conditions refer to :data:`TAGGED_TABLE` / :data:`SLICE_TABLE`,
    which the caller registers. Raises SchemaError for a column the table lacks."""
    parts: list[str] = []
    params: list = []
    if flt.labels:
        sql, values = _in_values(schema, "label", flt.labels)
        parts.append(sql)
        params += values
    for name, values in flt.categories:
        sql, values = _in_values(schema, name, values)
        parts.append(sql)
        params += values
    for name, lo, hi in flt.ranges:
        col = _column(schema, name)
        number = f"TRY_CAST({col} AS DOUBLE)"
        parts.append(f"({number} BETWEEN ? AND ? AND NOT isnan({number}))")  # DuckDB: NaN > inf
        params += [float(lo), float(hi)]
    if flt.text_contains:
        text = (f"coalesce(CAST({quote_ident('text')} AS VARCHAR), '')" if "text" in schema
                else "''")
        parts.append(f"contains(lower({text} || ' ' || CAST({quote_ident('id')} AS VARCHAR)), "
                     f"lower(?))")
        params.append(flt.text_contains)
    if flt.tags:
        parts.append(f"(CAST({quote_ident('id')} AS VARCHAR) IN (SELECT id FROM {TAGGED_TABLE}))")
    if flt.slice_name:
        parts.append(f"(CAST({quote_ident('id')} AS VARCHAR) IN (SELECT id FROM {SLICE_TABLE}))")
    if flt.modality:
        parts.append(f"({_column(schema, 'modality')} = ?)")
        params.append(flt.modality)
    if flt.flagged_only and "ingest_issue" in schema:
        parts.append(f"({quote_ident('ingest_issue')} IS NOT NULL)")
    return WhereClause(" AND ".join(parts) or "TRUE", tuple(params))
