"""The Cluster map page's WebGL map: points of the shown rows with their coordinates and
cluster, hover texts, colourings (cluster, label, tag, quality scores, any column) and
the plotly figure, cached by a content hash (:func:`map_figure`)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.clusters import Clustering, Projection
from core.errors import InputError

COLOR_CLUSTER, COLOR_LABEL, COLOR_TAG = "cluster", "label", "tag"
COLOR_ISSUE, COLOR_UNIQUE = "label issue score", "uniqueness"
COLUMN_PREFIX = "column: "
SCORE_COLORINGS = {COLOR_ISSUE: "label_issue_score", COLOR_UNIQUE: "uniqueness"}  # colouring → column
COLOR_PREDICTION, COLOR_CORRECT, COLOR_CONFIDENCE = "model prediction", "model correct", "model confidence"
# colouring → column of ui.predictions.prediction_columns
MODEL_COLORINGS = {COLOR_PREDICTION: "predicted", COLOR_CORRECT: "correct", COLOR_CONFIDENCE: "confidence"}
MAX_GROUPS = 20  # categorical colourings: the largest 19 values, then "(other)"
SNIPPET = 80
_BUILTIN = ("id", "modality", "text", "image", "label")


def map_points(ids: Sequence[str] | pd.DataFrame, proj: Projection, clu: Clustering) -> pd.DataFrame:
    """Columns ``id``, ``x``, ``y``, ``cluster`` of the rows of ``ids`` (the filter's ids
    in row order, from the database; or a table with an ``id`` column) that have a vector,
    in that order: what the map, its density, the summary and a box or lasso need (the
    other columns are fetched for the drawn points only: :func:`with_columns`)."""
    ids = pd.Index((ids["id"] if isinstance(ids, pd.DataFrame) else pd.Series(ids, dtype=object)).astype(str))
    at = pd.Index(proj.ids).get_indexer(ids)
    keep = at >= 0
    kept = ids[keep]
    return pd.DataFrame({"id": np.asarray(kept, dtype=object), "x": proj.coords[at[keep], 0],
                         "y": proj.coords[at[keep], 1],
                         "cluster": clu.assignments[pd.Index(clu.ids).get_indexer(kept)]})


def with_columns(points: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """``points`` (order kept) plus the columns of ``rows`` (those rows, with ``id``; e.g.
    fetched for the drawn points) other than id / x / y / cluster: hover texts and
    colourings read them."""
    extra = [c for c in rows.columns if c not in ("id", "x", "y", "cluster")]
    found = rows.set_index(rows["id"].astype(str))[extra]
    found = found[~found.index.duplicated()]
    joined = found.reindex(points["id"].astype(str).to_numpy())
    return pd.concat([points.reset_index(drop=True), joined.reset_index(drop=True)], axis=1)


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


def color_options(rows: pd.DataFrame, tags: Sequence[str], has_predictions: bool = False) -> list[str]:
    """Colourings offered: cluster, label, tag (if any), quality scores, a model's prediction,
    correctness and confidence (``has_predictions``), other columns (those with a value
    among ``rows``: the drawn points with their columns)."""
    out = [COLOR_CLUSTER] + ([COLOR_LABEL] if "label" in rows and rows["label"].notna().any() else [])
    out += [COLOR_TAG] if tags else []
    out += [COLOR_ISSUE, COLOR_UNIQUE]
    out += list(MODEL_COLORINGS) if has_predictions else []
    return out + [COLUMN_PREFIX + str(c) for c in rows.columns
                  if c not in (*_BUILTIN, "x", "y", "cluster") and rows[c].notna().any()]


def color_values(points: pd.DataFrame, color_by: str, *, tagged: Sequence[str] = (), tag: str = "",
                 scores: pd.DataFrame | None = None, predictions: pd.DataFrame | None = None) -> pd.Series:
    """The value that colours each point (numeric Series → colour scale, else groups).
    ``predictions``: by id, a model's ``predicted``, ``correct`` and ``confidence``."""
    if color_by in MODEL_COLORINGS:
        col = MODEL_COLORINGS[color_by]
        values = points["id"].map(predictions[col]) if predictions is not None else pd.Series(None, index=points.index)
        if col == "confidence":
            return values.astype(float)
        return values.astype(object).where(values.notna(), "(no prediction)").map(str)
    if color_by == COLOR_CLUSTER:
        names = [f"cluster {c}" for c in sorted(points["cluster"].unique())]
        return pd.Series(pd.Categorical(points["cluster"].map(lambda c: f"cluster {c}"), categories=names),
                         index=points.index)
    if color_by == COLOR_LABEL:
        return points["label"].astype(object).where(points["label"].notna(), "(no label)")
    if color_by == COLOR_TAG:
        return points["id"].isin(set(tagged)).map({True: f"tagged {plain(tag)}", False: "not tagged"})
    if color_by in SCORE_COLORINGS:
        col = scores[SCORE_COLORINGS[color_by]] if scores is not None else pd.Series(dtype=float)
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
