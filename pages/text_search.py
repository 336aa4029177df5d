"""Text search: rows matching typed words, by meaning, by the words themselves, or both."""

import streamlit as st

from core.errors import CatalogError
from ui import loaders
from ui import search_widgets as sw
from ui import text_search as ts
from ui.carried_filter import render_carried_filter
from ui.filter_panel import catalog_profile, catalog_view, render_filter_panel
from ui.messages import show_error
from ui.page import start_page

ws, dataset, embedding = start_page("Text search", needs_embedding=True)
plan = ts.text_plan(ws, dataset, embedding)
if plan.note:
    st.info(plan.note)
flt = render_filter_panel(ws, dataset, key="txt:flt", expanded=False,
                          profile=catalog_profile(ws, dataset, embedding))
rows = catalog_view(ws, dataset, embedding, flt)  # the Catalog's rows: its filter applies as is
render_carried_filter(dataset, key="txt:clear_filter")

left, right = st.columns([5, 1], vertical_alignment="bottom")
query = ts.query_box(left, dataset)  # one box per dataset: never re-run on another
pool_size = int(right.number_input("Candidates N", 100, 20_000, sw.DEFAULT_POOL, 100, key="txt:pool"))

try:
    if plan.fallback and not ts.ensure_fallback(ws, dataset):
        st.stop()  # the derived embedding is being built as a job (progress in the sidebar)
    search = ts.loaded_search(ws, plan)
except CatalogError as err:
    show_error(err)
    st.stop()
mode = ts.mode_picker(st, search, key=f"txt:mode:{dataset}")
st.caption(ts.describe_method(plan, mode))

if not query.strip():
    st.info("Type a few words above and press Enter: rows are ranked by what they mean, "
            "by the words they contain, or both.")
    st.stop()

try:
    within = sw.within_ids(ws, dataset, plan.embedding, rows)
    pool = ts.text_search(ws, plan, query, mode, within=within, k=pool_size, pool=pool_size)
except CatalogError as err:
    show_error(err)
    st.stop()

if within is not None:
    st.caption(f"Searching within {len(within):,} filtered rows ({flt.describe()}).")
if pool.recipe.get("truncated"):
    limit = loaders.encoder(plan.encoder).max_text_tokens
    st.warning(f"The query is longer than the encoder's limit of {limit} tokens: "
               "only its beginning was used.")

recipe_extra = {"method": plan.method, "mode": mode, "filter": flt.to_json(), "pool": pool_size,
                "requested_embedding": plan.requested, "fallback": plan.fallback}
sw.render_results(ws, dataset, rows, pool,
                  lambda t: ts.text_search(ws, plan, query, mode, within=within, k=None, threshold=t,
                                           pool=pool_size),
                  key="txt", recipe_extra=recipe_extra, actions=sw.anchor_actions(dataset))
