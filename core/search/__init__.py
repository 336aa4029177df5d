"""Search: similarity from anchors (with negatives and a threshold), text and image queries.

- :mod:`core.search.queries`: :func:`find_similar`, :func:`search_text`,
  :func:`search_image`, :func:`search_vector`, :class:`SearchResult`.
- :mod:`core.search.row_text`: text search over rows an embedding cannot read text for
  (image rows without CLIP): each row's descriptive text, embedded with MiniLM.
"""

from __future__ import annotations

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
    CLIP_SUGGESTION,
    FALLBACK_EMBEDDING,
    FALLBACK_ENCODER,
    TextSearchPlan,
    ensure_row_text_embedding,
    fallback_is_current,
    plan_text_search,
    reads_text,
    row_descriptions,
)

__all__ = [
    "CLIP_SUGGESTION", "DEFAULT_NEGATIVE_WEIGHT", "FALLBACK_EMBEDDING", "FALLBACK_ENCODER",
    "METHODS", "SearchResult", "TextSearchPlan", "ensure_row_text_embedding",
    "fallback_is_current", "find_similar", "plan_text_search", "reads_text",
    "row_descriptions", "search_image", "search_text", "search_vector",
]
