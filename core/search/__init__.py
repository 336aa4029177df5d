"""Search: similarity from anchors (with negatives and a threshold), text and image queries.

- :mod:`core.search.queries`: :func:`find_similar`, :func:`search_text`,
  :func:`search_image`, :func:`search_vector`, :class:`SearchResult`.
- :mod:`core.search.text_plan`: :func:`plan_text_search`: which embedding and method
  (``clip``, ``class-names``, ``text``, ``row-text``) answer a text query.
- :mod:`core.search.text_query`: :func:`run_text_search` in ``semantic``, ``keyword`` or
  ``hybrid`` mode (calibrated across row kinds, RRF, exact phrases first);
  :func:`plan_for_dataset` and :func:`load_text_search` for one dataset.
- :mod:`core.search.keywords`: the BM25 keyword index (bm25s) and reciprocal rank fusion.
- :mod:`core.search.row_text`: each row's descriptive text, embedded with MiniLM (the
  ``row-text`` method).
"""

from __future__ import annotations

from core.search.keywords import (
    MAX_QUERY_CHARS,
    KeywordIndex,
    ensure_keyword_index,
    reciprocal_rank_fusion,
)
from core.search.queries import (
    DEFAULT_NEGATIVE_WEIGHT,
    METHODS,
    SearchResult,
    find_similar,
    search_image,
    search_text,
    search_vector,
)
from core.search.row_text import (
    descriptions_hash,
    ensure_row_text_embedding,
    fallback_is_current,
    row_descriptions,
)
from core.search.text_plan import (
    CLIP_SUGGESTION,
    FALLBACK_EMBEDDING,
    FALLBACK_ENCODER,
    TEXT_METHODS,
    TextSearchPlan,
    plan_text_search,
)
from core.search.text_query import (
    FUSION_POOL,
    KEYWORD_MAX_ROWS,
    MODES,
    TextSearch,
    check_query,
    keyword_index,
    load_text_search,
    open_text_search,
    plan_for_dataset,
    run_text_search,
)

__all__ = [
    "CLIP_SUGGESTION", "DEFAULT_NEGATIVE_WEIGHT", "FALLBACK_EMBEDDING", "FALLBACK_ENCODER",
    "FUSION_POOL", "KEYWORD_MAX_ROWS", "MAX_QUERY_CHARS", "METHODS", "MODES", "TEXT_METHODS", "KeywordIndex", "SearchResult",
    "TextSearch", "TextSearchPlan", "check_query", "descriptions_hash", "ensure_keyword_index",
    "ensure_row_text_embedding", "fallback_is_current", "find_similar", "keyword_index", "load_text_search",
    "open_text_search", "plan_for_dataset", "plan_text_search", "reciprocal_rank_fusion",
    "row_descriptions", "run_text_search", "search_image", "search_text", "search_vector",
]
