"""Smart select: N rows at random, by a column, spread over clusters or for diversity,
inside a scope; preview them in the grid, then save them as a slice or tag them.

The rows are queried where they are (:func:`ui.smart_select.page_rows`): the page counts
them, takes the scope's ids and the first N of an ordering from the database, and fetches
the rows of the preview only."""

import streamlit as st

from core.errors import CatalogError
from core.select import PER_CLUSTER_CHOICES, PICK_CHOICES, SELECT_METHODS
from ui import slice_widgets as slw
from ui import smart_select as sw
from ui.carried_filter import render_carried_filter
from ui.grid import render_grid, safe_text
from ui.page import start_page

ws, dataset, embedding = start_page("Smart select")

rows = sw.page_rows(ws, dataset)  # no quality columns until the request needs them
total = rows.count()
store = ws.store

c1, c2, c3 = st.columns([3, 1, 1])
method = c1.selectbox("Method", SELECT_METHODS, format_func=sw.METHOD_NAMES.get, key="sel:method")
n = int(c2.number_input("N rows", min_value=1, value=min(100, total), step=10, key="sel:n"))
seed = int(c3.number_input("Seed", min_value=0, value=0, step=1, key="sel:seed",
                           disabled=method == "ordered"))
params = sw.SelectRequest(method=method, n=n, seed=seed)
if method == "ordered":
    o1, o2 = st.columns([3, 1], vertical_alignment="bottom")
    by = o1.selectbox("Order by column", sw.order_columns(rows, embedding), key="sel:by")
    desc = o2.checkbox("Descending", key="sel:desc")
    params = sw.SelectRequest(method=method, n=n, by=by, descending=desc)
elif method == "cluster":
    k1, k2, k3 = st.columns(3)
    k = int(k1.number_input("Clusters k", min_value=1, max_value=1000, value=10, key="sel:k"))
    per_cluster = k2.selectbox("Rows per cluster", PER_CLUSTER_CHOICES, key="sel:per_cluster")
    pick = k3.selectbox("Pick within a cluster", PICK_CHOICES, key="sel:pick")
    params = sw.SelectRequest(method=method, n=n, seed=seed, k=k, per_cluster=per_cluster, pick=pick)
if method in sw.VECTOR_METHODS:
    if embedding is None:
        st.info(f"This method needs an embedding: run `catalog embed {dataset}`.")
        st.stop()
    st.caption(f"Embedding: {safe_text(embedding)} (change it in the sidebar).")

s1, s2, s3 = st.columns(3)
choices = sw.scope_choices(ws, dataset)
if st.session_state.get("sel:scope") not in choices:
    st.session_state["sel:scope"] = sw.SCOPE_ALL
scope_choice = s1.selectbox("Scope", choices, key="sel:scope",
                            format_func=sw.describe_choice)
slice_names = [s.name for s in store.list_slices(dataset)]
excl_slices = s2.multiselect("Exclude rows in slices", slice_names, key="sel:exclude_slices")
excl_tags = s3.multiselect("Exclude rows tagged", list(store.tags(dataset)), key="sel:exclude_tags")

if scope_choice == sw.SCOPE_FILTER:
    render_carried_filter(dataset, key="sel:clear_filter")
if sw.needs_quality_columns(dataset, embedding, params, scope_choice, rows):
    rows = sw.page_rows(ws, dataset, embedding)
    if rows.quality is None:
        st.info(f"Ordering or filtering by a quality column needs the quality columns of "
                f"{safe_text(embedding)}: they appear when their computation ends.")
        st.stop()
try:
    scope = sw.page_scope(ws, dataset, rows, scope_choice, excl_slices, excl_tags)
except CatalogError as err:
    st.error(str(err))
    st.stop()
st.caption(f"Scope: {safe_text(scope.description)}: {len(scope.ids):,} rows"
           + (f" ({scope.excluded_rows:,} excluded)" if scope.excluded_rows else ""))

signature = sw.signature(ws, dataset, embedding, params, scope)
if st.button("Preview", key="sel:preview_btn", type="primary"):
    try:
        sw.set_preview(dataset, sw.run_selection(ws, dataset, rows, embedding, params, scope),
                       signature)
    except CatalogError as err:
        st.error(str(err))
        st.stop()

shown = sw.preview(dataset)
if shown is None:
    st.info("Choose a method and a scope, then press Preview.")
    st.stop()
selection, made_with = shown
if made_with != signature:
    st.warning("The settings changed since this preview: press Preview to update it.")
st.markdown(sw.counts_line(selection))
with st.expander("Recipe (stored with the slice)"):
    st.json(selection.recipe, expanded=False)

n1, n2, t1, t2 = st.columns([3, 1, 3, 1], vertical_alignment="bottom")
name = n1.text_input("Slice name", key="sel:slice_name", placeholder="e.g. to-label-batch-1")
with n1:
    replace = slw.replace_choice(ws, dataset, name, key="sel:slice_replace")
if n2.button("Save as slice", key="sel:save"):
    slw.save_slice(ws, dataset, name, selection.ids, selection.recipe, replace=replace)
tag = t1.text_input("Tag", key="sel:tag", placeholder="e.g. sent-to-labeling")
if t2.button("Tag these rows", key="sel:tag_btn"):
    try:
        added = store.tag_rows(dataset, list(selection.ids), tag)
    except CatalogError as err:
        st.error(str(err))
    else:
        st.success(f"Tagged {len(selection):,} rows '{safe_text(tag.strip())}' ({added:,} new).")

render_grid(ws.dataset(dataset), sw.selection_view(rows, selection.ids), key="sel:grid")
