"""A dataset's rows passing a filter, as a value the pages hand around (:class:`RowsView`):
it holds no rows, and each question (how many, this page sorted so, where is this row)
is one DuckDB query over ``rows.parquet``. What the Catalog shows at ten million rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

from core.filters import RowFilter
from core.rows.query import RowQuery, open_rows
from core.workspace import Workspace


@dataclass(frozen=True)
class ViewSummary:
    """What a grid needs to draw its controls: ``total`` rows, ``schema`` (column → DuckDB
    type) and ``modalities`` (modality → rows)."""

    total: int
    schema: dict[str, str]
    modalities: dict[str, int]


@dataclass(frozen=True)
class RowsView:
    """The rows of ``dataset`` passing ``flt``, with the columns of ``quality`` (id +
    scores, or None) joined on id. Every method runs one query; nothing is kept."""

    ws: Workspace
    dataset: str
    flt: RowFilter = field(default_factory=RowFilter)
    quality: pd.DataFrame | pa.Table | None = field(default=None, compare=False, repr=False)
    # what the rows are made of (e.g. rows file stamp + label edits + quality stamp): a cache
    # may keep answers under it; None: nothing may be cached
    state_key: str | None = None
    _memo: dict = field(default_factory=dict, init=False, compare=False, repr=False)

    @property
    def cacheable(self) -> bool:
        """Whether answers depend only on ``state_key`` and the filter (tags and slices live
        in the store and change without the rows changing, so a filter on them is not)."""
        return self.state_key is not None and not self.flt.tags and not self.flt.slice_name

    def query(self) -> RowQuery:
        """A :class:`RowQuery` over the view's table (close it, or use ``with``)."""
        return open_rows(self.ws, self.dataset, quality=self.quality)

    def summary(self) -> ViewSummary:
        """Count, schema and modalities in one query, asked once per view object (a view
        is made per script run: the rows it counts are those of that moment)."""
        if "summary" not in self._memo:
            with self.query() as q:
                modalities = q.modalities(self.flt)
                self._memo["summary"] = ViewSummary(
                    sum(modalities.values()) if modalities else q.count(self.flt),
                    dict(q.schema), modalities)
        return self._memo["summary"]

    def count(self) -> int:
        return self.summary().total

    def schema(self) -> dict[str, str]:
        """Column → DuckDB type, in order."""
        return self.summary().schema

    def page(self, *, order_by: str | None = None, descending: bool = False, offset: int = 0,
             limit: int = 100) -> pd.DataFrame:
        """Rows ``offset``… of the view, in row order or by ``order_by`` (NULLs last)."""
        with self.query() as q:
            return q.page(self.flt, order_by=order_by, descending=descending, offset=offset,
                          limit=limit, with_total=False).rows

    def ids(self, limit: int | None = None) -> list[str]:
        """The view's ids in row order (the first ``limit``)."""
        with self.query() as q:
            if limit is None:
                return q.ids(self.flt)
            return q.page(self.flt, limit=limit, columns=["id"],
                          with_total=False).rows["id"].astype(str).tolist()

    def position_of(self, row_id: str) -> int | None:
        with self.query() as q:
            return q.position_of(self.flt, row_id)

    def id_at(self, position: int) -> str | None:
        """The id at ``position`` (row order), None past the end."""
        if position < 0:
            return None
        with self.query() as q:
            frame = q.page(self.flt, offset=position, limit=1, columns=["id"], with_total=False).rows
        return str(frame["id"].iloc[0]) if len(frame) else None

    def row(self, row_id: str) -> pd.Series | None:
        """Row ``row_id`` of the dataset (in the view or not), None if there is none."""
        with self.query() as q:
            return q.row(row_id)

    def modalities(self) -> dict[str, int]:
        return self.summary().modalities

    def rows_of(self, ids: Sequence[str], *, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The dataset's rows of ``ids`` (in the view or not), in the order of ``ids``; ids
        without a row left out: what a page shows of a few ids (anchors, results)."""
        if not len(ids):
            return self.page(limit=0) if columns is None else self.page(limit=0)[list(columns)]
        with self.query() as q:
            return q.rows_of(ids, columns=columns)

    def known_ids(self, ids: Sequence[str]) -> list[str]:
        """Those of ``ids`` that are rows of the dataset, in order."""
        return self.rows_of(ids, columns=["id"])["id"].astype(str).tolist() if len(ids) else []


class ViewIds(Sequence):
    """The ids of a :class:`RowsView` as a read-only sequence fetched on demand: ``len`` is
    one count, ``ids[:n]`` one query for the first ``n``, ``ids[i]`` one for the ``i``-th."""

    def __init__(self, view: RowsView, total: int | None = None) -> None:
        self._view = view
        self._total = total

    def __len__(self) -> int:
        if self._total is None:
            self._total = self._view.count()
        return self._total

    def __getitem__(self, item):
        if isinstance(item, slice):
            start, stop, step = item.indices(len(self))
            if step != 1:
                raise ValueError("ViewIds slices take no step")
            return self._view.ids(limit=stop)[start:] if stop > start else []
        position = item + len(self) if item < 0 else item
        found = self._view.id_at(position) if 0 <= position < len(self) else None
        if found is None:
            raise IndexError(item)
        return found
