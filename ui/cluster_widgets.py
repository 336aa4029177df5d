"""Streamlit glue of the Cluster map page: cached projections, clusterings and quality
scores, the WebGL map figure, the cluster summary table and the pick/relabel actions.

Caching: ``st.cache_data`` wrappers keyed by (home, dataset, embedding, embedding file
stamp, parameters, label-edit hash); ``_ws`` is not hashed. A first projection runs
outside them (:func:`compute_projection`) to drive ``st.progress`` (a cached function
must not update an element created outside it, or its replay fails); ``project`` stores
it in ``ds.projections_dir``, where the cached wrapper then reads it.

Picks: a lasso/box/click on the map, a row of the summary table or the "Select cluster"
box replaces the session selection (``ui.state``) with the picked rows. Each widget's
value is acted on once, when it changes (its last value is kept under ``clu:_seen``),
so checkboxes un-ticked in the grid stay un-ticked on later reruns.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.clusters import (
    Clustering,
    Projection,
    cluster,
    estimate_projection_seconds,
    project,
    selection_to_ids,
    vectors_hash,
)
from core.errors import CatalogError, InputError
from core.labels import relabel_rows, undo_relabel
from core.workspace import Workspace
from ui import loaders, state
from ui.grid import safe_text

METHOD_NAMES = {"umap": "UMAP (cached after the first run)", "pca": "PCA (instant)"}
CONFIRM_ABOVE_SECONDS = 30.0  # ask before a projection estimated to take longer
COLOR_CLUSTER, COLOR_LABEL, COLOR_TAG = "cluster", "label", "tag"
COLOR_ISSUE, COLOR_UNIQUE = "label issue score", "uniqueness"
COLUMN_PREFIX = "column: "
QUALITY_COLUMNS = {COLOR_ISSUE: "label_issue_score", COLOR_UNIQUE: "uniqueness"}
MAX_GROUPS = 20  # categorical colourings: the largest 19 values, then "(other)"
SNIPPET = 80
_BUILTIN = ("id", "modality", "text", "image", "label")
_PICKED, _SEEN, _EDITS, _FLASH = "clu:_picked", "clu:_seen", "clu:_edits", "clu:_flash"


# ---- cache keys ----------------------------------------------------------------------
def emb_stamp(ws: Workspace, dataset: str, embedding: str) -> str:
    """File stamp of the embedding's meta.json (changes when vectors are rewritten)."""
    return loaders.embedding_stamp(ws, dataset, embedding)


def labels_key(ws: Workspace, dataset: str) -> str:
    """Rows file stamp plus a hash of the label edits (summaries depend on labels)."""
    edits = json.dumps(sorted(ws.store.label_overrides(dataset).items()), default=str)
    return f"{loaders.file_stamp(ws.dataset(dataset).rows_path)}-{hashlib.sha256(edits.encode()).hexdigest()[:16]}"


# ---- projections ---------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=16)
def _vectors_hash(home: str, dataset: str, embedding: str, stamp: str, _ws: Workspace) -> str:
    emb = loaders.embedding(_ws, dataset, embedding)
    return vectors_hash([str(i) for i in emb.ids], emb.vectors)


def projection_on_disk(ws: Workspace, dataset: str, embedding: str, method: str, seed: int) -> bool:
    """True if ``project`` would read this map from ``ds.projections_dir`` (a record with
    the same method, seed, row count and vectors hash; see core.clusters' docstring)."""
    cache = ws.dataset(dataset).projections_dir
    if not cache.is_dir():
        return False
    stamp = emb_stamp(ws, dataset, embedding)
    n = len(loaders.embedding(ws, dataset, embedding).ids)
    vhash = _vectors_hash(str(ws.home), dataset, embedding, stamp, ws)
    for path in cache.glob("proj-*.json"):
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        params = meta.get("params", {})
        if (meta.get("vectors_hash") == vhash and meta.get("n") == n
                and params.get("method") == method and params.get("seed") == seed):
            return True
    return False


def first_run_estimate(n_rows: int, dims: int, method: str) -> float | None:
    """Seconds a cold UMAP projection should take (None for PCA: instant)."""
    return estimate_projection_seconds(n_rows, dims) if method == "umap" else None


