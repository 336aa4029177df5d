"""Text search over a dataset's rows: semantic, keyword (BM25) or both fused.

- ``semantic``: the query encoded by the plan's encoder, ranked by cosine on the plan's
  embedding (:mod:`core.search.text_plan`). When that embedding holds image and text rows
  (``class-names`` or ``clip`` on a mixed dataset), cosines of the two kinds are not
  comparable (a text query lies closer to texts than to any image): each kind is ranked on
  its own and its scores are calibrated to standard scores, ``z = (s - mean) / std`` over the
  query's cosines with a fixed sample of up to 2,000 rows of that kind; the lists are merged
  on ``z``.
- ``keyword``: BM25 over each row's text, caption, file-name words, label and string metadata
  (:mod:`core.search.keywords`).
- ``hybrid`` (the default where rows have keyword text): both rankings fused by reciprocal
  rank fusion (k = 60), a row's keyword term weighted by the cube of the share of the
  query's word weight (idf) it holds: a row that has every query word (a rare code, a name)
  counts fully, one that shares a common word with a paraphrase barely moves; rows that
  contain the query as an exact phrase (two words or more) come first, in fused order.

One code path for the page, ``catalog search --text`` and the benchmark:
:func:`open_text_search` loads what a plan needs once, :func:`run_text_search` answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core._shared import check_positive_int
from core.errors import InputError
from core.search.keywords import MAX_QUERY_CHARS, KeywordIndex, reciprocal_rank_fusion
from core.search.queries import SearchResult, search_vector
from core.search.text_plan import TextSearchPlan

MODES = ("semantic", "keyword", "hybrid")
CALIBRATION_SAMPLE = 2000
FUSION_POOL = 500  # candidates per ranking fused (at least k): RRF terms past rank 500 are < 1/560
RRF_K = 60
KEYWORD_MAX_ROWS = 2_000_000  # above: no keyword index (1M rows take ~45 s and ~3 GB to build)
COVERAGE_POWER = 3  # chosen by bench/bench_text_search.py on the api-docs queries (docs/benchmarks.md)


@dataclass(frozen=True, eq=False)
class TextSearch:
    """What one plan's queries need, loaded once: the searched ``index`` and the query
    ``encoder`` (None for a keyword-only search), the dataset's ``keywords`` index (None if
    not built), and for a mixed embedding the row kind of each of its rows (``kinds``,
    aligned with ``index.ids``) with a calibration sample per kind."""

    plan: TextSearchPlan
    index: object | None = field(repr=False)
    encoder: object | None = field(repr=False)
    keywords: KeywordIndex | None = field(repr=False)
    kinds: dict = field(default_factory=dict, repr=False)  # kind -> (ids array, subset, sample (s, d))

    @property
    def default_mode(self) -> str:
        """``hybrid`` when rows have keyword text, else ``semantic``."""
        return "hybrid" if self.keywords is not None and self.keywords.has_text() else "semantic"


def open_text_search(plan: TextSearchPlan, index, encoder, keywords: KeywordIndex | None,
                     row_kinds: pd.Series | None = None) -> TextSearch:
    """Bundle a plan's loaded parts. ``row_kinds``: the dataset's ``modality`` by row id
    (needed when ``plan.mixed``: the per-kind subsets and calibration samples are made here)."""
    kinds = {}
    if plan.mixed and index is not None and row_kinds is not None:
        ids = np.asarray(index.ids, dtype=str)
        of = row_kinds.reindex(pd.Index(ids)).to_numpy()
        rng = np.random.default_rng(0)
        for kind in plan.modalities:
            mine = ids[of == kind]
            if not len(mine):
                continue
            sample = mine[np.sort(rng.choice(len(mine), min(CALIBRATION_SAMPLE, len(mine)), replace=False))]
            kinds[kind] = (mine, index.subset(list(mine)), np.asarray(index.vectors_for(list(sample)), np.float32))
    return TextSearch(plan, index, encoder, keywords, kinds)


def check_query(query: str) -> str:
    """The stripped query; InputError when empty or longer than :data:`MAX_QUERY_CHARS`."""
    text = (query or "").strip()
    if not text:
        raise InputError("the search query is empty; type a few words")
    if len(text) > MAX_QUERY_CHARS:
        raise InputError(f"the search query is {len(text):,} characters; the limit is {MAX_QUERY_CHARS:,}")
    return text


def run_text_search(search: TextSearch, query: str, *, mode: str | None = None, k: int | None = 50,
                    threshold: float | None = None, within: Sequence[str] | None = None,
                    within_subset=None, pool: int = FUSION_POOL) -> SearchResult:
    """Rows matching ``query``, best first (see the module doc for the modes; None: the
    default mode). ``within``: only these row ids (``within_subset``: the same rows resolved
    in the index, reused across queries). With ``threshold``, rows scoring ≥ it: exact over
    every row for an uncalibrated semantic search, else among the candidates (``pool`` per
    ranking, at least ``k``). The
    recipe records the method, the mode and the score kind; ``matched`` says per row what
    matched it. InputError: empty or over-long query, unknown mode, a mode that needs what
    this search lacks.
    """
    text = check_query(query)
    mode = search.default_mode if mode is None else mode
    if mode not in MODES:
        raise InputError(f"unknown text search mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode != "semantic" and search.keywords is None:
        raise InputError(f"{mode} search needs a keyword index, which is built for datasets of up to "
                         f"{KEYWORD_MAX_ROWS:,} rows; {search.plan.dataset!r} is searched by meaning only")
    if mode != "keyword" and (search.index is None or search.encoder is None):
        raise InputError(f"{mode} search needs an embedding that reads text")
    if k is not None:
        k = check_positive_int(k, "k")
    plan = search.plan
    recipe = {"kind": "text", "query": text, "mode": mode, "method": plan.method,
              "embedding": plan.embedding, "encoder": plan.encoder}
    if mode == "semantic" and not search.kinds:
        return _semantic_exact(search, text, k, threshold, within_subset or within, recipe)
    pool = max(k or 0, check_positive_int(pool, "pool"))
    semantic = _semantic_ranked(search, text, pool, within, within_subset) if mode != "keyword" else None
    keyword = _keyword_ranked(search.keywords, text, pool, within) if mode != "semantic" else None
    if mode == "semantic":
        ids, scores, score_kind = semantic[0], semantic[1], "calibrated"
    elif mode == "keyword":
        ids, scores, score_kind = keyword[0], keyword[1], "bm25"
    else:  # keyword ranks count by how much of the query each row holds (cubed)
        weight = keyword[2] ** COVERAGE_POWER
        ids, scores = reciprocal_rank_fusion([semantic[0], keyword[0]], k=RRF_K, weights=[None, weight])
        score_kind = "rrf"
    ids, scores = _phrase_first(search.keywords, text, list(ids), np.asarray(scores, np.float32), keyword)
    matched = _matched(ids, semantic, keyword, search, k or len(ids))
    if threshold is not None:
        keep = scores >= float(threshold)
        ids, scores, matched = [i for i, o in zip(ids, keep) if o], scores[keep], [m for m, o in zip(matched, keep) if o]
    if k is not None:
        ids, scores, matched = ids[:k], scores[:k], matched[:k]
    recipe.update({"score": score_kind, "k": k, "threshold": threshold,
                   "truncated": mode != "keyword" and bool(search.encoder.text_is_truncated(text)),
                   "filtered_to": None if within is None else len(within)})
    return SearchResult(tuple(ids), np.asarray(scores, np.float32), recipe, tuple(matched))


def _semantic_exact(search, text, k, threshold, within, recipe) -> SearchResult:
    vector = search.encoder.encode_texts([text])[0]
    recipe = {**recipe, "score": "cosine", "truncated": bool(search.encoder.text_is_truncated(text))}
    result = search_vector(search.index, vector, k=k, threshold=threshold, within=within, recipe=recipe)
    method = search.plan.method
    return SearchResult(result.ids, result.scores, result.recipe, (method,) * len(result))


def _semantic_ranked(search, text, pool, within, within_subset) -> tuple[list[str], np.ndarray, dict]:
    """(ids, scores, {id: kind}) best first: cosine, or calibrated z per row kind."""
    vector = search.encoder.encode_texts([text])[0]
    if not search.kinds:
        hits = search.index.search(vector, min(pool, len(search.index)), within=within_subset or within)
        ids, scores = hits.row(0)
        return [str(i) for i in ids], np.asarray(scores, np.float32), {}
    wanted = None if within is None else pd.Index([str(i) for i in within])
    parts, kind_of = [], {}
    for kind, (mine, subset, sample) in search.kinds.items():
        scope = subset if wanted is None else list(wanted.intersection(pd.Index(mine)))
        if wanted is not None and not scope:
            continue
        ids, scores = search.index.search(vector, min(pool, len(mine)), within=scope).row(0)
        ref = sample @ vector
        z = (np.asarray(scores, np.float64) - ref.mean()) / max(float(ref.std()), 1e-6)
        parts.append((list(map(str, ids)), z))
        kind_of.update(dict.fromkeys(map(str, ids), kind))
    if not parts:
        return [], np.zeros(0, np.float32), {}
    ids = [i for p in parts for i in p[0]]
    z = np.concatenate([p[1] for p in parts])
    order = np.lexsort((np.arange(len(ids)), -z))[:pool]  # ties: the earlier kind, then its rank
    return [ids[i] for i in order], z[order].astype(np.float32), kind_of


def _keyword_ranked(keywords: KeywordIndex, text, pool, within) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(ids, BM25 scores, coverage of the query) best first."""
    mask = None
    if within is not None:
        mask = np.zeros(len(keywords), dtype=bool)
        where = keywords.positions_of(within)
        mask[where[where >= 0]] = True
    hits = keywords.search(text, pool, within=mask)
    return [str(keywords.ids[p]) for p in hits.positions], hits.scores, hits.coverage


