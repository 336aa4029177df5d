"""The selection bar under a grid: count of selected rows, select all shown, clear, use as
anchors, tag and save as slice (the selection itself lives in :mod:`ui.state`)."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from core.errors import CatalogError
from core.workspace import Workspace
from ui import state
from ui.messages import show, show_error

MAX_SELECT_ALL = 100_000


def render_selection_bar(
    ws: Workspace,
    dataset: str,
    view_ids: Sequence[str],
    *,
    key: str,
    recipe: dict | None = None,
) -> None:
    """Draw the bar for the rows in ``view_ids`` (the current filtered/ranked view).

    ``recipe`` is stored with a saved slice (e.g. the search that produced the view).
    """
    chosen = state.selection(dataset)
    with st.container(border=True):
        top = st.columns([2, 1, 1, 1])
        top[0].markdown(f"**{len(chosen):,} selected**")
        if top[1].button("Select all shown", key=f"{key}:all", disabled=not view_ids):
            state.select(dataset, list(view_ids)[:MAX_SELECT_ALL])
            st.rerun()
        if top[2].button("Clear", key=f"{key}:clear", disabled=not chosen):
            state.clear_selection(dataset)
            st.rerun()
        if top[3].button("Use as anchors", key=f"{key}:anchor", disabled=not chosen):
            state.add_anchors(dataset, chosen)
            st.toast(f"{len(chosen)} anchors set: open Similarity search")
        tag_col, tag_btn, slice_col, slice_btn = st.columns([3, 1, 3, 1], vertical_alignment="bottom")
        tag = tag_col.text_input("Tag", key=f"{key}:tag", placeholder="e.g. to-label")
        if tag_btn.button("Tag selected", key=f"{key}:tag_btn"):
            _tag(ws, dataset, chosen, tag)
        name = slice_col.text_input("Slice name", key=f"{key}:slice", placeholder="e.g. hard-negatives")
        if slice_btn.button("Save as slice", key=f"{key}:slice_btn"):
            _save_slice(ws, dataset, chosen, name, recipe)


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


def _save_slice(ws: Workspace, dataset: str, ids: list[str], name: str, recipe: dict | None) -> None:
    if not ids:
        show("Select rows first.", "warning")
        return
    try:
        saved = ws.store.save_slice(dataset, name, ids, recipe or {"method": "manual"})
    except CatalogError as err:
        show_error(err)
        return
    show(f"Saved slice '{saved.name}' with {len(saved.ids):,} rows.")
