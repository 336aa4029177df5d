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
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from core.errors import IndexStateError, InputError, format_list

if TYPE_CHECKING:
    from core.index import VectorIndex

log = logging.getLogger(__name__)

DEFAULT_K = 10
DEFAULT_DUPLICATE_THRESHOLD = 0.95
WEIGHT_EPSILON = 1e-6  # added to max(sim, 0) so a neighbour with sim ≤ 0 still counts a little
SCORE_TOLERANCE = 1e-5  # float32 rounding: an exact duplicate may score 0.99999
DUPLICATE_CANDIDATES = 16  # kNN candidates per row before falling back to range search
MAX_FETCH = 1024  # cap on neighbours fetched per row when few rows are labelled
BATCH_ROWS = 4096


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
class DuplicateGroup:
    """Rows connected by near-duplicate pairs. ``conflict``: ≥ 2 different non-null labels."""

    ids: tuple[str, ...]
    labels: tuple[str | None, ...]
    max_score: float
    conflict: bool

    def to_json(self) -> dict:
        return {"ids": list(self.ids), "labels": list(self.labels),
                "max_score": round(self.max_score, 6), "conflict": self.conflict}


@dataclass(frozen=True)
class Duplicates:
    """Pairs ``(a, b, score)`` with ``a < b`` and score ≥ threshold, best first, and their groups."""

    pairs: tuple[tuple[str, str, float], ...]
    groups: tuple[DuplicateGroup, ...]
    threshold: float

    def to_json(self) -> dict:
        """``{"pairs": [{"a", "b", "score"}, ...], "groups": [...], "threshold"}``."""
        return {
            "pairs": [{"a": a, "b": b, "score": round(s, 6)} for a, b, s in self.pairs],
            "groups": [g.to_json() for g in self.groups],
            "threshold": self.threshold,
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


@dataclass(frozen=True)
class Neighbours:
    """The ``k`` nearest neighbours of every indexed row, self excluded.

    ``ids`` (n,) the index's ids when computed; ``scores`` (n, k) float32 cosine, best
    first, -inf padding; ``positions`` (n, k) int64 into ``ids``, -1 padding.
    """

    ids: np.ndarray
    scores: np.ndarray
    positions: np.ndarray
    k: int


# ---------------------------------------------------------------- helpers


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be a whole number ≥ 1, got {k!r}")
    return int(k)


def _index_ids(index: VectorIndex, need: int = 2) -> np.ndarray:
    ids = np.asarray(index.ids).astype(str)
    if len(ids) < need:
        raise InputError(f"the embedding has {len(ids)} row(s); quality checks need at least {need}")
    return ids


def _aligned_labels(ids: np.ndarray, labels: Mapping[str, str | None] | None) -> list[str | None]:
    """Label per id (None for missing, None, NaN or blank)."""
    if labels is None:
        return [None] * len(ids)
    series = labels if isinstance(labels, pd.Series) else pd.Series(dict(labels), dtype=object)
    series = series.copy()
    series.index = series.index.astype(str)
    if series.index.has_duplicates:
        dup = series.index[series.index.duplicated()].unique()
        raise InputError(f"labels has duplicate ids: {format_list(dup)}")
    values = series.reindex(ids).tolist()
    blank = [v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) or not str(v).strip()
             for v in values]
    return [None if b else str(v) for v, b in zip(values, blank)]


