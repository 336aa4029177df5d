"""The list-by-list neighbours pass for embeddings with an ivf index: the index's own
inverted lists are the partition (each list longer than 2 x LIST_ROWS rows split by its own
k-means, :func:`split_lists`), then for each list compute exact cosines (one BLAS product,
``faiss.knn``) between its rows and the rows of the ``probes`` lists whose centroids are
nearest its own, keeping each row's top ``k``. Far cheaper than one index query per row:
the candidates of a whole list are scored in one matrix product, exactly, with no codes to
scan, and the partition costs no k-means over all the rows (the index build paid for it).

Scores are exact cosines; recall (which rows are found) depends on ``probes``
(bench/bench_quality_scale.py measures it against an exact pass).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import faiss
import numpy as np

from core._shared import ProgressFn

ReadRows = Callable[[np.ndarray], np.ndarray]  # ascending positions (m,) -> (m, d) float32 unit rows

# Target rows per list: the ivf index has ~4 sqrt(n) lists (4000 of 250 rows at 1M), at
# most 4096 (~2.4k rows at 10M), which are split to ~250. At 1M x 384 isotropic on a busy
# box, 4000 flat lists: 32 probes for recall 0.996; 1024 lists split to 3928 needed 64
# probes (lopsided sub-lists).
LIST_ROWS = 250
KMEANS_ITERATIONS = 10   # rounds of each list's split
# Lists scored with each list, itself included: the smallest of PROBE_CHOICES whose
# candidates hold >= TARGET_RECALL of the exact top 10 of CHECK_ROWS sample rows (scores
# are exact, so that share is the pass's recall@10), else the largest: 32 lists of ~250
# rows, ~8k candidates a row, what 1M rows need. Measured at 1M x 384, 4000 lists, 1,000
# rows: isotropic clusters (hard) 8: 0.635, 16: 0.888, 32: 0.997; MiniLM-like spectrum 8:
# 0.999, 16: 1.0. At 10M x 384 isotropic (100 Gaussian clusters of 100k rows: a row's 10
# nearest are all but random members of its cluster) no budget finds them: 32: 0.18, 64:
# 0.33, 128: 0.55 for 2.9x, 5.8x the time. The pass then says so (``recall`` in its
# manifest, a warning in the log) rather than running for hours.
PROBE_CHOICES = (8, 16, 32)
TARGET_RECALL = 0.97
CHECK_ROWS = 200
SCAN_ROWS = 131_072      # rows scanned at a time for the sample's exact top 10
GROUP_LISTS = 8          # lists whose candidates may be read from the map once (see list_neighbours)


@dataclass(frozen=True)
class Partition:
    """``centroids`` (nlist, d) float32 unit rows; ``assign`` (n,) int32 list of each row."""

    centroids: np.ndarray
    assign: np.ndarray

    @property
    def nlist(self) -> int:
        return len(self.centroids)


def fine_partition(read: ReadRows, coarse: Partition, *, seed: int = 0,
                   progress: ProgressFn | None = None) -> Partition:
    """``coarse`` (e.g. an ivf index's own lists), split by :func:`split_lists` when its
    lists average more than 2 x LIST_ROWS rows, else as is."""
    if len(coarse.assign) > 2 * LIST_ROWS * coarse.nlist:
        return split_lists(read, coarse, seed=seed, progress=progress)
    return coarse


def split_lists(read: ReadRows, part: Partition, *, seed: int = 0,
                progress: ProgressFn | None = None) -> Partition:
    """``part`` with every list of more than 2 x LIST_ROWS rows split by its own k-means into
    ~LIST_ROWS-row lists (e.g. 10M rows: 4096 coarse lists of ~2.4k rows become ~40k of
    ~250, so a row is compared with as many candidates as at 1M). Lists are renumbered in
    coarse order; seeded, so the same input gives the same partition. ``progress(rows
    done, n)`` every 64 coarse lists."""
    order = np.argsort(part.assign, kind="stable")
    offsets = np.concatenate([[0], np.cumsum(np.bincount(part.assign, minlength=part.nlist))])
    dims = part.centroids.shape[1]
    assign, centroids, next_list = np.empty_like(part.assign), [], 0
    for lst in range(part.nlist):
        rows = order[offsets[lst]:offsets[lst + 1]]
        parts = max(1, len(rows) // LIST_ROWS) if len(rows) > 2 * LIST_ROWS else 1
        if parts == 1:
            assign[rows] = next_list
            centroids.append(part.centroids[lst:lst + 1])
        else:
            x = np.ascontiguousarray(read(rows), dtype=np.float32)
            kmeans = faiss.Kmeans(dims, parts, niter=KMEANS_ITERATIONS, spherical=True,
                                  seed=seed + lst, max_points_per_centroid=len(rows))
            kmeans.train(x)
            assign[rows] = next_list + kmeans.index.search(x, 1)[1][:, 0]
            centroids.append(np.asarray(kmeans.centroids, dtype=np.float32))
        next_list += len(centroids[-1])
        if progress is not None and (lst % 64 == 63 or lst == part.nlist - 1):
            progress(int(offsets[lst + 1]), len(part.assign))
    return Partition(np.ascontiguousarray(np.concatenate(centroids)), assign)


def exact_top(read: ReadRows, n: int, rows: np.ndarray, k: int) -> np.ndarray:
    """(len(rows), k) int64 exact top ``k`` of each of ``rows`` over all ``n`` rows, self
    excluded (a chunked scan; for the probe check, not the pass)."""
    q = np.ascontiguousarray(read(rows), dtype=np.float32)
    heap = faiss.ResultHeap(len(q), k + 1, keep_max=True)
    for start in range(0, n, SCAN_ROWS):
        block = np.ascontiguousarray(read(np.arange(start, min(n, start + SCAN_ROWS))), dtype=np.float32)
        scores, local = faiss.knn(q, block, min(k + 1, len(block)), metric=faiss.METRIC_INNER_PRODUCT)
        heap.add_result(np.ascontiguousarray(scores), np.ascontiguousarray(local + start))
    heap.finalize()
    top = heap.I
    keep = top != rows[:, None]
    keep[~(~keep).any(axis=1), -1] = False
    return top[keep].reshape(len(rows), k)


def choose_probes(read: ReadRows, part: Partition, *, k: int = 10, seed: int = 0) -> tuple[int, float]:
    """(probes, the share of the exact top ``k`` of CHECK_ROWS seeded sample rows their lists
    hold): the smallest of PROBE_CHOICES (capped at nlist) reaching TARGET_RECALL, else the
    largest."""
    n = len(part.assign)
    rows = np.sort(np.random.default_rng(seed).choice(n, min(n, CHECK_ROWS), replace=False))
    k = min(k, n - 1)
    truth = exact_top(read, n, rows, k)
    _, near = faiss.knn(part.centroids, part.centroids, min(max(PROBE_CHOICES), part.nlist),
                        metric=faiss.METRIC_INNER_PRODUCT)
    for probes in PROBE_CHOICES:
        probes = min(probes, part.nlist)
        probed = near[part.assign[rows], :probes]
        found = float(np.mean([np.isin(part.assign[t], p).mean() for t, p in zip(truth, probed)]))
        if found >= TARGET_RECALL or probes == part.nlist:
            break
    return probes, found


@dataclass(frozen=True)
class ListPlan:
    """Members of each list (``order`` (n,) int64 positions sorted by list then position,
    list ``l`` = ``order[offsets[l]:offsets[l + 1]]``) and the ``probes`` lists nearest
    each list's centroid (``near`` (nlist, probes) int64, the list itself first)."""

    order: np.ndarray
    offsets: np.ndarray
    near: np.ndarray

    def members(self, lst: int) -> np.ndarray:
        return self.order[self.offsets[lst]:self.offsets[lst + 1]]

    def chunks(self, chunk_rows: int) -> list[np.ndarray]:
        """Consecutive lists grouped so each group holds >= ``chunk_rows`` rows (the last fewer)."""
        sizes = np.diff(self.offsets)
        groups, start, held = [], 0, 0
        for lst, size in enumerate(sizes.tolist()):
            held += size
            if held >= chunk_rows:
                groups.append(np.arange(start, lst + 1))
                start, held = lst + 1, 0
        if start < len(sizes):
            groups.append(np.arange(start, len(sizes)))
        return groups


def plan_lists(part: Partition, probes: int) -> ListPlan:
    """The :class:`ListPlan` of ``part`` with ``probes`` (capped at nlist) lists per list."""
    order = np.argsort(part.assign, kind="stable").astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(part.assign, minlength=part.nlist))]).astype(np.int64)
    probes = min(probes, part.nlist)
    _, near = faiss.knn(part.centroids, part.centroids, probes, metric=faiss.METRIC_INNER_PRODUCT)
    own = np.arange(part.nlist)
    has_self = (near == own[:, None]).any(axis=1)
    near[~has_self, -1] = own[~has_self]  # ties of duplicate centroids: the list itself is always scored
    first = np.argmax(near == own[:, None], axis=1)
    near[own, first] = near[:, 0].copy()
    near[:, 0] = own
    return ListPlan(order, offsets, near.astype(np.int64))