def _phrase_first(keywords, text, ids, scores, keyword) -> tuple[list[str], np.ndarray]:
    """Rows containing ``text`` as an exact phrase first (keyword and hybrid modes). Only
    rows holding every query word (coverage 1 in ``keyword``) can; only those are read."""
    if keyword is None or not ids:
        return ids, scores
    whole = [rid for rid, cov in zip(keyword[0], keyword[2]) if cov >= 1.0 - 1e-6]
    if not whole:
        return ids, scores
    positions = keywords.positions_of(whole)
    phrased = {whole[i] for i, p in enumerate(positions)
               if p >= 0 and len(keywords.phrase_positions(text, np.array([p])))}
    if not phrased:
        return ids, scores
    first = np.array([rid in phrased for rid in ids], dtype=bool)
    order = np.concatenate([np.flatnonzero(first), np.flatnonzero(~first)])
    scores = scores.copy()  # a phrase row scores above every other row
    scores[first] += float(scores.max()) - float(scores.min()) + 1.0
    return [ids[i] for i in order], scores[order]


def _matched(ids, semantic, keyword, search, top) -> list[str]:
    """What matched each row: the method (per kind in a mixed space) when the row is among the
    ``top`` semantic ranks, ``keyword`` when its BM25 score is above 0, or both."""
    sem = set() if semantic is None else set(semantic[0][:top])
    kinds = {} if semantic is None else semantic[2]
    key = set() if keyword is None else set(keyword[0])
    out = []
    for rid in ids:
        parts = []
        if rid in sem:
            kind = kinds.get(rid)
            parts.append("text" if kind == "text" and search.plan.method == "class-names" else search.plan.method)
        if rid in key:
            parts.append("keyword")
        out.append(" + ".join(parts))
    return out


