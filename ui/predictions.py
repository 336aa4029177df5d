"""Streamlit glue for a model's predictions: cached loaders of the stored predictions, label
issues by source (neighbours, model, combined), model mistakes and the confusion matrix,
the source picker, and the confusion heatmap whose cells list their rows when clicked.

Everything that reads predictions is cached by the model's ``meta.json`` stamp (rewritten
on each import) and, where labels matter, by :func:`ui.loaders.labels_key`, so a relabel
rescores without reloading and a plain rerun computes nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.errors import IndexStateError
from core.predictions import PREDICTIONS_DIR, Predictions, load_predictions, model_names
from core.quality import (
    SOURCES,
    Confusion,
    LabelIssues,
    ModelMistakes,
    choose_source,
    confusion_matrix,
    model_evidence,
    model_mistakes,
    rank_label_issues,
)
from core.rows import labels_by_id
from core.workspace import Workspace
from ui import loaders
from ui import quality_data as qd
from ui.grid import safe_text

SOURCE_NAMES = {"combined": "Neighbours + model", "neighbours": "Neighbours", "model": "Model"}
ANNOTATED_CLASSES = 25  # the matrix shows its counts up to this many classes (hover always)
CELL_KEY = "qa:cm_cell"  # session key: the clicked confusion cell (label, predicted)


def _stamp(ws: Workspace, dataset: str, model: str) -> str:
    meta = ws.dataset(dataset).path / PREDICTIONS_DIR / model / "meta.json"
    return loaders.file_stamp(meta)


def models(ws: Workspace, dataset: str) -> list[str]:
    """The dataset's models with predictions, sorted (not cached: a directory listing)."""
    return model_names(ws.dataset(dataset))


@st.cache_resource(show_spinner="Loading predictions…", max_entries=8)
def _predictions(home: str, dataset: str, model: str, stamp: str, _ws: Workspace) -> Predictions:
    return load_predictions(_ws.dataset(dataset), model)


def predictions(ws: Workspace, dataset: str, model: str) -> Predictions:
    """Model ``model``'s stored predictions (shared, read-only)."""
    return _predictions(str(ws.home), dataset, model, _stamp(ws, dataset, model), ws)


def render_source_picker(ws: Workspace, dataset: str, has_embedding: bool = True) -> tuple[str, str | None]:
    """The "Flagged by" and "Model" pickers when the dataset has predictions; returns
    (source, model) (``neighbours``, None without predictions). Without an embedding only
    the model's source is offered."""
    names = models(ws, dataset)
    if not names:
        return "neighbours", None
    default, newest = choose_source(ws.dataset(dataset))
    left, right = st.columns([2, 1], vertical_alignment="bottom")
    offered = SOURCES if has_embedding else ("model",)
    source = left.segmented_control("Flagged by", offered, default=default, key="qa:source",
                                    format_func=SOURCE_NAMES.get,
                                    help="Neighbours: the labels of the most similar rows. Model: the "
                                    "model's predicted probabilities (confident learning). Both: combined.")
    source = source or default
    if source == "neighbours":
        return source, None
    model = right.selectbox("Model", names, index=names.index(newest), key="qa:model", disabled=len(names) == 1)
    return source, model


def render_model_picker(ws: Workspace, dataset: str, names: list[str]) -> str:
    """The model whose mistakes are shown: a picker when there are several (default the newest)."""
    _, newest = choose_source(ws.dataset(dataset), "model")
    if len(names) == 1:
        return names[0]
    return st.selectbox("Model", names, index=names.index(newest), key="qa:mm_model")


@st.cache_data(show_spinner="Scoring labels…", max_entries=16)
def _issues(home: str, dataset: str, embedding: str, stamp: str, source: str, model: str, model_stamp: str,
            k: int | None, labels: str, _ws: Workspace) -> LabelIssues:
    preds = predictions(_ws, dataset, model)
    index = shared = None
    if source != "model":
        shared = qd.neighbours(_ws, dataset, embedding, k)
        if shared is None:
            raise IndexStateError(f"{embedding!r} of {dataset!r} needs its neighbours pass first")
        index = loaders.vector_index(_ws, dataset, embedding)
    return rank_label_issues(index, labels_by_id(_ws, dataset), source=source, predictions=preds, k=k,
                             neighbours=shared)


def label_issues(ws: Workspace, dataset: str, embedding: str | None, source: str, model: str | None,
                 k: int | None = None) -> LabelIssues:
    """Label issues by ``source`` (cached by embedding, model and label-edit stamps);
    ``neighbours`` is :func:`ui.quality_data.label_issues`; ``embedding`` None: ``model`` only."""
    if source == "neighbours" or model is None:
        return qd.label_issues(ws, dataset, embedding, k)
    stamp = loaders.embedding_stamp(ws, dataset, embedding) if embedding else ""
    return _issues(str(ws.home), dataset, embedding or "", stamp, source,
                   model, _stamp(ws, dataset, model), None if k is None else int(k),
                   loaders.labels_key(ws, dataset), ws)


def evidence_of(ws: Workspace, dataset: str, model: str | None, ids: list[str]) -> list[tuple]:
    """The model's top classes and probabilities per id (``()`` each without a model)."""
    if model is None:
        return [() for _ in ids]
    return model_evidence(predictions(ws, dataset, model), ids)


@st.cache_data(show_spinner="Comparing the model with the labels…", max_entries=16)
def _mistakes(home: str, dataset: str, model: str, stamp: str, min_confidence: float, labels: str,
              _ws: Workspace) -> tuple[ModelMistakes, Confusion]:
    preds, by_id = predictions(_ws, dataset, model), labels_by_id(_ws, dataset)
    return model_mistakes(by_id, preds, min_confidence=min_confidence), confusion_matrix(by_id, preds)


