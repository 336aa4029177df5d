"""KMeans clusters and their summaries (labels, representatives, TF-IDF terms); the
clustering half of :mod:`core.clusters`.

Up to :data:`KMEANS_SAMPLE` rows KMeans is fitted on every row (KMeans up to 20,000 rows,
MiniBatchKMeans above). Above it, MiniBatchKMeans is fitted on a seeded sample of that
many rows and every row is then assigned to its nearest centroid chunk by chunk
(:func:`assign_rows`), so the vectors are read through their memory map and never
copied whole (:func:`cluster_rows`, shared by :func:`cluster` and smart select).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core._shared import ProgressFn, check_positive_int, unit_rows
from core.clusters.projection import check_vectors, sample_positions
from core.errors import EmbeddingError, InputError

log = logging.getLogger(__name__)

N_REPRESENTATIVES = 5
N_TOP_TERMS = 8
MINIBATCH_ABOVE = 20_000  # rows above which MiniBatchKMeans replaces KMeans
KMEANS_N_INIT = 3
# Above this many rows KMeans is fitted on a seeded sample of this many, then every row is
# assigned in chunks. Chosen with bench/bench_clusters_scale.py --kmeans-sweep at 1M x 384:
# a 100k-sample fit's inertia over every row is within 0.11% of a fit on all rows at k=100
# (50k: 0.19%, 20k: 0.29%, 200k: 0.06%) and within the run-to-run spread (+-0.7%) at k=10.
KMEANS_SAMPLE = 100_000
ASSIGN_CHUNK = 65_536  # rows read, normalised and assigned at a time (~100 MB at 384 dims)
TERMS_PER_CLUSTER = 5_000  # above KMEANS_SAMPLE rows, TF-IDF terms come from this many texts per cluster


@dataclass(frozen=True)
class ClusterSummary:
    """One cluster: size, label counts (most frequent first), purity, representatives, terms."""

    cluster: int
    size: int
    label_counts: tuple[tuple[str, int], ...]
    majority_label: str | None
    purity: float | None  # majority count / labelled members; None without labels
    representative_ids: tuple[str, ...]  # up to 5 nearest the centroid, nearest first
    top_terms: tuple[str, ...]  # TF-IDF terms of the members' texts, () without texts


@dataclass(frozen=True)
class Clustering:
    """KMeans result: ``assignments`` (n,) int64 in ``ids`` order; clusters numbered by size.

    ``k`` is the number of clusters made: ``requested_k`` capped at the number of distinct
    (normalised) vectors, so no cluster is empty.
    """

    ids: tuple[str, ...]
    assignments: np.ndarray
    k: int
    seed: int
    summaries: tuple[ClusterSummary, ...]
    requested_k: int

    def ids_in(self, cluster: int) -> list[str]:
        """Ids assigned to ``cluster`` (row order). Raises InputError outside 0..k-1."""
        if not 0 <= cluster < self.k:
            raise InputError(f"cluster {cluster!r} does not exist; choose 0..{self.k - 1}")
        return [self.ids[i] for i in np.flatnonzero(self.assignments == cluster)]

    def to_json(self) -> dict:
        return {"k": self.k, "requested_k": self.requested_k, "clusters": [{
            "cluster": s.cluster, "size": s.size, "top_labels": [[lab, c] for lab, c in s.label_counts],
            "purity": s.purity, "majority_label": s.majority_label,
            "representative_ids": list(s.representative_ids), "top_terms": list(s.top_terms),
        } for s in self.summaries]}


def _as_text(values: Sequence[Any]) -> tuple[np.ndarray, pd.Series]:
    """(present (n,) bool, the values as str (n,)): None, NaN / NA and blank strings are
    missing (labels/texts from pandas)."""
    series = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values.astype(object)
    series = series.reset_index(drop=True)
    text = series.astype(str)
    present = series.notna().to_numpy() & (text.str.strip() != "").to_numpy()
    return present, text


def members_by_cluster(labels: np.ndarray, k: int) -> list[np.ndarray]:
    """For each cluster 0..k-1, the positions (int64, ascending) of the rows ``labels`` (n,) puts in it."""
    labels = np.asarray(labels)
    return np.split(np.argsort(labels, kind="stable"), np.cumsum(np.bincount(labels, minlength=k))[:-1])


def _top_terms(texts: Sequence[Any] | None, assignments: np.ndarray, k: int,
               per_cluster: int | None = None, seed: int = 0) -> list[tuple[str, ...]]:
    """Per cluster, the terms with the highest mean TF-IDF over its text rows (over a
    seeded draw of ``per_cluster`` of them per cluster when given)."""
    terms: list[tuple[str, ...]] = [() for _ in range(k)]
    if texts is None:
        return terms
    present, text = _as_text(texts)
    rows = np.flatnonzero(present)
    if per_cluster is not None and len(rows):
        rng = np.random.default_rng(seed)
        groups = [rows[g] for g in members_by_cluster(assignments[rows], k)]
        rows = np.sort(np.concatenate([g if len(g) <= per_cluster else rng.choice(g, per_cluster, replace=False)
                                       for g in groups]))
    if not len(rows):
        return terms
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(stop_words="english", max_features=50_000, sublinear_tf=True)
    try:
        matrix = vectorizer.fit_transform(text.iloc[rows].tolist())
    except ValueError:  # empty vocabulary: only stop words or punctuation
        return terms
    vocab = vectorizer.get_feature_names_out()
    row_clusters = assignments[rows]
    for c in range(k):
        members = np.flatnonzero(row_clusters == c)
        if len(members):
            scores = np.asarray(matrix[members].mean(axis=0)).ravel()
            order = np.lexsort((vocab, -scores))[:N_TOP_TERMS]
            terms[c] = tuple(str(vocab[j]) for j in order if scores[j] > 0)
    return terms


@dataclass(frozen=True)
class KMeansFit:
    """A fitted KMeans: ``labels`` (n,) int64, ``centroids`` (k, d) float32, ``algorithm``
    (``"kmeans"`` or ``"minibatch-kmeans"``)."""

    labels: np.ndarray
    centroids: np.ndarray
    algorithm: str


def fit_kmeans(x: np.ndarray, k: int, seed: int, *,
               minibatch_threshold: int = MINIBATCH_ABOVE) -> KMeansFit:
    """KMeans on rows ``x`` (n, d), seeded (``n_init=3``); MiniBatchKMeans (batches of 4,096)
    above ``minibatch_threshold`` rows. The one KMeans of Catalog: the cluster map and
    smart select use it, so the same k and seed give the same clusters in both.
    sklearn's warning about fewer distinct points than k is silenced: callers cap k
    with :func:`distinct_rows` first."""
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Number of distinct clusters", category=ConvergenceWarning)
        if len(x) > minibatch_threshold:
            model = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=KMEANS_N_INIT,
                                    batch_size=4096).fit(x)
            name = "minibatch-kmeans"
        else:
            model = KMeans(n_clusters=k, random_state=seed, n_init=KMEANS_N_INIT).fit(x)
            name = "kmeans"
    return KMeansFit(model.labels_.astype(np.int64), model.cluster_centers_.astype(np.float32), name)


def distinct_rows(x: np.ndarray, at_least: int, decimals: int = 6) -> int:
    """Number of distinct rows of ``x`` (n, d) once rounded to ``decimals`` (rows of unit
    vectors that differ only by float rounding are one point), or ``at_least`` once that
    many are sure.

    A seeded random projection of each rounded row is compared first (equal rows give
    equal projections, so its distinct count is a lower bound); only when it finds fewer
    than ``at_least`` are the rows themselves compared.
    """
    rounded = np.round(x, decimals) + 0.0  # + 0.0: -0.0 and 0.0 are the same point
    probe = np.random.default_rng(0).standard_normal(x.shape[1])
    if len(np.unique(rounded @ probe)) >= at_least:
        return at_least
    return len(np.unique(rounded, axis=0))


@dataclass(frozen=True)
class RowClusters:
    """KMeans of every row: ``labels`` (n,) int64 (KMeans numbering), ``distances`` (n,)
    float32 (euclidean from each L2-normalised row to its centroid), ``centroids`` (k, d)
    float32, ``k`` the clusters made (capped at the distinct rows), ``algorithm`` and
    ``fitted_rows`` (n, or the sample size when fitted on a sample)."""

    labels: np.ndarray
    distances: np.ndarray
    centroids: np.ndarray
    k: int
    algorithm: str
    fitted_rows: int


def assign_rows(vectors: np.ndarray, centroids: np.ndarray, *, chunk_rows: int = ASSIGN_CHUNK,
                ids: Sequence[str] | None = None,
                progress: ProgressFn | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid of every L2-normalised row of ``vectors`` (n, d) (e.g. a memory map),
    read ``chunk_rows`` rows at a time: (labels (n,) int64, euclidean distances (n,) float32).

    ``progress(done_rows, n)`` after each chunk. Raises EmbeddingError for NaN/Inf rows
    (named by id when ``ids`` is given) or a dims mismatch with ``centroids`` (k, d).
    """
    chunk_rows = check_positive_int(chunk_rows, "chunk_rows")
    n, dims = vectors.shape
    centroids = np.asarray(centroids, dtype=np.float32)
    if centroids.ndim != 2 or centroids.shape[1] != dims:
        raise EmbeddingError(f"centroids of shape {centroids.shape} do not match vectors of {dims} dims")
    squares = (centroids * centroids).sum(axis=1)
    labels = np.empty(n, dtype=np.int64)
    distances = np.empty(n, dtype=np.float32)
    for start in range(0, n, chunk_rows):
        stop = min(start + chunk_rows, n)
        x = unit_rows(vectors[start:stop], None if ids is None else ids[start:stop])
        partial = squares - 2.0 * (x @ centroids.T)  # |x - c|^2 - |x|^2, (rows, k)
        best = np.argmin(partial, axis=1)
        labels[start:stop] = best
        gap = partial[np.arange(stop - start), best] + (x * x).sum(axis=1)
        distances[start:stop] = np.sqrt(np.maximum(gap, 0.0))
        if progress is not None:
            progress(stop, n)
    return labels, distances


