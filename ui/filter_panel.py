"""Metadata filter panel: builds a :class:`core.filters.RowFilter` from widgets.

The filter is kept per dataset in session state, so the search and selection pages
rank and sample inside what the Catalog page filtered. Every page that shows the panel
offers the same columns as the Catalog (:func:`catalog_profile`: edited labels, and the
quality columns when the dataset has an embedding), and a condition the panel cannot
show (e.g. on a column offered only elsewhere) is kept, listed under the panel, never
silently dropped when the filter is saved back.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from core.errors import NotFoundError
from core.filters import ColumnProfile, RowFilter
from core.rows import (
    RowsView,
    effective_rows_columns,
    join_quality,
    matching_rows,
    needs_quality,
)
from core.workspace import Workspace
from ui import loaders, state
from ui.grid import safe_text
from ui.quality_data import (
    pending_quality_job,
    quality_or_none,
    quality_profile,
    quality_scores,
    rows_with_quality,
)

MAX_CATEGORY_WIDGETS = 8
MAX_RANGE_WIDGETS = 6
TITLE = "Filters"
_PANELS_KEY = "flt:_panels"  # dataset -> widget key prefixes of the panels drawn (set_filter)


def _init(key: str, value) -> None:
    if key not in st.session_state:
        st.session_state[key] = value


# ---- the table and the columns the Catalog filters ----------------------------------------
def catalog_rows(ws: Workspace, dataset: str, embedding: str | None) -> pd.DataFrame:
    """The table the Catalog filters: effective rows (label edits applied) plus the quality
    columns of ``embedding`` (none without one). Cached and shared, the kNN pass included
    (one per embedding file stamp, the one the Catalog and Label review use): never mutate."""
    if not embedding:
        return loaders.effective_rows(ws, dataset)
    job = pending_quality_job(ws, dataset, embedding)
    if job is None:
        return rows_with_quality(ws, dataset, embedding)
    if job.active:  # a large first kNN pass: rows now, quality columns when the job ends
        from ui import jobs

        jobs.watch_job(ws, job, f"{job.label} (the quality columns appear when it is done)")
    return loaders.effective_rows(ws, dataset)


def catalog_profile(ws: Workspace, dataset: str, embedding: str | None) -> ColumnProfile:
    """The columns the filter panel offers, on every page: :func:`catalog_rows` profiled
    (edited labels included; quality columns first with an embedding). Cached."""
    if embedding and pending_quality_job(ws, dataset, embedding) is None:
        return quality_profile(ws, dataset, embedding)
    return loaders.effective_profile(ws, dataset)


def catalog_view(ws: Workspace, dataset: str, embedding: str | None, flt: RowFilter) -> RowsView:
    """The Catalog's rows passing ``flt`` as a :class:`core.rows.RowsView` (queried page by
    page; no table in memory): effective rows plus the quality columns of ``embedding``
    once they are computed (:func:`catalog_rows` starts or watches that job). A condition on
    a column the table lacks is dropped with a warning naming it; so is a deleted slice
    (from the saved filter too)."""
    quality = None
    if embedding:
        job = pending_quality_job(ws, dataset, embedding)
        if job is None:
            quality = quality_scores(ws, dataset, embedding)
        elif job.active:
            from ui import jobs

            jobs.watch_job(ws, job, f"{job.label} (the quality columns appear when it is done)")
    columns = effective_rows_columns(ws, dataset) + ([c for c in quality.column_names if c != "id"]
                                                    if quality is not None else [])
    usable = _usable(flt, columns)
    if usable.slice_name and usable.slice_name not in {s.name for s in ws.store.list_slices(dataset)}:
        _missing_slice_warning(usable.slice_name)
        rename_slice_in_filter(dataset, usable.slice_name, None)
        usable = replace(usable, slice_name=None)
    state_key = f"{ws.home}|" + loaders.labels_key(ws, dataset) + (
        f"|{embedding}@{loaders.embedding_stamp(ws, dataset, embedding)}" if quality is not None else "")
    return RowsView(ws, dataset, usable, quality, state_key=state_key)


def _usable(flt: RowFilter, columns) -> RowFilter:
    """``flt`` without its conditions on columns not in ``columns`` (a warning names them)."""
    usable = flt.applicable_to(columns)
    if usable != flt:
        skipped = RowFilter(categories=tuple(c for c in flt.categories if c not in usable.categories),
                            ranges=tuple(r for r in flt.ranges if r not in usable.ranges))
        st.warning(f"Not applied on this page (no such column here): {safe_text(skipped.describe())}.")
    return usable


# ---- helpers ------------------------------------------------------------------------------
def _missing_slice_warning(name: str) -> None:
    st.warning(f"The filter's slice '{safe_text(name)}' no longer exists (deleted or renamed): "
               "its condition was removed from the filter.")


def rename_slice_in_filter(dataset: str, old: str, new: str | None) -> None:
    """Keep the saved filter of ``dataset`` in step with a slice renamed (``new``) or
    deleted (``new`` None) through the UI."""
    saved = state.row_filter(dataset)
    if saved.slice_name == old:
        state.set_row_filter(dataset, replace(saved, slice_name=new))


def _hidden_conditions(current: RowFilter, labels: set[str], tags: set[str],
                       categories: dict[str, tuple], ranges: dict[str, tuple]) -> RowFilter:
    """The parts of ``current`` no widget of the panel can show: labels, tags and category
    values that are not options, ranges on columns without a slider, modality, flagged."""
    hidden_cats = []
    for col, values in current.categories:
        extra = tuple(v for v in values if v not in categories.get(col, ()))
        if extra:
            hidden_cats.append((col, extra))
    return RowFilter(
        labels=tuple(v for v in current.labels if v not in labels),
        categories=tuple(hidden_cats),
        ranges=tuple(r for r in current.ranges if r[0] not in ranges),
        tags=tuple(t for t in current.tags if t not in tags),
        modality=current.modality,
        flagged_only=current.flagged_only,
    )


def _merge(visible: RowFilter, hidden: RowFilter) -> RowFilter:
    """``visible`` (from the widgets) with the ``hidden`` conditions added back."""
    cats = {col: tuple(values) for col, values in visible.categories}
    for col, values in hidden.categories:
        have = cats.get(col, ())
        cats[col] = have + tuple(v for v in values if v not in have)
    return replace(
        visible,
        labels=visible.labels + tuple(v for v in hidden.labels if v not in visible.labels),
        categories=tuple(cats.items()),
        ranges=visible.ranges + hidden.ranges,
        tags=visible.tags + tuple(t for t in hidden.tags if t not in visible.tags),
        modality=hidden.modality,
        flagged_only=hidden.flagged_only,
    )


def set_filter(dataset: str, flt: RowFilter) -> None:
    """Make ``flt`` the filter of ``dataset`` on every page: saved with
    :func:`ui.state.set_row_filter`, and the widgets of every filter panel drawn for
    ``dataset`` in this session forgotten, so they show ``flt`` when next drawn (a panel's
    widgets otherwise keep their own values and would write them back). Call it from a
    button callback, before the panels are drawn."""
    state.set_row_filter(dataset, flt)
    for prefix in st.session_state.get(_PANELS_KEY, {}).get(dataset, ()):
        for key in [k for k in st.session_state if str(k).startswith(f"{prefix}:")]:
            del st.session_state[key]


def _clamp(value, lo: float, hi: float) -> tuple[float, float]:
    a, b = (float(v) for v in value)
    return min(max(a, lo), hi), min(max(b, lo), hi)


# ---- the panel ----------------------------------------------------------------------------
def render_filter_panel(ws: Workspace, dataset: str, *, key: str = "flt", expanded: bool = False,
                        profile: ColumnProfile | None = None) -> RowFilter:
    """Draw the filter widgets and return (and remember) the resulting filter.

    ``profile``: the columns to offer (default: :func:`catalog_profile` of the active
    embedding, what the Catalog offers). Conditions of the saved filter that no widget can
    show are kept and listed (with a button to drop them); a slice that no longer exists is
    dropped with a warning.
    """
    if profile is None:
        profile = catalog_profile(ws, dataset, state.active_embedding())
    current = state.row_filter(dataset)
    store = ws.store
    p = f"{key}:{dataset}"
    drawn = st.session_state.setdefault(_PANELS_KEY, {}).setdefault(dataset, [])
    if p not in drawn:
        drawn.append(p)
    tag_names = list(store.tags(dataset))
    slice_names = [s.name for s in store.list_slices(dataset)]
    if current.slice_name and current.slice_name not in slice_names:
        _missing_slice_warning(current.slice_name)
        current = replace(current, slice_name=None)
    shown_cats = dict(list(profile.categorical.items())[:MAX_CATEGORY_WIDGETS])
    shown_ranges = {col: (lo, hi) for col, (lo, hi) in list(profile.numeric.items())[:MAX_RANGE_WIDGETS]
                    if lo != hi}
    hidden = _hidden_conditions(current, set(profile.labels), set(tag_names), shown_cats, shown_ranges)

    title = f"{TITLE}: {safe_text(current.describe(), 90)}" if current.active else TITLE
    with st.expander(title, expanded=expanded, icon=":material/filter_list:"):
        c1, c2, c3 = st.columns(3)
        _init(f"{p}:labels", [v for v in current.labels if v in profile.labels])
        labels = c1.multiselect("Label", profile.labels, key=f"{p}:labels")
        _init(f"{p}:text", current.text_contains)
        text = c2.text_input("Text or id contains", key=f"{p}:text")
        _init(f"{p}:tags", [t for t in current.tags if t in tag_names])
        tags = c3.multiselect("Tagged", tag_names, key=f"{p}:tags")
        options = ["(any)"] + slice_names
        _init(f"{p}:slice", current.slice_name if current.slice_name in slice_names else "(any)")
        if st.session_state[f"{p}:slice"] not in options:
            st.session_state[f"{p}:slice"] = "(any)"
        slice_name = c1.selectbox("In slice", options, key=f"{p}:slice")
        categories, ranges = [], []
        previous_cats = dict(current.categories)
        for col, values in shown_cats.items():
            _init(f"{p}:cat:{col}", [v for v in previous_cats.get(col, ()) if v in values])
            chosen = c2.multiselect(col, values, key=f"{p}:cat:{col}")
            if chosen:
                categories.append((col, tuple(chosen)))
        previous_ranges = {c: (lo, hi) for c, lo, hi in current.ranges}
        for col, (lo, hi) in shown_ranges.items():
            rkey = f"{p}:rng:{col}"
            _init(rkey, previous_ranges.get(col, (lo, hi)))
            st.session_state[rkey] = _clamp(st.session_state[rkey], lo, hi)
            chosen = c3.slider(col, min_value=lo, max_value=hi, key=rkey)
            if tuple(chosen) != (lo, hi):
                ranges.append((col, float(chosen[0]), float(chosen[1])))
    visible = RowFilter(
        labels=tuple(labels), categories=tuple(categories), ranges=tuple(ranges),
        text_contains=text.strip(), tags=tuple(tags),
        slice_name=None if slice_name == "(any)" else slice_name,
    )
    flt = _merge(visible, hidden)
    if flt.active:
        st.caption(f"Filter: {safe_text(flt.describe())}")
    if hidden.active:
        note, drop = st.columns([5, 1], vertical_alignment="center")
        note.info(f"Also applied, not editable on this page: {safe_text(hidden.describe())}.")
        drop.button("Drop these", key=f"{p}:drop_hidden", on_click=state.set_row_filter,
                    args=(dataset, visible), help="Remove the conditions listed here from the filter.")
    state.set_row_filter(dataset, flt)
    return flt


# ---- applying the filter ------------------------------------------------------------------
def _with_quality_columns(ws: Workspace, dataset: str, rows: pd.DataFrame,
                          flt: RowFilter) -> pd.DataFrame:
    """``rows`` plus the quality columns of the active embedding (:func:`core.rows.join_quality`
    of the cached quality table) when ``flt`` filters on one that ``rows`` lacks; else ``rows``."""
    embedding = state.active_embedding()
    if not embedding or not needs_quality(flt, rows.columns):
        return rows
    return join_quality(rows, quality_or_none(ws, dataset, embedding), dataset)


def filtered_rows(ws: Workspace, dataset: str, rows: pd.DataFrame, flt: RowFilter) -> pd.DataFrame:
    """The rows of ``rows`` (same columns, same order) that pass ``flt``, through
    :func:`core.rows.matching_rows`, the path the CLI's ``--where`` takes too.

    Conditions on quality columns ``rows`` does not carry use the cached quality scores of
    the active embedding (what the Catalog filtered on); a condition on a column that still
    is not there is skipped with a warning naming it. A slice that no longer exists is
    dropped, from the saved filter too, with a warning naming it (never a traceback).
    """
    if not flt.active:
        return rows
    table = _with_quality_columns(ws, dataset, rows, flt)
    usable = _usable(flt, table.columns)
    if not usable.active:
        return rows
    try:
        matched = matching_rows(ws, dataset, usable, table=table)
    except NotFoundError:  # the only one matching_rows raises: the filter's slice is gone
        if not usable.slice_name:
            raise
        _missing_slice_warning(usable.slice_name)
        rename_slice_in_filter(dataset, usable.slice_name, None)
        usable = replace(usable, slice_name=None)
        if not usable.active:
            return rows
        matched = matching_rows(ws, dataset, usable, table=table)
    return matched if table is rows else matched[list(rows.columns)]
