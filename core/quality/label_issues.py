"""Data quality from embeddings: label mistakes, near-duplicates and outliers.

All work on a :class:`~core.index.VectorIndex` (cosine = inner product) through its
bulk kNN (``search_positions``) and range search (``range_search_positions``), batched.

- :func:`find_label_issues`: a row whose labelled neighbours mostly carry another
  label is probably mislabelled (kNN label agreement, as in cleanlab's
  self-confidence ranking with kNN-predicted probabilities).
- :func:`find_near_duplicates`: all pairs at or above a cosine threshold, grouped
  into connected components; groups whose members disagree on the label are conflicts.
- :func:`score_outliers`: mean cosine distance to the k nearest neighbours,
  min-max normalised to 0-1 (1 = most unique).
- :func:`quality_columns`: label issue score, suggestion and uniqueness as columns of
  one table, one row per id (one kNN pass).

The kNN pass dominates the cost (~0.3 ms CPU per row on a 100k-row HNSW index):
:func:`nearest_neighbours` computes it once and every function takes it as
``neighbours=`` to skip its own pass (a stale one is refused).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core._shared import check_positive_int
from core.errors import InputError, format_list
from core.quality.knn import (
    DUPLICATE_CANDIDATES,
    Neighbours,
    index_ids,
    label_series,
    neighbour_chunks,
    ranked,
)
from core.quality.label_scores import DEFAULT_NEIGHBOUR_K, IssueScores, calibrate, issue_scores, neighbour_votes, rank

if TYPE_CHECKING:
    from core.index import VectorIndex

log = logging.getLogger(__name__)

# Label votes read up to this many neighbours per row (chosen by bench/bench_quality.py
# --sweep: flat for 20-40 on two sets); also the width of the stored neighbours pass.
DEFAULT_K = DEFAULT_NEIGHBOUR_K
MIN_AUTO_K = 5  # the automatic k never goes below this
OUTLIER_K = 10  # neighbours of the uniqueness score
FLAG_SCORE = 0.5  # a source "flags" a row when its own score reaches this
# The per-row columns of quality_columns (beside ``id``); the Catalog filters and sorts on them.
QUALITY_COLUMNS = ("label_issue_score", "suggested_label", "uniqueness")
MAX_FETCH = 1024  # cap on neighbours fetched per row when few rows are labelled


def pass_width(k: int | None = None) -> int:
    """Width of the stored neighbours pass that serves label votes at ``k`` (None:
    DEFAULT_K), the duplicate candidates and uniqueness: the widest of the three."""
    return max(DUPLICATE_CANDIDATES, OUTLIER_K, int(k or DEFAULT_K))


@dataclass(frozen=True)
class LabelIssues:
    """Labelled rows ranked by how likely their label is wrong, worst first (m rows).

    ``scores`` (m,) float32 in [0, 1] = 1 - P(given label) under the ``source``'s
    class distribution (``neighbours``: the votes of the row's k nearest labelled
    neighbours, :func:`~core.quality.label_scores.neighbour_votes`; ``model``: a model's predicted probabilities;
    ``combined``: both, mixed); ties broken by the margin of the suggested label, then id.
    ``neighbour_scores`` / ``model_scores`` (m,) float32: each source's own score of the
    row (NaN where it has no evidence; None when the source was not used);
    ``model_flagged`` (m,) bool: confident learning flags the row (prune by noise rate).
    """

    ids: tuple[str, ...]
    given: tuple[str, ...]
    suggested: tuple[str, ...]
    scores: np.ndarray
    k: int
    source: str = "neighbours"
    model: str | None = None
    neighbour_scores: np.ndarray | None = None
    model_scores: np.ndarray | None = None
    model_flagged: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def top(self, n: int) -> LabelIssues:
        """The ``n`` worst rows (all if fewer)."""
        n = max(int(n), 0)
        cut = (lambda a: None if a is None else a[:n])  # noqa: E731
        return replace(self, ids=self.ids[:n], given=self.given[:n], suggested=self.suggested[:n],
                       scores=self.scores[:n], neighbour_scores=cut(self.neighbour_scores),
                       model_scores=cut(self.model_scores), model_flagged=cut(self.model_flagged))

    def flagged_by(self, i: int, threshold: float = FLAG_SCORE) -> tuple[str, ...]:
        """Which sources flag row ``i``: ``neighbours`` when their own score is at least
        ``threshold`` (default 0.5), ``model`` when confident learning flags it or the
        model's score reaches ``threshold``."""
        out = []
        if self.neighbour_scores is not None and self.neighbour_scores[i] >= threshold:
            out.append("neighbours")
        if self.model_scores is not None and (
                self.model_scores[i] >= threshold
                or (self.model_flagged is not None and bool(self.model_flagged[i]))):
            out.append("model")
        return tuple(out)

    def to_json(self, limit: int | None = None) -> dict:
        """``{"issues": [{"id", "label", "suggested", "score", "flagged_by", "neighbour_score",
        "model_score"}, ...], "k", "source", "model"}`` worst first."""
        res = self if limit is None else self.top(limit)

        def value(a, i):
            return None if a is None or not np.isfinite(a[i]) else round(float(a[i]), 6)
        return {
            "issues": [
                {"id": idv, "label": g, "suggested": s, "score": round(float(sc), 6),
                 "flagged_by": list(res.flagged_by(i)), "neighbour_score": value(res.neighbour_scores, i),
                 "model_score": value(res.model_scores, i)}
                for i, (idv, g, s, sc) in enumerate(zip(res.ids, res.given, res.suggested, res.scores))
            ],
            "k": self.k, "source": self.source, "model": self.model,
        }