def estimate_text(seconds: float) -> str:
    """``"about 27 s"`` / ``"about 4 min"``."""
    return f"about {seconds:.0f} s" if seconds < 90 else f"about {seconds / 60:.0f} min"


def compute_projection(ws: Workspace, dataset: str, embedding: str, method: str, seed: int,
                       estimate: float | None = None) -> None:
    """Run ``project`` once with an ``st.progress`` bar, filling the disk cache.
    Raises CatalogError from core."""
    emb = loaders.embedding(ws, dataset, embedding)
    n = len(emb.ids)
    text = f"Projecting {n:,} rows with {method.upper()}" + (
        f" ({estimate_text(estimate)})…" if estimate is not None else "…")
    bar = st.progress(0.0, text=text)

    def progress(done: int, total: int) -> None:
        bar.progress(min(done / max(total, 1), 1.0), text=f"{text} {done:,} of {total:,} rows placed")

    project([str(i) for i in emb.ids], emb.vectors, method=method, seed=seed,
            cache_dir=ws.dataset(dataset).projections_dir, progress=progress)
    bar.empty()


@st.cache_data(show_spinner="Loading the map…", max_entries=16)
def _projection(home: str, dataset: str, embedding: str, stamp: str, method: str, seed: int,
                _ws: Workspace) -> Projection:
    emb = loaders.embedding(_ws, dataset, embedding)
    return project([str(i) for i in emb.ids], emb.vectors, method=method, seed=seed,
                   cache_dir=_ws.dataset(dataset).projections_dir)


def projection(ws: Workspace, dataset: str, embedding: str, method: str, seed: int) -> Projection:
    """The 2-D map of every row of ``embedding`` (cached; from disk after the first run)."""
    return _projection(str(ws.home), dataset, embedding, emb_stamp(ws, dataset, embedding),
                       method, int(seed), ws)


@st.cache_data(show_spinner="Clustering…", max_entries=16)
def _clustering(home: str, dataset: str, embedding: str, stamp: str, k: int, seed: int,
                labels: str, _ws: Workspace) -> Clustering:
    emb = loaders.embedding(_ws, dataset, embedding)
    ids = [str(i) for i in emb.ids]
    rows = loaders.rows(_ws, dataset)
    aligned = rows.iloc[pd.Index(rows["id"].astype(str)).get_indexer(ids)]
    texts, labels = (aligned[c].tolist() if c in aligned else None for c in ("text", "label"))
    return cluster(ids, emb.vectors, k=k, seed=seed, labels=labels, texts=texts)


def clustering(ws: Workspace, dataset: str, embedding: str, k: int, seed: int) -> Clustering:
    """KMeans (k, seed) of every row of ``embedding`` with label/term summaries (cached;
    recomputed when labels are edited). Raises InputError for k outside 2..rows."""
    return _clustering(str(ws.home), dataset, embedding, emb_stamp(ws, dataset, embedding),
                       int(k), int(seed), labels_key(ws, dataset), ws)


@st.cache_data(show_spinner="Scoring label issues and uniqueness…", max_entries=8)
def _quality(home: str, dataset: str, embedding: str, stamp: str, labels: str,
             _ws: Workspace) -> pd.DataFrame:
    from core.quality import quality_columns

    rows = loaders.rows(_ws, dataset)
    by_id = dict(zip(rows["id"].astype(str), rows["label"])) if "label" in rows else {}
    return quality_columns(loaders.vector_index(_ws, dataset, embedding), by_id).set_index("id")


def quality(ws: Workspace, dataset: str, embedding: str) -> pd.DataFrame:
    """Per id (index): label_issue_score, suggested_label, uniqueness (cached)."""
    return _quality(str(ws.home), dataset, embedding, emb_stamp(ws, dataset, embedding),
                    labels_key(ws, dataset), ws)


