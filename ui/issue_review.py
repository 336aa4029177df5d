"""The Label review page's "Label issues" tab: the source picker, the review queue (worst
first, in batches) with each card saying which source flagged the row and why, and the
batch navigation. The actions and their undo are :mod:`ui.quality_widgets`'."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.errors import CatalogError
from core.quality import DEFAULT_K
from core.workspace import Workspace
from ui import predictions as pr
from ui import quality_data as qd
from ui import quality_widgets as qw
from ui.grid import safe_text
from ui.messages import show_error


def render_label_issues(ws: Workspace, dataset: str, embedding: str | None, rows: pd.DataFrame) -> None:
    """The tab's widgets and queue; without ``embedding`` only the model's source is offered."""
    source, model = pr.render_source_picker(ws, dataset, has_embedding=embedding is not None)
    c1, c2, c3 = st.columns(3, vertical_alignment="bottom")
    k = c1.number_input("Neighbours (k)", min_value=1, max_value=100, value=None, step=1, key="qa:k",
                        placeholder=f"auto (up to {DEFAULT_K})", disabled=source == "model",
                        help=f"How many nearest labelled rows vote. Empty: {DEFAULT_K}, or half the mean "
                        "class size on a small dataset")
    k = None if k is None else int(k)
    min_score = c2.slider("Minimum score", min_value=0.0, max_value=1.0, value=0.5, step=0.05,
                          key="qa:min_score", help="1 - the probability of the given label, under the chosen source")
    show_skipped = c3.checkbox("Show skipped rows", key="qa:show_skipped")
    try:
        issues = pr.label_issues(ws, dataset, embedding, source, model, k)
    except CatalogError as err:
        show_error(err)
        return
    queue = qw.issue_queue(ws, dataset, issues, min_score, show_skipped)
    start = qw.batch_start(dataset, len(queue))
    batch = queue[start:start + qw.BATCH]
    shown = f" · showing {start + 1:,}-{start + len(batch):,}" if batch else ""
    by = pr.SOURCE_NAMES[source].lower() + (f" ({safe_text(model)})" if source != "neighbours" else "")
    st.markdown(f"**{len(queue):,} rows to review**, flagged by {by} (score ≥ {min_score:.2f}"
                f"{'' if source == 'model' else f', k = {issues.k}'}, {len(issues):,} labelled rows scored){shown}")
    if not batch:
        st.success("Nothing left to review at this score.")
        return
    ids = [b.id for b in batch]
    near = qd.nearest_of(ws, dataset, embedding, ids) if source != "model" and embedding else ()
    qw.render_issue_batch(ws, dataset, rows, batch, qd.label_choices(ws, dataset), near, model=model,
                          evidence=pr.evidence_of(ws, dataset, model, ids) if model else ())
    p1, p2, _ = st.columns([1, 1, 4])
    p1.button("Previous batch", key="qa:prev", disabled=start == 0, on_click=qw.move_batch, args=(dataset, -1))
    p2.button("Next batch", key="qa:next", disabled=start + qw.BATCH >= len(queue),
              on_click=qw.move_batch, args=(dataset, 1))