def list_neighbours(read: ReadRows, plan: ListPlan, lists: np.ndarray, k: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neighbours of the rows of ``lists`` among the rows of each list's nearest lists,
    self excluded by position (as the per-row pass): (rows (m,) int64 ascending within
    each list, scores (m, k) float32 best first with -inf padding, positions (m, k) int32
    with -1 padding).

    Lists are taken GROUP_LISTS at a time; when a group's lists probe mostly the same
    lists (the sub-lists of one split list do), the union of their candidates is read
    from the map once and each list takes its rows from that copy."""
    out_rows, out_s, out_p = [], [], []
    for g in range(0, len(lists), GROUP_LISTS):
        group = [lst for lst in lists[g:g + GROUP_LISTS].tolist() if plan.offsets[lst + 1] > plan.offsets[lst]]
        probed = np.unique(plan.near[group].ravel()) if group else np.empty(0, np.int64)
        shared = None
        if len(group) > 1 and 2 * len(probed) <= len(group) * plan.near.shape[1]:
            union = np.sort(np.concatenate([plan.members(o) for o in probed.tolist()]))
            shared = (union, np.ascontiguousarray(read(union), dtype=np.float32))
        for lst in group:
            rows = plan.members(lst)
            cand = np.sort(np.concatenate([plan.members(other) for other in plan.near[lst].tolist()]))
            if shared is None:
                q, x = read(rows), read(cand)
            else:
                q = shared[1][np.searchsorted(shared[0], rows)]
                x = shared[1][np.searchsorted(shared[0], cand)]
            scores, local = top_inner(q, x, min(k + 1, len(cand)))
            s, p = _without_self(rows, scores, cand[local], k)
            out_rows.append(rows)
            out_s.append(s)
            out_p.append(p)
    if not out_rows:
        return np.empty(0, np.int64), np.empty((0, k), np.float32), np.empty((0, k), np.int32)
    return np.concatenate(out_rows), np.concatenate(out_s), np.concatenate(out_p)


def top_inner(q: np.ndarray, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest inner products of each row of ``q`` (m, d) with the rows of ``x``
    (c, d), k <= c: (scores (m, k) float32 best first, columns of ``x`` (m, k) int64; ties
    by column). One BLAS product and a top-k selection in torch: ~2.6x faster than
    ``faiss.knn`` for a list's 250 x 16k candidates, whose heaps dominate at that shape."""
    import torch

    with torch.inference_mode():
        prod = torch.from_numpy(np.ascontiguousarray(q, dtype=np.float32)) @ \
            torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).T
        scores, cols = torch.topk(prod, k, dim=1)
    scores, cols = scores.numpy(), cols.numpy()
    order = np.lexsort((cols, -scores), axis=1) if k > 1 else np.zeros_like(cols)
    return np.take_along_axis(scores, order, 1), np.take_along_axis(cols, order, 1)


def _without_self(rows: np.ndarray, scores: np.ndarray, pos: np.ndarray, k: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` best (scores float32 -inf padded, positions int32 -1 padded) from its
    ``k + 1`` (or fewer) candidates ``pos``, the row itself dropped (else the last)."""
    fetch = pos.shape[1]
    drop = pos == rows[:, None]
    drop[~drop.any(axis=1), -1] = True
    shape = (len(rows), fetch - 1)
    s = np.full((len(rows), k), -np.inf, np.float32)
    p = np.full((len(rows), k), -1, np.int32)
    s[:, :fetch - 1] = scores[~drop].reshape(shape)
    p[:, :fetch - 1] = pos[~drop].reshape(shape)
    return s, p
