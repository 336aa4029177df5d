"""The Cluster map page's summary table and picks: a lasso/box/click on the map, a row of
the summary table or the "Select cluster" box replaces the session selection
(``ui.state``) with the picked rows (:func:`render_picks`). Each widget's value is acted
on once, when it changes (its last value is kept under ``clu:_seen``), so checkboxes
un-ticked in the grid stay un-ticked on later reruns. The table and the box are keyed per
clustering (:func:`pick_keys`): a cluster chosen on one dataset is not carried over to
another. Also the relabel + undo action (its result is flashed: :func:`ui.messages.flash`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from core.clusters import Clustering, selection_to_ids
from core.errors import CatalogError
from core.labels import relabel_rows, undo_relabel
from core.workspace import Workspace
from ui import state
from ui.cluster_map import plain
from ui.messages import flash, show_error

_PICKED, _SEEN, _EDITS = "clu:_picked", "clu:_seen", "clu:_edits"


# ---- summary table ---------------------------------------------------------------------
def summary_table(clu: Clustering, points: pd.DataFrame) -> pd.DataFrame:
    """One row per cluster: cluster, rows, shown (passing the filter), majority label,
    purity, top labels, top terms (only when any cluster has terms)."""
    shown = points["cluster"].value_counts()
    table = pd.DataFrame({
        "cluster": [s.cluster for s in clu.summaries],
        "rows": [s.size for s in clu.summaries],
        "shown": [int(shown.get(s.cluster, 0)) for s in clu.summaries],
        "majority label": [s.majority_label or "" for s in clu.summaries],
        "purity": [round(s.purity, 3) if s.purity is not None else None for s in clu.summaries],
        "top labels": [", ".join(f"{lab} ({n})" for lab, n in s.label_counts[:3]) for s in clu.summaries],
    })
    if any(s.top_terms for s in clu.summaries):
        table["top terms"] = [", ".join(s.top_terms) for s in clu.summaries]
    return table


def cluster_label(clu: Clustering, c: int | None) -> str:
    if c is None:
        return "—"
    s = clu.summaries[c]
    major = f", mostly {plain(s.majority_label, 30)}" if s.majority_label else ""
    return f"Cluster {c} ({s.size:,} rows{major})"


def cluster_ids(points: pd.DataFrame, c: int) -> list[str]:
    """Ids of cluster ``c`` among the shown points (the filter applies)."""
    return points.loc[points["cluster"] == c, "id"].tolist()


def table_choice(event: Any, table: pd.DataFrame) -> int | None:
    """The cluster of the row chosen in the summary table's selection event, or None."""
    selection = event.get("selection", {}) if isinstance(event, dict) else {}
    rows = selection.get("rows", []) if isinstance(selection, dict) else []
    if not rows or not 0 <= int(rows[0]) < len(table):
        return None
    return int(table["cluster"].iloc[int(rows[0])])


# ---- picks: selection replaced once per widget change -----------------------------------
def pick_keys(dataset: str, embedding: str, k: int, seed: int) -> tuple[str, str]:
    """Widget keys of the summary table and the "Select cluster" box of one clustering
    (dataset, embedding, k, seed): a cluster number means nothing in another clustering,
    and a key shared across datasets carried the choice made on one dataset over to the
    next, where it read as a new pick and replaced that dataset's selection."""
    context = json.dumps([dataset, embedding, int(k), int(seed)])
    return f"clu:summary:{context}", f"clu:pick:{context}"