def _neighbours(index: VectorIndex, ids: np.ndarray, rows: np.ndarray, k: int,
                batch: int = BATCH_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest neighbours of ``rows`` (positions into ``ids``), self excluded.

    Returns scores (m, k) float32 (-inf padding) and positions (m, k) int64 (-1 padding).
    Self is excluded by position, so an exact twin stays a neighbour; if self is not
    among the k + 1 hits (many identical vectors), the last hit is dropped instead.
    """
    m, fetch = len(rows), min(k + 1, len(ids))
    out_s, out_p = np.full((m, k), -np.inf, dtype=np.float32), np.full((m, k), -1, dtype=np.int64)
    for start in range(0, m, batch):
        chunk = rows[start:start + batch]
        queries = np.asarray(index.vectors_for(list(ids[chunk])), dtype=np.float32)
        scores, pos = index.search_positions(queries, fetch)
        scores, pos = np.asarray(scores, dtype=np.float32), np.asarray(pos, dtype=np.int64)
        drop = pos == chunk[:, None]
        drop[~drop.any(axis=1), -1] = True
        shape = (len(chunk), fetch - 1)
        out_s[start:start + len(chunk), :fetch - 1] = scores[~drop].reshape(shape)
        out_p[start:start + len(chunk), :fetch - 1] = pos[~drop].reshape(shape)
    return out_s, out_p


def nearest_neighbours(index: VectorIndex, k: int = DUPLICATE_CANDIDATES) -> Neighbours:
    """One bulk kNN pass over every row (self excluded by position, exact twins kept),
    to share between :func:`find_label_issues`, :func:`find_near_duplicates`,
    :func:`score_outliers` and :func:`quality_columns`. ``k`` default 16.

    Raises InputError if ``k`` < 1 or the index has < 2 rows.
    """
    k = _check_k(k)
    ids = _index_ids(index)
    scores, pos = _neighbours(index, ids, np.arange(len(ids)), k)
    return Neighbours(ids=ids, scores=scores, positions=pos, k=k)


def _graph(index: VectorIndex, ids: np.ndarray, rows: np.ndarray, k: int,
           neighbours: Neighbours | None) -> tuple[np.ndarray, np.ndarray]:
    """Neighbours of ``rows`` (at least ``k`` wide): from ``neighbours`` if wide enough, else a fresh pass."""
    if neighbours is not None:
        if len(neighbours.ids) != len(ids) or not np.array_equal(neighbours.ids, ids):
            raise IndexStateError(
                f"the neighbours were computed for {len(neighbours.ids)} rows that differ from the "
                f"index's {len(ids)}; recompute them with nearest_neighbours(index)"
            )
        if neighbours.k >= min(k, len(ids) - 1):
            return neighbours.scores[rows], neighbours.positions[rows]
        log.info("shared neighbours have k=%d < %d needed; searching again", neighbours.k, k)
    return _neighbours(index, ids, rows, k)


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


def _ranked(ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Order: score descending, ties by id ascending."""
    return np.lexsort((ids, -scores.astype(np.float64)))


# ---------------------------------------------------------------- public API


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
    k = _check_k(k)
    ids = _index_ids(index)
    codes, classes = _encode_labels(_aligned_labels(ids, labels))
    rows = np.flatnonzero(codes >= 0)
    if len(classes) < 2:
        found = f"only {format_list(classes)}" if len(classes) else "none"
        raise InputError(f"label issues need at least 2 different labels among the indexed rows; "
                         f"found {found} ({len(rows)} labelled row(s)). Label more rows or check "
                         "the label column.")
    fetch = _fetch_for(k, len(ids), len(rows))
    scores, pos = _graph(index, ids, rows, fetch, neighbours)
    issue, suggested, has = _label_issue_arrays(scores, pos, rows, codes, len(classes), k)
    if not has.all():
        log.info("%d labelled row(s) have no labelled neighbour among %d; left out", (~has).sum(), fetch)
    rows, issue, suggested = rows[has], issue[has], suggested[has]
    order = _ranked(ids[rows], issue)
    rows, issue, suggested = rows[order], issue[order], suggested[order]
    return LabelIssues(ids=tuple(ids[rows].tolist()), given=tuple(classes[codes[rows]].tolist()),
                       suggested=tuple(classes[suggested].tolist()), scores=issue, k=k)


def find_near_duplicates(index: VectorIndex, threshold: float = DEFAULT_DUPLICATE_THRESHOLD,
                         labels: Mapping[str, str | None] | None = None, *,
                         neighbours: Neighbours | None = None) -> Duplicates:
    """All pairs of rows with cosine ≥ ``threshold`` (default 0.95), and their groups.

    Candidates come from each row's nearest neighbours; rows whose 16th neighbour is
    still above the threshold get an exact ``range_search_positions``, so on an exact
    index the result is exact. Scores within 1e-5 below the threshold count (float32
    rounding: exact duplicates may score 0.99999), and scores are capped at 1.
    Groups are connected components of the pairs: conflicts (≥ 2 different labels)
    first, then larger, then higher max score. ``labels`` (optional) fill the groups'
    labels. ``neighbours``: a shared kNN pass used as the candidates (any k is correct:
    rows whose last neighbour is above the threshold are range-searched).

    Raises InputError if ``threshold`` is not in (0, 1] or the index has < 2 rows;
    IndexStateError if ``neighbours`` belong to other rows.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)) \
            or not (0.0 < float(threshold) <= 1.0):
        raise InputError(f"duplicate threshold must be in (0, 1], got {threshold!r}")
    threshold = float(threshold)
    cut = threshold - SCORE_TOLERANCE
    ids = _index_ids(index)
    n = len(ids)
    rows = np.arange(n)
    # any width of shared neighbours will do: saturated rows are range-searched below
    need = 1 if neighbours is not None else min(DUPLICATE_CANDIDATES, n - 1)
    scores, pos = _graph(index, ids, rows, need, neighbours)
    k = scores.shape[1]
    hit = (scores >= cut) & (pos >= 0)
    src, dst, val = [np.repeat(rows, hit.sum(axis=1))], [pos[hit]], [scores[hit]]
    saturated = rows[hit[:, -1]]
    for start in range(0, len(saturated), BATCH_ROWS):
        chunk = saturated[start:start + BATCH_ROWS]
        queries = np.asarray(index.vectors_for(list(ids[chunk])), dtype=np.float32)
        lims, rpos, rscores = index.range_search_positions(queries, cut)
        src.append(np.repeat(chunk, np.diff(np.asarray(lims, dtype=np.int64))))
        dst.append(np.asarray(rpos, dtype=np.int64))
        val.append(np.asarray(rscores, dtype=np.float32))
    if len(saturated):
        log.info("%d row(s) had ≥ %d neighbours above %.4f; range-searched", len(saturated), k, cut)
    a, b, s = np.concatenate(src), np.concatenate(dst), np.concatenate(val)
    keep = (a != b) & (b >= 0) & (s >= cut)
    a, b, s = a[keep], b[keep], np.minimum(s[keep], 1.0)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    frame = pd.DataFrame({"lo": lo, "hi": hi, "score": s}).groupby(["lo", "hi"], as_index=False)["score"].max()
    lo, hi, s = frame["lo"].to_numpy(), frame["hi"].to_numpy(), frame["score"].to_numpy(np.float64)
    ida, idb = ids[lo], ids[hi]
    swap = ida > idb
    ida, idb = np.where(swap, idb, ida), np.where(swap, ida, idb)
    order = np.lexsort((idb, ida, -s))
    pairs = tuple((str(ida[i]), str(idb[i]), float(s[i])) for i in order)
    groups = _groups(ids, lo, hi, s, _aligned_labels(ids, labels))
    return Duplicates(pairs=pairs, groups=groups, threshold=threshold)


def _groups(ids: np.ndarray, lo: np.ndarray, hi: np.ndarray, s: np.ndarray,
            labels: list[str | None]) -> tuple[DuplicateGroup, ...]:
    if not len(lo):
        return ()
    graph = coo_matrix((np.ones(len(lo)), (lo, hi)), shape=(len(ids), len(ids)))
    _, comp = connected_components(graph, directed=False)
    members = np.unique(np.concatenate([lo, hi]))
    best = pd.Series(s).groupby(comp[lo]).max()
    out = []
    for c, group in pd.Series(members).groupby(comp[members]):
        pos = group.to_numpy()[np.argsort(ids[group.to_numpy()], kind="stable")]
        labs = tuple(labels[p] for p in pos)
        distinct = {x for x in labs if x is not None}
        out.append(DuplicateGroup(tuple(ids[pos].tolist()), labs, float(best[c]), len(distinct) >= 2))
    out.sort(key=lambda g: (not g.conflict, -len(g.ids), -g.max_score, g.ids[0]))
    return tuple(out)


def _uniqueness(scores: np.ndarray) -> np.ndarray:
    """(n,) min-max normalised mean cosine distance over the valid neighbours."""
    valid = np.isfinite(scores)
    dist = np.where(valid, 1.0 - scores.astype(np.float64), 0.0)
    count = valid.sum(axis=1)
    mean = np.divide(dist.sum(axis=1), count, out=np.ones(len(scores)), where=count > 0)
    lo, hi = mean.min(), mean.max()
    if hi - lo <= 1e-12:
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
    k = _check_k(k)
    ids = _index_ids(index)
    width = min(k, len(ids) - 1)
    scores, _ = _graph(index, ids, np.arange(len(ids)), width, neighbours)
    uniq = _uniqueness(scores[:, :width])
    order = _ranked(ids, uniq)
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
    k = _check_k(k)
    ids = _index_ids(index)
    n, (codes, classes) = len(ids), _encode_labels(_aligned_labels(ids, labels))
    labelled = np.flatnonzero(codes >= 0)
    fetch = _fetch_for(k, n, len(labelled))
    scores, pos = _graph(index, ids, np.arange(n), fetch, neighbours)
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
