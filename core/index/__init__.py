"""Vector indexes over L2-normalised vectors (exact, HNSW and IVF FAISS indexes); scores are
exact cosines.

- :mod:`core.index.build`: :func:`build_index` (any kind, rows checked first, added in chunks).
- :mod:`core.index.vector_index`: :class:`VectorIndex` (search, range search, search
  inside a subset, add, remove, save/open).
- :mod:`core.index.faiss_build`: building blocks of the exact and HNSW kinds; the
  :class:`Hits`, :class:`RangeHits` and :class:`Subset` types.
- :mod:`core.index.ivf`: the IVF kind (4-bit codes, exact re-rank from the vectors' map);
  :mod:`core.index.mapped`: the memory-mapped rows it re-ranks from.
- :mod:`core.index.kinds`: the kinds (``auto`` picks by row count) and their parameters.
- :mod:`core.index.files`: index files on disk (``index.faiss`` + ``index.json`` ...).
- :mod:`core.index.huge_pages`: transparent huge pages under the HNSW graph (Linux).
- :mod:`core.index.backend`: the :class:`VectorBackend` protocol every backend implements,
  :func:`open_index` (the backend ``index.json`` names). :mod:`core.index.lance` (imported
  on use; lancedb is in requirements-scale.txt): ``LanceIndex``, the LanceDB backend, over
  :mod:`core.index.lance_table`.
"""

from __future__ import annotations

from core.index.backend import (
           BACKENDS,
           VectorBackend,
           open_index,
           recorded_backend,
           remove_other_backends,
)
from core.index.build import build_index, check_index_target
from core.index.faiss_build import Hits, RangeHits, Subset
from core.index.kinds import (
           EXACT_MAX_ROWS,
           HNSW_DEFAULTS,
           HNSW_MAX_ROWS,
           IVF_DEFAULTS,
           KINDS,
           resolve_kind,
)
from core.index.vector_index import VectorIndex

__all__ = ["BACKENDS", "EXACT_MAX_ROWS", "HNSW_DEFAULTS", "HNSW_MAX_ROWS", "IVF_DEFAULTS", "KINDS", "Hits",
           "RangeHits", "Subset", "VectorBackend", "VectorIndex", "build_index", "check_index_target", "open_index",
           "recorded_backend", "remove_other_backends", "resolve_kind"]
