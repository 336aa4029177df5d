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
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core._shared import check_positive_int
from core.errors import InputError, format_list
from core.quality.knn import (
    Neighbours,
    aligned_labels,
    index_ids,
    neighbour_graph,
    ranked,
)

if TYPE_CHECKING:
    from core.index import VectorIndex

log = logging.getLogger(__name__)

DEFAULT_K = 10
# The per-row columns of quality_columns (beside ``id``); the Catalog filters and sorts on them.
QUALITY_COLUMNS = ("label_issue_score", "suggested_label", "uniqueness")
WEIGHT_EPSILON = 1e-6  # added to max(sim, 0) so a neighbour with sim ≤ 0 still counts a little
MAX_FETCH = 1024  # cap on neighbours fetched per row when few rows are labelled


@dataclass(frozen=True)
class LabelIssues:
    """Labelled rows ranked by how likely their label is wrong, worst first.

    ``scores`` (m,) float32 = 1 - P(given label) under the similarity-weighted label
    distribution of the row's k nearest labelled neighbours, in [0, 1].
    """

    ids: tuple[str, ...]
    given: tuple[str, ...]
    suggested: tuple[str, ...]
    scores: np.ndarray
    k: int

    def __len__(self) -> int:
        return len(self.ids)

    def top(self, n: int) -> LabelIssues:
        """The ``n`` worst rows (all if fewer)."""
        n = max(int(n), 0)
        return LabelIssues(self.ids[:n], self.given[:n], self.suggested[:n], self.scores[:n], self.k)

    def to_json(self, limit: int | None = None) -> dict:
        """``{"issues": [{"id", "label", "suggested", "score"}, ...], "k"}`` worst first."""
        res = self if limit is None else self.top(limit)
        return {
            "issues": [
                {"id": i, "label": g, "suggested": s, "score": round(float(sc), 6)}
                for i, g, s, sc in zip(res.ids, res.given, res.suggested, res.scores)
            ],
            "k": self.k,
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


def _label_issue_arrays(scores: np.ndarray, pos: np.ndarray, rows: np.ndarray, codes: np.ndarray,
                        n_classes: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per query row: (1 - P(given)) float32, suggested code, has-evidence mask.

    Uses the first ``k`` labelled neighbours of each row (``codes`` (n,) int, -1 = unlabelled).
    """
    m = len(rows)
    ncode = np.where(pos >= 0, codes[np.clip(pos, 0, None)], -1)
    labelled = ncode >= 0
    labelled &= np.cumsum(labelled, axis=1) <= k
    weights = np.where(labelled, np.maximum(scores, 0.0) + WEIGHT_EPSILON, 0.0)
    flat = (np.arange(m)[:, None] * n_classes + ncode)[labelled]
    mass = np.bincount(flat, weights=weights[labelled], minlength=m * n_classes).reshape(m, n_classes)
    total = mass.sum(axis=1)
    has, given = total > 0, codes[rows]
    p_given = np.divide(mass[np.arange(m), given], total, out=np.zeros(m), where=has)
    # most likely other label; ties and empty rows fall back to the more frequent label
    prior = np.bincount(codes[codes >= 0], minlength=n_classes).astype(np.float64)
    other = mass + 1e-9 * prior / prior.sum()
    other[np.arange(m), given] = -1.0
    suggested = other.argmax(axis=1)
    return np.clip(1.0 - p_given, 0.0, 1.0).astype(np.float32), suggested, has


def _fetch_for(k: int, n: int, n_labelled: int) -> int:
    """Neighbours to fetch so about ``k`` of them are labelled (capped at MAX_FETCH)."""
    if n_labelled >= n:
        return k
    want = math.ceil((k + 1) * 1.5 * n / max(n_labelled, 1))
    return max(k, min(want, MAX_FETCH, n - 1))


def _encode_labels(aligned: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """(n,) int codes (-1 = unlabelled) and the sorted class names."""
    series = pd.Series(aligned, dtype=object)
    codes, classes = pd.factorize(series, sort=True, use_na_sentinel=True)
    return codes.astype(np.int64), np.asarray(classes, dtype=object)


def find_label_issues(index: VectorIndex, labels: Mapping[str, str | None], k: int = DEFAULT_K, *,
                      neighbours: Neighbours | None = None) -> LabelIssues:
    """Rank labelled rows by how strongly their nearest neighbours disagree with their label.

    For each labelled row, the label distribution of its ``k`` (default 10) nearest
    labelled neighbours (itself excluded by position; an exact twin counts) is
    weighted by ``max(sim, 0) + 1e-6``; score = 1 - P(given label); suggested = the most
    likely other label. Unlabelled rows (missing, None, NaN, "") are ignored; ids in
    ``labels`` but not in the index are ignored. Rows without any labelled neighbour
    are left out. Worst first, ties by id. ``neighbours``: a shared kNN pass
    (:func:`nearest_neighbours`), used if at least as wide as needed.

    Raises InputError if ``k`` < 1, the index has < 2 rows, or < 2 distinct labels;
    IndexStateError if ``neighbours`` belong to other rows.
    """
    k = check_positive_int(k, "k")
    ids = index_ids(index)
    codes, classes = _encode_labels(aligned_labels(ids, labels))
    rows = np.flatnonzero(codes >= 0)
    if len(classes) < 2:
        found = f"only {format_list(classes)}" if len(classes) else "none"
        raise InputError(f"label issues need at least 2 different labels among the indexed rows; "
                         f"found {found} ({len(rows)} labelled row(s)). Label more rows or check "
                         "the label column.")
    fetch = _fetch_for(k, len(ids), len(rows))
    scores, pos = neighbour_graph(index, ids, rows, fetch, neighbours)
    issue, suggested, has = _label_issue_arrays(scores, pos, rows, codes, len(classes), k)
    if not has.all():
        log.info("%d labelled row(s) have no labelled neighbour among %d; left out", (~has).sum(), fetch)
    rows, issue, suggested = rows[has], issue[has], suggested[has]
    order = ranked(ids[rows], issue)
    rows, issue, suggested = rows[order], issue[order], suggested[order]
    return LabelIssues(ids=tuple(ids[rows].tolist()), given=tuple(classes[codes[rows]].tolist()),
                       suggested=tuple(classes[suggested].tolist()), scores=issue, k=k)


# Similarities come from float32 kernels: the same pair scored A->B and B->A can
# differ by a few ulps (~1e-7), so spreads below this (relative to the largest mean
# distance, at least 1) are rounding, not a difference in uniqueness.
_UNIQUENESS_TOL = 1e-5


def _uniqueness(scores: np.ndarray) -> np.ndarray:
    """(n,) min-max normalised mean cosine distance over the valid neighbours;
    all 0 when the means differ only by float32 rounding."""
    valid = np.isfinite(scores)
    dist = np.where(valid, 1.0 - scores.astype(np.float64), 0.0)
    count = valid.sum(axis=1)
    mean = np.divide(dist.sum(axis=1), count, out=np.ones(len(scores)), where=count > 0)
    lo, hi = mean.min(), mean.max()
    if hi - lo <= _UNIQUENESS_TOL * max(1.0, abs(hi)):
        return np.zeros(len(mean), dtype=np.float32)
    return ((mean - lo) / (hi - lo)).astype(np.float32)


def score_outliers(index: VectorIndex, k: int = DEFAULT_K, *,
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
    scores, _ = neighbour_graph(index, ids, np.arange(len(ids)), width, neighbours)
    uniq = _uniqueness(scores[:, :width])
    order = ranked(ids, uniq)
    return OutlierScores(tuple(ids[order].tolist()), uniq[order], k)


def quality_columns(index: VectorIndex, labels: Mapping[str, str | None], k: int = DEFAULT_K, *,
                    neighbours: Neighbours | None = None) -> pd.DataFrame:
    """One row per indexed id (index order) with columns ``id``, ``label_issue_score``
    (float, NaN for unlabelled rows or rows without labelled neighbours),
    ``suggested_label`` (str or None) and ``uniqueness`` (float in [0, 1]).

    One kNN pass (or ``neighbours``) serves both scores; the values equal those of
    :func:`find_label_issues` and :func:`score_outliers`. With fewer than 2 distinct
    labels the label columns are all NaN/None (no error: uniqueness is still useful).
    Raises InputError if ``k`` < 1 or the index has < 2 rows; IndexStateError if
    ``neighbours`` belong to other rows.
    """
    k = check_positive_int(k, "k")
    ids = index_ids(index)
    n, (codes, classes) = len(ids), _encode_labels(aligned_labels(ids, labels))
    labelled = np.flatnonzero(codes >= 0)
    fetch = _fetch_for(k, n, len(labelled))
    scores, pos = neighbour_graph(index, ids, np.arange(n), fetch, neighbours)
    issue = np.full(n, np.nan, dtype=np.float64)
    suggested: list[str | None] = [None] * n
    if len(classes) >= 2:
        vals, sugg, has = _label_issue_arrays(scores[labelled], pos[labelled], labelled, codes, len(classes), k)
        issue[labelled[has]] = vals[has]
        for p, c in zip(labelled[has], sugg[has]):
            suggested[p] = str(classes[c])
    return pd.DataFrame({
        "id": ids.astype(object),
        "label_issue_score": issue,
        "suggested_label": pd.Series(suggested, dtype=object),
        "uniqueness": _uniqueness(scores[:, :min(k, n - 1)]).astype(np.float64),
    })
