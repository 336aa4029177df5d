"""Label review: rows whose label is probably wrong, flagged by their neighbours, a model's
predictions or both (accept the suggestion, set another label, mark correct, skip), the
model's confident mistakes and confusion matrix, near-duplicate groups (keep one, tag the
others) and outliers. Every action is saved at once and can be undone."""

import streamlit as st

from core.errors import CatalogError
from core.quality import DEFAULT_DUPLICATE_THRESHOLD, DEFAULT_K
from ui import loaders, state
from ui import predictions as pr
from ui import quality_data as qd
from ui import quality_widgets as qw
from ui.model_review import render_model_mistakes
from ui.detail import render_detail
from ui.grid import render_grid, safe_text
from ui.messages import show_error
from ui.page import start_page

ws, dataset, embedding = start_page("Label review", needs_embedding=True)
rows = loaders.effective_rows(ws, dataset)
if (pending := qd.pending_quality_job(ws, dataset, embedding)) is not None:
    qw.wait_for_quality(ws, dataset, pending)  # a large first kNN pass: a background job
    st.stop()
if qd.needs_stored_pass(ws, dataset, embedding):  # too large to compute on a page load
    qw.offer_quality_pass(ws, dataset, embedding, qd.vector_rows(ws, dataset, embedding))
    st.stop()
qw.render_undo(ws)
if state.detail_row():
    render_detail(ws, dataset, rows, state.detail_row())

models = pr.models(ws, dataset)
tabs = st.tabs(["Label issues", *(["Model mistakes"] if models else []), "Near-duplicates", "Outliers"])
issues_tab, dups_tab, outliers_tab = tabs[0], tabs[-2], tabs[-1]

with issues_tab:
    source, model = pr.render_source_picker(ws, dataset)
    c1, c2, c3 = st.columns(3, vertical_alignment="bottom")
    k = int(c1.number_input("Neighbours (k)", min_value=1, max_value=100, value=DEFAULT_K, key="qa:k",
                            disabled=source == "model"))
    min_score = c2.slider("Minimum score", min_value=0.0, max_value=1.0, value=0.5, step=0.05,
                          key="qa:min_score", help="1 - the calibrated probability of the given label")
    show_skipped = c3.checkbox("Show skipped rows", key="qa:show_skipped")
    try:
        issues = pr.label_issues(ws, dataset, embedding, source, model, k)
    except CatalogError as err:
        show_error(err)
    else:
        queue = qw.issue_queue(ws, dataset, issues, min_score, show_skipped)
        start = qw.batch_start(dataset, len(queue))
        batch = queue[start:start + qw.BATCH]
        shown = f" · showing {start + 1:,}-{start + len(batch):,}" if batch else ""
        by = pr.SOURCE_NAMES[source].lower() + (f" ({safe_text(model)})" if source != "neighbours" else "")
        st.markdown(f"**{len(queue):,} rows to review**, flagged by {by} (score ≥ {min_score:.2f}"
                    f"{'' if source == 'model' else f', k = {k}'}, {len(issues):,} labelled rows scored){shown}")
        if batch:
            ids = [b.id for b in batch]
            qw.render_issue_batch(ws, dataset, rows, batch, qd.label_choices(ws, dataset),
                                  qd.nearest_of(ws, dataset, embedding, ids) if source != "model" else (),
                                  model=model, evidence=pr.evidence_of(ws, dataset, model, ids) if model else ())
            p1, p2, _ = st.columns([1, 1, 4])
            p1.button("Previous batch", key="qa:prev", disabled=start == 0,
                      on_click=qw.move_batch, args=(dataset, -1))
            p2.button("Next batch", key="qa:next", disabled=start + qw.BATCH >= len(queue),
                      on_click=qw.move_batch, args=(dataset, 1))
        else:
            st.success("Nothing left to review at this score.")

if models:
    with tabs[1]:
        try:
            render_model_mistakes(ws, dataset, embedding, rows, pr.render_model_picker(ws, dataset, models))
        except CatalogError as err:
            show_error(err)

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
                    f"distance to the {DEFAULT_K} nearest neighbours, scaled 0-1 "
                    f"(embedding {safe_text(embedding)})")
        render_grid(ws.dataset(dataset), view, key="qa:out", scores=scores,
                    actions=[("Open", state.open_detail)])
