"""Metadata filters over a dataset's rows: :class:`RowFilter`, the panel's column profile,
and :func:`filter_mask`, the pandas reference of the filter's semantics (the app runs the
same filter as SQL, :mod:`core.rows.sql`; tests compare the two).

A :class:`RowFilter` is plain data (JSON-serialisable through :meth:`RowFilter.to_json`)
so it can be kept in session state, shared by pages, and saved in slice recipes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd

from core._shared import CORE_COLUMNS
from core.errors import SchemaError

# Columns that are structural, not user metadata.
STRUCTURAL_COLUMNS = CORE_COLUMNS
MAX_CATEGORIES = 50  # a column with at most this many distinct values is offered as categorical


@dataclass(frozen=True)
class RowFilter:
    """Conjunction of conditions; empty fields mean "no condition"."""

    labels: tuple[str, ...] = ()
    categories: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (column, allowed values)
    ranges: tuple[tuple[str, float, float], ...] = ()  # (column, low, high) inclusive
    text_contains: str = ""
    tags: tuple[str, ...] = ()  # rows with any of these tags
    slice_name: str | None = None
    modality: str | None = None
    flagged_only: bool = False

    @property
    def active(self) -> bool:
        return self != RowFilter()

    def to_json(self) -> dict:
        return asdict(self)

    def applicable_to(self, columns) -> RowFilter:
        """This filter without the column conditions on columns not in ``columns``.

        The Catalog may filter on derived columns (e.g. quality scores) that another
        page's table does not carry; there the condition cannot apply and is dropped.
        """
        present = set(columns)
        return replace(
            self,
            categories=tuple(c for c in self.categories if c[0] in present),
            ranges=tuple(r for r in self.ranges if r[0] in present),
        )

    def describe(self) -> str:
        """Short human description, e.g. "label in {3, 5}; text contains 'cat'"."""
        parts = []
        if self.labels:
            parts.append(f"label in {{{', '.join(self.labels)}}}")
        for col, values in self.categories:
            parts.append(f"{col} in {{{', '.join(values)}}}")
        for col, lo, hi in self.ranges:
            parts.append(f"{lo:g} ≤ {col} ≤ {hi:g}")
        if self.text_contains:
            parts.append(f"text contains {self.text_contains!r}")
        if self.tags:
            parts.append(f"tagged {', '.join(self.tags)}")
        if self.slice_name:
            parts.append(f"in slice {self.slice_name!r}")
        if self.modality:
            parts.append(f"modality {self.modality}")
        if self.flagged_only:
            parts.append("flagged at ingest")
        return "; ".join(parts) or "all rows"


@dataclass(frozen=True)
class ColumnProfile:
    """What the filter panel can offer for a dataset."""

    labels: tuple[str, ...]
    categorical: dict = field(default_factory=dict)  # column -> tuple of values
    numeric: dict = field(default_factory=dict)  # column -> (min, max)


def profile_columns(rows: pd.DataFrame) -> ColumnProfile:
    """Labels, categorical columns (≤ MAX_CATEGORIES values) and numeric ranges of ``rows``."""
    labels = tuple(sorted(rows["label"].dropna().astype(str).unique())) if "label" in rows else ()
    categorical, numeric = {}, {}
    for col in rows.columns:
        if col in STRUCTURAL_COLUMNS:
            continue
        series = rows[col]
        if pd.api.types.is_bool_dtype(series):
            categorical[col] = ("False", "True")
        elif pd.api.types.is_numeric_dtype(series):
            values = series.dropna()
            if len(values):
                numeric[col] = (float(values.min()), float(values.max()))
        else:
            uniques = series.dropna().astype(str).unique()
            if 0 < len(uniques) <= MAX_CATEGORIES:
                categorical[col] = tuple(sorted(uniques))
    return ColumnProfile(labels, categorical, numeric)


def filter_mask(
    rows: pd.DataFrame,
    flt: RowFilter,
    *,
    tags_by_row: Mapping[str, Sequence[str]] | None = None,
    slice_ids: Sequence[str] | None = None,
) -> np.ndarray:
    """(n,) bool mask of the rows that pass ``flt``.

    ``tags_by_row`` (row id → tags) is needed for tag filters and ``slice_ids`` for a
    slice filter. Unknown columns raise SchemaError listing the columns present.
    """
    mask = np.ones(len(rows), dtype=bool)
    ids = rows["id"].astype(str)

    def column(name: str) -> pd.Series:
        if name not in rows.columns:
            raise SchemaError(f"unknown column {name!r}; columns: {', '.join(map(str, rows.columns))}")
        return rows[name]

    if flt.labels:
        mask &= _is_one_of(column("label"), flt.labels)
    for col, values in flt.categories:
        mask &= _is_one_of(column(col), values)
    for col, lo, hi in flt.ranges:
        series = pd.to_numeric(column(col), errors="coerce")
        mask &= series.between(lo, hi).fillna(False).to_numpy(dtype=bool)
    if flt.text_contains:
        needle = flt.text_contains.lower()
        hay = rows["text"].fillna("").astype(str) if "text" in rows else pd.Series("", index=rows.index)
        hay = hay + " " + ids
        mask &= hay.str.lower().str.contains(needle, regex=False).to_numpy()
    if flt.tags:
        wanted = set(flt.tags)
        tagged = {rid for rid, tags in (tags_by_row or {}).items() if wanted.intersection(tags)}
        mask &= ids.isin(tagged).to_numpy()
    if flt.slice_name:
        mask &= ids.isin(set(slice_ids or ())).to_numpy()
    if flt.modality:
        mask &= (column("modality") == flt.modality).to_numpy()
    if flt.flagged_only and "ingest_issue" in rows:
        mask &= rows["ingest_issue"].notna().to_numpy()
    return mask


def _is_one_of(series: pd.Series, values: Sequence[str]) -> np.ndarray:
    """(n,) bool: the value is one of ``values`` (NULL never is). Numbers compare as numbers
    ("3" matches 3 and 3.0), booleans as "True"/"False", anything else as its text."""
    present = series.notna().to_numpy()
    if pd.api.types.is_bool_dtype(series):
        text = series.map({True: "True", False: "False"})
        return text.isin(values).to_numpy(dtype=bool) & present
    if pd.api.types.is_numeric_dtype(series):
        numbers = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").dropna()
        return series.astype(float).isin(numbers.astype(float)).to_numpy(dtype=bool) & present
    return series.astype(str).isin(values).to_numpy(dtype=bool) & present


def apply_filter(rows: pd.DataFrame, flt: RowFilter, **kwargs) -> pd.DataFrame:
    """The rows of ``rows`` that pass ``flt`` (see :func:`filter_mask`)."""
    if not flt.active:
        return rows
    return rows.loc[filter_mask(rows, flt, **kwargs)]


def filter_columns(flt: RowFilter) -> list[str]:
    """The table columns ``flt`` puts a condition on (categories and ranges), in order."""
    return list(dict.fromkeys([c for c, _ in flt.categories] + [c for c, _, _ in flt.ranges]))