@dataclass(frozen=True)
class OutlierScores:
    """Uniqueness per row, ``scores`` (n,) float32 in [0, 1], sorted descending (1 = most unique)."""

    ids: tuple[str, ...]
    scores: np.ndarray
    k: int

    def to_json(self, limit: int | None = None) -> dict:
        n = len(self.ids) if limit is None else max(int(limit), 0)
        return {"outliers": [{"id": i, "score": round(float(s), 6)}
                             for i, s in zip(self.ids[:n], self.scores[:n])], "k": self.k}


def auto_k(n_labelled: int, n_classes: int) -> int:
    """The k label votes use when none is given: :data:`DEFAULT_K` (30), but no more than
    half the mean class size (at least :data:`MIN_AUTO_K`), so a small dataset's votes stay
    among the row's own class instead of reaching every row."""
    return int(min(DEFAULT_K, max(MIN_AUTO_K, n_labelled // max(2 * n_classes, 1))))


def _fetch_for(k: int, n: int, n_labelled: int) -> int:
    """Neighbours to fetch so about ``k`` of them are labelled (capped at MAX_FETCH)."""
    if n_labelled >= n:
        return k
    want = math.ceil((k + 1) * 1.5 * n / max(n_labelled, 1))
    return max(k, min(want, MAX_FETCH, n - 1))


def _encode_labels(ids: np.ndarray, labels: Mapping[str, str | None] | None) -> tuple[np.ndarray, np.ndarray]:
    """(n,) int codes per id (-1 = unlabelled: missing, None, NaN or blank) and the sorted
    class names; vectorised (no Python object per row beyond ``labels`` itself)."""
    if labels is None or not len(labels):
        return np.full(len(ids), -1, np.int64), np.empty(0, dtype=object)
    values = label_series(labels).reindex(ids)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    names = np.asarray([str(u) for u in uniques], dtype=object)  # one per distinct label
    blank = np.asarray([not n.strip() for n in names], dtype=bool)
    classes = np.asarray(sorted(set(names[~blank].tolist())), dtype=object)
    remap = np.where(blank, -1, pd.Index(classes).get_indexer(names)).astype(np.int64)
    codes = np.asarray(codes, dtype=np.int64)
    if not len(remap):  # no id of ``ids`` is labelled
        return codes, classes
    return np.where(codes >= 0, remap[np.maximum(codes, 0)], -1), classes


def neighbour_class_votes(index: VectorIndex, ids: np.ndarray, rows: np.ndarray, codes: np.ndarray,
                          n_classes: int, k: int, neighbours: Neighbours | None = None) -> np.ndarray:
    """(m, C) float32 class votes of the first ``k`` labelled neighbours of
    ``rows`` (ascending positions into ``ids``; :func:`~core.quality.label_scores.neighbour_votes`),
    chunk by chunk; an all-zero row has no labelled neighbour."""
    fetch = _fetch_for(k, len(ids), int((codes >= 0).sum()))
    votes = np.zeros((len(rows), n_classes), np.float32)
    for part, scores, pos in neighbour_chunks(index, ids, rows, fetch, neighbours):
        votes[part] = neighbour_votes(scores, pos, codes, n_classes, k)
    return votes


def _issue_scores(index: VectorIndex, ids: np.ndarray, rows: np.ndarray, codes: np.ndarray,
                  n_classes: int, k: int, neighbours: Neighbours | None) -> IssueScores:
    """Calibrated neighbour :class:`IssueScores` of ``rows`` (ascending)."""
    votes = neighbour_class_votes(index, ids, rows, codes, n_classes, k, neighbours)
    given = codes[rows]
    return issue_scores(calibrate(votes, given), given)


def find_label_issues(index: VectorIndex, labels: Mapping[str, str | None], k: int | None = None, *,
                      neighbours: Neighbours | None = None) -> LabelIssues:
    """Rank labelled rows by how strongly their nearest neighbours disagree with their label.

    For each labelled row, the label votes of its ``k`` (None: :func:`auto_k`, 30 on any
    but a small dataset) nearest labelled neighbours (itself excluded by position; an exact twin counts;
    :func:`~core.quality.label_scores.neighbour_votes`, then
    :func:`~core.quality.label_scores.calibrate`); score = 1 - P(given label); suggested =
    the most likely other label. Unlabelled rows (missing, None, NaN, "") are ignored; ids in
    ``labels`` but not in the index are ignored. Rows without any labelled neighbour
    are left out. Worst first, ties by the margin of the suggestion, then id.
    ``neighbours``: a shared kNN pass (:func:`nearest_neighbours`), used if at least as
    wide as needed.

    Raises InputError if ``k`` < 1, the index has < 2 rows, or < 2 distinct labels;
    IndexStateError if ``neighbours`` belong to other rows.
    """
    ids = index_ids(index)
    codes, classes = _encode_labels(ids, labels)
    rows = np.flatnonzero(codes >= 0)
    k = auto_k(len(rows), len(classes)) if k is None else check_positive_int(k, "k")
    if len(classes) < 2:
        found = f"only {format_list(classes)}" if len(classes) else "none"
        raise InputError(f"label issues need at least 2 different labels among the indexed rows; "
                         f"found {found} ({len(rows)} labelled row(s)). Label more rows or check "
                         "the label column.")
    found = _issue_scores(index, ids, rows, codes, len(classes), k, neighbours)
    has = found.has
    if not has.all():
        log.info("%d labelled row(s) have no labelled neighbour; left out", (~has).sum())
    rows, issue, suggested, margin = rows[has], found.score[has], found.suggested[has], found.margin[has]
    order = rank(issue, margin, ids[rows])
    rows, issue, suggested = rows[order], issue[order], suggested[order]
    return LabelIssues(ids=tuple(np.asarray(index.ids)[rows].tolist()), given=tuple(classes[codes[rows]].tolist()),
                       suggested=tuple(classes[suggested].tolist()), scores=issue, k=k,
                       neighbour_scores=issue)


# Similarities come from float32 kernels: the same pair scored A->B and B->A can
# differ by a few ulps (~1e-7), so spreads below this (relative to the largest mean
# distance, at least 1) are rounding, not a difference in uniqueness.
_UNIQUENESS_TOL = 1e-5


def _mean_distance(scores: np.ndarray) -> np.ndarray:
    """(m,) mean cosine distance over each row's valid neighbours (1 if it has none)."""
    valid = np.isfinite(scores)
    dist = np.where(valid, 1.0 - scores.astype(np.float64), 0.0)
    count = valid.sum(axis=1)
    return np.divide(dist.sum(axis=1), count, out=np.ones(len(scores)), where=count > 0)


def _uniqueness(index: VectorIndex, ids: np.ndarray, width: int,
                neighbours: Neighbours | None) -> np.ndarray:
    """(n,) min-max normalised mean cosine distance to the first ``width`` neighbours,
    chunk by chunk; all 0 when the means differ only by float32 rounding."""
    mean = np.empty(len(ids), np.float64)
    for part, scores, _ in neighbour_chunks(index, ids, np.arange(len(ids)), width, neighbours):
        mean[part] = _mean_distance(scores[:, :width])
    lo, hi = mean.min(), mean.max()
    if hi - lo <= _UNIQUENESS_TOL * max(1.0, abs(hi)):
        return np.zeros(len(mean), dtype=np.float32)
    return ((mean - lo) / (hi - lo)).astype(np.float32)


def score_outliers(index: VectorIndex, k: int = OUTLIER_K, *,
                   neighbours: Neighbours | None = None) -> OutlierScores:
    """Uniqueness of every row: mean cosine distance (1 - sim) to its ``k`` (default 10)
    nearest neighbours (self excluded), min-max normalised to [0, 1]; sorted descending,
    ties by id. All rows equally unique → all 0. ``neighbours``: a shared kNN pass.

    Raises InputError if ``k`` < 1 or the index has < 2 rows; IndexStateError if
    ``neighbours`` belong to other rows.
    """
    k = check_positive_int(k, "k")
    ids = index_ids(index)
    width = min(k, len(ids) - 1)
    uniq = _uniqueness(index, ids, width, neighbours)
    order = ranked(ids, uniq)
    return OutlierScores(tuple(np.asarray(index.ids)[order].tolist()), uniq[order], k)


def quality_columns(index: VectorIndex, labels: Mapping[str, str | None], k: int | None = None, *,
                    neighbours: Neighbours | None = None) -> pd.DataFrame:
    """One row per indexed id (index order) with columns ``id``, ``label_issue_score``
    (float, NaN for unlabelled rows or rows without labelled neighbours),
    ``suggested_label`` (str or None) and ``uniqueness`` (float in [0, 1]).

    One kNN pass (or ``neighbours``) serves both scores; the values equal those of
    :func:`find_label_issues` (with ``k``; None: :func:`auto_k`) and :func:`score_outliers`
    (its default k, :data:`OUTLIER_K`). With fewer than 2 distinct
    labels the label columns are all NaN/None (no error: uniqueness is still useful).
    Raises InputError if ``k`` < 1 or the index has < 2 rows; IndexStateError if
    ``neighbours`` belong to other rows.
    """
    ids = index_ids(index)
    n, (codes, classes) = len(ids), _encode_labels(ids, labels)
    labelled = np.flatnonzero(codes >= 0)
    k = auto_k(len(labelled), len(classes)) if k is None else check_positive_int(k, "k")
    issue = np.full(n, np.nan, dtype=np.float64)
    suggested = np.full(n, None, dtype=object)
    if len(classes) >= 2:
        found = _issue_scores(index, ids, labelled, codes, len(classes), k, neighbours)
        has = found.has
        issue[labelled[has]] = found.score[has]
        suggested[labelled[has]] = classes[found.suggested[has]]
    return pd.DataFrame({
        "id": np.asarray(index.ids, dtype=object),
        "label_issue_score": issue,
        "suggested_label": pd.Series(suggested, dtype=object),
        "uniqueness": _uniqueness(index, ids, min(OUTLIER_K, n - 1), neighbours).astype(np.float64),
    })