def mistakes(ws: Workspace, dataset: str, model: str, min_confidence: float) -> tuple[ModelMistakes, Confusion]:
    """(:class:`ModelMistakes`, :class:`Confusion`) of ``model`` against the effective labels."""
    return _mistakes(str(ws.home), dataset, model, _stamp(ws, dataset, model), round(float(min_confidence), 4),
                     loaders.labels_key(ws, dataset), ws)


def confusion_figure(cm: Confusion) -> go.Figure:
    """The confusion matrix as a grid of square markers (label down, prediction across),
    coloured by the share of the label's rows, each cell clickable (a scatter point: Streamlit
    reports clicks on points)."""
    c = len(cm.classes)
    labels, preds = np.meshgrid(np.arange(c), np.arange(c), indexing="ij")
    counts = cm.counts.astype(float)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    names = [safe_text(x, 24) for x in cm.classes]
    text = [str(int(v)) if v else "" for v in counts.ravel()]
    hover = [f"label {names[i]} · predicted {names[j]}: {int(counts[i, j]):,} rows"
             for i, j in zip(labels.ravel(), preds.ravel())]
    size = max(14, min(90, int(560 / max(c, 1))))
    fig = go.Figure(go.Scatter(
        x=preds.ravel(), y=labels.ravel(), mode="markers", hovertext=hover, hoverinfo="text",
        customdata=np.stack([labels.ravel(), preds.ravel()], axis=1),
        marker={"symbol": "square", "size": size, "color": share.ravel(), "colorscale": "Blues",
                "cmin": 0, "cmax": 1, "showscale": True, "colorbar": {"title": "share of label"},
                "line": {"width": 1, "color": "white"}},
        selected={"marker": {"opacity": 1}}, unselected={"marker": {"opacity": 1}}))
    if c <= ANNOTATED_CLASSES:  # the counts as text (annotations: a selection does not dim them)
        fig.update_layout(annotations=[
            {"x": int(j), "y": int(i), "text": t, "showarrow": False,
             "font": {"size": 12, "color": "white" if share[i, j] > 0.5 else "#262730"}}
            for i, j, t in zip(labels.ravel(), preds.ravel(), text) if t])
    fig.update_layout(height=max(260, int(size * 1.15 * c) + 120), margin={"l": 0, "r": 0, "t": 10, "b": 0},
                      xaxis={"title": "predicted", "tickvals": list(range(c)), "ticktext": names, "side": "top",
                             "showgrid": False, "zeroline": False},
                      yaxis={"title": "label", "tickvals": list(range(c)), "ticktext": names,
                             "autorange": "reversed", "showgrid": False, "zeroline": False},
                      dragmode=False, clickmode="event+select", plot_bgcolor="white")
    return fig


def clicked_cell(event, cm: Confusion) -> tuple[str, str] | None:
    """The (label, predicted) cell the user clicked, kept in the session until another one is."""
    points = (event.get("selection", {}) or {}).get("points", []) if event else []
    if points:
        point = points[-1]
        i, j = int(point["y"]), int(point["x"])
        if 0 <= i < len(cm.classes) and 0 <= j < len(cm.classes):
            st.session_state[CELL_KEY] = (cm.classes[i], cm.classes[j])
    cell = st.session_state.get(CELL_KEY)
    return tuple(cell) if cell and all(c in cm.classes for c in cell) else None


def cell_rows(rows: pd.DataFrame, cm: Confusion, cell: tuple[str, str], preds: Predictions) -> pd.DataFrame:
    """The rows of a confusion cell with the model's confidence in its prediction, most confident first."""
    ids = cm.rows_in(*cell)
    at = pd.Index(preds.ids).get_indexer(ids)
    conf = np.asarray(preds.probs, dtype=np.float64)[at].max(axis=1) if len(at) else np.empty(0)
    order = np.argsort(-conf, kind="stable")
    at_rows = pd.Index(rows["id"].astype(str)).get_indexer([ids[o] for o in order])  # no copy of every row
    picked = rows.iloc[at_rows[at_rows >= 0]].reset_index(drop=True)
    conf = conf[order][at_rows >= 0]
    return picked.assign(model_confidence=conf)


@st.cache_data(show_spinner=False, max_entries=16)
def _prediction_columns(home: str, dataset: str, model: str, stamp: str, labels: str,
                        _ws: Workspace) -> pd.DataFrame:
    preds = predictions(_ws, dataset, model)
    given = labels_by_id(_ws, dataset).reindex(preds.ids)
    predicted = pd.Series(preds.predicted_labels, index=preds.ids, dtype=object)
    probs = np.asarray(preds.probs, dtype=np.float64)
    correct = np.where(given.isna().to_numpy(), "no label",
                       np.where(given.to_numpy() == predicted.to_numpy(), "correct", "wrong"))
    return pd.DataFrame({"predicted": predicted, "correct": correct,
                         "confidence": probs[np.arange(len(preds)), preds.predicted]}, index=preds.ids)


def prediction_columns(ws: Workspace, dataset: str, model: str) -> pd.DataFrame:
    """By id (index): the model's ``predicted`` class, ``correct`` (correct / wrong / no
    label, against the effective labels) and ``confidence`` (its probability); what the
    Cluster map colours by."""
    return _prediction_columns(str(ws.home), dataset, model, _stamp(ws, dataset, model),
                               loaders.labels_key(ws, dataset), ws)


def newest_model(ws: Workspace, dataset: str) -> str | None:
    """The most recently imported model of ``dataset`` (None without predictions)."""
    return choose_source(ws.dataset(dataset), "model")[1] if models(ws, dataset) else None