def cluster_rows(vectors: np.ndarray, k: int, seed: int, *, ids: Sequence[str] | None = None,
                 sample_size: int | None = None, chunk_rows: int = ASSIGN_CHUNK,
                 minibatch_threshold: int = MINIBATCH_ABOVE,
                 progress: ProgressFn | None = None) -> RowClusters:
    """KMeans with ``k`` clusters (capped at the distinct rows) of the L2-normalised rows of
    ``vectors`` (n, d), seeded.

    Up to ``sample_size`` rows (None: :data:`KMEANS_SAMPLE`): :func:`fit_kmeans` on every
    row (the results of earlier versions). Above: MiniBatchKMeans on a seeded sample of
    ``sample_size`` rows, then
    :func:`assign_rows` in chunks of ``chunk_rows`` (``vectors`` may be a memory map: it is
    never copied whole). ``progress(done_rows, n)`` as rows are assigned. Raises
    EmbeddingError for NaN/Inf rows (named by id when ``ids`` is given).
    """
    n = len(vectors)
    sample_size = KMEANS_SAMPLE if sample_size is None else check_positive_int(sample_size, "sample_size")
    if n <= sample_size:
        x = unit_rows(vectors, ids)
        k = distinct_rows(x, k)
        fit = fit_kmeans(x, k, seed, minibatch_threshold=minibatch_threshold)
        distances = np.linalg.norm(x - fit.centroids[fit.labels], axis=1).astype(np.float32)
        if progress is not None:
            progress(n, n)
        return RowClusters(fit.labels, distances, fit.centroids, k, fit.algorithm, n)
    pos = sample_positions(n, sample_size, seed)
    x = unit_rows(vectors[pos], None if ids is None else [ids[i] for i in pos])
    k = distinct_rows(x, k)
    fit = fit_kmeans(x, k, seed, minibatch_threshold=minibatch_threshold)
    del x
    log.info("KMeans k=%d fitted on %d of %d rows; assigning every row", k, sample_size, n)
    labels, distances = assign_rows(vectors, fit.centroids, chunk_rows=chunk_rows, ids=ids,
                                    progress=progress)
    return RowClusters(labels, distances, fit.centroids, k, fit.algorithm, sample_size)


