"""Catalog: browse, filter, sort, open, select, tag and slice a dataset's rows."""

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
view_ids = view["id"].astype(str).tolist()
render_detail(ws, dataset, rows, order=view_ids)
render_selection_bar(ws, dataset, view_ids, key="catalog", shown=len(view), total=len(rows),
                     recipe={"method": "manual", "filter": flt.to_json()})
render_grid(ws.dataset(dataset), view, key="catalog", actions=[("Open", state.open_detail)])
