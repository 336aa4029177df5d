"""Similarity search: rows like the anchors (and unlike the negatives), ranked by score."""

import streamlit as st

from core.errors import CatalogError
from core.search import DEFAULT_NEGATIVE_WEIGHT, METHODS
from ui import search_widgets as sw
from ui import state
from ui.carried_filter import render_carried_filter
from ui.filter_panel import catalog_profile, catalog_view, render_filter_panel
from ui.messages import show_error
from ui.page import start_page

METHOD_NAMES = {
    "rocchio": "Rocchio: normalize(mean(anchors) − w · mean(negatives))",
    "max": "Max: best similarity to any anchor",
    "mean": "Mean: average similarity to the anchors",
    "min": "Min: similar to every anchor",
}

ws, dataset, embedding = start_page("Similarity search", needs_embedding=True)
spec = sw.encoder_spec(ws, dataset, embedding)
flt = render_filter_panel(ws, dataset, key="sim:flt", expanded=False,
                          profile=catalog_profile(ws, dataset, embedding))
rows = catalog_view(ws, dataset, embedding, flt)  # the Catalog's rows: its filter applies as is
render_carried_filter(dataset, key="sim:clear_filter")

with st.expander("Add anchors", expanded=not (state.anchors(dataset) or state.negatives(dataset))):
    st.caption("Pick rows on the Catalog page and press “Use as anchors”, press “Use as anchor” "
               "on a result below, or type row ids here (one per line or comma-separated).")
    typed = st.text_area("Row ids", key="sim:ids", height=80)
    add_pos, add_neg, _ = st.columns([1, 1, 3])
    for button, negative in ((add_pos.button("Add as anchors", key="sim:add_pos"), False),
                             (add_neg.button("Add as negatives", key="sim:add_neg"), True)):
        if button:
            unknown = sw.add_typed_ids(rows, dataset, typed, negative=negative)
            if unknown:
                show_error(f"{len(unknown)} id(s) are not rows of {dataset}: {', '.join(unknown[:5])}")
    files = None
    if sw.encodes_images(spec):
        files = st.file_uploader("Or upload images as anchors", type=sw.UPLOAD_TYPES,
                                 accept_multiple_files=True, key="sim:upload")
    else:
        st.caption(f"Image upload needs an image embedding; {embedding} uses {spec or 'imported vectors'}.")

uploads, errors = sw.upload_anchors(files, spec) if files else ([], [])
for message in errors:
    show_error(message)
anchors, negatives = state.anchors(dataset), state.negatives(dataset)
sw.render_anchor_strip(ws, dataset, rows, uploads, key="sim")

c1, c2, c3 = st.columns([3, 2, 1])
method = c1.selectbox("Scoring", METHODS, format_func=METHOD_NAMES.get, key="sim:method")
weight = c2.slider("Negative weight w", 0.0, 2.0, DEFAULT_NEGATIVE_WEIGHT, 0.05, key="sim:weight",
                   disabled=not negatives)
pool_size = int(c3.number_input("Candidates N", 100, 20_000, sw.DEFAULT_POOL, 100, key="sim:pool"))

if not anchors and not uploads:
    st.info("No anchors yet: add rows or an image above to find similar rows.")
    st.stop()

within = sw.within_ids(ws, dataset, embedding, rows)
if within is not None:
    st.caption(f"Searching within {len(within):,} filtered rows ({flt.describe()}).")
query = {"anchors": anchors, "negatives": negatives, "uploads": uploads, "method": method,
         "weight": weight, "within": within}
try:
    pool = sw.similar(ws, dataset, embedding, k=pool_size, **query)
except CatalogError as err:
    show_error(err)
    st.stop()

recipe_extra = {"filter": flt.to_json(), "pool": pool_size,
                "uploads": [{"name": u.name, "sha256": u.digest} for u in uploads]}
sw.render_results(ws, dataset, rows, pool,
                  lambda t: sw.similar(ws, dataset, embedding, k=None, threshold=t, **query),
                  key="sim", recipe_extra=recipe_extra, actions=sw.anchor_actions(dataset))
