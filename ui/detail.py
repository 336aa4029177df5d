"""Row detail in a dialog (always on screen, wherever the row was in the grid): large
image or full text, every field, tags, label history, previous / next through the rows
the page shows, and "Find similar"."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
import streamlit as st

from core.errors import MediaError
from core.media import open_image
from core.rows import RowsView
from core.workspace import Workspace
from ui import state
from ui.grid import safe_code, view_count
from ui.messages import show

SIMILARITY_PAGE = "pages/similarity.py"


def render_detail(ws: Workspace, dataset: str, rows: pd.DataFrame | RowsView, rid: str | None = None,
                  *, order: Sequence[str] | None = None) -> None:
    """Open the detail dialog if a row was just opened (:func:`ui.state.open_detail`).

    ``rows``: a DataFrame, or a :class:`core.rows.RowsView` (the row and its neighbours are
    then looked up by query). ``order``: the row ids the page shows, in order (previous /
    next walk them; default: ``rows``' order). ``rid`` is accepted for older callers; the
    open row is in ui.state."""
    if not state.take_detail_request():
        return
    if isinstance(rows, RowsView):
        _row_dialog(ws, dataset, _ViewWalk(rows))
        return
    ids = [str(i) for i in (order if order is not None else rows["id"].astype(str).tolist())]
    _row_dialog(ws, dataset, _ListWalk(rows, ids))


class _ListWalk:
    """Rows of a DataFrame walked in ``order``."""

    def __init__(self, rows: pd.DataFrame, order: list[str]) -> None:
        self.rows, self.order = rows, order

    def row(self, rid: str) -> pd.Series | None:
        match = self.rows.loc[self.rows["id"].astype(str) == rid]
        return match.iloc[0] if len(match) else None

    def position(self, rid: str) -> int | None:
        return self.order.index(rid) if rid in self.order else None

    def total(self) -> int:
        return len(self.order)

    def id_at(self, pos: int) -> str | None:
        return self.order[pos] if 0 <= pos < len(self.order) else None


class _ViewWalk:
    """Rows of a :class:`RowsView`, each step one query."""

    def __init__(self, view: RowsView) -> None:
        self.view = view

    def row(self, rid: str) -> pd.Series | None:
        return self.view.row(rid)

    def position(self, rid: str) -> int | None:
        return self.view.position_of(rid)

    def total(self) -> int:
        return view_count(self.view)

    def id_at(self, pos: int) -> str | None:
        return self.view.id_at(pos)


@st.dialog("Row detail", width="large")
def _row_dialog(ws: Workspace, dataset: str, walk: _ListWalk | _ViewWalk) -> None:
    rid = state.detail_row()
    row = walk.row(rid) if rid is not None else None
    if row is None:
        show("This row is no longer in the dataset.", "warning")
        return
    pos = walk.position(rid)
    total = walk.total()
    nav = st.columns([1, 1, 2, 3], vertical_alignment="center")
    if nav[0].button("Previous", key="detail:prev", icon=":material/chevron_left:",
                     disabled=not pos):
        _step(walk, pos - 1)
    if nav[1].button("Next", key="detail:next", icon=":material/chevron_right:",
                     disabled=pos is None or pos + 1 >= total):
        _step(walk, pos + 1)
    if nav[2].button("Find similar", key="detail:similar", icon=":material/join_inner:"):
        state.clear_anchors(dataset)
        state.add_anchors(dataset, [rid])
        st.switch_page(SIMILARITY_PAGE)
    nav[3].markdown(safe_code(rid) + (f" · {pos + 1:,} of {total:,}" if pos is not None else ""))
    ds = ws.dataset(dataset)
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
        st.dataframe(pd.DataFrame({"field": list(fields), "value": list(fields.values())}),
                     hide_index=True, key="detail:fields")
        tags = ws.store.tags_by_row(dataset).get(rid, [])
        st.markdown("**Tags:** " + (", ".join(safe_code(t) for t in tags) or "none"))
        history = ws.store.label_history(dataset, rid)
        if history:
            st.markdown("**Label history**")
            st.dataframe(pd.DataFrame([
                {"when": h.created, "from": h.old_label or "", "to": h.new_label or "",
                 "by": h.source, "undone": h.reverted or ""} for h in history
            ]), hide_index=True, key="detail:history")


def _step(walk: _ListWalk | _ViewWalk, pos: int) -> None:
    rid = walk.id_at(pos)
    if rid is not None:
        st.session_state["detail_row"] = rid
    st.rerun(scope="fragment")


def _display(value: object) -> str:
    """A cell as plain text ('' for null)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)