# ---- the map ---------------------------------------------------------------------------
def map_points(view: pd.DataFrame, proj: Projection, clu: Clustering) -> pd.DataFrame:
    """Rows of ``view`` that have a vector, in view order, with ``x``, ``y``, ``cluster``."""
    ids = view["id"].astype(str)
    at = pd.Index(proj.ids).get_indexer(ids)
    keep = at >= 0
    points = view.loc[keep].copy()
    points["id"] = ids[keep]
    points["x"], points["y"] = proj.coords[at[keep], 0], proj.coords[at[keep], 1]
    points["cluster"] = clu.assignments[pd.Index(clu.ids).get_indexer(points["id"])]
    return points.reset_index(drop=True)


def _plain_column(values: pd.Series, limit: int) -> pd.Series:
    """User text for plotly labels, vectorised: one line, '<' and '>' removed (plotly
    reads hover text as HTML), cut to ``limit`` characters with '…'."""
    text = values.astype(object).where(values.notna(), "").astype(str)
    text = text.str.replace(r"[<>]", "", regex=True).str.replace(r"\s+", " ", regex=True).str.strip()
    return text.where(text.str.len() <= limit, text.str.slice(0, limit - 1) + "…")


def plain(value: Any, limit: int = 80) -> str:
    """:func:`_plain_column` for one value."""
    return str(_plain_column(pd.Series([value], dtype=object), limit).iloc[0])


def hover_texts(points: pd.DataFrame) -> list[str]:
    """``id<br>label: label<br>snippet`` per point (text, else image path), plain text only."""
    empty = pd.Series([None] * len(points), index=points.index, dtype=object)
    snippet = points.get("text", empty)
    if "image" in points:
        snippet = snippet.where(snippet.notna(), points["image"])
    label = _plain_column(points.get("label", empty), 40).replace("", "—")
    hover = (_plain_column(points["id"], 60) + "<br>label: " + label + "<br>"
             + _plain_column(snippet, SNIPPET))
    return hover.tolist()


def color_options(rows: pd.DataFrame, tags: Sequence[str]) -> list[str]:
    """Colourings offered: cluster, label, tag (if any), quality scores, other columns."""
    out = [COLOR_CLUSTER] + ([COLOR_LABEL] if "label" in rows and rows["label"].notna().any() else [])
    out += [COLOR_TAG] if tags else []
    out += [COLOR_ISSUE, COLOR_UNIQUE]
    return out + [COLUMN_PREFIX + str(c) for c in rows.columns
                  if c not in _BUILTIN and rows[c].notna().any()]


def color_values(points: pd.DataFrame, color_by: str, *, tagged: Sequence[str] = (), tag: str = "",
                 scores: pd.DataFrame | None = None) -> pd.Series:
    """The value that colours each point (numeric Series → colour scale, else groups)."""
    if color_by == COLOR_CLUSTER:
        names = [f"cluster {c}" for c in sorted(points["cluster"].unique())]
        return pd.Series(pd.Categorical(points["cluster"].map(lambda c: f"cluster {c}"), categories=names),
                         index=points.index)
    if color_by == COLOR_LABEL:
        return points["label"].astype(object).where(points["label"].notna(), "(no label)")
    if color_by == COLOR_TAG:
        return points["id"].isin(set(tagged)).map({True: f"tagged {plain(tag)}", False: "not tagged"})
    if color_by in QUALITY_COLUMNS:
        col = scores[QUALITY_COLUMNS[color_by]] if scores is not None else pd.Series(dtype=float)
        return points["id"].map(col).astype(float)
    column = color_by.removeprefix(COLUMN_PREFIX)
    if not color_by.startswith(COLUMN_PREFIX) or column not in points:
        raise InputError(f"unknown colouring {color_by!r}; choose one of cluster, label, tag, "
                         f"{COLOR_ISSUE}, {COLOR_UNIQUE} or {COLUMN_PREFIX}<a column of the rows>")
    values = points[column]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype(float)
    return values.astype(object).where(values.notna(), "(missing)").map(str)


def _trace(points: pd.DataFrame, hover: np.ndarray, name: str, **marker: Any) -> go.Scattergl:
    return go.Scattergl(x=points["x"], y=points["y"], mode="markers", name=plain(name, 40),
                        hovertext=hover, hoverinfo="text",
                        marker={"size": 5, "opacity": 0.8, **marker})


