"""Catalog: browse, filter, sort, open, select, tag and slice a dataset's rows.

The rows are queried where they are (DuckDB over rows.parquet, :class:`core.rows.RowsView`):
the page fetches the tiles it shows and the counts it draws, at any dataset size."""

from ui import state
from ui.detail import render_detail
from ui.filter_panel import catalog_profile, catalog_view, render_filter_panel
from ui.grid import render_grid, view_count
from ui.page import start_page
from ui.selection_bar import render_selection_bar

ws, dataset, embedding = start_page("Catalog")
flt = render_filter_panel(ws, dataset, profile=catalog_profile(ws, dataset, embedding))
view = catalog_view(ws, dataset, embedding, flt)
render_detail(ws, dataset, view)
shown = view_count(view)
render_selection_bar(ws, dataset, view, key="catalog", shown=shown,
                     total=ws.dataset(dataset).row_count(),
                     recipe={"method": "manual", "filter": flt.to_json()})
render_grid(ws.dataset(dataset), view, key="catalog", actions=[("Open", state.open_detail)])
