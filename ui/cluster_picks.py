"""The Cluster map page's summary table and picks: a row of the summary table or the
"Select cluster" box replaces the session selection (``ui.state``) with the cluster's rows
(:func:`render_picks`); a lasso/box/click on the map changes nothing by itself: it is
offered with "Replace selection", "Add to selection" and "Intersect with selection"
buttons (:func:`render_lasso_offer`). A box or lasso catches every shown row inside it,
drawn or not (a large map draws a sample: :func:`map_selection`); a click, the points
clicked. Each widget's value is acted
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

from core.clusters import (
    Clustering,
    regions_from_event,
    rows_in_regions,
    selection_to_ids,
)
from core.errors import CatalogError, InputError
from core.labels import relabel_rows, undo_relabel
from core.rows import RowsView
from core.workspace import Workspace
from ui import state
from ui.cluster_map import plain
from ui.messages import flash, show_error

_PICKED, _SEEN, _EDITS, _LASSO = "clu:_picked", "clu:_seen", "clu:_edits", "clu:_lasso"


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
    """Offer the rows of a new map selection (``event`` of the chart drawn with
    ``trace_ids``) with the three selection buttons, then draw the "Clusters" summary table and the "Select cluster" box
    and pick the cluster newly chosen in either. ``recipe`` (with ``dataset``,
    ``embedding``, ``k`` and ``seed``) is stored with the picked rows."""
    summary_key, box_key = pick_keys(dataset, recipe["embedding"], recipe["k"], recipe["seed"])
    try:
        lasso_ids, lasso_sig = map_selection(event, trace_ids, points)
    except CatalogError as err:
        show_error(err)
        lasso_ids, lasso_sig = [], None
    if changed(dataset, "map", lasso_sig):  # a new lasso is only offered: see render_lasso_offer
        regions = lasso_sig.get("regions") if isinstance(lasso_sig, dict) else None
        offer_lasso(dataset, lasso_ids, {"method": "lasso", **recipe, "colour_by": colour_by,
                                         **({"regions": regions} if regions else {})})
    render_lasso_offer(dataset)

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


# ---- lasso: offered, applied only by an explicit button ------------------------------------
LASSO_MODES = {"replace": "Replace selection", "add": "Add to selection",
               "intersect": "Intersect with selection"}


def offer_lasso(dataset: str, ids: Sequence[str], recipe: dict) -> None:
    """Remember the rows of a new lasso/box selection (none: drop the offer). The session
    selection is not touched: :func:`render_lasso_offer` asks how to combine them."""
    offers = st.session_state.setdefault(_LASSO, {})
    if ids:
        offers[dataset] = {"ids": list(dict.fromkeys(ids)), "recipe": recipe}
    else:
        offers.pop(dataset, None)


def lasso_offer(dataset: str) -> tuple[list[str], dict]:
    """(ids caught by the last lasso not yet applied, its recipe) — ([], {}) if none."""
    entry = st.session_state.get(_LASSO, {}).get(dataset)
    return (list(entry["ids"]), dict(entry["recipe"])) if entry else ([], {})


def combine(current: Sequence[str], caught: Sequence[str], mode: str) -> list[str]:
    """The selection after applying ``caught`` to ``current`` with ``mode``: replace →
    ``caught``; add → ``current`` then the new ones of ``caught``; intersect → the rows of
    ``current`` (in its order) that ``caught`` has. Raises InputError for another mode."""
    if mode == "replace":
        return list(dict.fromkeys(caught))
    if mode == "add":
        return list(dict.fromkeys([*current, *caught]))
    if mode == "intersect":
        keep = set(caught)
        return [rid for rid in current if rid in keep]
    raise InputError(f"unknown selection mode {mode!r}; choose one of {', '.join(LASSO_MODES)}")


def apply_lasso(dataset: str, mode: str) -> None:
    """Callback of the lasso buttons: combine the offered rows with the selection (``mode``
    replace | add | intersect), show the result as the picked rows, drop the offer."""
    caught, recipe = lasso_offer(dataset)
    before = state.selection(dataset)
    after = combine(before, caught, mode)
    state.replace_selection(dataset, after)
    st.session_state.setdefault(_PICKED, {})[dataset] = {
        "ids": after, "recipe": {**recipe, "combine": mode}}
    st.session_state.get(_LASSO, {}).pop(dataset, None)
    flash(f"{LASSO_MODES[mode]}: {len(caught):,} lassoed, {len(before):,} selected before, "
          f"{len(after):,} selected now.", "info")


def render_lasso_offer(dataset: str) -> None:
    """After a lasso/box select: how many points it caught, the selection's size, and the
    three buttons that change the selection ("Replace selection", "Add to selection",
    "Intersect with selection"; keys ``clu:sel:<mode>``). Nothing changes until one is
    pressed."""
    caught, _ = lasso_offer(dataset)
    if not caught:
        return
    current = state.selection(dataset)
    both = len(set(caught) & set(current))
    with st.container(border=True):
        st.markdown(f"**The lasso caught {len(caught):,} points** · {len(current):,} rows "
                    f"selected now ({both:,} of them caught). The selection changes only when "
                    "you press a button:")
        for col, (mode, label) in zip(st.columns(len(LASSO_MODES)), LASSO_MODES.items()):
            col.button(label, key=f"clu:sel:{mode}", on_click=apply_lasso, args=(dataset, mode),
                       type="primary" if mode == "replace" else "secondary", width="stretch")


def changed(dataset: str, widget: str, value: Any) -> bool:
    """True once per new ``value`` of ``widget`` (compared as JSON); remembers it."""
    seen = st.session_state.setdefault(_SEEN, {}).setdefault(dataset, {})
    sig = json.dumps(value, sort_keys=True, default=str)
    if seen.get(widget) == sig:
        return False
    seen[widget] = sig
    return True


def pick(dataset: str, ids: Sequence[str], recipe: dict) -> None:
    """Replace the selection with ``ids`` (a cluster chosen) and remember them (and how)
    for the grid; a lasso still offered is dropped."""
    state.replace_selection(dataset, ids)
    st.session_state.get(_LASSO, {}).pop(dataset, None)
    st.session_state.setdefault(_PICKED, {})[dataset] = {"ids": list(ids), "recipe": recipe}


def picked(dataset: str) -> tuple[list[str], dict]:
    """(ids picked last on this page, their recipe) — ([], {}) before any pick."""
    entry = st.session_state.get(_PICKED, {}).get(dataset)
    return (list(entry["ids"]), dict(entry["recipe"])) if entry else ([], {})


def map_selection(event: Any, trace_ids: Sequence[Sequence[str]],
                  rows: pd.DataFrame | None = None) -> tuple[list[str], Any]:
    """(ids, a plain-JSON signature of the selection) of a plotly selection event.

    With ``rows`` (the shown rows: columns id, x, y) and a box or lasso in the event: every
    row inside the regions, drawn or not, in ``rows`` order (signature ``{"regions":
    [...]}``). Otherwise the points the event lists (``trace_ids``: ids per trace, in
    plotted order; signature: the points)."""
    regions = regions_from_event(event) if rows is not None else ()
    if regions:
        inside = rows_in_regions(rows[["x", "y"]].to_numpy(), regions)
        return rows["id"].to_numpy()[inside].tolist(), {"regions": [r.to_json() for r in regions]}
    selection = event.get("selection", {}) if isinstance(event, dict) else {}
    points = [{"curve_number": p.get("curve_number"), "point_index": p.get("point_index",
               p.get("point_number"))} for p in selection.get("points", []) if isinstance(p, dict)]
    return selection_to_ids(event, trace_ids), points


def rows_of(rows: pd.DataFrame | RowsView, ids: Sequence[str]) -> pd.DataFrame:
    """The rows of ``ids`` in that order (unknown ids dropped): one query of those rows
    for a :class:`core.rows.RowsView`."""
    if isinstance(rows, RowsView):
        return rows.rows_of([str(i) for i in ids])
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
