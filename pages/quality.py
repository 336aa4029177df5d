"""Label review: rows whose label is probably wrong, flagged by their neighbours, a model's
predictions or both (accept the suggestion, set another label, mark correct, skip), the
model's confident mistakes and confusion matrix, near-duplicate groups (keep one, tag the
others) and outliers. Every action is saved at once and can be undone."""

import streamlit as st

from core.errors import CatalogError
from core.quality import DEFAULT_DUPLICATE_THRESHOLD, OUTLIER_K
from ui import loaders, state
from ui import predictions as pr
from ui import quality_data as qd
from ui import quality_widgets as qw
from ui.issue_review import render_label_issues
from ui.model_review import render_model_mistakes
from ui.detail import render_detail
from ui.grid import render_grid, safe_text
from ui.messages import show_error
from ui.page import start_page

page = start_page("Label review")
ws, dataset, embedding = page
models = pr.models(ws, dataset)
if not models:  # a model's predictions alone are enough for their source
    page.require_embedding("Label review")
rows = loaders.effective_rows(ws, dataset)
if embedding and (pending := qd.pending_quality_job(ws, dataset, embedding)) is not None:
    qw.wait_for_quality(ws, dataset, pending)  # a large first kNN pass: a background job
    st.stop()
if embedding and qd.needs_stored_pass(ws, dataset, embedding):  # too large to compute on a page load
    qw.offer_quality_pass(ws, dataset, embedding, qd.vector_rows(ws, dataset, embedding))
    st.stop()
qw.render_undo(ws)
if state.detail_row():
    render_detail(ws, dataset, rows, state.detail_row())

tabs = st.tabs(["Label issues", *(["Model mistakes"] if models else []),
                *(["Near-duplicates", "Outliers"] if embedding else [])])
with tabs[0]:
    render_label_issues(ws, dataset, embedding, rows)

if models:
    with tabs[1]:
        try:
            render_model_mistakes(ws, dataset, embedding, rows, pr.render_model_picker(ws, dataset, models))
        except CatalogError as err:
            show_error(err)
if embedding is None:
    st.caption(f"Near-duplicates and outliers need an embedding: `catalog embed {dataset}`.")
    st.stop()
dups_tab, outliers_tab = tabs[-2], tabs[-1]

with dups_tab:
    d1, d2, d3 = st.columns(3, vertical_alignment="bottom")
    threshold = d1.slider("Similarity threshold", min_value=0.80, max_value=1.0, step=0.005,
                          value=DEFAULT_DUPLICATE_THRESHOLD, key="qa:dup_threshold", format="%.3f")
    tag = d2.text_input("Tag for the others", value="duplicate", key="qa:dup_tag")
    hide_done = d3.checkbox("Hide resolved groups", value=True, key="qa:dup_hide")
    try:
        dups = qd.duplicates(ws, dataset, embedding, threshold)
    except CatalogError as err:
        show_error(err)
    else:
        groups = qw.open_groups(ws, dataset, dups.groups, tag.strip()) if hide_done else list(dups.groups)
        conflicts = sum(g.conflict for g in dups.groups)
        st.markdown(f"**{len(dups.pairs):,} pairs in {len(dups.groups):,} groups** "
                    f"({conflicts:,} with conflicting labels; {len(groups):,} shown)")
        per_page = 10
        pages = max(1, -(-len(groups) // per_page))
        page = int(st.number_input(f"Group page (of {pages:,})", min_value=1, max_value=pages,
                                   value=1, key="qa:dup_page"))
        partners = qd.duplicate_partners(ws, dataset, embedding, threshold)
        for group in groups[(page - 1) * per_page:page * per_page]:
            qw.render_group(ws, dataset, rows, group, partners)

with outliers_tab:
    try:
        view, scores = qd.outlier_view(ws, dataset, embedding)
    except CatalogError as err:
        show_error(err)
    else:
        st.markdown(f"**{len(view):,} rows, most unique first** · uniqueness = mean cosine "
                    f"distance to the {OUTLIER_K} nearest neighbours, scaled 0-1 "
                    f"(embedding {safe_text(embedding)})")
        render_grid(ws.dataset(dataset), view, key="qa:out", scores=scores,
                    actions=[("Open", state.open_detail)])
