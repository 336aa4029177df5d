"""Cluster map: a 2-D map (UMAP / PCA) of the active embedding coloured by KMeans
cluster, label, tag, quality score or a column (a large map: a sample of the points over
the density of all rows); lasso, box or click points (or pick a cluster) to select rows,
then tag, slice, relabel or use them as anchors.

The rows are queried where they are: the filter's ids from the database, the columns of
the drawn points and of the picked rows fetched for those rows only."""

import streamlit as st

from core.clusters import PROJECTION_METHODS
from core.errors import CatalogError
from ui import cluster_widgets as cw
from ui import loaders
from ui import predictions as pr
from ui.carried_filter import render_carried_filter
from ui.grid import render_grid, safe_text
from ui.messages import show_error
from ui.page import start_page
from ui.selection_bar import render_selection_bar

ws, dataset, embedding = start_page("Cluster map", needs_embedding=True)

flt = render_carried_filter(dataset, key="clu:clear_filter")  # the Catalog filter applies here
view = cw.filter_view(ws, dataset, embedding, flt)
emb = loaders.embedding(ws, dataset, embedding)

c1, c2, c3 = st.columns(3)
method = c1.selectbox("Projection", PROJECTION_METHODS, format_func=cw.METHOD_NAMES.get, key="clu:method")
k = int(c2.number_input("Clusters k", min_value=2, max_value=500, value=10, step=1, key="clu:k"))
seed = int(c3.number_input("Seed", min_value=0, value=0, step=1, key="clu:seed"))

if not cw.projection_on_disk(ws, dataset, embedding, method, seed):
    estimate = cw.first_run_estimate(len(emb.ids), emb.dims, method)
    if estimate is not None and estimate > cw.CONFIRM_ABOVE_SECONDS:
        st.info(f"The {method.upper()} map of {len(emb.ids):,} rows takes {cw.estimate_text(estimate)} "
                "the first time; after that it is read from the cache.")
        if not st.button("Compute map", key="clu:compute", type="primary"):
            st.stop()
    try:
        cw.compute_projection(ws, dataset, embedding, method, seed, estimate)
        st.stop()  # the map is being computed as a job; the page fills in when it ends
    except CatalogError as err:
        show_error(err)
        st.stop()
try:
    proj = cw.projection(ws, dataset, embedding, method, seed)
    clu = cw.clustering(ws, dataset, embedding, k, seed)
except CatalogError as err:
    show_error(err)
    st.stop()

in_filter = cw.view_ids(ws, dataset, view)
points = cw.points_on_map(ws, dataset, embedding, view, in_filter, proj, clu, k, seed)  # id, x, y, cluster of each
shown = cw.shown_points(points, dataset)  # a large map draws a sample over the density of all rows
missing = len(in_filter) - len(points)
st.caption(f"{len(points):,} rows on the map (filter: {safe_text(flt.describe())})"
           + (f" · {missing:,} rows have no vector in this embedding" if missing else "")
           + (f" · {len(shown):,} of them drawn, the shading shows all; a box or lasso selects every "
              "row inside it" if len(shown) < len(points) else "")
           + (f" · {clu.k} clusters, not {clu.requested_k}: only {clu.k} distinct vectors"
              if clu.k < clu.requested_k else ""))
if points.empty:
    st.info("No row with a vector passes the Catalog filter.")
    st.stop()

shown = cw.drawn_rows(view, shown)  # every column of the drawn points, fetched for them only
tags = list(ws.store.tags(dataset))
o1, o2 = st.columns([2, 1])
model = pr.newest_model(ws, dataset)
colorings = cw.color_options(shown, tags, has_predictions=model is not None)
if st.session_state.get("clu:color") not in colorings:
    st.session_state["clu:color"] = cw.COLOR_CLUSTER
color_by = o1.selectbox("Colour by", colorings, key="clu:color")
tag = o2.selectbox("Tag", tags, key="clu:tag") if color_by == cw.COLOR_TAG else ""
if color_by in cw.MODEL_COLORINGS and len(models := pr.models(ws, dataset)) > 1:
    model = o2.selectbox("Model", models, index=models.index(model), key="clu:model")
try:
    values = cw.color_values(
        shown, color_by, tag=tag,
        tagged=ws.store.rows_with_tag(dataset, tag) if color_by == cw.COLOR_TAG else (),
        scores=cw.quality_by_id(ws, dataset, embedding) if color_by in cw.SCORE_COLORINGS else None,
        predictions=pr.prediction_columns(ws, dataset, model) if color_by in cw.MODEL_COLORINGS else None)
except CatalogError as err:
    show_error(err)
    st.stop()
fig, trace_ids = cw.map_figure_with_density(points, shown, values, color_by)
event = st.plotly_chart(fig, on_select="rerun", selection_mode=("lasso", "box", "points"), key="clu:map")

recipe = {"embedding": embedding, "projection": proj.params, "k": k, "seed": seed,
          "filter": flt.to_json(), "dataset": dataset}
cw.render_picks(dataset, clu, points, event, trace_ids, recipe, color_by)

picked_ids, picked_recipe = cw.picked(dataset)
st.subheader(f"Picked rows ({len(picked_ids):,})")
if not picked_ids:
    st.info("Lasso or box-select points on the map, or choose a cluster, to pick rows.")
    st.stop()
render_selection_bar(ws, dataset, picked_ids, key="clu:bar", recipe=picked_recipe)
cw.render_relabel(ws, dataset)
render_grid(ws.dataset(dataset), cw.rows_of(view, picked_ids), key="clu:grid")
