"""The rows table as a query (DuckDB), not a DataFrame: counts, pages, ids and the filter
panel's profile, computed where the rows are and fetched only as far as they are shown.

The table queried is a dataset's effective rows: ``rows.parquet`` with the store's label
edits applied (``label`` as text), plus the quality columns when a quality table is given,
in file row order. Or any in-memory table (``frame=``), e.g. search results, with the
same filter semantics: one compiled filter (:mod:`core.rows.sql`) for both.

The DuckDB connection can read only the dataset's folder and nothing else (external
access off, configuration locked), and every value the user typed is a ``?`` parameter.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from core._shared import CORE_COLUMNS
from core.errors import InputError, SchemaError, format_list
from core.filters import MAX_CATEGORIES, ColumnProfile, RowFilter, filter_columns
from core.rows.sql import (
    SLICE_TABLE,
    TAGGED_TABLE,
    compile_filter,
    is_numeric_type,
    quote_ident,
)
from core.workspace import Workspace

WANTED_TABLE = "wanted_ids"  # (id VARCHAR, __rank BIGINT) the ids rows_of looks up
POSITION = "__row_position"  # the row's position in the source table (file row number)
_SOURCE = "source_rows"
_ALL = RowFilter()
_THREADS = 2


@dataclass(frozen=True)
class RowPage:
    """``rows`` (one page, in order, without the position column) of ``total`` matching rows."""

    rows: pd.DataFrame
    total: int
    offset: int


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@functools.lru_cache(maxsize=32)
def _database(readable: tuple[str, ...]) -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per set of readable folders, configured once and locked: it may
    read files under ``readable`` (our own folders) only. Queries use its cursors (a
    connection costs ~15 ms to open, a cursor well under 1 ms; each is isolated)."""
    con = duckdb.connect(config={"threads": _THREADS})
    if readable:
        con.execute(f"SET allowed_directories = [{', '.join(_sql_string(p) for p in readable)}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def _connect(readable: Sequence[Path]) -> duckdb.DuckDBPyConnection:
    return _database(tuple(str(p) + "/" for p in readable)).cursor()


def _arrow_ids(ids) -> pa.Table:
    return pa.table({"id": pa.array([str(i) for i in ids], type=pa.string())})


class RowQuery:
    """Queries over one table of rows; a context manager (closes its DuckDB connection).

    Build it with :func:`open_rows` (a dataset) or :func:`open_frame` (a DataFrame)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, select_sql: str, *,
                 tags_of=None, slice_of=None) -> None:
        self._con = con
        self._tags_of = tags_of  # tags -> ids with any of them (the store)
        self._slice_of = slice_of  # slice name -> ids
        con.execute(f"CREATE TEMP VIEW effective_rows AS {select_sql}")
        described = con.execute("DESCRIBE effective_rows").fetchall()
        self.schema: dict[str, str] = {row[0]: row[1] for row in described if row[0] != POSITION}

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._con.close()

    # ---- the filter ----------------------------------------------------------------------
    def _where(self, flt: RowFilter | None) -> tuple[str, tuple]:
        """(WHERE sql, params) of ``flt`` (None: every row), its id tables registered."""
        flt = flt if flt is not None else _ALL
        clause = compile_filter(flt, self.schema)
        if flt.tags:
            self._con.register(TAGGED_TABLE, _arrow_ids(self._tags_of(flt.tags) if self._tags_of else ()))
        if flt.slice_name:
            self._con.register(SLICE_TABLE, _arrow_ids(self._slice_of(flt.slice_name) if self._slice_of else ()))
        return clause.sql, clause.params

    def count(self, flt: RowFilter | None = None) -> int:
        """Rows passing ``flt``."""
        sql, params = self._where(flt)
        return int(self._con.execute(f"SELECT count(*) FROM effective_rows WHERE {sql}", params).fetchall()[0][0])

    def positions(self, flt: RowFilter | None = None) -> np.ndarray:
        """(m,) int64 positions (source row order) of the rows passing ``flt``."""
        sql, params = self._where(flt)
        out = self._con.execute(
            f"SELECT {POSITION} FROM effective_rows WHERE {sql} ORDER BY {POSITION}", params).fetchnumpy()
        return np.asarray(out[POSITION], dtype=np.int64)

    def ids(self, flt: RowFilter | None = None) -> list[str]:
        """Ids of the rows passing ``flt``, in row order."""
        sql, params = self._where(flt)
        rows = self._con.execute(
            f"SELECT CAST(id AS VARCHAR) FROM effective_rows WHERE {sql} ORDER BY {POSITION}",
            params).fetchall()
        return [r[0] for r in rows]

    def rows(self, flt: RowFilter | None = None, *, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Every row passing ``flt`` (all columns, or ``columns``), in row order."""
        return self.page(flt, limit=None, columns=columns).rows

    def page(self, flt: RowFilter | None = None, *, order_by: str | None = None,
             descending: bool = False, offset: int = 0, limit: int | None = 100,
             columns: Sequence[str] | None = None, with_total: bool = True) -> RowPage:
        """Rows ``offset``… ``offset + limit`` of those passing ``flt``, in row order or by
        ``order_by`` (NULLs last, ties in row order); ``total`` counts every matching row
        (-1 with ``with_total`` False, which spares the database counting them)."""
        if offset < 0 or (limit is not None and limit < 0):
            raise InputError(f"a page needs offset ≥ 0 and limit ≥ 0, not {offset} and {limit}")
        sql, params = self._where(flt)
        wanted = list(columns) if columns is not None else list(self.schema)
        unknown = [c for c in wanted if c not in self.schema]
        if unknown:
            raise SchemaError(f"unknown column(s) {format_list(unknown)}; columns: "
                              f"{', '.join(self.schema)}")
        order = f"{POSITION}"
        if order_by is not None:
            if order_by not in self.schema:
                raise SchemaError(f"cannot sort by unknown column {order_by!r}; columns: "
                                  f"{', '.join(self.schema)}")
            order = f"{quote_ident(order_by)} {'DESC' if descending else 'ASC'} NULLS LAST, {POSITION}"
        select = ", ".join(quote_ident(c) for c in wanted)
        paging = f" LIMIT {int(limit)}" if limit is not None else ""
        paging += f" OFFSET {int(offset)}" if offset else ""
        counted = ", count(*) OVER () AS __total" if with_total else ""
        frame = self._con.execute(
            f"SELECT {select}{counted} FROM effective_rows WHERE {sql} ORDER BY {order}{paging}",
            params).df()
        if not with_total:
            return RowPage(frame, -1, offset)
        total = int(frame["__total"].iloc[0]) if len(frame) else (self.count(flt) if offset else 0)
        return RowPage(frame.drop(columns="__total"), total, offset)

    def position_of(self, flt: RowFilter | None, row_id: str) -> int | None:
        """0-based position of ``row_id`` among the rows passing ``flt`` (row order), or None."""
        sql, params = self._where(flt)
        found = self._con.execute(
            f"SELECT {POSITION} FROM effective_rows WHERE CAST(id AS VARCHAR) = ? AND {sql} LIMIT 1",
            [str(row_id), *params]).fetchall()
        if not found:
            return None
        before = self._con.execute(
            f"SELECT count(*) FROM effective_rows WHERE {POSITION} < ? AND {sql}",
            [found[0][0], *params]).fetchall()
        return int(before[0][0])

    def row(self, row_id: str) -> pd.Series | None:
        """Every column of row ``row_id`` (None if there is no such row)."""
        frame = self._con.execute(
            f"SELECT {', '.join(quote_ident(c) for c in self.schema)} FROM effective_rows "
            f"WHERE CAST(id AS VARCHAR) = ? LIMIT 1", [str(row_id)]).df()
        return frame.iloc[0] if len(frame) else None

    def rows_of(self, ids: Sequence[str], *, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The rows of ``ids`` (every column, or ``columns``) in the order of ``ids``; ids
        without a row are left out. One join, whatever the table's size."""
        wanted = list(columns) if columns is not None else list(self.schema)
        unknown = [c for c in wanted if c not in self.schema]
        if unknown:
            raise SchemaError(f"unknown column(s) {format_list(unknown)}")
        wanted_ids = pa.table({"id": pa.array([str(i) for i in ids], type=pa.string()),
                               "__rank": pa.array(np.arange(len(ids), dtype=np.int64))})
        self._con.register(WANTED_TABLE, wanted_ids)
        select = ", ".join(f"r.{quote_ident(c)}" for c in wanted)
        return self._con.execute(
            f"SELECT {select} FROM effective_rows r JOIN {WANTED_TABLE} w "
            f"ON CAST(r.id AS VARCHAR) = w.id ORDER BY w.__rank").df()

    def modalities(self, flt: RowFilter | None = None) -> dict[str, int]:
        """Modality → number of rows passing ``flt``."""
        if "modality" not in self.schema:
            return {}
        sql, params = self._where(flt)
        return {str(m): int(n) for m, n in self._con.execute(
            f"SELECT modality, count(*) FROM effective_rows WHERE {sql} GROUP BY modality",
            params).fetchall()}

    # ---- what the filter panel offers ----------------------------------------------------
    def profile(self) -> ColumnProfile:
        """Labels, categorical columns (≤ MAX_CATEGORIES distinct values) and numeric ranges:
        :func:`core.filters.profile_columns` computed by aggregates, not over a DataFrame."""
        con = self._con
        labels: tuple[str, ...] = ()
        if "label" in self.schema:
            labels = tuple(sorted(r[0] for r in con.execute(
                "SELECT DISTINCT CAST(label AS VARCHAR) FROM effective_rows WHERE label IS NOT NULL"
            ).fetchall()))
        categorical: dict[str, tuple[str, ...]] = {}
        numeric: dict[str, tuple[float, float]] = {}
        for col, sql_type in self.schema.items():
            if col in CORE_COLUMNS:
                continue
            q = quote_ident(col)
            if sql_type.upper() == "BOOLEAN":
                categorical[col] = ("False", "True")
            elif is_numeric_type(sql_type):
                lo, hi = con.execute(
                    f"SELECT min(CAST({q} AS DOUBLE)), max(CAST({q} AS DOUBLE)) FROM effective_rows "
                    f"WHERE {q} IS NOT NULL AND NOT isnan(CAST({q} AS DOUBLE))").fetchall()[0]
                if lo is not None:
                    numeric[col] = (float(lo), float(hi))
            else:
                values = con.execute(
                    f"SELECT DISTINCT CAST({q} AS VARCHAR) FROM effective_rows WHERE {q} IS NOT NULL "
                    f"LIMIT {MAX_CATEGORIES + 1}").fetchall()
                if 0 < len(values) <= MAX_CATEGORIES:
                    categorical[col] = tuple(sorted(v[0] for v in values))
        return ColumnProfile(labels, categorical, numeric)


def _edits_table(overrides: Mapping[str, str | None]) -> pa.Table:
    return pa.table({"id": pa.array(list(overrides), type=pa.string()),
                     "label": pa.array(list(overrides.values()), type=pa.string())})


def quality_arrow(quality: pd.DataFrame | pa.Table) -> pa.Table:
    """``quality`` (``id`` + score columns) as an Arrow table with string ids: what
    :func:`open_rows` joins without copying. Convert once and reuse it across queries."""
    if isinstance(quality, pa.Table):
        return quality
    return pa.Table.from_pandas(quality.assign(id=quality["id"].astype(str)), preserve_index=False)


def _quality_columns(quality: pd.DataFrame | pa.Table | None, present: Sequence[str]) -> list[str]:
    if quality is None:
        return []
    names = quality.column_names if isinstance(quality, pa.Table) else list(quality.columns)
    return [c for c in names if c != "id" and c not in present]


def open_rows(ws: Workspace, dataset: str, *,
              quality: pd.DataFrame | pa.Table | None = None) -> RowQuery:
    """A :class:`RowQuery` over ``dataset``'s effective rows (label edits applied), plus the
    columns of ``quality`` (``id`` + score columns, e.g. :func:`core.rows.quality_table`;
    pass it through :func:`quality_arrow` once when it serves many queries) joined on id,
    skipping any a row column already has. Raises NotFoundError."""
    ds = ws.dataset(dataset)
    if not ds.rows_path.exists():
        ds.rows()  # raises NotFoundError naming the file
    con = _connect([ds.path.resolve()])
    con.read_parquet(str(ds.rows_path.resolve()), file_row_number=True).create_view(_SOURCE)
    present = [r[0] for r in con.execute(f"DESCRIBE {_SOURCE}").fetchall() if r[0] != "file_row_number"]
    con.register("label_edits", _edits_table(ws.store.label_overrides(dataset)))
    edited = ("CASE WHEN e.id IS NOT NULL THEN e.label ELSE CAST(s.label AS VARCHAR) END"
              if "label" in present else "e.label")
    cols = [f"{edited} AS label" if c == "label" else f"s.{quote_ident(c)}" for c in present]
    if "label" not in present:
        cols.append(f"{edited} AS label")
    joins = "LEFT JOIN label_edits e ON e.id = CAST(s.id AS VARCHAR)"
    extra = _quality_columns(quality, present + ["label"])
    if extra:
        con.register("quality_scores", quality_arrow(quality).select(["id", *extra]))
        cols += [f"q.{quote_ident(c)}" for c in extra]
        joins += " LEFT JOIN quality_scores q ON q.id = CAST(s.id AS VARCHAR)"
    select = (f"SELECT {', '.join(cols)}, s.file_row_number AS {POSITION} "
              f"FROM {_SOURCE} s {joins}")
    return RowQuery(con, select, **_store_lookups(ws, dataset))


def _store_lookups(ws: Workspace | None, dataset: str | None) -> dict:
    if ws is None or dataset is None:
        return {}
    store = ws.store
    return {"tags_of": lambda tags: store.ids_with_tags(dataset, tags),
            "slice_of": lambda name: store.get_slice(dataset, name).ids}


_FILTERED_COLUMNS = ("id", "text", "label", "modality", "ingest_issue")


def open_frame(frame: pd.DataFrame, *, ws: Workspace | None = None, dataset: str | None = None,
               tags_by_row: Mapping[str, Sequence[str]] | None = None,
               slice_ids: Sequence[str] | None = None, only_for: RowFilter | None = None) -> RowQuery:
    """A :class:`RowQuery` over an in-memory ``frame`` (needs an ``id`` column); positions
    are ``frame``'s row positions. Tag and slice conditions look ``dataset`` up in the store
    of ``ws``, or use ``tags_by_row`` (id → tags) and ``slice_ids``; without either they
    match nothing. ``only_for``: hand DuckDB only the columns that filter reads (much
    faster on wide frames; other queries then see only those). Reads no file at all."""
    names = [str(c) for c in frame.columns]
    if "id" not in names:
        raise SchemaError(f"the table has no 'id' column; columns: {format_list(names, 30)}")
    table = frame.reset_index(drop=True)
    table.columns = names
    if only_for is not None:
        compile_filter(only_for, dict.fromkeys(names, "VARCHAR"))  # SchemaError naming all columns
        wanted = set(_FILTERED_COLUMNS) | set(filter_columns(only_for))
        table = table[[c for c in names if c in wanted]]
    con = _connect([])
    con.register("frame_rows", table.assign(**{POSITION: np.arange(len(table), dtype=np.int64)}))
    lookups = _store_lookups(ws, dataset)
    if tags_by_row is not None:
        lookups["tags_of"] = lambda wanted: [r for r, t in tags_by_row.items() if set(wanted) & set(t)]
    if slice_ids is not None:
        lookups["slice_of"] = lambda _name: list(slice_ids)
    return RowQuery(con, "SELECT * FROM frame_rows", **lookups)
