"""Where a model disagrees with the labels: its confident mistakes and the confusion matrix.

Both compare a model's stored predictions (:class:`core.predictions.Predictions`) with the
rows' effective labels (label edits applied); rows without a label or without a
prediction are left out.

- :func:`model_mistakes`: labelled rows the model predicts as another class with at least
  ``min_confidence``, most confident first (ties by margin over the label's probability,
  then id): where the model is most sure and the label says otherwise. Whether the label or
  the model is wrong is for the reviewer; the label-issue sources rank the former.
- :func:`confusion_matrix`: counts of label (rows) against prediction (columns), and the
  row ids of any cell.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.errors import InputError, NotFoundError, format_list
from core.quality.knn import aligned_labels

if TYPE_CHECKING:
    from core.predictions import Predictions

DEFAULT_MIN_CONFIDENCE = 0.5


def _pairs(labels: Mapping[str, str | None], preds: Predictions
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...], np.ndarray]:
    """(ids, label code, predicted code, classes, probs) of the rows with both, in the
    predictions' order; classes = the model's classes plus any other label, sorted."""
    given = np.asarray(aligned_labels(preds.ids, labels), dtype=object)
    has = np.asarray([g is not None for g in given], dtype=bool)
    classes = tuple(sorted(set(preds.classes) | {g for g in given[has]}))
    ids = preds.ids[has]
    probs, _ = preds.aligned(ids, classes)
    label_code = pd.Index(classes).get_indexer(given[has])
    at = pd.Index(classes).get_indexer(list(preds.classes))
    predicted = at[preds.predicted[has]]
    return ids, label_code.astype(np.int64), predicted.astype(np.int64), classes, probs


@dataclass(frozen=True)
class ModelMistakes:
    """Rows the model confidently predicts as another class than their label, most
    confident first: ``confidence`` (m,) its probability for ``predicted``,
    ``label_probability`` (m,) its probability for the label."""

    model: str
    ids: tuple[str, ...]
    labels: tuple[str, ...]
    predicted: tuple[str, ...]
    confidence: np.ndarray
    label_probability: np.ndarray
    min_confidence: float
    compared: int  # labelled rows with a prediction

    def __len__(self) -> int:
        return len(self.ids)

    def to_json(self, limit: int | None = None) -> dict:
        n = len(self.ids) if limit is None else max(int(limit), 0)
        return {"model": self.model, "min_confidence": self.min_confidence, "compared": self.compared,
                "mistakes": len(self.ids),
                "rows": [{"id": i, "label": lab, "predicted": p, "confidence": round(float(c), 6),
                          "label_probability": round(float(lp), 6)}
                         for i, lab, p, c, lp in zip(self.ids[:n], self.labels[:n], self.predicted[:n],
                                                     self.confidence[:n], self.label_probability[:n])]}


def model_mistakes(labels: Mapping[str, str | None], preds: Predictions, *,
                   min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> ModelMistakes:
    """Labelled rows whose predicted class differs from the label with confidence at least
    ``min_confidence`` (default 0.5; a prediction without a confidence counts as 1), most
    confident first, ties by the margin over the label's probability, then id.
    Raises InputError if ``min_confidence`` is outside 0-1."""
    if not 0.0 <= float(min_confidence) <= 1.0:
        raise InputError(f"min confidence {min_confidence!r} is outside 0-1")
    ids, label, predicted, classes, probs = _pairs(labels, preds)
    rows = np.arange(len(ids))
    confidence = probs[rows, predicted].astype(np.float64)
    label_p = probs[rows, label].astype(np.float64)
    keep = (predicted != label) & (confidence >= float(min_confidence) - 1e-9)
    ids, label, predicted, confidence, label_p = (ids[keep], label[keep], predicted[keep],
                                                  confidence[keep], label_p[keep])
    order = np.lexsort((ids.astype(str), -(confidence - label_p), -confidence))
    names = np.asarray(classes, dtype=object)
    return ModelMistakes(preds.model, tuple(ids[order].tolist()), tuple(names[label[order]].tolist()),
                         tuple(names[predicted[order]].tolist()), confidence[order].astype(np.float32),
                         label_p[order].astype(np.float32), float(min_confidence), len(rows))


@dataclass(frozen=True)
class Confusion:
    """``counts`` (C, C) int64: rows labelled ``classes[i]`` (row i) predicted ``classes[j]``
    (column j); ``cells`` (n,) the flat cell ``i * C + j`` of each of ``ids``."""

    model: str
    classes: tuple[str, ...]
    counts: np.ndarray
    ids: np.ndarray
    cells: np.ndarray

    @property
    def accuracy(self) -> float:
        total = int(self.counts.sum())
        return float(np.trace(self.counts)) / total if total else float("nan")

    def rows_in(self, label: str, predicted: str) -> list[str]:
        """Ids of the rows labelled ``label`` and predicted ``predicted`` (prediction order).
        Raises NotFoundError for a class the matrix does not have."""
        at = {c: i for i, c in enumerate(self.classes)}
        missing = [c for c in (label, predicted) if c not in at]
        if missing:
            raise NotFoundError(f"no class {format_list(missing)} in the confusion matrix of "
                                f"{self.model!r}; classes: {format_list(self.classes, 12)}")
        cell = at[label] * len(self.classes) + at[predicted]
        return self.ids[self.cells == cell].tolist()

    def to_json(self) -> dict:
        return {"model": self.model, "classes": list(self.classes), "counts": self.counts.tolist(),
                "rows": int(self.counts.sum()), "accuracy": round(self.accuracy, 6)}


def confusion_matrix(labels: Mapping[str, str | None], preds: Predictions) -> Confusion:
    """Label against prediction for the labelled rows with a prediction."""
    ids, label, predicted, classes, _ = _pairs(labels, preds)
    c = len(classes)
    cells = label * c + predicted
    counts = np.bincount(cells, minlength=c * c).reshape(c, c).astype(np.int64)
    return Confusion(preds.model, classes, counts, ids, cells.astype(np.int64))
