"""Model predictions of one model for rows of a dataset, checked before anything is saved.

:func:`build_predictions` turns the columns read from a table (ids, and per-class
probabilities, or a predicted label with or without its confidence) into
:class:`Predictions`, refusing bad input with an error naming the first few rows at fault:
duplicate or unknown ids, NaN, probabilities outside 0-1 or whose row does not sum to ~1,
classes the dataset's labels never use. Nothing here reads or writes files.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.errors import InputError, SchemaError, format_list

SUM_TOLERANCE = 0.01  # a probability row may sum to 1 ± this (CSV rounding); it is renormalised


@dataclass(frozen=True)
class Predictions:
    """One model's predictions for ``n`` rows over ``C`` classes.

    - ``ids`` (n,) object str, unique; ``classes`` the model's classes, sorted (each one a
      label of the dataset);
    - ``probs`` (n, C) float32, rows summing to 1. When the source gave only a predicted
      label (and perhaps its confidence), these are made from it: the confidence on the
      predicted class (1 without one), the rest spread evenly (``has_probs`` False);
    - ``predicted`` (n,) int64 index into ``classes``; ``score`` (n,) float32 the
      confidence of the prediction (its probability; NaN when the source gave none).
    """

    model: str
    ids: np.ndarray
    classes: tuple[str, ...]
    probs: np.ndarray
    predicted: np.ndarray
    score: np.ndarray
    has_probs: bool

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def predicted_labels(self) -> np.ndarray:
        """(n,) object: the predicted class name per row."""
        return np.asarray(self.classes, dtype=object)[self.predicted]

    def aligned(self, ids: Sequence[str], classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities for ``ids`` over ``classes`` (a superset of the model's):
        ((m, len(classes)) float32, zero rows where a row has no prediction; (m,) bool has-prediction)."""
        at = pd.Index(self.ids).get_indexer(pd.Index(ids, dtype=object))
        cols = pd.Index(list(classes)).get_indexer(list(self.classes))
        if (cols < 0).any():
            missing = [c for c, p in zip(self.classes, cols) if p < 0]
            raise InputError(f"model {self.model!r} predicts classes the labels no longer use: "
                             f"{format_list(missing)}")
        out = np.zeros((len(at), len(classes)), dtype=np.float32)
        has = at >= 0
        out[np.ix_(np.flatnonzero(has), cols)] = self.probs[at[has]]
        return out, has


def _first(ids: np.ndarray, mask: np.ndarray) -> str:
    bad = ids[mask]
    return f"{len(bad):,} row(s): {format_list(bad.tolist())}"


def _check_ids(ids: np.ndarray, known: Iterable[str] | None, dataset: str) -> None:
    blank = pd.isna(ids) | (pd.Series(ids, dtype=object).astype(str).str.strip() == "").to_numpy()
    if blank.any():
        raise SchemaError(f"{int(blank.sum()):,} prediction row(s) have no id (rows "
                          f"{format_list(np.flatnonzero(blank).tolist())} of the file)")
    dup = pd.Index(ids).duplicated()
    if dup.any():
        raise SchemaError(f"duplicate ids in the predictions: {format_list(pd.unique(ids[dup]).tolist())} "
                          "(one prediction per row and model)")
    if known is not None:
        unknown = pd.Index(list(known), dtype=object).get_indexer(pd.Index(ids, dtype=object)) < 0
        if unknown.any():
            raise SchemaError(f"{int(unknown.sum()):,} prediction id(s) are not rows of {dataset!r}: "
                              f"{format_list(ids[unknown].tolist())}")


def _check_classes(classes: Sequence[str], label_classes: Iterable[str] | None, what: str) -> None:
    if label_classes is None:
        return
    used = set(label_classes)
    unused = [c for c in classes if c not in used]
    if unused:
        raise SchemaError(f"{what} name class(es) the labels never use: {format_list(unused)}; "
                          f"labels: {format_list(sorted(used), 12)}")


def _check_probs(ids: np.ndarray, probs: np.ndarray) -> np.ndarray:
    bad = ~np.isfinite(probs).all(axis=1)
    if bad.any():
        raise InputError(f"probabilities contain NaN or infinity in {_first(ids, bad)}")
    bad = ((probs < 0) | (probs > 1 + 1e-6)).any(axis=1)
    if bad.any():
        raise InputError(f"probabilities outside 0-1 in {_first(ids, bad)}")
    sums = probs.sum(axis=1)
    bad = np.abs(sums - 1.0) > SUM_TOLERANCE
    if bad.any():
        shown = ", ".join(f"{i!r} sums to {s:.3f}" for i, s in zip(ids[bad][:5], sums[bad][:5]))
        raise InputError(f"probabilities must sum to 1 (± {SUM_TOLERANCE:g}) per row; "
                         f"{int(bad.sum()):,} row(s) do not: {shown}")
    return (probs / sums[:, None]).astype(np.float32)


