"""Searching inside a subset of a :class:`core.index.lance.LanceIndex`, with no id list
sent to LanceDB per query.

A subset is resolved once (:func:`make_subset`) into one of two plans:

- **local** (up to ``LOCAL_MAX_ROWS`` rows, or any size when the table has no vector
  index): the subset's stored vectors are read once, by LanceDB row id
  (``take_row_ids``), and every query scores them exactly here (one matrix product).
  Measured at 200k x 384 on 2 busy cores: a LanceDB prefilter ``slot IN (2,000 slots)``
  took 809 ms a query, because LanceDB evaluates the list over every row each time.
- **post-filter** (larger subsets): LanceDB searches all rows for ``limit * n / m * 2``
  candidates and a boolean mask over slots keeps the subset's (the limit grows x4 until
  enough are kept). A prefilter ``slot IN (60,000 slots)`` took 293 ms a query.

Catalog's filters run in DuckDB over the rows table (labels, text, tags, slices, edits
and quality columns, which change without the vectors changing), so they reach the
vector index as a set of rows; the vectors table holds no copy of the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

LOCAL_MAX_ROWS = 20_000   # subsets up to this size are scored here from their vectors
TAKE_BATCH = 8192         # row ids per take_row_ids call
POST_MARGIN = 2           # post-filter: ask for this many times the expected candidates


@dataclass(frozen=True, eq=False)
class LanceSubset:
    """Rows to search inside, made by :meth:`LanceIndex.subset`: ``slots`` (m,) sorted
    int64; ``vectors`` (m, d) float32 unit rows when scored locally, else None; ``member``
    (max slot + 1,) bool mask for the post-filter, else None; ``state`` the index state it
    belongs to (stale after add/remove)."""

    slots: np.ndarray
    vectors: np.ndarray | None
    member: np.ndarray | None
    state: object

    def __len__(self) -> int:
        return len(self.slots)

    @property
    def local(self) -> bool:
        return self.vectors is not None


def read_row_ids(table: Any) -> tuple[np.ndarray, np.ndarray]:
    """(slots (n,) int64 ascending, LanceDB row ids (n,) uint64 of those slots)."""
    got = table.search().with_row_id(True).select(["slot"]).limit(None).to_arrow()
    slots = got["slot"].to_numpy().astype(np.int64)
    order = np.argsort(slots, kind="stable")
    return slots[order], got["_rowid"].to_numpy()[order]


def take_vectors(table: Any, row_ids: np.ndarray, slots: np.ndarray, dims: int) -> np.ndarray:
    """(m, d) float32 stored vectors of the rows ``row_ids`` (whose slots are ``slots``), in
    that order; read in batches of ``TAKE_BATCH``."""
    from core.index.lance_table import vectors_of

    out = np.empty((len(row_ids), dims), np.float32)
    for s in range(0, len(row_ids), TAKE_BATCH):
        got = table.take_row_ids(row_ids[s:s + TAKE_BATCH].tolist()).select(["slot", "vector"]).to_arrow()
        found = got["slot"].to_numpy()
        rows = vectors_of(got, dims)
        order = np.argsort(found)
        out[s:s + TAKE_BATCH] = rows[order[np.searchsorted(found[order], slots[s:s + TAKE_BATCH])]]
    return out


def make_subset(slots: np.ndarray, state: object, *, local: bool, vectors_of_slots, next_slot: int) -> LanceSubset:
    """A :class:`LanceSubset` of the unique sorted ``slots``: ``local`` reads their vectors
    with ``vectors_of_slots(slots)``, else a membership mask of ``next_slot`` entries."""
    if local:
        return LanceSubset(slots, vectors_of_slots(slots), None, state)
    member = np.zeros(next_slot, bool)
    member[slots] = True
    return LanceSubset(slots, None, member, state)


def local_top(subset: LanceSubset, q: np.ndarray, limit: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per unit query of ``q`` (q, d): (exact scores float32, slots int64) of the best
    ``limit`` rows of a local ``subset``, best first, ties by slot."""
    scores = q @ subset.vectors.T
    out = []
    for row in scores:
        top = np.argpartition(-row, limit - 1)[:limit] if limit < len(row) else np.arange(len(row))
        order = top[np.lexsort((subset.slots[top], -row[top]))]
        out.append((row[order].astype(np.float32), subset.slots[order]))
    return out


def post_limit(limit: int, n: int, m: int) -> int:
    """Candidates to ask LanceDB for so ``limit`` of them likely fall in ``m`` of ``n`` rows."""
    return min(n, int(np.ceil(limit * n / max(m, 1) * POST_MARGIN)))


def keep_members(found: list[tuple[np.ndarray, np.ndarray]], subset: LanceSubset, limit: int
                 ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``found`` per query cut to the rows of ``subset`` (its mask), at most ``limit`` each."""
    out = []
    for scores, slots in found:
        known = slots < len(subset.member)  # slots past the mask were added after it: not members
        keep = np.zeros(len(slots), bool)
        keep[known] = subset.member[slots[known]]
        out.append((scores[keep][:limit], slots[keep][:limit]))
    return out
