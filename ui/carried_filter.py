"""The Catalog filter as another page applies it: shown, with one click to clear it
(:func:`render_carried_filter`). Pages that rank, sample or map rows inside the Catalog
filter (``ui.state.row_filter``) call it, so a filter set earlier never narrows a page
unseen."""

from __future__ import annotations

import streamlit as st

from core.filters import RowFilter
from ui.filter_panel import set_filter
from ui.messages import show
from ui.state import row_filter

PREFIX = "Filtered by the Catalog: "


def clear_carried_filter(dataset: str) -> None:
    """Callback: the filter of ``dataset`` becomes empty (every page's panel too)."""
    set_filter(dataset, RowFilter())


def render_carried_filter(dataset: str, key: str) -> RowFilter:
    """Draw "Filtered by the Catalog: <the filter>" and a "Clear filter" button (widget
    ``key``) when the Catalog filter of ``dataset`` is active; draw nothing otherwise.
    Returns the filter the page applies (as it stands when called)."""
    flt = row_filter(dataset)
    if not flt.active:
        return flt
    note, button = st.columns([6, 1], vertical_alignment="center")
    with note:
        show(PREFIX + flt.describe(), "info")
    button.button("Clear filter", key=key, on_click=clear_carried_filter, args=(dataset,),
                  icon=":material/filter_alt_off:", help="Show every row of the dataset again.")
    return flt


__all__ = ["PREFIX", "clear_carried_filter", "render_carried_filter"]
