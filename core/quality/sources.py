"""Label issues from three sources, one ranking: neighbours, a model's predictions, or both.

- ``neighbours``: the votes of each row's k nearest labelled neighbours
  (:func:`core.quality.find_label_issues`); needs an embedding.
- ``model``: a model's out-of-sample probabilities (:mod:`core.predictions`); confident
  learning (per-class thresholds, prune by noise rate, :mod:`core.quality.confident`) marks
  the rows it flags. Needs no embedding.
- ``combined``: both, as a weighted geometric mean (:func:`~core.quality.label_scores.combine`);
  rows without a vector use the model alone, rows without a prediction the neighbours alone.

Each distribution goes through :func:`~core.quality.label_scores.calibrate` (per-class
thresholds; its default strength, measured, leaves it a renormalisation) and
:func:`~core.quality.label_scores.issue_scores` (1 - P(label), ties by margin).

:func:`choose_source` settles the defaults the CLI and the Label review page share
(``combined`` when the dataset has predictions, else ``neighbours``; the newest model);
:func:`rank_label_issues` ranks. Each row keeps each source's own score, so the review
queue can say which source flagged it and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core._shared import check_positive_int
from core.errors import InputError, format_list
from core.quality.confident import confident_learning
from core.quality.knn import Neighbours, aligned_labels, index_ids
from core.quality.label_issues import (
    LabelIssues,
    auto_k,
    find_label_issues,
    neighbour_class_votes,
)
from core.quality.label_scores import calibrate, combine, issue_scores, rank

if TYPE_CHECKING:
    from core.index import VectorIndex
    from core.predictions import Predictions
    from core.workspace import Dataset

SOURCES = ("neighbours", "model", "combined")


def choose_source(ds: Dataset, source: str | None = None, model: str | None = None
                  ) -> tuple[str, str | None]:
    """(source, model) for ``ds``: ``source`` None = ``combined`` when the dataset has
    predictions and an embedding, ``model`` with predictions only, else ``neighbours``;
    ``model`` None = the most recently imported one.
    Raises InputError (unknown source, naming the choices; ``model``/``combined`` without
    predictions) and NotFoundError (an unknown model, naming the stored ones)."""
    from core.predictions import model_names, predictions_meta

    if source is not None and source not in SOURCES:
        raise InputError(f"unknown label-issue source {source!r}; choose one of {', '.join(SOURCES)}")
    models = model_names(ds)
    if model is not None:
        predictions_meta(ds, model)  # NotFoundError naming the stored models
    elif models:
        model = max(models, key=lambda m: (str(predictions_meta(ds, m).get("created") or ""), m))
    if source is None:
        source = ("combined" if ds.embedding_names() else "model") if models else "neighbours"
    if source != "neighbours" and not models:
        raise InputError(f"source {source!r} needs a model's predictions and {ds.name!r} has none; "
                         "import them with catalog import-predictions, or use --source neighbours")
    return source, (model if source != "neighbours" else None)


def _classes(labels: Mapping[str, str | None], ids: np.ndarray, preds: Predictions | None) -> list[str]:
    given = {g for g in aligned_labels(ids, labels) if g is not None}
    return sorted(given | (set(preds.classes) if preds is not None else set()))


def _model_scores(given: np.ndarray, probs: np.ndarray):
    """(IssueScores of the model's probabilities, confident learning's flags) for rows with a prediction."""
    cal = issue_scores(calibrate(probs, given), given)
    flags = confident_learning(given, probs).issues if probs.shape[1] >= 2 else np.zeros(len(given), bool)
    return cal, flags


def _neighbours_only(index, labels, k, neighbours) -> LabelIssues:
    if index is None:
        raise InputError("source 'neighbours' needs an embedding; compute one or use --source model")
    return find_label_issues(index, labels, k=k, neighbours=neighbours)


def rank_label_issues(index: VectorIndex | None, labels: Mapping[str, str | None], *,
                      source: str = "neighbours", predictions: Predictions | None = None,
                      k: int | None = None, neighbours: Neighbours | None = None) -> LabelIssues:
    """Labelled rows worst first by ``source`` (one of :data:`SOURCES`).

    ``index``: the embedding's index (None allowed for ``model``); ``labels``: id → effective
    label; ``predictions``: the model's (required for ``model`` and ``combined``; rows
    without one are scored by neighbours alone in ``combined`` and left out of ``model``);
    ``k`` neighbours (None: :func:`~core.quality.label_issues.auto_k`); ``neighbours`` a shared kNN pass. Rows no source has evidence for are
    left out. Raises InputError (unknown source; a missing index or predictions; fewer than
    2 labels) and what :func:`find_label_issues` raises.
    """
    if source not in SOURCES:
        raise InputError(f"unknown label-issue source {source!r}; choose one of {', '.join(SOURCES)}")
    if source == "neighbours":
        return _neighbours_only(index, labels, k, neighbours)
    if predictions is None:
        raise InputError(f"source {source!r} needs a model's predictions; import them with "
                         "catalog import-predictions")
    if source == "combined" and index is None:
        raise InputError("source 'combined' needs an embedding; compute one or use --source model")
    vec_ids = index_ids(index) if index is not None else np.empty(0, dtype=object)
    all_ids = pd.Index(vec_ids).union(pd.Index(predictions.ids)) if source == "combined" \
        else pd.Index(predictions.ids)
    classes = _classes(labels, all_ids.to_numpy(dtype=object), predictions)
    if len(classes) < 2:
        raise InputError(f"label issues need at least 2 different labels; found {format_list(classes)}")
    given_all = np.asarray(aligned_labels(all_ids.to_numpy(dtype=object), labels), dtype=object)
    labelled = pd.notna(given_all)
    ids = all_ids.to_numpy(dtype=object)[labelled]
    given = pd.Index(classes).get_indexer(given_all[labelled]).astype(np.int64)
    probs, has_pred = predictions.aligned(ids, classes)
    m, c = len(ids), len(classes)
    model_score = np.full(m, np.nan, np.float32)
    flags = np.zeros(m, bool)
    mod, f = _model_scores(given[has_pred], probs[has_pred])
    model_score[has_pred], flags[has_pred] = mod.score, f
    if source == "model":
        score, suggested, margin, has = mod.score, mod.suggested, mod.margin, np.ones(int(has_pred.sum()), bool)
        keep = np.flatnonzero(has_pred)
        nb_score = None
    else:
        votes = np.zeros((m, c), np.float32)
        pos = pd.Index(vec_ids).get_indexer(ids)
        in_index = pos >= 0
        codes = np.full(len(vec_ids), -1, np.int64)
        codes[pos[in_index]] = given[in_index]
        k = auto_k(int(in_index.sum()), c) if k is None else check_positive_int(k, "k")
        order = np.argsort(pos[in_index], kind="stable")
        rows = pos[in_index][order]
        v = neighbour_class_votes(index, vec_ids, rows, codes, c, k, neighbours)
        votes[np.flatnonzero(in_index)[order]] = v
        nb = issue_scores(calibrate(votes, given), given)
        nb_score = np.where(nb.has, nb.score, np.nan).astype(np.float32)
        mixed = calibrate(votes, given)  # rows without a prediction: neighbours alone
        if has_pred.any():
            mixed[has_pred] = combine(votes[has_pred], probs[has_pred], given[has_pred])
        both = issue_scores(mixed, given)
        keep = np.flatnonzero(both.has)
        score, suggested, margin = both.score[keep], both.suggested[keep], both.margin[keep]
        nb_score = nb_score[keep]
    ids, given, model_score, flags = ids[keep], given[keep], model_score[keep], flags[keep]
    order = rank(score, margin, ids.astype(str))
    names = np.asarray(classes, dtype=object)
    return LabelIssues(ids=tuple(ids[order].tolist()), given=tuple(names[given[order]].tolist()),
                       suggested=tuple(names[suggested[order]].tolist()),
                       scores=np.asarray(score, np.float32)[order], k=0 if k is None else k, source=source,
                       model=predictions.model,
                       neighbour_scores=None if nb_score is None else nb_score[order],
                       model_scores=model_score[order], model_flagged=flags[order])


def model_evidence(predictions: Predictions, row_ids: list[str], n: int = 3
                   ) -> list[tuple[tuple[str, float], ...]]:
    """The model's ``n`` (default 3) most probable classes with their probabilities for each
    of ``row_ids`` (``()`` for a row without a prediction): why the model flagged it."""
    at = pd.Index(predictions.ids).get_indexer(pd.Index(row_ids, dtype=object))
    out: list[tuple[tuple[str, float], ...]] = []
    for p in at:
        if p < 0:
            out.append(())
            continue
        row = np.asarray(predictions.probs[p], dtype=np.float64)
        top = np.lexsort((np.arange(len(row)), -row))[:n]
        out.append(tuple((predictions.classes[j], float(row[j])) for j in top if row[j] > 0))
    return out
