"""The selection bar under a grid: count of selected rows, select all shown, clear, use as
anchors, tag and save as slice (the selection itself lives in :mod:`ui.state`)."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from core.errors import CatalogError
from core.rows import RowsView, ViewIds
from core.workspace import Workspace
from ui import state
from ui.grid import safe_text
from ui.messages import show, show_error

MAX_SELECT_ALL = 100_000


def render_selection_bar(
    ws: Workspace,
    dataset: str,
    view_ids: Sequence[str] | RowsView,
    *,
    key: str,
    recipe: dict | None = None,
    shown: int | None = None,
    total: int | None = None,
) -> None:
    """Draw the bar for the rows in ``view_ids`` (the current filtered/ranked view: ids, or
    a :class:`core.rows.RowsView`, whose ids are then fetched only when a button needs them).

    ``recipe`` is stored with a saved slice (e.g. the search that produced the view);
    ``shown``/``total`` add "N of M rows". The buttons read the selection when pressed
    (the grid sends it from the browser), so none is disabled by a stale count.
    """
    if isinstance(view_ids, RowsView):
        view_ids = ViewIds(view_ids, total=shown)
    cols = st.columns([1.1, 1.4, 0.9, 1.45, 1.3, 1.3], vertical_alignment="bottom")
    if shown is not None and total is not None:
        cols[0].markdown(f"**{shown:,} of {total:,} rows**")
    if cols[1].button("Select all shown", key=f"{key}:all", disabled=not view_ids,
                      icon=":material/select_all:"):
        state.select(dataset, list(view_ids[:MAX_SELECT_ALL]))
        st.rerun()
    if cols[2].button("Clear", key=f"{key}:clear", icon=":material/deselect:"):
        state.clear_selection(dataset)
        st.rerun()
    if cols[3].button("Use as anchors", key=f"{key}:anchor", icon=":material/anchor:"):
        chosen = state.selection(dataset)
        if chosen:
            state.add_anchors(dataset, chosen)
            st.toast(f"{len(chosen)} anchor{'' if len(chosen) == 1 else 's'} set: open Similarity search")
        else:
            show("Select rows first.", "warning")
    with cols[4].popover("Tag selected", icon=":material/sell:", width="stretch"):
        tag = st.text_input("Tag", key=f"{key}:tag", placeholder="e.g. to-label")
        if st.button("Tag selected", key=f"{key}:tag_btn"):
            _tag(ws, dataset, state.selection(dataset), tag)
    with cols[5].popover("Save as slice", icon=":material/bookmark_add:", width="stretch"):
        name = st.text_input("Slice name", key=f"{key}:slice", placeholder="e.g. hard-negatives")
        exists = name.strip() in {s.name for s in ws.store.list_slices(dataset)}
        replace = st.checkbox(f"Replace the existing slice '{safe_text(name.strip(), 60)}'" if exists
                              else "Replace a slice of that name", key=f"{key}:slice_replace",
                              disabled=not exists)
        if st.button("Save as slice", key=f"{key}:slice_btn"):
            _save_slice(ws, dataset, state.selection(dataset), name, recipe, replace and exists)


def _tag(ws: Workspace, dataset: str, ids: list[str], tag: str) -> None:
    if not ids:
        show("Select rows first.", "warning")
        return
    try:
        added = ws.store.tag_rows(dataset, ids, tag)
    except CatalogError as err:
        show_error(err)
        return
    show(f"Tagged {len(ids):,} rows '{tag.strip()}' ({added:,} new).")


def _save_slice(ws: Workspace, dataset: str, ids: list[str], name: str, recipe: dict | None,
                replace: bool = False) -> None:
    if not ids:
        show("Select rows first.", "warning")
        return
    try:
        saved = ws.store.save_slice(dataset, name, ids, recipe or {"method": "manual"},
                                    replace=replace)
    except CatalogError as err:
        show_error(err)
        return
    show(f"Saved slice '{saved.name}' with {len(saved.ids):,} rows.")
