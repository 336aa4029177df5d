"""Building blocks of :mod:`core.index.vector_index`: result types (Hits, RangeHits, Subset),
id and row validation, faiss index construction for exact/hnsw, batched kNN and range search.

The ``hnsw`` kind is an HNSW graph over 8-bit scalar-quantised codes
(``faiss.IndexHNSWSQ``, QT_8bit, inner product) wrapped in ``faiss.IndexRefineFlat``:
the graph proposes ``k_factor * k`` candidates from the compact codes and the exact
float32 vectors (the refine index, also the matrix every exact operation reads)
re-rank them, so scores are exact. At 1M × 384 this answers a query in ~0.9 ms at
recall@10 ≈ 0.97 (with the graph in huge pages, :mod:`core.index.huge_pages`) where a graph
over float32 vectors needs ~1.4 ms for 0.96 (docs/benchmarks.md, "Search (VectorIndex)").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np

from core._shared import ProgressFn
from core.errors import EmbeddingError, InputError, SchemaError, format_list

ADD_CHUNK = 32768   # rows normalised (copied) at a time while building (48 MB at 384-d)
HNSW_STEP = 16384   # rows per HNSW add call: progress steps on long graph builds
QUERY_BATCH = 4096  # queries per faiss call in the bulk methods
TRAIN_ROWS = 65536  # rows sampled (seeded) to train the scalar quantiser's ranges


def check_ids(ids: Sequence[str], vectors: Any) -> np.ndarray:
    """(n,) object array of ``ids`` for ``vectors`` (n, d); SchemaError if not non-empty str,
    EmbeddingError if ``vectors`` is not 2-D, on a count mismatch or duplicates. A numpy
    string array (what embeddings store) is checked without a Python list of its values.
    """
    shape = np.shape(vectors)
    if len(shape) != 2:
        raise EmbeddingError(f"vectors must be a 2-D (n, d) array, got shape {shape}")
    n = shape[0]
    if isinstance(ids, str):
        raise SchemaError(f"ids must be a sequence of strings, got the single string {ids!r}")
    if isinstance(ids, np.ndarray) and ids.dtype.kind == "U" and ids.ndim == 1:
        if len(ids) != n:
            raise EmbeddingError(f"got {len(ids)} ids for {n} vectors; they must match")
        empty = np.flatnonzero(np.char.str_len(ids) == 0)
        if len(empty):
            raise SchemaError(f"{len(empty)} ids are not non-empty strings: empty at rows "
                              f"{format_list(empty.tolist())}")
        arr = ids.astype(object)
    else:
        values = list(ids)
        if len(values) != n:
            raise EmbeddingError(f"got {len(values)} ids for {n} vectors; they must match")
        bad = [v for v in values if not isinstance(v, str) or not v]
        if bad:
            raise SchemaError(f"{len(bad)} ids are not non-empty strings: {format_list(bad)}")
        arr = np.empty(n, dtype=object)
        arr[:] = [str(v) for v in values]
    if len(set(arr.tolist())) != n:
        uniq, counts = np.unique(arr.astype(str), return_counts=True)
        raise EmbeddingError(f"duplicate ids: {format_list(uniq[counts > 1].tolist())}")
    return arr


def as_matrix(vectors: Any, dims: int | None) -> np.ndarray:
    """``vectors`` as a 2-D numeric array (no copy when it already is one, e.g. a memmap).

    Raises EmbeddingError on a non-numeric array, wrong shape or wrong ``dims``.
    """
    x = vectors if isinstance(vectors, np.ndarray) else None
    if x is None or x.dtype.kind not in "fiu":
        try:
            x = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError) as err:
            raise EmbeddingError(f"vectors are not a numeric array: {err}") from err
    if x.ndim != 2 or x.shape[1] == 0:
        raise EmbeddingError(f"vectors must be a 2-D (n, d) array, got shape {x.shape}")
    if dims is not None and x.shape[1] != dims:
        raise EmbeddingError(f"vectors have {x.shape[1]} dims; this index has {dims}")
    return x


def checked_norms(x: np.ndarray, names: Sequence[str] | None = None) -> np.ndarray:
    """(n,) float32 L2 norms of ``x`` (n, d), ``ADD_CHUNK`` rows at a time; EmbeddingError
    naming the first rows (by id, else row number) that are NaN/Inf or all zeros."""
    norms = np.empty(len(x), np.float32)
    for s in range(0, len(x), ADD_CHUNK):
        block = np.asarray(x[s:s + ADD_CHUNK], dtype=np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            norms[s:s + ADD_CHUNK] = np.sqrt(np.einsum("ij,ij->i", block, block))
    if len(norms) and 0 < norms.min() and norms.max() < np.inf:  # fast path: all rows fine
        return norms
    for bad, what in ((~np.isfinite(norms), "NaN or Inf values"), (norms == 0, "all zeros")):
        if bad.any():
            where = np.flatnonzero(bad)
            shown = [names[i] for i in where[:5]] if names is not None else where[:5].tolist()
            label = "ids" if names is not None else "rows"
            raise EmbeddingError(f"{len(where)} vectors contain {what}: {label} "
                                 f"{format_list(shown)}{' ...' if len(where) > 5 else ''}")
    return norms


def unit_chunks(x: np.ndarray, norms: np.ndarray) -> Iterator[np.ndarray]:
    """L2-normalised float32 C-contiguous copies of ``ADD_CHUNK`` rows of ``x`` at a time
    (``norms`` from :func:`checked_norms`), so the full matrix is never copied."""
    for s in range(0, len(x), ADD_CHUNK):
        block = np.array(x[s:s + ADD_CHUNK], dtype=np.float32, order="C", copy=True)
        block /= norms[s:s + ADD_CHUNK, None]
        yield block


def unit_query_rows(vectors: Any, dims: int | None) -> np.ndarray:
    """L2-normalised float32 C-contiguous copy of ``vectors`` (n, d) (queries); EmbeddingError
    on wrong shape/dims, NaN/Inf or zero rows."""
    x = as_matrix(vectors, dims)
    if len(x) <= ADD_CHUNK:  # queries: one block
        return next(unit_chunks(x, checked_norms(x)), np.empty((0, x.shape[1]), np.float32))
    chunks = list(unit_chunks(x, checked_norms(x)))
    if len(chunks) == 1:
        return chunks[0]
    return np.concatenate(chunks) if chunks else np.empty((0, x.shape[1]), np.float32)


def new_faiss(kind: str, dims: int, params: dict[str, int]) -> faiss.Index:
    """An empty faiss index of ``kind`` for ``dims``-d unit rows (hnsw: untrained)."""
    if kind == "exact":
        return faiss.IndexFlatIP(dims)
    graph = faiss.IndexHNSWSQ(dims, faiss.ScalarQuantizer.QT_8bit, params["M"], faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = params["ef_construction"]
    graph.hnsw.efSearch = params["ef_search"]
    index = faiss.IndexRefineFlat(graph)  # keeps a Python reference to the graph
    index.k_factor = float(params["k_factor"])
    return index


def graph_of(index: faiss.Index) -> faiss.IndexHNSW:
    """The HNSW graph inside an hnsw-kind index."""
    return faiss.downcast_index(index.base_index)


def flat_of(index: faiss.Index) -> faiss.IndexFlat:
    """The exact float32 vectors of either kind."""
    return index if isinstance(index, faiss.IndexFlat) else faiss.downcast_index(index.refine_index)


def train_if_needed(index: faiss.Index, x: np.ndarray, norms: np.ndarray) -> None:
    """Train an hnsw-kind index's quantiser on up to ``TRAIN_ROWS`` rows of ``x`` (seeded
    sample, normalised with ``norms``); nothing for a trained index or an empty ``x``."""
    if index.is_trained or len(x) == 0:
        return
    rows = np.sort(np.random.default_rng(0).choice(len(x), min(len(x), TRAIN_ROWS), replace=False))
    sample = np.asarray(x[rows], dtype=np.float32) / norms[rows, None]
    index.train(np.ascontiguousarray(sample, dtype=np.float32))


def add_chunks(index: faiss.Index, chunks: Iterable[np.ndarray], total: int,
               progress: ProgressFn | None = None) -> None:
    """Add the unit-row blocks of ``chunks`` ((m, d) float32, ``total`` rows in all) to a
    trained ``index``; ``progress(done, total)`` after each add (hnsw: ``HNSW_STEP`` rows).

    Every code store is grown to its final size first: appending chunk by chunk would let
    each std::vector double and copy itself (a transient ~2x of the vectors).
    """
    hnsw = not isinstance(index, faiss.IndexFlat)
    stores = [flat_of(index)] + ([faiss.downcast_index(graph_of(index).storage)] if hnsw else [])
    for store in stores:
        used = store.ntotal * store.code_size
        store.codes.resize(used + total * store.code_size)  # reserve: capacity stays after shrinking
        store.codes.resize(used)
    step = HNSW_STEP if hnsw else ADD_CHUNK
    done = 0
    for block in chunks:
        for s in range(0, len(block), step):
            index.add(block[s:s + step])
            done += len(block[s:s + step])
            if progress is not None:
                progress(done, total)


def finite_threshold(threshold: float) -> float:
    """``threshold`` as a float; InputError unless finite."""
    if not np.isfinite(t := float(threshold)):
        raise InputError(f"threshold must be a finite number, got {threshold!r}")
    return t


def scored_range(rows: np.ndarray, slots: np.ndarray, q: np.ndarray, threshold: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(scores, slots) of the unit ``rows`` (m, d) of ``slots`` with ``rows @ q`` >= ``threshold``,
    best first (ties by slot). InputError on a non-finite threshold."""
    t = np.float32(finite_threshold(threshold))
    scores = rows @ q if len(rows) else np.empty(0, np.float32)
    keep = scores >= t
    order = np.lexsort((slots[keep], -scores[keep]))
    return scores[keep][order], slots[keep][order]


