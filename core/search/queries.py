"""Similarity search (multi-anchor, negatives, threshold) and natural-language search.

Encoding is a separate step from searching: :func:`find_similar` and
:func:`search_vector` take vectors/ids and a :class:`~core.index.VectorIndex`;
:func:`search_text` and :func:`search_image` encode a query with an encoder first.
Every result carries the recipe that produced it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from core._shared import check_positive_int
from core.errors import InputError, NotFoundError, format_list
from core.index import VectorIndex

METHODS = ("rocchio", "max", "mean", "min")
DEFAULT_NEGATIVE_WEIGHT = 0.5


@dataclass(frozen=True)
class SearchResult:
    """Ranked rows, best first. ``scores`` (m,) float32 scores (cosine-like unless the recipe's
    ``score`` says otherwise); ``matched`` per row what matched it (text search, e.g.
    ``class-names + keyword``), empty when not told."""

    ids: tuple[str, ...]
    scores: np.ndarray
    recipe: dict = field(default_factory=dict)
    matched: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.ids)

    def above(self, threshold: float) -> SearchResult:
        """The rows with score ≥ ``threshold`` (recipe records the threshold)."""
        keep = self.scores >= threshold
        recipe = {**self.recipe, "threshold": float(threshold)}
        matched = tuple(m for m, o in zip(self.matched, keep) if o) if self.matched else ()
        return SearchResult(tuple(np.asarray(self.ids, dtype=object)[keep]), self.scores[keep], recipe, matched)

    def to_json(self) -> dict:
        rows = [{"id": i, "score": round(float(s), 6)} for i, s in zip(self.ids, self.scores)]
        for row, how in zip(rows, self.matched):
            row["matched_by"] = how
        return {"results": rows, "recipe": self.recipe}


def _normalise(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    norm = float(np.linalg.norm(v))
    if norm == 0 or not np.isfinite(norm):
        raise InputError("the query vector is zero or not finite (positives and negatives cancel out)")
    return v / norm


def _check_ids(index: VectorIndex, ids: Sequence[str], what: str) -> list[str]:
    ids = list(dict.fromkeys(str(i) for i in ids))
    try:
        index.vectors_for(ids)  # O(len(ids)) lookup; a set of every id costs ~7 ms at 100k rows
    except NotFoundError:
        known = set(index.ids)
        missing = [i for i in ids if i not in known]
        raise NotFoundError(f"{len(missing)} {what} id(s) not in this embedding: "
                            f"{format_list(missing)}") from None
    return ids


def search_vector(
    index: VectorIndex,
    query: np.ndarray,
    *,
    k: int | None = 50,
    threshold: float | None = None,
    within: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    recipe: dict | None = None,
) -> SearchResult:
    """Rank rows by cosine to ``query`` ((d,) float32).

    With ``threshold`` every row scoring ≥ t is returned (exact), cut to ``k`` if
    ``k`` is given; otherwise the top ``k``. ``within`` restricts ranking to those ids.
    """
    if k is None and threshold is None:
        raise InputError("give k, a threshold, or both")
    if k is not None:
        k = check_positive_int(k, "k")
    query = _normalise(query)
    excluded = set(exclude or ())
    if threshold is not None:
        hits = index.range_search(query, float(threshold), within=within)
        pairs = [(i, s) for i, s in zip(hits.ids, hits.scores) if i not in excluded]
        if k is not None:
            pairs = pairs[:k]
    else:
        hits = index.search(query, int(k), within=within, exclude=list(excluded) or None)
        ids, scores = hits.row(0)
        pairs = list(zip(ids, scores))
    ids = tuple(str(i) for i, _ in pairs)
    scores = np.asarray([s for _, s in pairs], dtype=np.float32)
    return SearchResult(ids, scores, {**(recipe or {}), "k": k, "threshold": threshold,
                                      "filtered_to": None if within is None else len(within)})


def find_similar(
    index: VectorIndex,
    positive_ids: Sequence[str] = (),
    negative_ids: Sequence[str] = (),
    *,
    positive_vectors: np.ndarray | None = None,
    method: str = "rocchio",
    negative_weight: float = DEFAULT_NEGATIVE_WEIGHT,
    k: int | None = 50,
    threshold: float | None = None,
    within: Sequence[str] | None = None,
    include_anchors: bool = False,
    embedding: str | None = None,
) -> SearchResult:
    """Rows most like the anchors and unlike the negatives.

    ``method``:
      - ``rocchio`` (default): query = normalize(mean(pos) - w * mean(neg)); exact ranking.
      - ``max`` / ``mean`` / ``min``: per-row aggregate of its cosine to each positive
        anchor, minus ``w`` × its highest cosine to a negative. Candidates are the
        union of each anchor's top rows (and, with a threshold, every row ≥ t for
        any anchor), rescored exactly.
    ``positive_vectors`` (m, d) adds anchors that are not rows (e.g. an uploaded image).
    Anchors are excluded from the results unless ``include_anchors``.
    """
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if negative_weight < 0:
        raise InputError(f"negative weight must be ≥ 0, got {negative_weight}")
    pos_ids = _check_ids(index, positive_ids, "anchor")
    neg_ids = _check_ids(index, negative_ids, "negative")
    pos = [index.vectors_for(pos_ids)] if pos_ids else []
    if positive_vectors is not None and len(positive_vectors):
        extra = np.atleast_2d(np.asarray(positive_vectors, dtype=np.float32))
        if extra.shape[1] != index.dims:
            raise InputError(f"anchor vector has {extra.shape[1]} dims; the embedding has {index.dims}")
        pos.append(extra / np.linalg.norm(extra, axis=1, keepdims=True))
    if not pos:
        raise InputError("choose at least one anchor row or upload an anchor image")
    P = np.concatenate(pos).astype(np.float32)
    N = index.vectors_for(neg_ids) if neg_ids else np.zeros((0, index.dims), np.float32)
    exclude = [] if include_anchors else pos_ids + neg_ids
    recipe = {
        "kind": "similarity", "anchors": pos_ids, "negatives": neg_ids,
        "uploaded_anchors": int(P.shape[0] - len(pos_ids)), "method": method,
        "negative_weight": float(negative_weight), "embedding": embedding,
    }
    if method == "rocchio":
        query = P.mean(axis=0)
        if len(N):
            query = query - negative_weight * N.mean(axis=0)
        return search_vector(index, query, k=k, threshold=threshold, within=within,
                             exclude=exclude, recipe=recipe)
    return _aggregate_search(index, P, N, method, negative_weight, k, threshold, within, exclude, recipe)


def _aggregate_search(index, P, N, method, w, k, threshold, within, exclude, recipe) -> SearchResult:
    pool = max(4 * (k or 0), 2000)
    candidates: set[str] = set()
    for anchor in P:
        ids, _ = index.search(anchor, min(pool, len(index)), within=within).row(0)
        candidates.update(ids)
        if threshold is not None:
            candidates.update(index.range_search(anchor, float(threshold) - 1e-6, within=within).ids)
    candidates.difference_update(exclude)
    if not candidates:
        return SearchResult((), np.zeros(0, np.float32), {**recipe, "k": k, "threshold": threshold})
    cand = sorted(candidates)
    V = index.vectors_for(cand)
    sims = V @ P.T
    agg = {"max": sims.max(axis=1), "mean": sims.mean(axis=1), "min": sims.min(axis=1)}[method]
    if len(N):
        agg = agg - w * (V @ N.T).max(axis=1)
    order = np.argsort(-agg, kind="stable")
    scores = agg[order].astype(np.float32)
    ids = np.asarray(cand, dtype=object)[order]
    if threshold is not None:
        keep = scores >= threshold
        ids, scores = ids[keep], scores[keep]
    if k is not None:
        ids, scores = ids[:k], scores[:k]
    return SearchResult(tuple(ids), scores, {**recipe, "k": k, "threshold": threshold,
                                             "filtered_to": None if within is None else len(within)})


def search_text(
    index: VectorIndex,
    encoder,
    query: str,
    *,
    k: int | None = 50,
    threshold: float | None = None,
    within: Sequence[str] | None = None,
    embedding: str | None = None,
) -> SearchResult:
    """Rows matching a natural-language ``query``, encoded with ``encoder``'s text tower.

    The recipe records ``truncated`` when the query exceeds the encoder's token limit.
    Raises InputError for an empty query.
    """
    text = (query or "").strip()
    if not text:
        raise InputError("the search query is empty; type a few words")
    if "text" not in encoder.modalities:
        raise InputError(f"encoder {encoder.spec!r} cannot encode text; it embeds {sorted(encoder.modalities)}")
    vector = encoder.encode_texts([text])[0]
    recipe = {"kind": "text", "query": text, "encoder": encoder.spec, "embedding": embedding,
              "truncated": bool(encoder.text_is_truncated(text))}
    return search_vector(index, vector, k=k, threshold=threshold, within=within, recipe=recipe)


def search_image(
    index: VectorIndex,
    encoder,
    image,
    *,
    k: int | None = 50,
    threshold: float | None = None,
    within: Sequence[str] | None = None,
    embedding: str | None = None,
) -> SearchResult:
    """Rows most like a PIL ``image`` encoded with ``encoder`` (must match the embedding)."""
    if "image" not in encoder.modalities:
        raise InputError(f"encoder {encoder.spec!r} cannot encode images")
    vector = encoder.encode_images([image])[0]
    recipe = {"kind": "image", "encoder": encoder.spec, "embedding": embedding}
    return search_vector(index, vector, k=k, threshold=threshold, within=within, recipe=recipe)
