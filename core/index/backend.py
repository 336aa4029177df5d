"""What every vector index offers, whichever engine holds the vectors, and how a saved one
is opened.

:class:`VectorBackend` is the protocol pages, the CLI, search and quality rely on. Two
implementations: :class:`core.index.VectorIndex` (FAISS: ``exact`` | ``hnsw`` | ``ivf``,
files beside the vectors) and :class:`core.index.lance.LanceIndex` (an embedded LanceDB
table at a folder or URI). Every score either returns is an exact cosine of
L2-normalised float32 rows; ids are non-empty strings; positions index :attr:`ids`.

``index.json`` names the backend (``"backend"``; absent = ``"faiss"``, what every index
written before the LanceDB backend has), so :func:`open_index` needs nothing else.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from core import atomic
from core.errors import IndexStateError, InputError

BACKENDS = ("faiss", "lancedb")


@runtime_checkable
class VectorBackend(Protocol):
    """A cosine kNN index over string ids. ``kind`` names the engine's index kind
    (faiss: "exact" | "hnsw" | "ivf"; lancedb: "exact" | "ivf_pq" | "ivf_hnsw_sq"),
    ``dims`` the vector width, ``params`` its search/build parameters."""

    kind: str
    dims: int
    params: dict[str, int]

    def __len__(self) -> int: ...

    @property
    def ids(self) -> np.ndarray:
        """(n,) object array of live ids in insertion order (read-only)."""

    def subset(self, ids: Sequence[str] | None = None, *, positions: np.ndarray | None = None) -> Any:
        """Rows to search inside (ids or positions into :attr:`ids`), with ``len()``."""

    def search(self, queries: np.ndarray, k: int, *, within: Any = None,
               exclude: Sequence[str] | None = None) -> Any:
        """Top-``k`` of (d,) or (q, d) queries -> ``Hits`` ((q, k) ids, '' pads; scores, -inf pads)."""

    def search_positions(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores (q, k) float32, positions (q, k) int64 into :attr:`ids`, -1 pads)."""

    def range_search(self, query: np.ndarray, threshold: float, *, within: Any = None) -> Any:
        """Rows with cosine >= ``threshold`` for one (d,) query -> ``RangeHits``, best first."""

    def range_search_positions(self, queries: np.ndarray, threshold: float
                               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lims (q+1,) int64, positions int64, scores float32), query i's at lims[i]:lims[i+1]."""

    def add(self, vectors: np.ndarray, ids: Sequence[str]) -> None:
        """Append (n, d) ``vectors`` under new unique ``ids``."""

    def remove(self, ids: Sequence[str]) -> int:
        """Remove ``ids`` (NotFoundError on unknown ones); how many were removed."""

    def vectors_for(self, ids: Sequence[str]) -> np.ndarray:
        """(len(ids), d) float32 stored unit rows, in the order asked."""

    def save(self, directory: str | Path) -> None:
        """Write the index (and its ``index.json``) so :func:`open_index` reads it back."""

    def rebase(self, vectors: np.ndarray) -> None:
        """Re-rank from a rewritten ``vectors.npy`` (FAISS ivf); a no-op elsewhere."""

    def coarse_lists(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(centroids, list of each row) of an inverted file the caller may reuse, or None."""


def check_backend(backend: str) -> str:
    """``backend`` if it is one of :data:`BACKENDS`; InputError naming them otherwise."""
    if backend not in BACKENDS:
        raise InputError(f"unknown index backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    return backend


def recorded_backend(directory: str | Path) -> dict[str, Any]:
    """``{"backend": ..., "uri": ...}`` of the index saved in ``directory`` (what to rebuild
    it as); FAISS with no URI when there is no readable ``index.json``."""
    path = Path(directory) / "index.json"
    try:
        meta = atomic.read_json(path) if path.is_file() else {}
    except (OSError, ValueError):
        meta = {}
    if not isinstance(meta, dict) or meta.get("backend", "faiss") not in BACKENDS:
        return {"backend": "faiss", "uri": None}
    backend = meta.get("backend", "faiss")
    uri = meta.get("uri") if backend == "lancedb" else None
    return {"backend": backend, "uri": None if uri == "lance" else uri}


# what each backend keeps in an index folder besides index.json (vectors.npy is the embedding's)
BACKEND_FILES = {"faiss": ("index.faiss", "index_ids.npy", "index_norms.npy", "index_added.npy"),
                 "lancedb": ("lance",)}


def remove_other_backends(directory: str | Path, backend: str) -> None:
    """Delete what another backend left in ``directory`` (after ``backend``'s index was saved
    there): FAISS files after a switch to LanceDB, the ``lance/`` table after one back."""
    for other, names in BACKEND_FILES.items():
        for name in names if other != backend else ():
            path = Path(directory) / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()


def open_index(directory: str | Path) -> VectorBackend:
    """The index saved in ``directory``, of the backend its ``index.json`` records.
    IndexStateError if index.json is missing or unreadable, names an unknown backend,
    or the backend's own checks fail (missing, corrupt, inconsistent files or table)."""
    directory = Path(directory)
    path = directory / "index.json"
    if not path.is_file():
        raise IndexStateError(f"index in {directory} is missing 'index.json'")
    try:
        meta = atomic.read_json(path)
    except (OSError, ValueError) as err:
        raise IndexStateError(f"index.json in {directory} is corrupt: {err}") from err
    backend = meta.get("backend", "faiss") if isinstance(meta, dict) else None
    if backend == "faiss":
        from core.index.vector_index import VectorIndex

        return VectorIndex.load(directory)
    if backend == "lancedb":
        from core.index.lance import LanceIndex

        return LanceIndex.load(directory)
    raise IndexStateError(f"index.json in {directory} names backend {backend!r}; "
                          f"this Catalog knows {', '.join(BACKENDS)}")