def refine_params(params: dict[str, int], sel: faiss.IDSelector | None, ef: int | None
                  ) -> faiss.SearchParameters:
    """Search parameters of an hnsw-kind index: graph beam (``ef``, default
    ``params["ef_search"]``) and filter ``sel``, re-rank factor ``params["k_factor"]``."""
    graph = faiss.SearchParametersHNSW(efSearch=ef or params["ef_search"])
    if sel is not None:
        graph.sel = sel
    search = faiss.IndexRefineSearchParameters(k_factor=float(params["k_factor"]), base_index_params=graph)
    search.referenced = graph  # keep the graph's parameters alive as long as these
    return search


def rebuild_hnsw(matrix: np.ndarray, rows: np.ndarray, params: dict[str, int]) -> faiss.Index:
    """A new hnsw-kind index of the unit ``rows`` of ``matrix`` (n, d), trained and filled."""
    rebuilt = new_faiss("hnsw", matrix.shape[1], params)
    train_if_needed(rebuilt, matrix[rows], np.ones(len(rows), np.float32))
    add_chunks(rebuilt, (matrix[rows[s:s + ADD_CHUNK]] for s in range(0, len(rows), ADD_CHUNK)), len(rows))
    return rebuilt


def batched_search(index: faiss.Index, q: np.ndarray, k: int, params: faiss.SearchParameters | None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``index.search`` of (q, d) unit queries, ``QUERY_BATCH`` at a time (one query: on
    one thread) -> (scores (q, k) float32 with -inf padding, slots (q, k) int64, -1 pads)."""
    if len(q) == 1:  # one query: one thread (a second OpenMP thread only spins, and on a
        scores, slots = _one_thread(index.search, q, k, params=params)  # busy box, waits)
    elif len(q) <= QUERY_BATCH:
        scores, slots = index.search(q, k, params=params)
    else:
        parts = [index.search(q[s:s + QUERY_BATCH], k, params=params) for s in range(0, len(q), QUERY_BATCH)]
        scores, slots = (np.concatenate([p[j] for p in parts]) for j in (0, 1))
    scores[slots < 0] = -np.inf
    return scores, slots


def flat_range(flat: faiss.IndexFlat, q: np.ndarray, t: float, sel: faiss.IDSelector | None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact range search (score >= ``t``) of (q, d) unit queries over ``flat``, batched:
    (lims (q+1,) int64, scores float32, slots int64), each query's hits best first."""
    # faiss keeps score > radius; the next float32 below t makes it score >= t.
    radius = float(np.nextafter(np.float32(t), np.float32(-np.inf)))
    params = faiss.SearchParameters(sel=sel) if sel is not None else None
    lims, scores, slots = [np.zeros(1, np.int64)], [], []
    for s in range(0, len(q), QUERY_BATCH):
        if flat.ntotal == 0:
            lim = np.zeros(len(q[s:s + QUERY_BATCH]) + 1, np.int64)
            d, i = np.empty(0, np.float32), np.empty(0, np.int64)
        else:
            lim, d, i = flat.range_search(q[s:s + QUERY_BATCH], radius, params=params)
            lim = lim.astype(np.int64)
        lims.append(lim[1:] + lims[-1][-1])
        owner = np.repeat(np.arange(len(lim) - 1), np.diff(lim))
        order = np.lexsort((i, -d, owner))  # by query, then best score, then slot
        scores.append(d[order])
        slots.append(i[order])
    return np.concatenate(lims), np.concatenate(scores), np.concatenate(slots)


def bitmap_selector(mask: np.ndarray) -> tuple[faiss.IDSelector, np.ndarray]:
    """``IDSelectorBitmap`` over slots where ``mask`` is True (keep the bitmap alive with it)."""
    bits = np.packbits(mask, bitorder="little")
    return faiss.IDSelectorBitmap(bits.size, faiss.swig_ptr(bits)), bits


def subset_of(slots: np.ndarray, n_slots: int, small: int, state: object) -> Subset:
    """A :class:`Subset` of ``slots`` (int64, any order, repeats allowed) among ``n_slots``:
    sorted and unique, with an id filter unless at most ``small`` rows."""
    mask = None
    if len(slots) * 64 < n_slots:  # few: sort them; many: one pass over a mask
        slots = np.unique(slots)
    else:
        mask = np.zeros(n_slots, dtype=bool)
        mask[slots] = True
        slots = np.flatnonzero(mask)
    if len(slots) <= small:
        return Subset(slots, None, None, state)
    if mask is None:
        mask = np.zeros(n_slots, dtype=bool)
        mask[slots] = True
    selector, bits = bitmap_selector(mask)
    return Subset(slots, selector, bits, state)


@dataclass(frozen=True)
class Hits:
    """kNN results, best first: ``ids`` (q, k) object array of str (``''`` pads rows
    with fewer than k results), ``scores`` (q, k) float32 cosine (``-inf`` pads)."""

    ids: np.ndarray
    scores: np.ndarray

    def row(self, i: int) -> tuple[list[str], np.ndarray]:
        """Unpadded ``(ids, scores (m,) float32)`` of query ``i``."""
        keep = self.ids[i] != ""
        return [str(v) for v in self.ids[i][keep]], self.scores[i][keep]


@dataclass(frozen=True)
class RangeHits:
    """Range results: ``ids`` (m,) object array of str, ``scores`` (m,) float32, best first."""

    ids: np.ndarray
    scores: np.ndarray


@dataclass(frozen=True, eq=False)
class Subset:
    """Rows to search inside, resolved once by :meth:`core.index.VectorIndex.subset` and
    reused by every query of a filter (300k ids of 1M take ~0.2 s to map; a query ~1 ms).
    ``slots`` (m,) sorted int64; ``selector`` an id filter (large subsets only, with the
    ``bits`` it reads); ``state`` the index state it belongs to (stale after add/remove)."""

    slots: np.ndarray
    selector: faiss.IDSelector | None
    bits: np.ndarray | None
    state: object

    def __len__(self) -> int:
        return len(self.slots)


def _one_thread(fn, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` with this thread's OpenMP team limited to one thread."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return fn(*args, **kwargs)
    finally:
        faiss.omp_set_num_threads(threads)
