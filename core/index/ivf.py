"""The ``ivf`` kind: an inverted file over 4-bit scalar-quantised residuals
(``faiss.IndexIVFScalarQuantizer``, QT_4bit, inner product), re-ranked exactly.

The inverted file proposes ``k_factor * k`` candidates from the ``nprobe`` lists nearest
the query; their exact cosines are read from :class:`core.index.mapped.MappedVectors`
(the memory-mapped ``vectors.npy``), so every score is exact and the index holds no
float copy of the vectors: 192 B of codes + 12 B (faiss id, norm) a row, 2 GB at 10M x 384.
Why these choices (bench/bench_ivf.py and the codec sweep in docs/benchmarks.md, 1M x 384,
nlist 4096, nprobe 32, share of the true top 10 among the first R candidates):

- codes: on hard isotropic clusters SQ4 has R=50: 0.987 and R=100: 0.998; PQ96 (96 B)
  needs R=200 for 0.984 and 6x the training time, PQ48 tops out at 0.67; SQ8 (384 B, R=20:
  0.999) would take 3.8 GB at 10M before any id. On MiniLM-like data SQ4 R=50 is 1.000.
  OPQ rotates for PQ; with scalar codes it has nothing to give.
- lists: ``nlist`` ~ 4 sqrt(n), at least 39 training rows each (faiss's floor) and at most
  ``MAX_LISTS``: a flat coarse quantizer costs nlist x d per row added and per query.
- train on a seeded sample (``train_rows``, default 256k), add ``ADD_CHUNK`` rows at a
  time under explicit ids (slot numbers, which never move: removal drops codes only).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import faiss
import numpy as np

from core._shared import ProgressFn
from core.errors import IndexStateError
from core.index.faiss_build import _one_thread, unit_chunks
from core.index.mapped import MappedVectors

MIN_TRAIN_PER_LIST = 39   # faiss warns below this many training points per centroid
# A flat coarse quantizer costs nlist x d multiply-adds per row added and per query. 4096
# lists keep a 10M-row build's assignment to ~3e13 (minutes on 2 cores) and a query's to
# 1.6M; lists then hold ~2.4k rows at 10M, and nprobe 32 scans 78k codes: 4.8 ms on one
# core (measured at 1M with 410 lists of the same length).
MAX_LISTS = 4096
# Range search keeps code scores >= threshold - RANGE_MARGIN, then the exact cosines >= it.
# |exact - code score| at 384-d (100k rows, top-200 candidates of 500 queries): p99 0.017,
# p99.9 0.022, max 0.032 on isotropic clusters; 0.015 / 0.019 / 0.030 on MiniLM-like data.
RANGE_MARGIN = 0.05
# A range reaches further than a top 10: probe more lists. 20k x 32 clustered, nprobe 32 of
# 512 lists: a threshold holding most of a cluster (~190 rows) finds 0.89 of them with 32
# lists, 0.955 with 64, 0.987 with 128 (a tighter one, ~60 rows: 0.986 / 0.996 / 0.999).
RANGE_PROBES = 2
# k-means rounds: faiss's default is 25. 100k x 384 isotropic: 10 rounds build in 21 s CPU
# (25: 36 s) at recall@10 0.997 / 0.998 with nprobe 16 / 32 (25: 0.998 / 0.999).
KMEANS_ITERATIONS = 10
# Inside a subset of m of n rows the subset's top 10 lie further out (about the global top
# 10 n / m) and a probed list holds m / nlist of them: probe nprobe x sqrt(n / m) lists.
# Recall@10 by lists probed (bench_ivf --sweep, nprobe 32, isotropic 384-d, 200 queries):
# 1M rows (4000 lists): 1k rows 32: 0.85, 512: 0.98, 1024: 0.996 (rule 1012); 3k rows 32:
# 0.988, 64: 1.0 (rule 585); 10k rows 32: 0.996 (rule 320); 300k 32: 0.989 (rule 59).
# 100k rows (1265 lists): 1k rows 128: 0.966, 256: 0.988 (rule 320). 20k x 32 clustered
# (512 lists): 2k rows 32: 0.944, 96: >= 0.95. Each doubling of the lists costs ~0.5 ms
# at 1M; the scan checks the filter before it scores a code.
RERANK_BATCH = 256        # queries re-ranked at a time (k_factor * k rows of d floats each)
RERANK_ROWS = 65_536      # range hits re-ranked at a time (rows of d floats)
QUERY_BATCH = 4096        # queries per faiss call


def list_count(rows: int, train_rows: int) -> int:
    """``nlist`` for ``rows`` rows: ~4 sqrt(rows), >= 39 of ``min(rows, train_rows)`` training
    rows per list, within 1 .. MAX_LISTS."""
    trained = min(rows, train_rows)
    return max(1, min(round(4 * math.sqrt(rows)), trained // MIN_TRAIN_PER_LIST, MAX_LISTS))


def new_ivf(dims: int, params: dict[str, int]) -> faiss.IndexIVFScalarQuantizer:
    """An empty, untrained ivf index of ``params["nlist"]`` lists and ``bits``-bit codes."""
    index = faiss.index_factory(dims, f"IVF{params['nlist']},SQ{params['bits']}", faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = KMEANS_ITERATIONS
    index.nprobe = params["nprobe"]
    return index


def build_ivf(x: np.ndarray, norms: np.ndarray, params: dict[str, int],
              progress: ProgressFn | None = None) -> tuple[faiss.IndexIVF, MappedVectors]:
    """The ivf index of the checked rows ``x`` (n, d) (``norms`` their L2 norms) as slots
    0..n-1, and its re-rank source: ``x`` itself when float32 C-order (a memory map stays
    one), else a float32 copy. Sets ``params["nlist"]`` when absent and ``x`` has rows."""
    base = x if x.dtype == np.float32 and x.flags.c_contiguous else np.ascontiguousarray(x, np.float32)
    if len(x):
        params.setdefault("nlist", list_count(len(x), params["train_rows"]))
    index = new_ivf(x.shape[1], {**params, "nlist": params.get("nlist", 1)})
    train_ivf(index, base, norms, params["train_rows"])
    add_ivf(index, unit_chunks(base, norms), 0, len(x), progress)
    return index, MappedVectors(base, norms)


def grow_ivf(index: faiss.IndexIVF, source: MappedVectors, x: np.ndarray, norms: np.ndarray,
             first_slot: int, params: dict[str, int]) -> faiss.IndexIVF:
    """``index`` with the checked rows ``x`` (``norms``) added as slots ``first_slot ..``
    and their unit rows appended to ``source``. An index built empty is replaced by one
    with lists sized (and trained) for these rows; ``params["nlist"]`` records them."""
    if not index.is_trained and len(x):
        params.setdefault("nlist", list_count(len(x), params["train_rows"]))
        index = new_ivf(x.shape[1], params)
        train_ivf(index, x, norms, params["train_rows"])
    blocks = list(unit_chunks(x, norms))
    add_ivf(index, blocks, first_slot, len(x))
    if blocks:
        source.append(np.concatenate(blocks))
    return index


def is_ivf(index: faiss.Index) -> bool:
    """Whether ``index`` (read from disk) is what the ivf kind builds."""
    return (isinstance(index, faiss.IndexIVFScalarQuantizer)
            and index.metric_type == faiss.METRIC_INNER_PRODUCT
            and isinstance(faiss.downcast_index(index.quantizer), faiss.IndexFlat))


def train_ivf(index: faiss.IndexIVF, x: np.ndarray, norms: np.ndarray, train_rows: int) -> None:
    """Train the lists and codes on up to ``train_rows`` rows of ``x`` (seeded sample, read
    in row order, normalised with ``norms``); nothing if trained or ``x`` is empty."""
    if index.is_trained or len(x) == 0:
        return
    rows = np.sort(np.random.default_rng(0).choice(len(x), min(len(x), train_rows), replace=False))
    sample = np.ascontiguousarray(x[rows], dtype=np.float32)  # the one copy (x[rows] is new)
    sample /= norms[rows, None]
    index.train(sample)


def add_ivf(index: faiss.IndexIVF, chunks: Iterable[np.ndarray], first_slot: int, total: int,
            progress: ProgressFn | None = None) -> None:
    """Add unit-row blocks ((m, d) float32, ``total`` rows) as slots ``first_slot ..``;
    ``progress(done, total)`` after each block."""
    done = 0
    for block in chunks:
        index.add_with_ids(block, np.arange(first_slot + done, first_slot + done + len(block), dtype=np.int64))
        done += len(block)
        if progress is not None:
            progress(done, total)


def rerank(q: np.ndarray, candidates: np.ndarray, source: MappedVectors, k: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """Exact top ``k`` of each query's candidate slots: (scores (q, k) float32 with -inf
    padding, slots (q, k) int64 with -1), best first, ties by slot.

    ``q`` (q, d) unit rows; ``candidates`` (q, c) int64 slots, -1 = none. Reads q x c rows
    of ``source`` at once: callers batch the queries."""
    nq, c = candidates.shape
    valid = candidates >= 0
    scores = np.full((nq, c), -np.inf, np.float32)
    if valid.any():
        rows = source.rows(np.where(valid, candidates, candidates.max()).ravel())
        exact = np.matmul(rows.reshape(nq, c, -1), q[:, :, None])[:, :, 0]
        scores[valid] = exact[valid]
    slots = np.where(valid, candidates, np.iinfo(np.int64).max)
    order = np.lexsort((slots, -scores))[:, :k]
    top_scores = np.take_along_axis(scores, order, axis=1)
    top_slots = np.where(np.isneginf(top_scores), -1, np.take_along_axis(candidates, order, axis=1))
    if c < k:  # fewer candidates than k: pad
        top_scores = np.pad(top_scores, ((0, 0), (0, k - c)), constant_values=-np.inf)
        top_slots = np.pad(top_slots, ((0, 0), (0, k - c)), constant_values=-1)
    return top_scores, top_slots


def filtered_probes(nprobe: int, nlist: int, rows: int, m: int) -> int:
    """Lists to probe inside a subset of ``m`` of ``rows`` rows: ``nprobe`` x sqrt(rows / m),
    at most every list (measured above)."""
    return min(nlist, math.ceil(nprobe * math.sqrt(rows / max(1, m))))


def search_params(nprobe: int, sel: faiss.IDSelector | None) -> faiss.SearchParametersIVF:
    """IVF search parameters: ``nprobe`` lists, optional id filter."""
    params = faiss.SearchParametersIVF(nprobe=nprobe)
    if sel is not None:
        params.sel = sel
    return params


def ivf_knn(index: faiss.IndexIVF, source: MappedVectors, q: np.ndarray, k: int, k_factor: int,
            nprobe: int, sel: faiss.IDSelector | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` of unit queries ``q`` (q, d): ``k_factor * k`` candidates from the codes in
    the ``nprobe`` nearest lists (only ``sel``'s slots if given), re-ranked exactly ->
    (scores (q, k) float32, -inf padding; slots (q, k) int64, -1 padding)."""
    if index.ntotal == 0:
        return np.full((len(q), k), -np.inf, np.float32), np.full((len(q), k), -1, np.int64)
    params, fetch = search_params(min(nprobe, index.nlist), sel), max(k, k * k_factor)
    if len(q) == 1:  # one query: one thread (a second only spins; on a busy box, waits)
        candidates = _one_thread(index.search, q, fetch, params=params)[1]
        return rerank(q, candidates, source, k)
    parts = []
    for s in range(0, len(q), QUERY_BATCH):
        candidates = index.search(q[s:s + QUERY_BATCH], fetch, params=params)[1]
        parts += [rerank(q[s + r:s + r + RERANK_BATCH], candidates[r:r + RERANK_BATCH], source, k)
                  for r in range(0, len(candidates), RERANK_BATCH)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def ivf_range(index: faiss.IndexIVF, source: MappedVectors, q: np.ndarray, threshold: float,
              nprobe: int, sel: faiss.IDSelector | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of the ``RANGE_PROBES * nprobe`` lists nearest each unit query whose code score clears
    ``threshold - RANGE_MARGIN``, kept if their exact cosine is >= ``threshold``:
    (lims (q+1,) int64, scores float32, slots int64), each query's hits best first."""
    radius = float(threshold) - RANGE_MARGIN
    params = search_params(min(RANGE_PROBES * nprobe, index.nlist), sel)
    lims, scores, slots = [np.zeros(1, np.int64)], [], []
    for s in range(0, len(q), QUERY_BATCH):
        block = q[s:s + QUERY_BATCH]
        if index.ntotal == 0:
            lim, found = np.zeros(len(block) + 1, np.int64), np.empty(0, np.int64)
        else:
            lim, _, found = index.range_search(block, radius, params=params)
            lim = lim.astype(np.int64)
        owner = np.repeat(np.arange(len(block)), np.diff(lim))
        exact = np.empty(len(found), np.float32)
        for r in range(0, len(found), RERANK_ROWS):  # a low threshold can match whole lists
            part = slice(r, r + RERANK_ROWS)
            exact[part] = np.einsum("ij,ij->i", source.rows(found[part]), block[owner[part]])
        keep = exact >= np.float32(threshold)
        owner, exact, found = owner[keep], exact[keep], found[keep]
        order = np.lexsort((found, -exact, owner))
        lims.append(np.searchsorted(owner, np.arange(1, len(block) + 1)) + lims[-1][-1])
        scores.append(exact[order].astype(np.float32))
        slots.append(found[order].astype(np.int64))
    return np.concatenate(lims), np.concatenate(scores), np.concatenate(slots)


def ivf_lists(index: faiss.IndexIVF, slots: int) -> tuple[np.ndarray, np.ndarray]:
    """The coarse lists of ``index``: (centroids (nlist, d) float32 unit rows, the list of each
    of ``slots`` slots (slots,) int32, -1 for a removed slot)."""
    invlists = index.invlists
    assign = np.full(slots, -1, np.int32)
    for lst in range(index.nlist):
        size = invlists.list_size(lst)
        if size:
            ptr = invlists.get_ids(lst)
            assign[faiss.rev_swig_ptr(ptr, size)] = lst
            invlists.release_ids(lst, ptr)
    centroids = index.quantizer.reconstruct_n(0, index.nlist).astype(np.float32)
    norms = np.linalg.norm(centroids, axis=1, keepdims=True)
    return np.ascontiguousarray(centroids / np.where(norms > 0, norms, 1)), assign


def rebase_ivf(index: faiss.IndexIVF, source: MappedVectors, alive: np.ndarray,
               vectors: np.ndarray) -> MappedVectors:
    """Renumber ``index``'s live slots (``alive`` (slots,) bool) 0..n-1 in slot order, in
    place (each inverted list's ids rewritten with ``InvertedLists.update_entries``; the
    codes are kept), and return the source that re-ranks them from ``vectors`` (n, d)
    float32: the live slots' rows in that order (a compacted or appended ``vectors.npy``).
    Base rows keep their recorded norms; rows added later get the norms of ``vectors``."""
    from faiss.contrib.inspect_tools import get_invlist

    live = np.flatnonzero(alive)
    if vectors.dtype != np.float32 or vectors.shape != (len(live), source.dims):
        raise IndexStateError(f"rebase needs ({len(live)}, {source.dims}) float32 rows, got "
                              f"{vectors.dtype} {vectors.shape}")
    if len(live) < len(alive):
        new_slot = np.full(len(alive), -1, np.int64)
        new_slot[live] = np.arange(len(live))
        invlists = index.invlists
        for lst in range(index.nlist):
            ids, codes = get_invlist(invlists, lst)
            if len(ids):
                renumbered = np.ascontiguousarray(new_slot[ids])
                invlists.update_entries(lst, 0, len(ids), faiss.swig_ptr(renumbered),
                                        faiss.swig_ptr(np.ascontiguousarray(codes)))
    norms = source.norms[live].copy()
    added = np.flatnonzero(live >= source.base_rows)
    for s in range(0, len(added), RERANK_ROWS):
        block = np.asarray(vectors[added[s:s + RERANK_ROWS]], dtype=np.float32)
        norms[added[s:s + RERANK_ROWS]] = np.sqrt(np.einsum("ij,ij->i", block, block))
    return MappedVectors(vectors, norms)
