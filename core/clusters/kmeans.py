"""KMeans clusters and their summaries (labels, representatives, TF-IDF terms); the
clustering half of :mod:`core.clusters`."""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core._shared import unit_rows
from core.clusters.projection import check_vectors
from core.errors import InputError

log = logging.getLogger(__name__)

N_REPRESENTATIVES = 5
N_TOP_TERMS = 8
MINIBATCH_ABOVE = 20_000  # rows above which MiniBatchKMeans replaces KMeans
KMEANS_N_INIT = 3


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


def _present(value: Any) -> bool:
    """False for None, NaN and blank strings (missing labels/texts from pandas)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return False
    return bool(str(value).strip())


def _top_terms(texts: Sequence[Any] | None, assignments: np.ndarray, k: int) -> list[tuple[str, ...]]:
    """Per cluster, the terms with the highest mean TF-IDF over its text rows."""
    terms: list[tuple[str, ...]] = [() for _ in range(k)]
    rows = [i for i, t in enumerate(texts) if _present(t)] if texts is not None else []
    if not rows:
        return terms
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(stop_words="english", max_features=50_000, sublinear_tf=True)
    try:
        matrix = vectorizer.fit_transform([str(texts[i]) for i in rows])
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


def cluster(ids: Sequence[str], vectors: np.ndarray, k: int = 10, *, seed: int = 0,
            labels: Sequence[str | None] | None = None, texts: Sequence[str | None] | None = None,
            minibatch_threshold: int = MINIBATCH_ABOVE) -> Clustering:
    """KMeans on L2-normalised ``vectors`` (n, d), seeded; MiniBatchKMeans above
    ``minibatch_threshold`` rows. Clusters are renumbered largest first.

    ``k`` is capped at the number of distinct normalised vectors (logged; the result's
    ``k`` is the effective one, ``requested_k`` the one asked for): no cluster is empty.
    ``labels``/``texts`` (n,) are optional; None/NaN/blank count as missing.
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
    x = unit_rows(vectors)
    requested = int(k)
    k = distinct_rows(x, requested)
    if k < requested:
        log.warning("only %d distinct vectors among %d rows: making %d clusters instead of %d",
                    k, n, k, requested)
    fit = fit_kmeans(x, k, seed, minibatch_threshold=minibatch_threshold)
    raw = fit.labels
    sizes = np.bincount(raw, minlength=k)
    order = np.argsort(-sizes, kind="stable")  # new number i = old cluster order[i]
    if (nonempty := int(np.count_nonzero(sizes))) < k:  # near-duplicates can leave a centre unused
        log.warning("dropped %d empty clusters: %d clusters instead of %d", k - nonempty, nonempty, requested)
        k = nonempty
    order = order[:k]  # empty clusters sort last: drop them
    renumber = np.full(len(sizes), -1, dtype=np.int64)
    renumber[order] = np.arange(k)
    assignments = renumber[raw]
    centroids = fit.centroids[order]
    terms = _top_terms(texts, assignments, k)
    ids = tuple(str(i) for i in ids)
    summaries = []
    for c in range(k):
        members = np.flatnonzero(assignments == c)
        counts: list[tuple[str, int]] = []
        if labels is not None:
            tally = Counter(str(labels[i]) for i in members if _present(labels[i]))
            counts = sorted(tally.items(), key=lambda kv: (-kv[1], kv[0]))
        labelled = sum(cnt for _, cnt in counts)
        centre = centroids[c] / max(float(np.linalg.norm(centroids[c])), 1e-12)
        sims = x[members] @ centre
        nearest = members[np.argsort(-sims, kind="stable")[:N_REPRESENTATIVES]]
        summaries.append(ClusterSummary(
            cluster=c, size=len(members), label_counts=tuple(counts),
            majority_label=counts[0][0] if counts else None,
            purity=counts[0][1] / labelled if labelled else None,
            representative_ids=tuple(ids[i] for i in nearest), top_terms=terms[c],
        ))
    return Clustering(ids, assignments, int(k), int(seed), tuple(summaries), requested)
