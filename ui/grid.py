"""The row grid: a dense grid of thumbnails (or a table for text rows) drawn by a browser
component (``ui/components/tile_grid.js``), with sort, size, layout and page controls.

Selection happens in the browser: a click, shift-click (range) or ctrl-click changes the
tiles at once, and the browser sends the page's selection to Python in ONE update after
the clicks settle; that update reruns only the grid's fragment, not the page. Per-row
actions (e.g. "Open", "Anchor") are buttons shown on hover.

All user text reaches the browser as JSON and is set with ``textContent``, so metadata
such as ``<script>…</script>`` is displayed as text, never interpreted. :func:`safe_text`
and :func:`safe_code` do the same for st.markdown.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd
import streamlit as st

from core.errors import MediaError
from core.media import thumbnail_path
from core.rows import RowsView, ViewSummary, is_numeric_type
from core.workspace import Dataset
from ui import state
from ui.loaders import file_stamp

PAGE_SIZES = (50, 100, 200, 500)
TILE_SIZES = {"S": 64, "M": 84, "L": 160}
DEFAULT_TILE_SIZE = "M"
THUMB_PX = 192  # stored thumbnail size: sharp at the largest tile on a 1.2x screen
UNSORTED = "(as listed)"
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$&])")
_ASSETS = Path(__file__).parent / "components"
_HIDDEN = ("id", "modality", "text", "image", "label", "ingest_issue")
_NUMERIC_LIMIT = 4
_RERUN_APP = "grid:rerun_app"


def _plain(value: object, limit: int | None) -> str:
    text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    text = " ".join(text.split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def safe_text(value: object, limit: int | None = None) -> str:
    """``value`` as text for st.markdown/caption: markdown and HTML characters escaped."""
    return _MD_SPECIAL.sub(r"\\\1", _plain(value, limit))


def safe_code(value: object, limit: int | None = None) -> str:
    """``value`` as an inline code span for st.markdown/caption, shown verbatim.

    Backslash escapes are not processed inside code spans (``safe_text`` inside
    backticks would show its backslashes), so backticks are replaced by ``'`` instead.
    """
    text = _plain(value, limit).replace("`", "'")
    return f"`{text}`"


@st.cache_data(show_spinner=False, max_entries=20_000)
def _thumb(src: str, thumbs_dir: str, stamp: str) -> str | None:
    """Thumbnail path of ``src``; ``stamp`` (mtime_ns-size of ``src``) is only a cache key
    part, so a replaced image (or one fixed after being unreadable) gets a new thumbnail."""
    try:
        return str(thumbnail_path(Path(src), Path(thumbs_dir), size=THUMB_PX))
    except MediaError:
        return None


@st.cache_data(show_spinner=False, max_entries=20_000)
def _thumb_uri(thumb: str) -> str:
    """``data:`` URI of a thumbnail file (thumbnails are content-addressed: never stale)."""
    return "data:image/jpeg;base64," + base64.b64encode(Path(thumb).read_bytes()).decode("ascii")


def card_image(ds: Dataset, image_rel: str) -> str | None:
    """Path of a cached thumbnail for a row's image, or None if unreadable.

    One ``stat`` of the image per call: its mtime and size key the cached thumbnail."""
    try:
        src = ds.resolve_media(image_rel)
    except MediaError:
        return None
    try:
        stamp = file_stamp(src)
    except OSError:  # e.g. a path through a regular file: thumbnail_path reports it
        stamp = "unreadable"
    return _thumb(str(src), str(ds.thumbs_dir), stamp)


_TILE_GRID = st.components.v2.component(
    "catalog_tile_grid",
    js=(_ASSETS / "tile_grid.js").read_text(encoding="utf-8"),
    css=(_ASSETS / "tile_grid.css").read_text(encoding="utf-8"),
)


def score_columns(view: pd.DataFrame | RowsView) -> list[str]:
    """Numeric columns worth showing on hover and in the table (scores first)."""
    if isinstance(view, RowsView):
        numeric = [c for c, t in _summary(view).schema.items() if c not in _HIDDEN and is_numeric_type(t)]
    else:
        numeric = [c for c in view.columns if c not in _HIDDEN and pd.api.types.is_numeric_dtype(view[c])
                   and not pd.api.types.is_bool_dtype(view[c])]
    scores = [c for c in numeric if "score" in c or c in ("similarity", "uniqueness")]
    return (scores + [c for c in numeric if c not in scores])[:_NUMERIC_LIMIT]


@st.cache_data(show_spinner=False, max_entries=64)
def _cached_summary(state_key: str, dataset: str, flt: str, _view: RowsView) -> ViewSummary:
    return _view.summary()


@st.cache_data(show_spinner=False, max_entries=64)
def _cached_page(state_key: str, dataset: str, flt: str, order_by: str | None, descending: bool,
                 offset: int, limit: int, _view: RowsView) -> pd.DataFrame:
    return _view.page(order_by=order_by, descending=descending, offset=offset, limit=limit)


def _summary(view: RowsView) -> ViewSummary:
    """The view's count, schema and modalities: one query per view object, and kept across
    reruns under the view's ``state_key`` (a rerun that changes nothing asks nothing)."""
    if view.cacheable:
        return _cached_summary(view.state_key, view.dataset, json.dumps(view.flt.to_json()), view)
    return view.summary()