def build_map(points: pd.DataFrame, values: pd.Series, title: str) -> tuple[go.Figure, list[list[str]]]:
    """A Scattergl figure of ``points`` coloured by ``values`` (aligned with points) and
    the ids of each trace in plotted order (what :func:`selection_to_ids` needs).

    Numeric values: one trace with a colour scale (+ a grey "no value" trace); otherwise
    one trace per value (categorical dtype: in category order; otherwise the largest
    MAX_GROUPS - 1 values by name, then "(other)"). Empty groups get no trace.
    """
    hover = np.asarray(hover_texts(points), dtype=object)
    traces: list[tuple[np.ndarray, str, dict]] = []
    if pd.api.types.is_float_dtype(values):
        ok = values.notna().to_numpy()
        traces.append((ok, plain(title, 30), {"color": values[ok].to_numpy(), "colorscale": "Viridis",
                                              "showscale": True, "colorbar": {"title": plain(title, 30)}}))
        traces.append((~ok, "no value", {"color": "lightgrey"}))
    else:
        counts = values.value_counts(sort=True)
        order = (list(values.cat.categories) if isinstance(values.dtype, pd.CategoricalDtype)
                 else list(counts.index))  # categories (clusters) keep their order
        kept = order[: MAX_GROUPS - 1] if len(order) > MAX_GROUPS else order
        if not isinstance(values.dtype, pd.CategoricalDtype):
            kept = sorted(kept, key=str)  # the largest groups, listed by name
        for value in kept:
            traces.append(((values == value).to_numpy(), str(value), {}))
        if len(kept) < len(order):
            traces.append((~values.isin(kept).to_numpy(), "(other)", {"color": "grey"}))
    fig, trace_ids = go.Figure(), []
    for mask, name, marker in traces:
        if mask.any():
            fig.add_trace(_trace(points.loc[mask], hover[mask], name, **marker))
            trace_ids.append(points.loc[mask, "id"].tolist())
    fig.update_layout(height=600, margin={"l": 0, "r": 0, "t": 30, "b": 0}, dragmode="lasso",
                      legend={"itemsizing": "constant"}, xaxis={"visible": False},
                      yaxis={"visible": False})
    return fig, trace_ids


@st.cache_resource(show_spinner=False, max_entries=4)
def _figure(signature: str, title: str, _points: pd.DataFrame, _values: pd.Series):
    return build_map(_points, _values, title)


def map_figure(points: pd.DataFrame, values: pd.Series, title: str) -> tuple[go.Figure, list[list[str]]]:
    """:func:`build_map`, cached by a content hash of the plotted columns and values
    (shared read-only: never mutate the result). At 100k points a build takes seconds,
    the hash ~0.2 s."""
    cols = [c for c in ("id", "x", "y", "label", "text", "image") if c in points]
    h = hashlib.sha256(f"{title}|{values.dtype}|{len(points)}".encode())
    h.update(pd.util.hash_pandas_object(points[cols], index=False).to_numpy().tobytes())
    h.update(pd.util.hash_pandas_object(values, index=False).to_numpy().tobytes())
    return _figure(h.hexdigest(), title, points, values)


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
            st.error(str(err))
        else:
            st.session_state[_EDITS] = {"dataset": dataset, "ids": edits}
            flash(f"{len(edits):,} of {len(chosen):,} rows relabelled '{safe_text(new_label.strip(), 40)}'"
                  f" ({len(chosen) - len(edits):,} already had it).")
            st.rerun()  # the map, table and grid above were drawn with the old labels
    last = st.session_state.get(_EDITS)
    if (last and last["dataset"] == dataset and last["ids"]
            and right.button(f"Undo ({len(last['ids']):,} rows)", key="clu:undo")):
        reverted = undo_relabel(ws, dataset, last["ids"])
        st.session_state.pop(_EDITS)
        flash(f"Undone: {reverted:,} label edits reverted.")
        st.rerun()


def flash(message: str | None = None) -> None:
    """Keep ``message`` (markdown) for the next run; without it, show and drop the kept one."""
    if message is not None:
        st.session_state[_FLASH] = message
    elif (kept := st.session_state.pop(_FLASH, None)) is not None:
        st.success(kept)
