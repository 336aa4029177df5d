"""Row detail: large image or full text, all metadata, tags and label history."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.errors import MediaError
from core.media import open_image
from core.workspace import Workspace
from ui import state
from ui.grid import safe_text
from ui.messages import show


def render_detail(ws: Workspace, dataset: str, rows: pd.DataFrame, rid: str) -> None:
    """Draw the detail panel of row ``rid`` (closes itself if the row is gone)."""
    match = rows.loc[rows["id"].astype(str) == rid]
    if match.empty:
        state.open_detail(None)
        return
    row = match.iloc[0]
    ds = ws.dataset(dataset)
    with st.container(border=True):
        head, close = st.columns([6, 1])
        head.subheader(f"Row {safe_text(rid)}")
        close.button("Close", key="detail:close", on_click=state.open_detail, args=(None,))
        left, right = st.columns([3, 2])
        with left:
            if row["modality"] == "image" and isinstance(row.get("image"), str):
                try:
                    st.image(open_image(ds.resolve_media(row["image"])), width=360)
                except MediaError as err:
                    show(str(err), "warning")
            if isinstance(row.get("text"), str):
                st.text(row["text"])
        with right:
            fields = {c: _display(v) for c, v in row.items()}
            st.table(pd.DataFrame({"field": list(fields), "value": list(fields.values())}))
            tags = ws.store.tags_by_row(dataset).get(rid, [])
            st.markdown("**Tags:** " + (", ".join(f"`{safe_text(t)}`" for t in tags) or "none"))
            history = ws.store.label_history(dataset, rid)
            if history:
                st.markdown("**Label history**")
                st.table(pd.DataFrame([
                    {"when": h.created, "from": h.old_label or "", "to": h.new_label or "",
                     "by": h.source, "undone": h.reverted or ""} for h in history
                ]))


def _display(value: object) -> str:
    """A cell as plain text ('' for null)."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)