def _check_score(ids: np.ndarray, score: np.ndarray) -> np.ndarray:
    score = np.asarray(score, dtype=np.float64)
    bad = ~np.isfinite(score) | (score < 0) | (score > 1)
    if bad.any():
        raise InputError(f"prediction scores must be numbers in 0-1; NaN, missing or out of range in "
                         f"{_first(ids, bad)}")
    return score.astype(np.float32)


def _from_labels(ids: np.ndarray, predicted: Sequence, score: np.ndarray | None,
                 classes: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(probs, predicted codes, score) from a predicted label per row (+ confidence)."""
    values = pd.Series(predicted, dtype=object)
    missing = values.isna().to_numpy() | (values.astype(str).str.strip() == "").to_numpy()
    if missing.any():
        raise InputError(f"the predicted label is missing in {_first(ids, missing)}")
    codes = pd.Index(classes).get_indexer(values.astype(str).str.strip())
    n, c = len(ids), len(classes)
    conf = np.ones(n, np.float32) if score is None else score
    rest = np.where(c > 1, (1.0 - conf) / max(c - 1, 1), 0.0).astype(np.float32)
    probs = np.repeat(rest[:, None], c, axis=1)
    probs[np.arange(n), codes] = conf
    shown = np.full(n, np.nan, np.float32) if score is None else score
    return probs, codes.astype(np.int64), shown


def build_predictions(model: str, ids: Sequence, *, probs: np.ndarray | None = None,
                      classes: Sequence[str] | None = None, predicted: Sequence | None = None,
                      score: Sequence[float] | None = None, label_classes: Iterable[str] | None = None,
                      known_ids: Iterable[str] | None = None, dataset: str = "the dataset") -> Predictions:
    """Checked :class:`Predictions` of ``model`` for ``ids`` (n,).

    Give ``probs`` (n, C) with ``classes`` (C,) naming its columns, or ``predicted`` (n,)
    labels with an optional ``score`` (n,) confidence in 0-1 (both may be given: the
    predicted label then comes from ``predicted``, not the most probable class).
    ``label_classes``: the labels the dataset uses (None: not checked); ``known_ids``: its
    row ids (None: not checked). Rows of ``probs`` are renormalised to sum to 1 exactly.

    Raises SchemaError (no rows, blank, duplicate or unknown ids, classes the labels never
    use) and InputError (neither probabilities nor predicted labels; NaN; probabilities
    outside 0-1 or not summing to 1 ± 0.01; scores outside 0-1) naming the first rows.
    """
    ids = np.asarray([None if v is None else str(v) for v in ids], dtype=object)
    if not len(ids):
        raise SchemaError("the predictions have no rows")
    _check_ids(ids, known_ids, dataset)
    if probs is None and predicted is None:
        raise InputError("predictions need per-class probabilities or a predicted label per row")
    conf = None if score is None else _check_score(ids, np.asarray(score, dtype=np.float64))
    if probs is not None:
        names = [str(c) for c in (classes or [])]
        probs = np.asarray(probs, dtype=np.float64)
        if probs.ndim != 2 or probs.shape != (len(ids), len(names)):
            raise InputError(f"probabilities have shape {probs.shape}; expected ({len(ids)}, {len(names)}): "
                             "one row per id, one column per class")
        if len(set(names)) != len(names):
            raise SchemaError(f"probability columns name a class twice: {format_list(names)}")
        _check_classes(names, label_classes, "the probability columns")
        order = np.argsort(np.asarray(names, dtype=object))
        names = [names[i] for i in order]
        checked = _check_probs(ids, probs[:, order])
        if predicted is None:
            codes = checked.argmax(axis=1).astype(np.int64)
            conf = checked[np.arange(len(ids)), codes] if conf is None else conf
        else:
            _check_classes(sorted({str(p) for p in predicted if p is not None}), names, "predicted labels")
            _, codes, _ = _from_labels(ids, predicted, conf, names)
            conf = checked[np.arange(len(ids)), codes] if conf is None else conf
        return Predictions(model, ids, tuple(names), checked, codes, conf.astype(np.float32), True)
    values = sorted({str(p).strip() for p in predicted if p is not None and str(p).strip()})
    _check_classes(values, label_classes, "the predicted labels")
    names = sorted(set(values) | set(label_classes or ()))
    made, codes, shown = _from_labels(ids, predicted, conf, names)
    return Predictions(model, ids, tuple(names), made, codes, shown, False)


def keep_rows(preds: Predictions, ids: Iterable[str]) -> Predictions:
    """``preds`` restricted to the rows whose id is in ``ids`` (order kept)."""
    keep = pd.Index(list(ids), dtype=object).get_indexer(pd.Index(preds.ids, dtype=object)) >= 0
    if keep.all():
        return preds
    return Predictions(preds.model, preds.ids[keep], preds.classes, np.asarray(preds.probs)[keep],
                       preds.predicted[keep], preds.score[keep], preds.has_probs)
