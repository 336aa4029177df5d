"""VectorIndex: cosine kNN and range search over string ids, hiding FAISS.

Vectors are stored L2-normalised (float32): cosine is the inner product, and every score returned is
an exact cosine. ``exact`` (``faiss.IndexFlatIP``) and ``hnsw`` (HNSW over 8-bit codes, re-ranked
exactly; :mod:`core.index.faiss_build`) keep the float32 matrix in memory for every exact operation;
``ivf`` (inverted lists of 4-bit codes; :mod:`core.index.ivf`) re-ranks from the memory-mapped
``vectors.npy`` (:mod:`core.index.mapped`): its kNN and range search are approximate in which rows
they find, exact in their scores. Rows live in *slots* (faiss ids); removal compacts the exact kind,
drops the codes of the ivf kind (slots never move) and leaves tombstones in the hnsw kind (excluded
with an ``IDSelectorBitmap``) until more than half the slots are dead, when the graph is rebuilt;
``rebase`` renumbers ivf slots onto a rewritten ``vectors.npy``. Files (:mod:`core.index.files`):
``index.faiss``, ``index_ids.npy`` (one id per slot, ``''`` = removed), ``index.json``; ivf adds
``index_norms.npy``, ``index_added.npy`` and reads ``vectors.npy`` beside them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from itertools import repeat
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
    Hits, RangeHits, Subset, add_chunks, as_matrix, batched_search, bitmap_selector, check_ids,
    checked_norms, finite_threshold, flat_of, flat_range, graph_of, rebuild_hnsw, refine_params,
    scored_range, subset_of, train_if_needed, unit_chunks, unit_query_rows,
)
from core.index.files import FORMAT_VERSION, read_index_files, write_index_files
from core.index.huge_pages import advise_huge_pages
from core.index.ivf import filtered_probes, grow_ivf, ivf_knn, ivf_lists, ivf_range, rebase_ivf
from core.index.kinds import check_params
from core.index.mapped import MappedVectors

log = logging.getLogger(__name__)

_GATHER_MAX_ROWS = 8192  # `within` subsets up to this size are copied out and scanned
# ivf: rows read from the map cost ~2-4 us each (1M x 384, page cache warm: 1k rows 0.3 ms,
# 3k 3 ms, 10k 36 ms, bench_ivf --sweep), the inverted file with a filter ~0.4-1 ms.
_IVF_GATHER_MAX_ROWS = 2048


class VectorIndex:
    """Cosine nearest-neighbour index over string ids, from :func:`build_index` or :meth:`load`;
    attributes ``kind`` ("exact" | "hnsw" | "ivf"), ``dims``, ``params``."""

    def __init__(self, index: faiss.Index, slot_ids: np.ndarray, kind: str,
                 params: dict[str, int], source: MappedVectors | None = None) -> None:
        self.kind = kind
        self.dims = int(index.d)
        self.params = dict(params)
        self._index = index
        self._source = source
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
        self._flat = None if self.kind == "ivf" else flat_of(self._index)
        self._cache: dict[str, Any] = {}
        self._state = object()  # a Subset made before this add/remove/load is stale
        if self.kind == "hnsw":  # after every build, load, add or rebuild (buffers may move)
            advise_huge_pages(graph_of(self._index))

    def _matrix(self) -> np.ndarray:
        """(ntotal, d) float32 view of the stored vectors of exact/hnsw (invalid after add/remove)."""
        n = self._flat.ntotal
        if n == 0:
            return np.empty((0, self.dims), np.float32)
        return faiss.rev_swig_ptr(self._flat.get_xb(), n * self.dims).reshape(n, self.dims)

    def _rows(self, slots: np.ndarray) -> np.ndarray:
        """(len(slots), d) float32 copy of the unit rows of ``slots``."""
        return self._source.rows(slots) if self.kind == "ivf" else self._matrix()[slots]

    def _alive_selector(self) -> tuple[faiss.IDSelector, np.ndarray] | None:
        """Selector of live slots, None when nothing is removed (or removed rows have no codes)."""
        if len(self) == len(self._slot_ids) or self.kind == "ivf":
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
        values = ids.tolist() if isinstance(ids, np.ndarray) else list(ids)
        found = np.fromiter(map(self._slot_of.get, values, repeat(-1)), dtype=np.int64, count=len(values))
        if strict and (found < 0).any():
            missing = [values[i] for i in np.flatnonzero(found < 0)]
            raise NotFoundError(f"{len(missing)} id(s) not in the index: {format_list(missing)}")
        return found[found >= 0]

    def _queries(self, queries: Any) -> np.ndarray:
        q = np.asarray(queries)
        if q.ndim == 1 and q.dtype == np.float32 and q.shape[0] == self.dims:  # one query: fast path
            norm = float(np.sqrt(q @ q))
            if 0.0 < norm < math.inf:
                return (q / np.float32(norm)).reshape(1, -1)
        return unit_query_rows(q[None, :] if q.ndim == 1 else q, self.dims)

    def _knn(self, q: np.ndarray, k: int, index: faiss.Index,
             sel: faiss.IDSelector | None = None, ef: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Batched faiss search -> (scores (q, k) float32 with -inf padding, slots (q, k) int64).
        ``ef``: the hnsw graph's beam, or for ivf the lists probed."""
        if self.kind == "ivf" and index is self._index:
            return ivf_knn(index, self._source, q, k, self.params["k_factor"], ef or self.params["nprobe"], sel)
        if index.ntotal == 0:  # empty (an empty hnsw index is not even trained): all padding
            return np.full((len(q), k), -np.inf, np.float32), np.full((len(q), k), -1, np.int64)
        params = None
        if isinstance(index, faiss.IndexRefine):  # hnsw kind: the graph gets ef and the filter
            params = self._refine_params(sel, ef)
        elif sel is not None:
            params = faiss.SearchParameters(sel=sel)
        return batched_search(index, q, k, params)

    def _refine_params(self, sel: faiss.IDSelector | None, ef: int | None) -> faiss.SearchParameters:
        """hnsw search parameters; the plain ones made once per index (a few µs a query)."""
        if sel is not None or ef is not None:
            return refine_params(self.params, sel, ef)
        if "refine_params" not in self._cache:
            self._cache["refine_params"] = refine_params(self.params, None, None)
        return self._cache["refine_params"]

    def _hits(self, scores: np.ndarray, slots: np.ndarray) -> Hits:
        pad = slots < 0
        if pad.all():  # nothing found (also: an empty or emptied index, no slot to look up)
            return Hits(ids=np.full(slots.shape, "", dtype=object), scores=scores)
        ids = self._slot_ids[np.where(pad, 0, slots)] if pad.any() else self._slot_ids[slots]
        ids[pad] = ""
        return Hits(ids=ids, scores=scores)

    def _subset_of(self, slots: np.ndarray) -> Subset:
        """A :class:`Subset` of ``slots``; an id filter unless small enough to be searched
        exactly by reading its rows."""
        small = _IVF_GATHER_MAX_ROWS if self.kind == "ivf" else _GATHER_MAX_ROWS
        return subset_of(slots, len(self._slot_ids), small, self._state)

    def _within(self, within: Sequence[str] | Subset, excluded: np.ndarray | None = None) -> Subset:
        """``within`` (ids or a Subset of this index's state) less ``excluded`` slots."""
        if not isinstance(within, Subset):
            within = self.subset(within)
        elif within.state is not self._state:
            raise IndexStateError("the subset was made before rows were added to or removed from "
                                  "the index; make it again with VectorIndex.subset")
        if excluded is not None and len(excluded):
            return self._subset_of(np.setdiff1d(within.slots, excluded))
        return within

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

    def subset(self, ids: Sequence[str] | None = None, *, positions: np.ndarray | None = None) -> Subset:
        """``ids`` (or ``positions`` into :attr:`ids`: no lookup per id, what a 10M-row filter
        should pass) resolved for ``within=`` of :meth:`search` / :meth:`range_search`, to reuse
        across one filter's queries; stale once rows are added or removed. NotFoundError on
        unknown ids, InputError on positions out of range."""
        if positions is None:
            return self._subset_of(self._slots(ids))
        pos = np.asarray(positions, dtype=np.int64)
        if len(pos) and (pos.min() < 0 or pos.max() >= len(self)):
            raise InputError(f"subset positions must be in 0..{len(self) - 1}")
        return self._subset_of(np.flatnonzero(self._alive)[pos] if len(self) < len(self._slot_ids) else pos)

    def search(self, queries: np.ndarray, k: int, *, within: Sequence[str] | Subset | None = None,
               exclude: Sequence[str] | None = None) -> Hits:
        """Top-``k`` rows by cosine for ``queries`` (d,) or (q, d) float32 -> :class:`Hits`.

        ``within``: rank only these ids or this :meth:`subset` (small: exact over its rows;
        larger: with an id filter, the flat matrix (exact; hnsw under 1/4 of the rows), the
        graph, or the inverted file probing more lists); ``exclude``: ids never returned
        (unknown ones ignored). Raises EmbeddingError (bad queries), InputError (k < 1),
        NotFoundError (``within``), IndexStateError (a stale subset)."""
        q, k = self._queries(queries), check_positive_int(k, "k")
        excluded = self._slots(exclude, strict=False) if exclude is not None else np.empty(0, np.int64)
        if within is not None:
            return self._hits(*self._search_subset(q, k, self._within(within, excluded)))
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

    def _search_subset(self, q: np.ndarray, k: int, subset: Subset) -> tuple[np.ndarray, np.ndarray]:
        m, sel = len(subset), subset.selector
        if m == 0:
            return np.full((len(q), k), -np.inf, np.float32), np.full((len(q), k), -1, np.int64)
        if sel is None:  # small: exact over a copy of the subset's rows
            scores, local = faiss.knn(q, self._rows(subset.slots), k, metric=faiss.METRIC_INNER_PRODUCT)
            slots = np.where(local >= 0, subset.slots[np.maximum(local, 0)], -1)
            scores[slots < 0] = -np.inf
            return scores, slots
        if self.kind == "ivf":  # a filter keeps m/n of each list: probe more lists
            return self._knn(q, k, self._index, sel, self._probes(m))
        if self.kind == "exact" or 4 * m < len(self):  # exact scan of the flat vectors
            return self._knn(q, k, self._flat, sel)
        ef = max(self.params["ef_search"], k) * min(4, -(-len(self) // m))
        return self._knn(q, k, self._index, sel, ef)

    def _probes(self, m: int) -> int | None:
        """ivf: lists probed inside a subset of ``m`` rows."""
        return filtered_probes(self.params["nprobe"], self._index.nlist, len(self), m) if self.kind == "ivf" else None

    def search_positions(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Bulk kNN over all live rows: (scores (q, k) float32, positions (q, k) int64 into
        :attr:`ids`, -1 padding). Batched; uses the graph / inverted file of hnsw / ivf."""
        q, k = self._queries(queries), check_positive_int(k, "k")
        sel = self._alive_selector()
        scores, slots = self._knn(q, k, self._index, sel and sel[0])
        pos = self._positions()
        if pos is not None:
            slots = np.where(slots >= 0, pos[np.maximum(slots, 0)], -1)
        return scores, slots

    def _range(self, q: np.ndarray, threshold: float, sel: faiss.IDSelector | None,
               probes: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Range search, batched, each query's hits best first: exact over the flat vectors,
        or (ivf) the probed lists re-ranked exactly. InputError on a non-finite threshold."""
        t = finite_threshold(threshold)
        if self.kind == "ivf":
            return ivf_range(self._index, self._source, q, t, probes or self.params["nprobe"], sel)
        return flat_range(self._flat, q, t, sel)

    def range_search(self, query: np.ndarray, threshold: float, *,
                     within: Sequence[str] | Subset | None = None) -> RangeHits:
        """All live rows (optionally only ``within``: ids or a :meth:`subset`) with cosine
        >= ``threshold``, best first, for one ``query`` (d,) float32: exact for exact/hnsw
        and small subsets; ivf otherwise finds them in the probed lists. NotFoundError on
        unknown ``within`` ids, IndexStateError on a stale subset."""
        q = self._queries(query)
        if len(q) != 1:
            raise EmbeddingError(f"range_search takes one query vector, got {len(q)}")
        sel, probes = self._alive_selector(), None
        if within is not None:
            subset = self._within(within)
            if subset.selector is None:  # small: exact over a copy of its rows
                scores, slots = scored_range(self._rows(subset.slots), subset.slots, q[0], threshold)
                return RangeHits(ids=self._slot_ids[slots].astype(object), scores=scores)
            sel, probes = (subset.selector, subset.bits), self._probes(len(subset))
        _, scores, slots = self._range(q, threshold, sel and sel[0], probes)
        return RangeHits(ids=self._slot_ids[slots].astype(object), scores=scores)

    def range_search_positions(self, queries: np.ndarray, threshold: float
                               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Range search of (q, d) ``queries`` over all live rows (as :meth:`range_search`): (lims
        (q+1,) int64, positions into :attr:`ids` int64, scores float32), query i's hits
        ``[lims[i]:lims[i+1]]`` best first."""
        sel = self._alive_selector()
        lims, scores, slots = self._range(self._queries(queries), threshold, sel and sel[0])
        pos = self._positions()
        return lims, (slots if pos is None else pos[slots]), scores

    def add(self, vectors: np.ndarray, ids: Sequence[str]) -> None:
        """Append ``vectors`` (n, d) with new unique ``ids`` (ivf: normalised, in a side array
        saved next to the index). EmbeddingError on wrong dims, NaN/Inf, zero rows, duplicate
        or existing ids; SchemaError on empty/non-str ids."""
        new_ids = check_ids(ids, vectors)
        taken = [v for v in new_ids if v in self._slot_of]
        if taken:
            raise EmbeddingError(f"{len(taken)} ids are already in the index: {format_list(taken)}")
        x = as_matrix(vectors, self.dims)
        norms = checked_norms(x, new_ids)
        start = len(self._slot_ids)
        if self.kind == "ivf":
            self._index = grow_ivf(self._index, self._source, x, norms, start, self.params)
        else:
            train_if_needed(self._index, x, norms)  # an hnsw index built empty learns its codes here
            add_chunks(self._index, unit_chunks(x, norms), len(x))
        self._slot_of.update((v, start + i) for i, v in enumerate(new_ids.tolist()))
        self._set_slots(np.concatenate([self._slot_ids, new_ids]), self._slot_of)

    def remove(self, ids: Sequence[str]) -> int:
        """Remove ``ids``; returns how many were removed. NotFoundError on unknown ids."""
        slots = np.unique(self._slots(ids))
        if len(slots) == 0:
            return 0
        slot_ids = self._slot_ids.copy()
        slot_ids[slots] = ""
        slot_of = None
        if self.kind == "exact":
            self._index.remove_ids(faiss.IDSelectorBatch(slots.size, faiss.swig_ptr(slots)))
            slot_ids = slot_ids[slot_ids != ""]
        elif self.kind == "ivf":  # codes dropped; slots (rows of the source) stay put
            self._index.remove_ids(faiss.IDSelectorBatch(slots.size, faiss.swig_ptr(slots)))
            slot_of = self._slot_of
            for v in self._slot_ids[slots].tolist():
                del slot_of[v]
        elif 2 * (slot_ids == "").sum() > len(slot_ids):
            live = slot_ids != ""
            log.info("rebuilding HNSW graph from %d live rows", int(live.sum()))
            self._index = rebuild_hnsw(self._matrix(), np.flatnonzero(live), self.params)
            slot_ids = slot_ids[live]
        self._set_slots(slot_ids, slot_of)
        return len(slots)

    def rebase(self, vectors: np.ndarray) -> None:
        """ivf: re-rank from ``vectors`` (n, d) float32, the live rows in :attr:`ids` order; others: no-op."""
        if self.kind == "ivf":
            self._source = rebase_ivf(self._index, self._source, self._alive, vectors)
            self._set_slots(self._slot_ids[self._alive])

    def coarse_lists(self) -> tuple[np.ndarray, np.ndarray] | None:
        """ivf: its lists as (centroids (nlist, d) float32 unit rows, the list of each row of
        :attr:`ids` (n,) int32); other kinds: None."""
        if self.kind != "ivf":
            return None
        centroids, assign = ivf_lists(self._index, len(self._slot_ids))
        return centroids, assign[self._alive]

    def vectors_for(self, ids: Sequence[str]) -> np.ndarray:
        """(len(ids), d) float32 stored (normalised) vectors. NotFoundError on unknown ids."""
        return self._rows(self._slots(ids))

    def save(self, directory: str | Path) -> None:
        """Write the index files, each atomically, ``index.json`` last. ivf: also its norms
        and added rows, and ``vectors.npy`` when the folder has none (IndexStateError if the
        folder's ``vectors.npy`` is not the matrix the index was built from)."""
        directory = Path(directory)
        meta = {"format_version": FORMAT_VERSION, "kind": self.kind, "params": self.params,
                "dims": self.dims, "count": len(self), "slots": len(self._slot_ids)}
        if self.kind == "ivf":
            self._source.save(directory)
            meta.update(base_rows=self._source.base_rows, base_fingerprint=self._source.base_fingerprint)
        write_index_files(directory, self._index, self._slot_ids, meta)

    @classmethod
    def load(cls, directory: str | Path) -> VectorIndex:
        """Read an index written by :meth:`save` (ivf: ``vectors.npy`` memory-mapped).
        IndexStateError if files are missing, unreadable, from an older format or
        inconsistent (kind, dims, count, duplicate ids, a changed ``vectors.npy``)."""
        directory = Path(directory)
        index, slot_ids, meta = read_index_files(directory)
        kind = meta["kind"]
        try:
            params = check_params(kind, meta.get("params") or {})
        except InputError as err:
            raise IndexStateError(f"index.json in {directory} has bad params: {err}") from err
        source = None
        if kind == "hnsw":
            graph_of(index).hnsw.efSearch = params["ef_search"]
            index.k_factor = float(params["k_factor"])
        elif kind == "ivf":
            source = MappedVectors.load(directory, meta, len(slot_ids))
        return cls(index, slot_ids, kind, params, source)