def _view_page(view: RowsView, order_by: str | None, descending: bool, offset: int,
               limit: int) -> pd.DataFrame:
    if view.cacheable:
        return _cached_page(view.state_key, view.dataset, json.dumps(view.flt.to_json()),
                            order_by, descending, offset, limit, view)
    return view.page(order_by=order_by, descending=descending, offset=offset, limit=limit)


def view_count(view: RowsView) -> int:
    """Rows in ``view`` (asked once per view, kept across reruns like the grid's pages)."""
    return _summary(view).total


def _total(view: pd.DataFrame | RowsView) -> int:
    return _summary(view).total if isinstance(view, RowsView) else len(view)


def _columns(view: pd.DataFrame | RowsView) -> list[str]:
    return list(_summary(view).schema) if isinstance(view, RowsView) else list(view.columns)


def _has_images(view: pd.DataFrame | RowsView) -> bool:
    if isinstance(view, RowsView):
        return _summary(view).modalities.get("image", 0) > 0
    return bool((view["modality"] == "image").any())


def _number(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _payload_rows(ds: Dataset, page: pd.DataFrame, scores: Mapping[str, float] | None,
                  numeric: list[str], with_images: bool) -> list[dict]:
    out = []
    labels = page["label"] if "label" in page.columns else None
    texts = page["text"] if "text" in page.columns else None
    images = page["image"] if "image" in page.columns else None
    matched = page["matched_by"] if "matched_by" in page.columns else None  # text search: what matched
    for pos, rid in enumerate(page["id"].astype(str)):
        label = labels.iloc[pos] if labels is not None else None
        label = label if isinstance(label, str) else None
        text = _plain(texts.iloc[pos], 300) if texts is not None else ""
        cells = {c: _number(page[c].iloc[pos]) for c in numeric}
        score = scores.get(rid) if scores is not None else None
        how = matched.iloc[pos] if matched is not None and isinstance(matched.iloc[pos], str) else ""
        hover = [rid] + ([f"label {label}"] if label else [])
        hover += ([f"score {score:.3f}"] if score is not None else [])
        hover += [f"matched by {how}"] if how else []
        hover += [f"{c} {v}" for c, v in cells.items() if v]
        row = {"id": rid, "label": label, "text": text, "cells": cells, "hover": "\n".join(hover),
               "badge": f"{score:.3f}" if score is not None else None, "tag": how or None,
               "src": None, "broken": False}
        image = images.iloc[pos] if images is not None else None
        if with_images and page["modality"].iloc[pos] == "image" and isinstance(image, str):
            thumb = card_image(ds, image)
            row["src"] = _thumb_uri(thumb) if thumb else None
            row["broken"] = thumb is None
        out.append(row)
    return out


def _sorted(view: pd.DataFrame, by: str, descending: bool,
            scores: Mapping[str, float] | None) -> pd.DataFrame:
    if by == UNSORTED:
        return view
    if by == "score" and scores is not None:
        keys = view["id"].astype(str).map(scores)
        order = keys.sort_values(ascending=not descending, na_position="last", kind="stable").index
        return view.loc[order]
    return view.sort_values(by, ascending=not descending, na_position="last", kind="stable")


def _on_selection(dataset: str, comp_key: str) -> None:
    value = (st.session_state.get(comp_key) or {}).get("selection") or {}
    if value.get("token") != state.selection_version(dataset):
        return  # sent for a selection Python has replaced since (e.g. "Clear")
    state.apply_page_selection(dataset, value.get("page") or [], value.get("selected") or [])


def _on_action(comp_key: str, callbacks: Mapping[str, Callable[[str], None]]) -> None:
    value = (st.session_state.get(comp_key) or {}).get("action") or {}
    callback = callbacks.get(str(value.get("name")))
    if callback is not None and value.get("id") is not None:
        callback(str(value["id"]))
        st.session_state[_RERUN_APP] = True  # an action changes what the page shows


def _action_name(label: str) -> str:
    return "open" if label.lower() == "open" else re.sub(r"[^a-z0-9]+", "-", label.lower())


def grid_controls(view: pd.DataFrame | RowsView, key: str, *, scores: bool, text_rows: bool) -> dict:
    """Draw the layout, size, sort and page controls; return their values."""
    sortable = [UNSORTED] + (["score"] if scores else []) + score_columns(view) + [
        c for c in ("label", "id") if c in _columns(view)]
    cols = st.columns([1.3, 1.2, 2, 1, 1.2, 1.3], vertical_alignment="bottom")
    layout = cols[0].segmented_control("View", ["Tiles", "Table"], key=f"{key}:layout",
                                       default="Table" if text_rows else "Tiles")
    size = cols[1].segmented_control("Size", list(TILE_SIZES), key=f"{key}:size",
                                     default=DEFAULT_TILE_SIZE)
    by = cols[2].selectbox("Sort by", sortable, key=f"{key}:sort")
    descending = cols[3].toggle("Desc", key=f"{key}:desc", value=True,
                                disabled=by == UNSORTED)
    page_size = cols[4].selectbox("Per page", PAGE_SIZES, index=1, key=f"{key}:page_size")
    pages = max(1, math.ceil(_total(view) / page_size))
    page = cols[5].number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, value=1,
                                step=1, key=f"{key}:page")
    return {"layout": layout or "Tiles", "size": TILE_SIZES[size or DEFAULT_TILE_SIZE], "by": by,
            "descending": bool(descending), "page_size": int(page_size), "page": int(page)}