def plan_for_dataset(ds, embedding: str | None = None, *, method: str | None = None,
                     rows: pd.DataFrame | None = None) -> TextSearchPlan:
    """:func:`core.search.plan_text_search` over ``ds``'s stored embeddings (``embedding``
    None: the default one; ``rows`` default ``ds.rows()``, for the row kinds)."""
    from core.embeddings import list_embeddings
    from core.search.text_plan import FALLBACK_EMBEDDING, plan_text_search

    infos = {i.name: i for i in list_embeddings(ds) if i.name != FALLBACK_EMBEDDING}
    name = ds.require_embedding(embedding)
    rows = ds.rows() if rows is None else rows
    others = {n: (i.encoder, i.modalities) for n, i in infos.items()}
    info = infos.get(name)
    return plan_text_search(ds.name, name, info.encoder if info else None,
                            sorted(set(rows["modality"].astype(str))), others=others, method=method)


def load_text_search(ds, plan: TextSearchPlan, rows: pd.DataFrame | None = None, *,
                     progress=None) -> TextSearch:
    """Everything ``plan``'s queries need, loaded from ``ds`` (the row-text embedding and the
    keyword index are built first if missing or stale)."""
    from core.embeddings import load_index
    from core.encoders import load_encoder
    from core.search.row_text import ensure_row_text_embedding

    rows = ds.rows() if rows is None else rows
    if plan.fallback:
        ensure_row_text_embedding(ds, rows, progress=progress)
    index = load_index(ds, plan.embedding)
    kinds = rows.set_index(rows["id"].astype(str))["modality"].astype(str) if plan.mixed else None
    return open_text_search(plan, index, load_encoder(plan.encoder), keyword_index(ds, rows), kinds)


def keyword_index(ds, rows: pd.DataFrame) -> KeywordIndex | None:
    """The dataset's keyword index (built or reused, :func:`core.search.ensure_keyword_index`);
    None above :data:`KEYWORD_MAX_ROWS` rows (searches there are semantic only)."""
    from core.search.keywords import ensure_keyword_index

    return ensure_keyword_index(ds, rows) if len(rows) <= KEYWORD_MAX_ROWS else None
