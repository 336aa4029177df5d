"""Vector indexes: exact and HNSW FAISS indexes over L2-normalised vectors, scores exact cosines.

- :mod:`core.index.vector_index`: :class:`VectorIndex` (search, range search, search
  inside a subset, add, remove, save/open) and :func:`build_index`.
- :mod:`core.index.faiss_build`: building FAISS indexes in chunks; the :class:`Hits`
  and :class:`RangeHits` result types.
- :mod:`core.index.kinds`: the kinds (``auto`` picks by row count) and HNSW parameters.
- :mod:`core.index.files`: index files on disk (``index.faiss`` + ``index.json``).
- :mod:`core.index.huge_pages`: transparent huge pages under the HNSW graph (Linux).
"""

from __future__ import annotations

from core.index.faiss_build import Hits, RangeHits
from core.index.kinds import EXACT_MAX_ROWS, HNSW_DEFAULTS, KINDS, resolve_kind
from core.index.vector_index import VectorIndex, build_index

__all__ = ["EXACT_MAX_ROWS", "HNSW_DEFAULTS", "KINDS", "Hits", "RangeHits", "VectorIndex",
           "build_index", "resolve_kind"]
