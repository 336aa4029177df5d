"""Catalog: browse, filter, open, select, tag and slice a dataset's rows."""

import streamlit as st

from ui import state
from ui.detail import render_detail
from ui.filter_panel import (
    catalog_profile,
    catalog_rows,
    filtered_rows,
    render_filter_panel,
)
from ui.grid import render_grid
from ui.page import start_page
from ui.selection_bar import render_selection_bar

ws, dataset, embedding = start_page("Catalog")
rows = catalog_rows(ws, dataset, embedding)  # effective labels + quality columns
flt = render_filter_panel(ws, dataset, profile=catalog_profile(ws, dataset, embedding))
view = filtered_rows(ws, dataset, rows, flt)
st.markdown(f"**{len(view):,} of {len(rows):,} rows**")

if state.detail_row():
    render_detail(ws, dataset, rows, state.detail_row())

render_selection_bar(ws, dataset, view["id"].astype(str).tolist(), key="catalog",
                     recipe={"method": "manual", "filter": flt.to_json()})
render_grid(ws.dataset(dataset), view, key="catalog", actions=[("Open", state.open_detail)])
