"""Metadata filter panel: builds a :class:`core.filters.RowFilter` from widgets.

The filter is kept per dataset in session state, so the search and selection pages
rank and sample inside what the Catalog page filtered.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.filters import ColumnProfile, RowFilter, apply_filter
from core.workspace import Workspace
from ui import loaders, state

MAX_CATEGORY_WIDGETS = 8
MAX_RANGE_WIDGETS = 6


def _init(key: str, value) -> None:
    if key not in st.session_state:
        st.session_state[key] = value


def render_filter_panel(ws: Workspace, dataset: str, *, key: str = "flt", expanded: bool = True,
                        profile: ColumnProfile | None = None) -> RowFilter:
    """Draw the filter widgets and return (and remember) the resulting filter.

    ``profile``: the columns to offer (default: ``loaders.column_profile`` of the raw rows).
    """
    profile = profile if profile is not None else loaders.column_profile(ws, dataset)
    current = state.row_filter(dataset)
    store = ws.store
    p = f"{key}:{dataset}"
    with st.expander(f"Filters: {current.describe()}", expanded=expanded):
        c1, c2, c3 = st.columns(3)
        _init(f"{p}:labels", [v for v in current.labels if v in profile.labels])
        labels = c1.multiselect("Label", profile.labels, key=f"{p}:labels")
        _init(f"{p}:text", current.text_contains)
        text = c2.text_input("Text or id contains", key=f"{p}:text")
        tag_names = list(store.tags(dataset))
        _init(f"{p}:tags", [t for t in current.tags if t in tag_names])
        tags = c3.multiselect("Tagged", tag_names, key=f"{p}:tags")
        slice_names = [s.name for s in store.list_slices(dataset)]
        options = ["(any)"] + slice_names
        _init(f"{p}:slice", current.slice_name if current.slice_name in slice_names else "(any)")
        if st.session_state[f"{p}:slice"] not in options:
            st.session_state[f"{p}:slice"] = "(any)"
        slice_name = c1.selectbox("In slice", options, key=f"{p}:slice")
        categories, ranges = [], []
        previous_cats = dict(current.categories)
        for col, values in list(profile.categorical.items())[:MAX_CATEGORY_WIDGETS]:
            _init(f"{p}:cat:{col}", [v for v in previous_cats.get(col, ()) if v in values])
            chosen = c2.multiselect(col, values, key=f"{p}:cat:{col}")
            if chosen:
                categories.append((col, tuple(chosen)))
        previous_ranges = {c: (lo, hi) for c, lo, hi in current.ranges}
        for col, (lo, hi) in list(profile.numeric.items())[:MAX_RANGE_WIDGETS]:
            if lo == hi:
                continue
            _init(f"{p}:rng:{col}", previous_ranges.get(col, (lo, hi)))
            chosen = c3.slider(col, min_value=lo, max_value=hi, key=f"{p}:rng:{col}")
            if tuple(chosen) != (lo, hi):
                ranges.append((col, float(chosen[0]), float(chosen[1])))
    flt = RowFilter(
        labels=tuple(labels), categories=tuple(categories), ranges=tuple(ranges),
        text_contains=text.strip(), tags=tuple(tags),
        slice_name=None if slice_name == "(any)" else slice_name,
    )
    state.set_row_filter(dataset, flt)
    return flt


def filtered_rows(ws: Workspace, dataset: str, rows: pd.DataFrame, flt: RowFilter) -> pd.DataFrame:
    """``rows`` narrowed by ``flt`` (tags and slices looked up in the store only if used)."""
    flt = flt.applicable_to(rows.columns)  # e.g. quality columns only the Catalog carries
    if not flt.active:
        return rows
    tags_by_row = ws.store.tags_by_row(dataset) if flt.tags else None
    slice_ids = ws.store.get_slice(dataset, flt.slice_name).ids if flt.slice_name else None
    return apply_filter(rows, flt, tags_by_row=tags_by_row, slice_ids=slice_ids)