def _label_counts(labels: Sequence[Any], assignments: np.ndarray, k: int) -> list[list[tuple[str, int]]]:
    """Per cluster, (label, count) of its labelled rows, most frequent first (ties by label)."""
    present, text = _as_text(labels)
    codes, names = pd.factorize(text[present], sort=True)
    table = np.bincount(assignments[present] * len(names) + codes,
                        minlength=k * len(names)).reshape(k, len(names))
    out = []
    for c in range(k):
        (used,) = np.nonzero(table[c])
        order = used[np.lexsort((used, -table[c, used]))]  # names are sorted: code order = label order
        out.append([(str(names[j]), int(table[c, j])) for j in order])
    return out


def cluster(ids: Sequence[str], vectors: np.ndarray, k: int = 10, *, seed: int = 0,
            labels: Sequence[str | None] | None = None, texts: Sequence[str | None] | None = None,
            minibatch_threshold: int = MINIBATCH_ABOVE, sample_size: int | None = None,
            chunk_rows: int = ASSIGN_CHUNK, progress: ProgressFn | None = None) -> Clustering:
    """KMeans on L2-normalised ``vectors`` (n, d), seeded (:func:`cluster_rows`: on every row
    up to ``sample_size`` rows (None: :data:`KMEANS_SAMPLE`), MiniBatchKMeans above
    ``minibatch_threshold``; above ``sample_size`` fitted on a sample and every row assigned
    in chunks of ``chunk_rows``). Clusters are renumbered largest first.

    ``k`` is capped at the number of distinct normalised vectors (logged; the result's
    ``k`` is the effective one, ``requested_k`` the one asked for): no cluster is empty.
    ``labels``/``texts`` (n,) are optional; None/NaN/blank count as missing. Above
    ``sample_size`` rows the top terms come from up to 5,000 texts per cluster (seeded).
    ``progress(done_rows, n)`` as rows are assigned.
    Raises InputError if k < 2 or k > n or labels/texts have the wrong length;
    EmbeddingError for a shape mismatch or NaN/Inf.
    """
    vectors = check_vectors(ids, vectors)
    n = vectors.shape[0]
    if not isinstance(k, (int, np.integer)) or k < 2 or k > n:
        raise InputError(f"k must be an integer from 2 to the number of rows ({n}); got {k!r}")
    for name, values in (("labels", labels), ("texts", texts)):
        if values is not None and len(values) != n:
            raise InputError(f"{name} must have one entry per row ({n}); got {len(values)}")
    ids = tuple(str(i) for i in ids)
    requested = int(k)
    rows = cluster_rows(vectors, requested, seed, ids=ids, sample_size=sample_size,
                        chunk_rows=chunk_rows, minibatch_threshold=minibatch_threshold,
                        progress=progress)
    k = rows.k
    if k < requested:
        log.warning("only %d distinct vectors among %d rows: making %d clusters instead of %d",
                    k, n, k, requested)
    raw = rows.labels
    sizes = np.bincount(raw, minlength=k)
    order = np.argsort(-sizes, kind="stable")  # new number i = old cluster order[i]
    if (nonempty := int(np.count_nonzero(sizes))) < k:  # near-duplicates can leave a centre unused
        log.warning("dropped %d empty clusters: %d clusters instead of %d", k - nonempty, nonempty, requested)
        k = nonempty
    order = order[:k]  # empty clusters sort last: drop them
    renumber = np.full(len(sizes), -1, dtype=np.int64)
    renumber[order] = np.arange(k)
    assignments = renumber[raw]
    sampled = rows.fitted_rows < n
    terms = _top_terms(texts, assignments, k, per_cluster=TERMS_PER_CLUSTER if sampled else None, seed=seed)
    counts_of = _label_counts(labels, assignments, k) if labels is not None else [[] for _ in range(k)]
    members_of = members_by_cluster(assignments, k)
    summaries = []
    for c in range(k):
        members = members_of[c]
        counts = counts_of[c]
        labelled = sum(cnt for _, cnt in counts)
        nearest = members[np.argsort(rows.distances[members], kind="stable")[:N_REPRESENTATIVES]]
        summaries.append(ClusterSummary(
            cluster=c, size=len(members), label_counts=tuple(counts),
            majority_label=counts[0][0] if counts else None,
            purity=counts[0][1] / labelled if labelled else None,
            representative_ids=tuple(ids[i] for i in nearest), top_terms=terms[c],
        ))
    return Clustering(ids, assignments, int(k), int(seed), tuple(summaries), requested)
