"""Embeddings of a dataset: load, list, write, delete, and their persisted index.

On disk, ``<dataset>/embeddings/<name>/`` holds ``vectors.npy`` ((n, d) float32,
L2-normalised, row order = ``ids.npy``), ``ids.npy`` (n,) unicode, ``meta.json`` and
the persisted index (``index.faiss``, ``index.json``, ``index_ids.npy``).

The final directory is swapped in atomically, so readers see the old embedding or
the new one, never half of one. Computing embeddings with an encoder (batched,
resumable) is :mod:`core.embeddings.compute`; import/export of user vectors is
:mod:`core.embeddings.io`.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core import atomic
from core._shared import ids_hash, now_iso
from core.errors import AlreadyExistsError, EmbeddingError, IndexStateError
from core.index import VectorIndex, build_index
from core.workspace import Dataset, check_name

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class EmbeddingInfo:
    """Summary of one embedding (what ``catalog list`` and the Embeddings page show)."""

    name: str
    encoder: str | None  # spec, None when imported
    dims: int
    source: str  # "computed" | "imported"
    rows: int  # rows with a vector
    dataset_rows: int
    modalities: tuple[str, ...]
    created: str
    index_kind: str
    size_bytes: int

    @property
    def coverage(self) -> float:
        return self.rows / self.dataset_rows if self.dataset_rows else 0.0

    def to_json(self) -> dict:
        return {
            "name": self.name, "dims": self.dims, "encoder": self.encoder or "imported",
            "source": self.source, "rows": self.rows, "dataset_rows": self.dataset_rows,
            "modalities": list(self.modalities), "created": self.created,
            "index_kind": self.index_kind, "size_bytes": self.size_bytes,
        }


@dataclass(frozen=True)
class Embedding:
    """Loaded vectors of one embedding. ``vectors`` is memory-mapped (read-only)."""

    name: str
    path: Path
    meta: dict
    ids: np.ndarray  # (n,) str
    vectors: np.ndarray  # (n, d) float32, L2-normalised

    @property
    def dims(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def encoder(self) -> str | None:
        return self.meta.get("encoder")

    def positions(self, ids: Sequence[str]) -> np.ndarray:
        """Row positions of ``ids`` in this embedding (NotFoundError via pandas KeyError)."""
        lookup = pd.Index(self.ids)
        pos = lookup.get_indexer(list(ids))
        if (pos < 0).any():
            from core.errors import NotFoundError, format_list

            missing = [i for i, p in zip(ids, pos) if p < 0]
            raise NotFoundError(
                f"{len(missing)} id(s) have no vector in embedding {self.name!r}: {format_list(missing)}"
            )
        return pos


def load_embedding(ds: Dataset, name: str | None = None) -> Embedding:
    """Load embedding ``name`` (None → the dataset's default) with memory-mapped vectors."""
    name = ds.require_embedding(name)
    path = ds.embedding_dir(name)
    try:
        meta = atomic.read_json(path / "meta.json")
        ids = np.load(path / "ids.npy", allow_pickle=False)
        vectors = np.load(path / "vectors.npy", mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise IndexStateError(f"embedding {name!r} of {ds.name!r} is unreadable: {err}") from err
    if vectors.ndim != 2 or len(ids) != vectors.shape[0]:
        raise IndexStateError(
            f"embedding {name!r}: {len(ids)} ids but vectors of shape {vectors.shape}"
        )
    return Embedding(name, path, meta, ids.astype(str), vectors)


def load_index(ds: Dataset, name: str | None = None) -> VectorIndex:
    """The persisted index of an embedding, rebuilt (and saved) if missing or stale."""
    emb = load_embedding(ds, name)
    if (emb.path / "index.faiss").exists():
        try:
            index = VectorIndex.load(emb.path)
            if len(index) == len(emb.ids):
                return index
            log.warning("index of %s is stale (%d vs %d rows); rebuilding", emb.name, len(index), len(emb.ids))
        except IndexStateError as err:
            log.warning("index of %s unreadable (%s); rebuilding", emb.name, err)
    index = build_index(emb.vectors, emb.ids)
    index.save(emb.path)
    return index


def rebuild_index(ds: Dataset, name: str | None = None, kind: str = "auto", *,
                  progress: Callable[[int, int], None] | None = None, **params: int) -> EmbeddingInfo:
    """Build embedding ``name``'s index again as ``kind`` ("auto", "exact" or "hnsw", with
    HNSW ``params`` M, ef_construction, ef_search) and save it over the old one.

    Reads the stored vectors through their memory map (no extra copy); the vectors and ids
    are not touched. The old index stays in place until the new one is built; each index
    file is replaced atomically and ``index.json`` last, so an interrupted save is detected
    (and rebuilt) by :func:`load_index`. ``progress(done, total)`` as rows are added.
    Raises NotFoundError (embedding), InputError (kind or params).
    """
    emb = load_embedding(ds, name)
    index = build_index(emb.vectors, emb.ids, kind=kind, progress=progress, **params)
    index.save(emb.path)
    return describe_embedding(ds, emb.name)


def describe_embedding(ds: Dataset, name: str, dataset_rows: int | None = None) -> EmbeddingInfo:
    """Summary of one embedding from its meta.json and file sizes."""
    path = ds.embedding_dir(name)
    meta = atomic.read_json(path / "meta.json")
    size = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    index_kind = "none"
    if (path / "index.json").exists():
        index_kind = atomic.read_json(path / "index.json").get("kind", "unknown")
    return EmbeddingInfo(
        name=name,
        encoder=meta.get("encoder"),
        dims=int(meta["dims"]),
        source=meta.get("source", "computed"),
        rows=int(meta["rows"]),
        dataset_rows=int(dataset_rows if dataset_rows is not None else ds.row_count()),
        modalities=tuple(meta.get("modalities", [])),
        created=meta.get("created", ""),
        index_kind=index_kind,
        size_bytes=size,
    )


def list_embeddings(ds: Dataset) -> list[EmbeddingInfo]:
    """All complete embeddings of ``ds``."""
    n = ds.row_count()
    return [describe_embedding(ds, name, n) for name in ds.embedding_names()]


def delete_embedding(ds: Dataset, name: str) -> None:
    """Remove an embedding directory (and clear it as default)."""
    name = ds.require_embedding(name)
    path = ds.embedding_dir(name)
    trash = path.with_name(f".{name}.deleted")
    if trash.exists():
        shutil.rmtree(trash)
    path.rename(trash)
    shutil.rmtree(trash)
    if ds.info().get("default_embedding") == name:
        ds.update_info(default_embedding=None)


UNIT_TOLERANCE = 1e-6  # |norm - 1| below which a row counts as already unit length


def normalise_rows(vectors: np.ndarray, *, in_place: bool = False, chunk_rows: int = 65_536) -> np.ndarray:
    """L2-normalise the rows of ``vectors`` ((n, d) float32), idempotently.

    Norms are computed in float64, chunk by chunk. Rows already within
    ``UNIT_TOLERANCE`` of unit length, zero rows and NaN rows are left bit for bit, so
    stored vectors exported and imported again are identical. Returns ``vectors``
    itself if no row needs scaling or ``in_place``, else a scaled copy.
    """
    n = len(vectors)
    norms = np.empty(n, dtype=np.float64)
    for start in range(0, n, chunk_rows):
        block = np.asarray(vectors[start : start + chunk_rows], dtype=np.float64)
        norms[start : start + chunk_rows] = np.sqrt(np.einsum("ij,ij->i", block, block))
    with np.errstate(invalid="ignore"):
        rows = np.flatnonzero((np.abs(norms - 1.0) > UNIT_TOLERANCE) & (norms > 0))
    if len(rows) == 0:
        return vectors
    out = vectors if in_place else vectors.copy()
    for start in range(0, len(rows), chunk_rows):
        sel = rows[start : start + chunk_rows]
        out[sel] = (out[sel] / norms[sel, None]).astype(np.float32)
    return out


def write_embedding(
    ds: Dataset,
    name: str,
    ids: Sequence[str],
    vectors: np.ndarray,
    meta: dict,
    *,
    replace: bool = False,
    index_kind: str = "auto",
) -> EmbeddingInfo:
    """Validate, normalise, index and atomically save vectors as embedding ``name``.

    ``vectors`` (n, d) float; ``meta`` needs ``encoder`` (or None) and ``source``.
    Raises AlreadyExistsError if the name exists and not ``replace``.
    """
    check_name(name, "embedding")
    if name in ds.embedding_names() and not replace:
        raise AlreadyExistsError(
            f"embedding {name!r} already exists in {ds.name!r}; pass --replace to overwrite it"
        )
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(ids) or vectors.shape[0] == 0:
        raise EmbeddingError(f"expected ({len(ids)}, d) vectors, got shape {vectors.shape}")
    vectors = normalise_rows(vectors)
    ids_arr = np.asarray(ids).astype(str)
    index = build_index(vectors, ids_arr, kind=index_kind)
    full_meta = {
        "name": name, "dims": int(vectors.shape[1]), "rows": int(vectors.shape[0]),
        "dataset_rows": ds.row_count(), "created": now_iso(), "ids_hash": ids_hash(list(ids_arr)),
        **meta,
    }
    with atomic.atomic_dir(ds.embedding_dir(name)) as tmp:
        np.save(tmp / "vectors.npy", vectors, allow_pickle=False)
        np.save(tmp / "ids.npy", ids_arr, allow_pickle=False)
        index.save(tmp)
        atomic.write_json(tmp / "meta.json", full_meta)
    if ds.info().get("default_embedding") is None:
        ds.update_info(default_embedding=name)
    return describe_embedding(ds, name)
