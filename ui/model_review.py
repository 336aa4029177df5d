"""The Label review page's "Model mistakes" tab: rows the model confidently predicts as
another class than their label, reviewed with the same cards, actions and undo as the label
issues, and the confusion matrix whose clicked cell lists its rows."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.quality import DEFAULT_MIN_CONFIDENCE
from core.workspace import Workspace
from ui import predictions as pr
from ui import quality_data as qd
from ui import quality_widgets as qw
from ui import state
from ui.grid import render_grid, safe_text

MISTAKES_SHOWN = 8  # cards per page of mistakes


def render_model_mistakes(ws: Workspace, dataset: str, embedding: str | None, rows: pd.DataFrame,
                          model: str) -> None:
    """Confusion matrix (click a cell: its rows below) and the confident mistakes as review
    cards (with their nearest rows when there is an ``embedding``)."""
    c1, c2 = st.columns([1, 2], vertical_alignment="bottom")
    min_conf = c1.slider("Minimum confidence", 0.0, 1.0, DEFAULT_MIN_CONFIDENCE, 0.05, key="qa:mm_conf",
                         help="The model's probability for the class it predicts")
    found, cm = pr.mistakes(ws, dataset, model, min_conf)
    c2.markdown(f"Model **{safe_text(model, 40)}**: accuracy **{cm.accuracy:.1%}** on {int(cm.counts.sum()):,} "
                f"labelled rows with a prediction · **{len(found):,}** predicted as another class with "
                f"confidence ≥ {min_conf:.2f}")
    st.markdown("**Confusion matrix** (label down, prediction across; click a cell to list its rows)")
    event = st.plotly_chart(pr.confusion_figure(cm), on_select="rerun", selection_mode="points",
                            key="qa:cm", config={"displayModeBar": False})
    cell = pr.clicked_cell(event, cm)
    if cell is not None:
        picked = pr.cell_rows(rows, cm, cell, pr.predictions(ws, dataset, model))
        st.markdown(f"**{len(picked):,} rows labelled {safe_text(cell[0], 30)}, predicted "
                    f"{safe_text(cell[1], 30)}** (most confident first)")
        render_grid(ws.dataset(dataset), picked, key="qa:cm_grid",
                    scores=picked["model_confidence"], actions=[("Open", state.open_detail)])
    hide = qw.hidden_rows(ws, dataset)
    queue = [qw.Issue(i, lab, p, float(c), ("model",)) for i, lab, p, c in
             zip(found.ids, found.labels, found.predicted, found.confidence) if i not in hide]
    st.markdown(f"**{len(queue):,} confident mistakes to review** (accept the model's class, or mark the "
                "label correct)")
    batch = queue[:MISTAKES_SHOWN]
    if batch:
        ids = [b.id for b in batch]
        qw.render_issue_batch(ws, dataset, rows, batch, qd.label_choices(ws, dataset),
                              qd.nearest_of(ws, dataset, embedding, ids) if embedding else (), model=model,
                              evidence=pr.evidence_of(ws, dataset, model, ids), what="predicted",
                              prefix="mm")
    else:
        st.success("No confident model mistake left to review.")