def render_picks(dataset: str, clu: Clustering, points: pd.DataFrame, event: Any,
                 trace_ids: Sequence[Sequence[str]], recipe: dict, colour_by: str) -> None:
    """Pick the rows of a new map selection (``event`` of the chart drawn with
    ``trace_ids``), then draw the "Clusters" summary table and the "Select cluster" box
    and pick the cluster newly chosen in either. ``recipe`` (with ``dataset``,
    ``embedding``, ``k`` and ``seed``) is stored with the picked rows."""
    summary_key, box_key = pick_keys(dataset, recipe["embedding"], recipe["k"], recipe["seed"])
    try:
        lasso_ids, lasso_sig = map_selection(event, trace_ids)
    except CatalogError as err:
        show_error(err)
        lasso_ids, lasso_sig = [], None
    if changed(dataset, "map", lasso_sig) and lasso_ids:
        pick(dataset, lasso_ids, {"method": "lasso", **recipe, "colour_by": colour_by})
        st.session_state[box_key] = None  # the box no longer names the picked rows

    st.subheader("Clusters")
    table = summary_table(clu, points)
    chosen = st.dataframe(table, on_select="rerun", selection_mode="single-row", key=summary_key,
                          hide_index=True)
    from_table = table_choice(chosen, table)
    if changed(dataset, summary_key, from_table) and from_table is not None:
        pick(dataset, cluster_ids(points, from_table), {"method": "cluster", "cluster": from_table, **recipe})
        st.session_state[box_key] = None
    if st.session_state.get(box_key) not in [None, *range(clu.k)]:
        st.session_state[box_key] = None
    from_box = st.selectbox("Select cluster", [None, *range(clu.k)], key=box_key,
                            format_func=lambda c: cluster_label(clu, c))
    if changed(dataset, box_key, from_box) and from_box is not None:
        pick(dataset, cluster_ids(points, from_box), {"method": "cluster", "cluster": from_box, **recipe})


def changed(dataset: str, widget: str, value: Any) -> bool:
    """True once per new ``value`` of ``widget`` (compared as JSON); remembers it."""
    seen = st.session_state.setdefault(_SEEN, {}).setdefault(dataset, {})
    sig = json.dumps(value, sort_keys=True, default=str)
    if seen.get(widget) == sig:
        return False
    seen[widget] = sig
    return True


def pick(dataset: str, ids: Sequence[str], recipe: dict) -> None:
    """Replace the selection with ``ids`` and remember them (and how) for the grid."""
    state.clear_selection(dataset)
    state.select(dataset, ids)
    st.session_state.setdefault(_PICKED, {})[dataset] = {"ids": list(ids), "recipe": recipe}


def picked(dataset: str) -> tuple[list[str], dict]:
    """(ids picked last on this page, their recipe) — ([], {}) before any pick."""
    entry = st.session_state.get(_PICKED, {}).get(dataset)
    return (list(entry["ids"]), dict(entry["recipe"])) if entry else ([], {})


def map_selection(event: Any, trace_ids: Sequence[Sequence[str]]) -> tuple[list[str], Any]:
    """(ids, the event's points as plain JSON) of a plotly selection event."""
    selection = event.get("selection", {}) if isinstance(event, dict) else {}
    points = [{"curve_number": p.get("curve_number"), "point_index": p.get("point_index",
               p.get("point_number"))} for p in selection.get("points", []) if isinstance(p, dict)]
    return selection_to_ids(event, trace_ids), points


def rows_of(rows: pd.DataFrame, ids: Sequence[str]) -> pd.DataFrame:
    """The rows of ``ids`` in that order (unknown ids dropped)."""
    pos = pd.Index(rows["id"].astype(str)).get_indexer(list(ids))
    return rows.iloc[pos[pos >= 0]]


def render_relabel(ws: Workspace, dataset: str) -> None:
    """Text input + button relabelling the selected rows, with an undo of the last edit."""
    chosen = state.selection(dataset)
    left, mid, right = st.columns([3, 1, 1], vertical_alignment="bottom")
    new_label = left.text_input("New label for the selected rows", key="clu:new_label")
    if mid.button("Relabel selected", key="clu:relabel", disabled=not chosen):
        try:
            edits = relabel_rows(ws, dataset, chosen, new_label)
        except CatalogError as err:
            show_error(err)
        else:
            st.session_state[_EDITS] = {"dataset": dataset, "ids": edits}
            flash(f"{len(edits):,} of {len(chosen):,} rows relabelled '{plain(new_label.strip(), 40)}'"
                  f" ({len(chosen) - len(edits):,} already had it).")
            st.rerun()  # the map, table and grid above were drawn with the old labels
    last = st.session_state.get(_EDITS)
    if (last and last["dataset"] == dataset and last["ids"]
            and right.button(f"Undo ({len(last['ids']):,} rows)", key="clu:undo")):
        reverted = undo_relabel(ws, dataset, last["ids"])
        st.session_state.pop(_EDITS)
        flash(f"Undone: {reverted:,} label edits reverted.")
        st.rerun()