def _page_rows(ds: Dataset, view: pd.DataFrame | RowsView, key: str, scores: Mapping[str, float] | None,
               ctl: Mapping[str, object]) -> tuple[list[dict], list[str]]:
    """The rows (browser payload) of the page ``ctl`` asks for, and the numeric columns.

    Kept in session state for the fragment's reruns: those get the very ``view`` and
    ``scores`` objects of the full run that drew the grid, so a selection change (the
    common rerun) sends the page it already built instead of looking up 100 thumbnails
    again. A full run passes new objects, so anything it changed is rebuilt."""
    memo_key = f"{key}:page_rows"
    wanted = (ds.name, ctl["layout"], ctl["by"], ctl["descending"], ctl["page"], ctl["page_size"])
    memo = st.session_state.get(memo_key)
    if (memo is not None and memo["key"] == wanted and memo["view"] is view
            and memo["scores"] is scores):
        return memo["rows"], memo["numeric"]
    start = (ctl["page"] - 1) * ctl["page_size"]
    if isinstance(view, RowsView):  # the database sorts and cuts the page
        page = _view_page(view, None if ctl["by"] == UNSORTED else ctl["by"], ctl["descending"],
                          start, ctl["page_size"])
    else:
        ordered = _sorted(view, ctl["by"], ctl["descending"], scores)
        page = ordered.iloc[start : start + ctl["page_size"]]
    numeric = score_columns(view)
    rows = _payload_rows(ds, page, scores, numeric, with_images=ctl["layout"] == "Tiles")
    st.session_state[memo_key] = {"key": wanted, "view": view, "scores": scores, "rows": rows,
                                  "numeric": numeric}
    return rows, numeric


@st.fragment
def _grid_fragment(ds: Dataset, view: pd.DataFrame | RowsView, key: str, scores: Mapping[str, float] | None,
                   actions: Sequence[tuple[str, Callable[[str], None]]], paginate_rows: bool) -> None:
    if st.session_state.pop(_RERUN_APP, False):
        st.rerun(scope="app")
    text_rows = not _has_images(view)
    if paginate_rows:
        ctl = grid_controls(view, key, scores=scores is not None, text_rows=text_rows)
    else:
        ctl = {"layout": "Table" if text_rows else "Tiles", "size": TILE_SIZES[DEFAULT_TILE_SIZE],
               "by": UNSORTED, "descending": True, "page_size": max(_total(view), 1), "page": 1}
    rows, numeric = _page_rows(ds, view, key, scores, ctl)
    callbacks = {_action_name(label): cb for label, cb in actions}
    comp_key = f"{key}:tiles"
    token = state.selection_version(ds.name)
    page_ids = {row["id"] for row in rows}
    chosen = state.selection(ds.name)
    payload = {
        "rows": rows,
        "selected": [rid for rid in chosen if rid in page_ids], "total_selected": len(chosen),
        "token": token, "layout": ctl["layout"].lower(), "size": ctl["size"],
        "page_key": f"{key}|{ctl['by']}|{ctl['descending']}|{ctl['page']}|{ctl['page_size']}",
        "render_id": f"{_total(view)}|{rows[0]['id'] if rows else ''}",
        "columns": numeric, "actions": [{"name": n, "label": label} for label, n in
                                        ((lbl, _action_name(lbl)) for lbl, _ in actions)],
    }
    _TILE_GRID(key=comp_key, data=payload, default={"selection": None},
               on_selection_change=lambda: _on_selection(ds.name, comp_key),
               on_action_change=lambda: _on_action(comp_key, callbacks))


def render_grid(
    ds: Dataset,
    view: pd.DataFrame | RowsView,
    *,
    key: str,
    scores: Mapping[str, float] | None = None,
    actions: Sequence[tuple[str, Callable[[str], None]]] = (),
    paginate_rows: bool = True,
) -> None:
    """Draw ``view`` (rows with ``id``, ``modality``…: a DataFrame, or a
    :class:`core.rows.RowsView` the database pages and sorts, for datasets of any size) as a
    tile grid or table bound to the selection of ``ds``; ``scores`` (row id → score, with a
    DataFrame only) adds a badge and a sort key.

    ``actions`` are (button label, callback(row_id)) pairs shown on each tile on hover; an
    action labelled "Open" also runs on double-click. The grid runs as a fragment: its
    controls and selection updates rerun only the grid.
    """
    if _total(view) == 0:
        st.info("No rows to show.")
        return
    _grid_fragment(ds, view, key, scores, tuple(actions), paginate_rows)
