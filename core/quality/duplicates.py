"""Near-duplicates: all pairs at or above a cosine threshold, grouped into connected
components; groups whose members disagree on the label are conflicts."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from core.errors import InputError
from core.quality.knn import (
    BATCH_ROWS,
    DUPLICATE_CANDIDATES,
    Neighbours,
    aligned_labels,
    index_ids,
    neighbour_chunks,
)

if TYPE_CHECKING:
    from core.index import VectorIndex

log = logging.getLogger(__name__)

DEFAULT_DUPLICATE_THRESHOLD = 0.95
SCORE_TOLERANCE = 1e-5  # float32 rounding: an exact duplicate may score 0.99999


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
    ids = index_ids(index)
    n = len(ids)
    rows = np.arange(n)
    # any width of shared neighbours will do: saturated rows are range-searched below
    need = 1 if neighbours is not None else min(DUPLICATE_CANDIDATES, n - 1)
    src, dst, val, full = [], [], [], []
    for part, scores, pos in neighbour_chunks(index, ids, rows, need, neighbours):
        hit = (scores >= cut) & (pos >= 0)
        src.append(np.repeat(rows[part], hit.sum(axis=1)))
        dst.append(pos[hit])
        val.append(scores[hit])
        full.append(hit[:, -1])
        k = scores.shape[1]
    saturated = rows[np.concatenate(full)]
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
    groups = _groups(ids, lo, hi, s, aligned_labels(ids, labels))
    return Duplicates(pairs=pairs, groups=groups, threshold=threshold)


def closest_partners(duplicates: Duplicates) -> dict[str, tuple[str, float]]:
    """Row id → (its most similar other row, their cosine) over the pairs of
    ``duplicates`` (pairs are best first, so the first pair naming a row wins; ties by
    the pair order: ids ascending). Only rows in some pair are keys."""
    out: dict[str, tuple[str, float]] = {}
    for a, b, score in duplicates.pairs:
        out.setdefault(a, (b, score))
        out.setdefault(b, (a, score))
    return out


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
