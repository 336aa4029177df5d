"""The shared kNN pass of :mod:`core.quality.label_issues`: neighbours of every row, computed once
(:func:`nearest_neighbours`) and reused by label issues, duplicates and outliers, and the
neighbours of a few rows read back from it (:func:`neighbours_of`: why a row was flagged)."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core._shared import check_positive_int
from core.errors import IndexStateError, InputError, format_list

if TYPE_CHECKING:
    from core.index import VectorIndex

log = logging.getLogger(__name__)

DUPLICATE_CANDIDATES = 16  # kNN candidates per row before falling back to range search
BATCH_ROWS = 4096
# Up to this many rows a pass runs in memory when needed (the app, the CLI); above it only
# the stored pass (core.quality.compute_neighbours) is used, as wide as it is.
IN_MEMORY_MAX_ROWS = 200_000
CHUNK_ROWS = 262_144  # rows of a shared pass scored at a time (bounded memory at 10M rows)


@dataclass(frozen=True)
class Neighbours:
    """The ``k`` nearest neighbours of every indexed row, self excluded.

    ``ids`` (n,) the index's ids when computed; ``scores`` (n, k) float32 cosine, best
    first, -inf padding; ``positions`` (n, k) int64 (int32 when stored) into ``ids``, -1
    padding. A stored pass (:func:`core.quality.compute_neighbours`) holds memory maps;
    ``recall`` is its estimated recall@10 (the share of the exact 10 nearest of sampled
    rows it holds; None when every neighbour is exact or it was not measured).
    """

    ids: np.ndarray
    scores: np.ndarray
    positions: np.ndarray
    k: int
    recall: float | None = None


# ---------------------------------------------------------------- helpers


def index_ids(index: VectorIndex, need: int = 2, *, check_only: bool = False) -> np.ndarray | None:
    """The index's ids as a str array (None with ``check_only``); InputError if fewer than ``need``."""
    if len(index) < need:
        raise InputError(f"the embedding has {len(index)} row(s); quality checks need at least {need}")
    return None if check_only else np.asarray(index.ids).astype(str)


def label_series(labels: Mapping[str, str | None]) -> pd.Series:
    """``labels`` as a Series indexed by str id; InputError on duplicate ids."""
    series = labels.copy() if isinstance(labels, pd.Series) else pd.Series(dict(labels), dtype=object)
    series.index = series.index.astype(str)
    if series.index.has_duplicates:
        dup = series.index[series.index.duplicated()].unique()
        raise InputError(f"labels has duplicate ids: {format_list(dup)}")
    return series


def aligned_labels(ids: np.ndarray, labels: Mapping[str, str | None] | None) -> list[str | None]:
    """Label per id (None for missing, None, NaN or blank); vectorised."""
    if labels is None:
        return [None] * len(ids)
    values = label_series(labels).reindex(ids)
    text = values.astype(object).where(values.notna(), None)
    missing = text.isna().to_numpy()
    as_str = text.astype(str)
    blank = missing | (as_str.str.strip() == "").to_numpy()
    return as_str.where(~blank, None).astype(object).where(~blank, None).tolist()


def rows_neighbours(index: VectorIndex, ids: np.ndarray, rows: np.ndarray, k: int,
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
    k = check_positive_int(k, "k")
    ids = index_ids(index)
    scores, pos = rows_neighbours(index, ids, np.arange(len(ids)), k)
    return Neighbours(ids=ids, scores=scores, positions=pos, k=k)


def usable_pass(ids: np.ndarray, k: int, neighbours: Neighbours | None) -> Neighbours | None:
    """``neighbours`` if at least ``k`` wide (capped at n - 1) or the set has more than
    IN_MEMORY_MAX_ROWS rows; None if narrower or absent (a fresh pass is then run).
    IndexStateError if they were computed for other rows than ``ids``."""
    if neighbours is None:
        return None
    if len(neighbours.ids) != len(ids) or not np.array_equal(neighbours.ids, ids):
        raise IndexStateError(
            f"the neighbours were computed for {len(neighbours.ids)} rows that differ from the "
            f"index's {len(ids)}; recompute them with nearest_neighbours(index)"
        )
    if neighbours.k >= min(k, len(ids) - 1):
        return neighbours
    if len(ids) > IN_MEMORY_MAX_ROWS:  # never a whole-set pass from scoring: use what is there
        log.info("shared neighbours have k=%d < %d wanted; %d rows: using them as they are",
                 neighbours.k, k, len(ids))
        return neighbours
    log.info("shared neighbours have k=%d < %d needed; searching again", neighbours.k, k)
    return None


def neighbour_graph(index: VectorIndex, ids: np.ndarray, rows: np.ndarray, k: int,
                    neighbours: Neighbours | None) -> tuple[np.ndarray, np.ndarray]:
    """Neighbours of ``rows`` (at least ``k`` wide): from ``neighbours`` if wide enough, else a fresh pass."""
    shared = usable_pass(ids, k, neighbours)
    if shared is not None:
        return shared.scores[rows], shared.positions[rows]
    return rows_neighbours(index, ids, rows, k)


def neighbour_chunks(index: VectorIndex, ids: np.ndarray, rows: np.ndarray, k: int,
                     neighbours: Neighbours | None, chunk: int | None = None
                     ) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """:func:`neighbour_graph` of ``rows`` (ascending) ``chunk`` rows at a time: (slice of
    ``rows``, scores float32, positions int64; ``chunk`` default CHUNK_ROWS), so a memory-mapped
    pass is never read whole."""
    shared, chunk = usable_pass(ids, k, neighbours), chunk or CHUNK_ROWS
    for start in range(0, len(rows), chunk):
        part = slice(start, start + chunk)
        if shared is not None:
            scores, pos = shared.scores[rows[part]], shared.positions[rows[part]]
        else:
            scores, pos = rows_neighbours(index, ids, rows[part], k)
        yield part, np.asarray(scores, dtype=np.float32), np.asarray(pos, dtype=np.int64)


def ranked(ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Order: score descending, ties by id ascending."""
    return np.lexsort((ids, -scores.astype(np.float64)))


# ---------------------------------------------------------------- public API


def neighbours_of(neighbours: Neighbours, row_ids: Sequence[str],
                  n: int = 5) -> list[tuple[tuple[str, float], ...]]:
    """The ``n`` (default 5) nearest neighbours of each of ``row_ids`` as ``(id, cosine)``
    pairs, best first, read from a shared pass (:func:`nearest_neighbours`; at most its
    ``k`` each, padding skipped): why a row was flagged, without a new search. One entry
    per id of ``row_ids``, in order; ``()`` for an id the pass does not hold.

    Raises InputError if ``n`` < 1.
    """
    n = check_positive_int(n, "n")
    at = pd.Index(neighbours.ids.astype(str)).get_indexer([str(r) for r in row_ids])
    out: list[tuple[tuple[str, float], ...]] = []
    for p in at:
        if p < 0:
            out.append(())
            continue
        pos, scores = neighbours.positions[p, :n], neighbours.scores[p, :n]
        keep = pos >= 0
        out.append(tuple((str(neighbours.ids[q]), float(s)) for q, s in zip(pos[keep], scores[keep])))
    return out
