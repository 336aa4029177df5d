"""VectorIndex: cosine kNN and range search over string ids, hiding FAISS.

Vectors are stored L2-normalised (float32), so cosine similarity is the inner product.
Two kinds: ``exact`` (``faiss.IndexFlatIP``) and ``hnsw`` (an HNSW graph over 8-bit
codes whose candidates are re-ranked exactly; see :mod:`core.index.faiss_build`). Both keep the
flat float32 matrix, which serves every exact operation: range search, subset search,
:meth:`VectorIndex.vectors_for`; scores are always exact cosines.
Rows live in *slots* (faiss ids 0..ntotal-1); removal compacts the exact kind at once
and leaves tombstones in the HNSW kind (excluded with an ``IDSelectorBitmap``) until
more than half the slots are dead, when the graph is rebuilt from the live rows.
Files: ``index.faiss``, ``index_ids.npy`` (one id per slot, ``''`` = removed),
``index.json`` (format version, kind, params, dims, count, slots); written and checked by
:mod:`core.index.files`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from core._shared import check_positive_int
from core.errors import (
    EmbeddingError,
    IndexStateError,
    InputError,
    NotFoundError,
    format_list,
)
from core.index.faiss_build import (
    ADD_CHUNK,
    Hits,
    ProgressFn,
    RangeHits,
    _one_thread,
    add_chunks,
    as_matrix,
    bitmap_selector,
    check_ids,
    checked_norms,
    flat_of,
    graph_of,
    new_faiss,
    train_if_needed,
    unit_chunks,
    unit_query_rows,
)
from core.index.files import FORMAT_VERSION, read_index_files, write_index_files
from core.index.huge_pages import advise_huge_pages
from core.index.kinds import check_params, resolve_kind

log = logging.getLogger(__name__)

_QUERY_BATCH = 4096     # queries per faiss call in the bulk methods
_GATHER_MAX_ROWS = 8192  # `within` subsets up to this size are copied out and scanned


class VectorIndex:
    """Cosine nearest-neighbour index over string ids. Build with :func:`build_index`
    or :meth:`VectorIndex.load`; attributes ``kind`` ("exact" | "hnsw"), ``dims``, ``params``.
    """

    def __init__(self, index: faiss.Index, slot_ids: np.ndarray, kind: str,
                 params: dict[str, int]) -> None:
        self.kind = kind
        self.dims = int(index.d)
        self.params = dict(params)
        self._index = index
        self._set_slots(slot_ids)

    # -- internal state -------------------------------------------------------------
    def _set_slots(self, slot_ids: np.ndarray, slot_of: dict[str, int] | None = None) -> None:
        """(ntotal,) object ids per faiss slot, '' for removed; resets lookups and caches."""
        self._slot_ids = slot_ids
        self._alive = slot_ids != ""
        if slot_of is None:
            live = np.flatnonzero(self._alive)
            slot_of = dict(zip(slot_ids[live].tolist(), live.tolist()))
        self._slot_of = slot_of
        self._flat = flat_of(self._index)
        self._cache: dict[str, Any] = {}
        if self.kind == "hnsw":  # after every build, load, add or rebuild (buffers may move)
            advise_huge_pages(graph_of(self._index))

    def _matrix(self) -> np.ndarray:
        """(ntotal, d) float32 view of the stored vectors (invalid after add/remove)."""
        n = self._flat.ntotal
        if n == 0:
            return np.empty((0, self.dims), np.float32)
        return faiss.rev_swig_ptr(self._flat.get_xb(), n * self.dims).reshape(n, self.dims)

    def _alive_selector(self) -> tuple[faiss.IDSelector, np.ndarray] | None:
        """Selector of live slots, None when nothing is removed."""
        if len(self) == len(self._slot_ids):
            return None
        if "alive_sel" not in self._cache:
            self._cache["alive_sel"] = bitmap_selector(self._alive)
        return self._cache["alive_sel"]

    def _positions(self) -> np.ndarray | None:
        """(ntotal,) int64 slot -> position in :attr:`ids` (-1 dead); None if identical."""
        if len(self) == len(self._slot_ids):
            return None
        if "positions" not in self._cache:
            live_rank = np.cumsum(self._alive, dtype=np.int64) - 1
            self._cache["positions"] = np.where(self._alive, live_rank, -1)
        return self._cache["positions"]

    def _slots(self, ids: Sequence[str], strict: bool = True) -> np.ndarray:
        """int64 slots of ``ids``; NotFoundError on unknown ids (dropped if not strict)."""
        if isinstance(ids, str):
            raise InputError(f"expected a sequence of ids, got the single string {ids!r}")
        get = self._slot_of.get
        found = [get(v, -1) for v in ids]
        missing = [v for v, s in zip(ids, found) if s < 0]
        if missing and strict:
            raise NotFoundError(f"{len(missing)} id(s) not in the index: {format_list(missing)}")
        return np.array([s for s in found if s >= 0], dtype=np.int64)

    def _queries(self, queries: Any) -> np.ndarray:
        q = np.asarray(queries)
        if q.ndim == 1 and q.dtype == np.float32 and q.shape[0] == self.dims:  # one query: fast path
            norm = float(np.sqrt(q @ q))
            if 0.0 < norm < math.inf:
                return (q / np.float32(norm)).reshape(1, -1)
        return unit_query_rows(q[None, :] if q.ndim == 1 else q, self.dims)

    def _knn(self, q: np.ndarray, k: int, index: faiss.Index,
             sel: faiss.IDSelector | None = None, ef: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Batched faiss search -> (scores (q, k) float32 with -inf padding, slots (q, k) int64)."""
        if index.ntotal == 0:  # empty (an empty hnsw index is not even trained): all padding
            return np.full((len(q), k), -np.inf, np.float32), np.full((len(q), k), -1, np.int64)
        params = None
        if isinstance(index, faiss.IndexRefine):  # hnsw kind: the graph gets ef and the filter
            params = self._refine_params(sel, ef)
        elif sel is not None:
            params = faiss.SearchParameters(sel=sel)
        if len(q) == 1:  # one query: one thread (a second OpenMP thread only spins, and on a
            scores, slots = _one_thread(index.search, q, k, params=params)  # busy box, waits)
        elif len(q) <= _QUERY_BATCH:
            scores, slots = index.search(q, k, params=params)
        else:
            parts = [index.search(q[s:s + _QUERY_BATCH], k, params=params)
                     for s in range(0, len(q), _QUERY_BATCH)]
            scores, slots = (np.concatenate([p[j] for p in parts]) for j in (0, 1))
        scores[slots < 0] = -np.inf
        return scores, slots

    def _refine_params(self, sel: faiss.IDSelector | None, ef: int | None) -> faiss.SearchParameters:
        """Search parameters of the hnsw kind (graph ef and filter, re-rank factor); the plain
        ones are made once per index (a few µs per query otherwise)."""
        if sel is None and ef is None and "refine_params" in self._cache:
            return self._cache["refine_params"][0]
        graph = faiss.SearchParametersHNSW(efSearch=ef or self.params["ef_search"])
        if sel is not None:
            graph.sel = sel
        params = faiss.IndexRefineSearchParameters(k_factor=float(self.params["k_factor"]),
                                                   base_index_params=graph)
        params.referenced = graph  # keep the graph's parameters alive as long as these
        if sel is None and ef is None:
            self._cache["refine_params"] = (params, graph)
        return params

    def _hits(self, scores: np.ndarray, slots: np.ndarray) -> Hits:
        pad = slots < 0
        if pad.all():  # nothing found (also: an empty or emptied index, no slot to look up)
            return Hits(ids=np.full(slots.shape, "", dtype=object), scores=scores)
        ids = self._slot_ids[np.where(pad, 0, slots)] if pad.any() else self._slot_ids[slots]
        ids[pad] = ""
        return Hits(ids=ids, scores=scores)

    # -- public API -----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._slot_of)

    def __repr__(self) -> str:
        return f"VectorIndex(kind={self.kind!r}, dims={self.dims}, rows={len(self)}, params={self.params})"

    @property
    def ids(self) -> np.ndarray:
        """(n,) object array of live ids in insertion order (read-only)."""
        if "ids" not in self._cache:
            live = self._slot_ids[self._alive]
            live.flags.writeable = False
            self._cache["ids"] = live
        return self._cache["ids"]

    def search(self, queries: np.ndarray, k: int, *, within: Sequence[str] | None = None,
               exclude: Sequence[str] | None = None) -> Hits:
        """Top-``k`` rows by cosine for ``queries`` (d,) or (q, d) float32 -> :class:`Hits`.

        ``within``: rank only these ids (exact for subsets under 1/4 of the rows; HNSW with
        an id filter above that); ``exclude``: ids never returned (unknown ones ignored).
        Raises EmbeddingError (bad queries), InputError (k < 1), NotFoundError (``within``).
        """
        q, k = self._queries(queries), check_positive_int(k, "k")
        excluded = self._slots(exclude, strict=False) if exclude is not None else np.empty(0, np.int64)
        if within is not None:
            subset = np.setdiff1d(np.unique(self._slots(within)), excluded)
            return self._hits(*self._search_subset(q, k, subset))
        if len(self) == 0:
            return self._hits(np.full((len(q), k), -np.inf, np.float32), np.full((len(q), k), -1))
        sel = self._alive_selector()
        scores, slots = self._knn(q, k + len(excluded), self._index, sel and sel[0])
        if len(excluded):  # drop excluded hits, keep the first k of the rest in order
            keep = (slots >= 0) & ~np.isin(slots, excluded)
            order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
            scores, slots = (np.take_along_axis(a, order, axis=1) for a in (scores, slots))
            pad = ~np.take_along_axis(keep, order, axis=1)
            scores[pad], slots[pad] = -np.inf, -1
        return self._hits(scores, slots)

    def _search_subset(self, q: np.ndarray, k: int, subset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = len(subset)
        if m == 0:
            return np.full((len(q), k), -np.inf, np.float32), np.full((len(q), k), -1, np.int64)
        if m <= _GATHER_MAX_ROWS:  # small: scan a copy of the subset's vectors
            scores, local = faiss.knn(q, self._matrix()[subset], k, metric=faiss.METRIC_INNER_PRODUCT)
            slots = np.where(local >= 0, subset[np.maximum(local, 0)], -1)
            scores[slots < 0] = -np.inf
            return scores, slots
        mask = np.zeros(len(self._slot_ids), dtype=bool)
        mask[subset] = True
        sel, _bits = bitmap_selector(mask)
        if self.kind == "exact" or 4 * m < len(self):  # exact scan of the flat vectors
            return self._knn(q, k, self._flat, sel)
        ef = max(self.params["ef_search"], k) * min(4, -(-len(self) // m))
        return self._knn(q, k, self._index, sel, ef)

    def search_positions(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Bulk kNN over all live rows: (scores (q, k) float32, positions (q, k) int64 into
        :attr:`ids`, -1 padding). Batched; uses HNSW for the hnsw kind.
        """
        q, k = self._queries(queries), check_positive_int(k, "k")
        sel = self._alive_selector()
        scores, slots = self._knn(q, k, self._index, sel and sel[0])
        pos = self._positions()
        if pos is not None:
            slots = np.where(slots >= 0, pos[np.maximum(slots, 0)], -1)
        return scores, slots

    def _range(self, q: np.ndarray, threshold: float, sel: faiss.IDSelector | None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact range search over the flat vectors, batched, each query's hits best first."""
        t = float(threshold)
        if not np.isfinite(t):
            raise InputError(f"threshold must be a finite number, got {threshold!r}")
        # faiss keeps score > radius; the next float32 below t makes it score >= t.
        radius = float(np.nextafter(np.float32(t), np.float32(-np.inf)))
        params = faiss.SearchParameters(sel=sel) if sel is not None else None
        lims, scores, slots = [np.zeros(1, np.int64)], [], []
        for s in range(0, len(q), _QUERY_BATCH):
            if self._flat.ntotal == 0:
                lim = np.zeros(len(q[s:s + _QUERY_BATCH]) + 1, np.int64)
                d, i = np.empty(0, np.float32), np.empty(0, np.int64)
            else:
                lim, d, i = self._flat.range_search(q[s:s + _QUERY_BATCH], radius, params=params)
                lim = lim.astype(np.int64)
            lims.append(lim[1:] + lims[-1][-1])
            owner = np.repeat(np.arange(len(lim) - 1), np.diff(lim))
            order = np.lexsort((i, -d, owner))  # by query, then best score, then slot
            scores.append(d[order])
            slots.append(i[order])
        return np.concatenate(lims), np.concatenate(scores), np.concatenate(slots)

    def range_search(self, query: np.ndarray, threshold: float, *,
                     within: Sequence[str] | None = None) -> RangeHits:
        """All live rows (optionally only ``within``) with cosine >= ``threshold``, exact,
        best first, for one ``query`` (d,) float32. NotFoundError on unknown ``within`` ids.
        """
        q = self._queries(query)
        if len(q) != 1:
            raise EmbeddingError(f"range_search takes one query vector, got {len(q)}")
        sel = self._alive_selector()
        if within is not None:
            mask = np.zeros(len(self._slot_ids), dtype=bool)
            mask[self._slots(within)] = True
            sel = bitmap_selector(mask)
        _, scores, slots = self._range(q, threshold, sel and sel[0])
        return RangeHits(ids=self._slot_ids[slots].astype(object), scores=scores)

    def range_search_positions(self, queries: np.ndarray, threshold: float
                               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact range search of (q, d) ``queries`` over all live rows, faiss style:
        (lims (q+1,) int64, positions (lims[-1],) int64 into :attr:`ids`, scores float32);
        query i's hits are ``[lims[i]:lims[i+1]]``, best first.
        """
        sel = self._alive_selector()
        lims, scores, slots = self._range(self._queries(queries), threshold, sel and sel[0])
        pos = self._positions()
        return lims, (slots if pos is None else pos[slots]), scores

    def add(self, vectors: np.ndarray, ids: Sequence[str]) -> None:
        """Append ``vectors`` (n, d) with new unique ``ids``. EmbeddingError on wrong dims,
        NaN/Inf, zero rows, duplicate or existing ids; SchemaError on empty/non-str ids.
        """
        new_ids = check_ids(ids, vectors)
        taken = [v for v in new_ids if v in self._slot_of]
        if taken:
            raise EmbeddingError(f"{len(taken)} ids are already in the index: {format_list(taken)}")
        x = as_matrix(vectors, self.dims)
        norms = checked_norms(x, new_ids)
        train_if_needed(self._index, x, norms)  # an hnsw index built empty learns its codes here
        add_chunks(self._index, unit_chunks(x, norms), len(x))
        start = len(self._slot_ids)
        self._slot_of.update((v, start + i) for i, v in enumerate(new_ids.tolist()))
        self._set_slots(np.concatenate([self._slot_ids, new_ids]), self._slot_of)

    def remove(self, ids: Sequence[str]) -> int:
        """Remove ``ids``; returns how many were removed. NotFoundError on unknown ids."""
        slots = np.unique(self._slots(ids))
        if len(slots) == 0:
            return 0
        slot_ids = self._slot_ids.copy()
        slot_ids[slots] = ""
        if self.kind == "exact":
            self._index.remove_ids(faiss.IDSelectorBatch(slots.size, faiss.swig_ptr(slots)))
            slot_ids = slot_ids[slot_ids != ""]
        elif 2 * (slot_ids == "").sum() > len(slot_ids):
            live = slot_ids != ""
            log.info("rebuilding HNSW graph from %d live rows", int(live.sum()))
            rebuilt = new_faiss("hnsw", self.dims, self.params)
            matrix = self._matrix()  # unit rows already
            rows = np.flatnonzero(live)
            train_if_needed(rebuilt, matrix[rows], np.ones(len(rows), np.float32))
            add_chunks(rebuilt, (matrix[rows[s:s + ADD_CHUNK]] for s in range(0, len(rows), ADD_CHUNK)),
                       len(rows))
            self._index = rebuilt
            slot_ids = slot_ids[live]
        self._set_slots(slot_ids)
        return len(slots)

    def vectors_for(self, ids: Sequence[str]) -> np.ndarray:
        """(len(ids), d) float32 stored (normalised) vectors. NotFoundError on unknown ids."""
        return self._matrix()[self._slots(ids)].copy()

    def save(self, directory: str | Path) -> None:
        """Write ``index.faiss``, ``index_ids.npy`` then ``index.json``, each atomically."""
        write_index_files(directory, self._index, self._slot_ids, {
            "format_version": FORMAT_VERSION, "kind": self.kind, "params": self.params,
            "dims": self.dims, "count": len(self), "slots": len(self._slot_ids)})

    @classmethod
    def load(cls, directory: str | Path) -> VectorIndex:
        """Read an index written by :meth:`save`. IndexStateError if files are missing,
        unreadable, from an older format or inconsistent (kind, dims, count, duplicate ids).
        """
        index, slot_ids, meta = read_index_files(directory)
        kind = meta["kind"]
        try:
            params = check_params(kind, meta.get("params") or {})
        except InputError as err:
            raise IndexStateError(f"index.json in {directory} has bad params: {err}") from err
        if kind == "hnsw":
            graph_of(index).hnsw.efSearch = params["ef_search"]
            index.k_factor = float(params["k_factor"])
        return cls(index, slot_ids, kind, params)


def build_index(vectors: np.ndarray, ids: Sequence[str], kind: str = "auto", *,
                progress: ProgressFn | None = None, **params: int) -> VectorIndex:
    """Index ``vectors`` (n, d) float32 under ``ids`` (n unique non-empty str) for cosine search.

    ``kind``: "auto" (exact when n <= EXACT_MAX_ROWS, else hnsw), "exact" or "hnsw";
    ``params``: M, ef_construction, ef_search, k_factor (defaults HNSW_DEFAULTS; ignored by
    exact); ``progress(done, total)`` as rows are added. Validates every row first, then
    normalises and adds ``ADD_CHUNK`` rows at a time, so peak memory is the input plus
    faiss's own copy (plus the 8-bit codes and graph for hnsw). Raises InputError
    (kind/params), EmbeddingError (shape, NaN/Inf, zero rows, id count, duplicates),
    SchemaError (empty or non-str ids).
    """
    resolve_kind(kind, 0)  # InputError on an unknown kind before any work
    id_arr = check_ids(ids, vectors)
    x = as_matrix(vectors, None)
    resolved = resolve_kind(kind, len(x))
    checked = check_params(resolved, params)
    norms = checked_norms(x, id_arr)  # every row is checked before anything is built
    log.info("building %s index over %d rows of %d dims %s", resolved, len(x), x.shape[1], checked)
    index = new_faiss(resolved, x.shape[1], checked)
    train_if_needed(index, x, norms)
    add_chunks(index, unit_chunks(x, norms), len(x), progress)
    return VectorIndex(index, id_arr, resolved, checked)
