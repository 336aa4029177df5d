"""Streamlit glue of the search pages: anchor strip, uploaded anchors, cached searches,
the score histogram with its threshold line, and the ranked result grid.

Searches run through ``st.cache_data`` wrappers keyed by plain values (dataset,
embedding file stamp, anchors, method, weights, filter hash, k, threshold); the big
arguments (the index, uploaded vectors, the ``within`` ids) start with ``_`` and are
not hashed. A rerun with the same inputs never searches again.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core._shared import ids_hash
from core.encoders import reads_images
from core.errors import CatalogError
from core.index import Subset
from core.media import open_image_bytes
from core.rows import RowsView
from core.search import SearchResult, find_similar
from core.workspace import Dataset, Workspace
from ui import loaders, state
from ui.grid import card_image, render_grid, safe_code, safe_text
from ui.loaders import embedding_stamp
from ui.selection_bar import render_selection_bar

DEFAULT_POOL = 2000
DEFAULT_K = 50
STRIP_MAX = 12  # anchors (and negatives) drawn per strip
THUMB_PX = 96  # anchor thumbnail width
UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff"]
_ID_SPLIT = re.compile(r"[\n,]+")


@dataclass(frozen=True, eq=False)
class UploadedAnchor:
    """An uploaded image encoded as an anchor: ``vector`` (d,) float32."""

    name: str
    digest: str  # sha256 of the file bytes (first 16 hex digits)
    data: bytes = field(repr=False)
    vector: np.ndarray = field(repr=False)


def encoder_spec(ws: Workspace, dataset: str, embedding: str) -> str | None:
    """The encoder spec recorded with ``embedding`` (None for imported vectors)."""
    return loaders.embedding(ws, dataset, embedding).encoder


def encodes_images(spec: str | None) -> bool:
    """True if encoder ``spec`` (None = imported vectors) can encode an uploaded image."""
    return reads_images(spec)


# ---- anchors ---------------------------------------------------------------------
def parse_ids(text: str) -> list[str]:
    """Ids typed one per line or comma-separated, stripped, duplicates dropped."""
    return list(dict.fromkeys(p.strip() for p in _ID_SPLIT.split(text or "") if p.strip()))


def add_typed_ids(view: RowsView, dataset: str, text: str, *, negative: bool) -> list[str]:
    """Add the ids in ``text`` that are rows of the dataset as anchors (or negatives);
    returns the unknown ones."""
    ids = parse_ids(text)
    found = set(view.known_ids(ids))
    state.add_anchors(dataset, [i for i in ids if i in found], negative=negative)
    return [i for i in ids if i not in found]


@st.cache_data(show_spinner="Encoding the uploaded image…", max_entries=64)
def _encode_upload(data: bytes, name: str, spec: str) -> np.ndarray:
    image = open_image_bytes(data, name)
    return loaders.encoder(spec).encode_images([image])[0]


def anchor_from_upload(name: str, data: bytes, spec: str) -> UploadedAnchor:
    """Decode uploaded image bytes and encode them with encoder ``spec`` → (d,) float32.

    Raises MediaError (empty, corrupt or unrecognised image) or EncoderError.
    """
    vector = _encode_upload(data, name, spec)
    return UploadedAnchor(name, hashlib.sha256(data).hexdigest()[:16], data, vector)


def upload_anchors(files: Sequence | None, spec: str) -> tuple[list[UploadedAnchor], list[str]]:
    """Encode every uploaded file; returns (anchors, error messages for the bad files)."""
    anchors, errors = [], []
    for f in files or ():
        try:
            anchors.append(anchor_from_upload(f.name, f.getvalue(), spec))
        except CatalogError as err:
            errors.append(str(err))
    return anchors, errors


def _strip_card(ds: Dataset, row: pd.Series | None, rid: str, key: str, dataset: str) -> None:
    """One anchor: a THUMB_PX thumbnail (or a short caption for a text row), its id
    verbatim (:func:`ui.grid.safe_code`) and a small remove button."""
    if row is not None and row["modality"] == "image" and isinstance(row.get("image"), str):
        thumb = card_image(ds, row["image"])
        st.image(thumb, width=THUMB_PX) if thumb else st.caption(":material/broken_image: unreadable image")
    elif row is not None:
        st.caption(safe_text(row.get("text"), 60))
    else:
        st.caption("(row no longer in the dataset)")
    st.caption(safe_code(rid, 40))
    st.button("✕", key=f"{key}:rm:{rid}", on_click=state.remove_anchor, args=(dataset, rid),
              help=f"Remove {rid}", type="tertiary")


def render_anchor_strip(ws: Workspace, dataset: str, view: RowsView,
                        uploads: Sequence[UploadedAnchor], *, key: str) -> None:
    """Draw the anchors (with the uploaded ones) and the negatives as two strips of small
    thumbnails side by side (STRIP_MAX per row, first STRIP_MAX of each list shown), each
    removable, above the results."""
    anchors, negatives = state.anchors(dataset), state.negatives(dataset)
    picked = view.rows_of(anchors + negatives)
    by_id = picked.set_index(picked["id"].astype(str), drop=False)
    ds = ws.dataset(dataset)
    groups = (("Anchors", anchors, uploads), ("Negatives", negatives, ()))
    for title, ids, ups in groups:
        if not ids and not ups:
            continue
        more = max(0, len(ids) - STRIP_MAX)
        shown = f", first {STRIP_MAX} shown" if more else ""
        st.markdown(f"**{title}** ({len(ids) + len(ups):,}){shown}")
        cols = st.columns(STRIP_MAX, gap="small")  # a fixed count: one anchor stays small
        for i, rid in enumerate(ids[:STRIP_MAX]):
            with cols[i % STRIP_MAX]:
                _strip_card(ds, by_id.loc[rid] if rid in by_id.index else None, rid, key, dataset)
        for j, up in enumerate(ups):
            with cols[(len(ids[:STRIP_MAX]) + j) % STRIP_MAX]:
                st.image(up.data, width=THUMB_PX)
                st.caption(f"uploaded: {safe_text(up.name, 30)}")
    if anchors or negatives:
        st.button("Clear anchors", key=f"{key}:clear_anchors", on_click=state.clear_anchors,
                  args=(dataset,))


# ---- filter ------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Within:
    """The filtered rows a search ranks: ``ids`` (row order) that have a vector, ``key`` (what
    they were made from: a cache key) and ``subset``, the ids resolved once in the index
    (every query of the filter reuses it: 3M ids of 10M take seconds to look up)."""

    ids: list[str] = field(repr=False)
    key: str
    subset: Subset = field(repr=False)

    def __len__(self) -> int:
        return len(self.ids)


def _with_vectors(ws: Workspace, dataset: str, embedding: str, view: RowsView, key: str) -> Within:
    index = loaders.vector_index(ws, dataset, embedding)
    ids = pd.Index(view.ids())
    kept = ids[ids.isin(index.ids)].tolist()
    return Within(kept, key or ids_hash(kept), index.subset(kept))


@st.cache_resource(show_spinner="Finding the filtered rows…", max_entries=8)
def _within(home: str, dataset: str, embedding: str, stamp: str, key: str,
            _ws: Workspace, _view: RowsView) -> Within:
    return _with_vectors(_ws, dataset, embedding, _view, key)


def within_ids(ws: Workspace, dataset: str, embedding: str, view: RowsView) -> Within | None:
    """The rows of ``view`` (the Catalog-filtered rows) that have a vector in ``embedding``
    (:class:`Within`); None if the view has no filter. Cached per embedding stamp, view
    state and filter (shared: never mutate it); a tag or slice filter is asked each run."""
    if not view.flt.active:
        return None
    stamp = embedding_stamp(ws, dataset, embedding)
    if not view.cacheable:
        return _with_vectors(ws, dataset, embedding, view, "")
    key = ids_hash([stamp, str(view.state_key), repr(view.flt.to_json())])
    return _within(str(ws.home), dataset, embedding, stamp, key, ws, view)


def within_key(within: Within | Sequence[str] | None) -> str:
    if within is None:
        return "all"
    return within.key if isinstance(within, Within) else ids_hash(list(within))


def _within_arg(within: Within | Sequence[str] | None):
    """What ``within=`` of the index gets: the resolved subset of a :class:`Within`."""
    return within.subset if isinstance(within, Within) else within


# ---- cached searches ---------------------------------------------------------------------
@st.cache_data(show_spinner="Searching…", max_entries=64)
def _similar(home: str, dataset: str, embedding: str, stamp: str, anchors: tuple, negatives: tuple,
             upload_key: tuple, method: str, weight: float, within_key: str, k: int | None,
             threshold: float | None, _ws: Workspace, _uploads: np.ndarray | None,
             _within: Within | list[str] | None) -> SearchResult:
    index = loaders.vector_index(_ws, dataset, embedding)
    return find_similar(index, anchors, negatives, positive_vectors=_uploads, method=method,
                        negative_weight=weight, k=k, threshold=threshold, within=_within_arg(_within),
                        embedding=embedding)


def similar(ws: Workspace, dataset: str, embedding: str, *, anchors: Sequence[str],
            negatives: Sequence[str], uploads: Sequence[UploadedAnchor], method: str, weight: float,
            within: Within | list[str] | None, k: int | None, threshold: float | None = None) -> SearchResult:
    """Cached :func:`core.search.find_similar`; raises CatalogError like it."""
    vectors = np.stack([u.vector for u in uploads]) if uploads else None
    return _similar(str(ws.home), dataset, embedding, embedding_stamp(ws, dataset, embedding),
                    tuple(anchors), tuple(negatives), tuple(u.digest for u in uploads), method,
                    float(weight), within_key(within), k, threshold, ws, vectors, within)


# ---- results -----------------------------------------------------------------------
def ranked_rows(view: RowsView, ids: Sequence[str], scores: np.ndarray) -> pd.DataFrame:
    """The rows of ``ids`` (one query) in rank order, with a ``score`` column (ids without a
    row dropped)."""
    ids = [str(i) for i in ids]
    ranked = view.rows_of(ids)
    score_of = dict(zip(ids, np.asarray(scores, dtype=np.float32)))
    ranked["score"] = np.asarray([score_of[i] for i in ranked["id"].astype(str)], dtype=np.float32)
    return ranked


def score_histogram(scores: np.ndarray, threshold: float | None = None) -> go.Figure:
    """Histogram of ``scores`` (m,) with a vertical line at ``threshold``."""
    fig = go.Figure(go.Histogram(x=np.asarray(scores, dtype=np.float64), nbinsx=60, marker_color="#4c78a8"))
    if threshold is not None:
        fig.add_vline(x=threshold, line_color="#e45756", line_width=2,
                      annotation_text=f"t = {threshold:.3f}", annotation_position="top")
    fig.update_layout(height=220, margin={"l": 10, "r": 10, "t": 30, "b": 10}, bargap=0.05,
                      xaxis_title="score", yaxis_title="rows", showlegend=False)
    return fig


def floor_threshold(score: float, places: int = 3) -> float:
    """``score`` rounded down to ``places`` decimals, never above it (so a threshold set from
    the k-th score keeps the k-th row): -0.7466 → -0.747, 0.12345 → 0.123, 0.5 → 0.5.

    Floors the shortest decimal of ``score`` (its ``repr``, which reads back as ``score``, so
    0.123 stays 0.123) with Decimal and converts back: rounding to the nearest float is
    monotonic, so the result is ≤ ``score`` (``math.floor(score * 1000) / 1000`` is not:
    the product may round up to the next integer)."""
    score = float(score)
    if not math.isfinite(score):
        return score
    step = Decimal(1).scaleb(-places)
    return float(Decimal(repr(score)).quantize(step, rounding=ROUND_FLOOR))


def _threshold_slider(pool: SearchResult, key: str) -> float:
    lo = math.floor(float(pool.scores.min()) * 100) / 100
    hi = max(math.ceil(float(pool.scores.max()) * 100) / 100, lo + 0.01)
    skey = f"{key}:threshold"
    if skey not in st.session_state:
        st.session_state[skey] = floor_threshold(pool.scores[min(DEFAULT_K, len(pool)) - 1])
    st.session_state[skey] = min(max(float(st.session_state[skey]), lo), hi)
    return float(st.slider("Score threshold", min_value=lo, max_value=hi, step=0.001, format="%.3f",
                           key=skey))


def render_results(ws: Workspace, dataset: str, table: RowsView, pool: SearchResult,
                   above: Callable[[float], SearchResult], *, key: str, recipe_extra: dict,
                   actions: Sequence[tuple[str, Callable[[str], None]]] = ()) -> None:
    """Histogram of the pool's scores, top-k or threshold view, selection bar and grid.

    ``table``: the dataset's rows (the results are looked up in it); ``pool``: the best N
    candidates; ``above(t)``: every row with score ≥ t (exact).
    The recipe of the shown view (``pool.recipe`` + ``recipe_extra``, k or threshold) is
    displayed and stored with saved slices.
    """
    if len(pool) == 0:
        st.info("No rows to rank (the filter or the anchors leave none).")
        return
    mode = st.radio("Show", ["Top k", "Score ≥ threshold"], key=f"{key}:mode", horizontal=True)
    threshold = None
    if mode == "Top k":
        kkey = f"{key}:k"
        st.session_state[kkey] = min(max(int(st.session_state.get(kkey, DEFAULT_K)), 1), len(pool))
        k = int(st.number_input("k (rows shown)", min_value=1, max_value=len(pool), key=kkey))
        ids, scores, matched = pool.ids[:k], pool.scores[:k], pool.matched[:k]
        recipe = {**pool.recipe, **recipe_extra, "k": k, "threshold": None}
    else:
        threshold = _threshold_slider(pool, key)
        shown = above(threshold)
        ids, scores, matched = shown.ids, shown.scores, shown.matched
        recipe = {**shown.recipe, **recipe_extra, "k": None, "threshold": threshold}
        left, right = st.columns([2, 1], vertical_alignment="center")
        left.markdown(f"**{len(ids):,} rows ≥ {threshold:.3f}**")
        if right.button("Select all above threshold", key=f"{key}:select_above", disabled=not ids):
            state.clear_selection(dataset)
            state.select(dataset, ids)
            st.toast(f"Selected the {len(ids):,} rows with score ≥ {threshold:.3f}")
    st.plotly_chart(score_histogram(pool.scores, threshold), key=f"{key}:hist",
                    config={"displayModeBar": False})
    st.caption(f"Scores of the best {len(pool):,} candidates.")
    with st.expander("Recipe (stored with saved slices)"):
        st.json(recipe, expanded=False)
    render_selection_bar(ws, dataset, list(ids), key=key, recipe=recipe)
    view = ranked_rows(table, ids, scores)
    if matched:  # text search: what matched each row, on its card
        how = dict(zip(ids, matched))
        view["matched_by"] = [how.get(i, "") for i in view["id"].astype(str)]
    render_grid(ws.dataset(dataset), view, key=f"{key}:grid",
                scores=dict(zip(view["id"].astype(str), view["score"].astype(float))), actions=actions)


def anchor_actions(dataset: str) -> list[tuple[str, Callable[[str], None]]]:
    """Card buttons: use the row as an anchor or as a negative."""
    return [("Use as anchor", lambda rid: state.add_anchors(dataset, [rid])),
            ("Use as negative", lambda rid: state.add_anchors(dataset, [rid], negative=True))]
