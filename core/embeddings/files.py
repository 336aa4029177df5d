"""Embeddings of a dataset: load, list, write, delete, and their persisted index.

On disk, ``<dataset>/embeddings/<name>/`` holds ``vectors.npy`` ((n, d) float32,
L2-normalised, row order = ``ids.npy``), ``ids.npy`` (n,) unicode, ``meta.json`` and
the persisted index (``index.faiss``, ``index.json``, ``index_ids.npy``).

Vectors are written chunk by chunk into a memory-mapped ``vectors.npy`` in a temp
directory (normalised in place, never two full copies in memory), the index is built from
that map, and the directory is swapped in atomically, so readers see the old embedding or
the new one, never half of one. Computing embeddings with an encoder (batched,
resumable) is :mod:`core.embeddings.compute`; import/export of user vectors is
:mod:`core.embeddings.io`.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core import atomic
from core._shared import ids_hash, now_iso
from core.embeddings.readers import chunk_rows
from core.errors import AlreadyExistsError, EmbeddingError, IndexStateError
from core.index import (
    VectorBackend,
    build_index,
    check_index_target,
    open_index,
    recorded_backend,
    remove_other_backends,
)
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
    index_backend: str = "faiss"  # "faiss" | "lancedb"

    @property
    def coverage(self) -> float:
        return self.rows / self.dataset_rows if self.dataset_rows else 0.0

    def to_json(self) -> dict:
        return {
            "name": self.name, "dims": self.dims, "encoder": self.encoder or "imported",
            "source": self.source, "rows": self.rows, "dataset_rows": self.dataset_rows,
            "modalities": list(self.modalities), "created": self.created,
            "index_kind": self.index_kind, "index_backend": self.index_backend,
            "size_bytes": self.size_bytes,
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
    return Embedding(name, path, meta, ids.astype(str, copy=False), vectors)  # no copy of a str array


def load_index(ds: Dataset, name: str | None = None) -> VectorBackend:
    """The persisted index of an embedding, of the backend its ``index.json`` names
    (FAISS or LanceDB), rebuilt (and saved) as that backend if missing or stale."""
    emb = load_embedding(ds, name)
    if (emb.path / "index.json").exists():
        try:
            index = open_index(emb.path)
            if len(index) == len(emb.ids):
                return index
            log.warning("index of %s is stale (%d vs %d rows); rebuilding", emb.name, len(index), len(emb.ids))
        except IndexStateError as err:
            log.warning("index of %s unreadable (%s); rebuilding", emb.name, err)
    index = build_index(emb.vectors, emb.ids, **recorded_backend(emb.path))
    index.save(emb.path)
    return index


def rebuild_index(ds: Dataset, name: str | None = None, kind: str = "auto", *,
                  progress: Callable[[int, int], None] | None = None, backend: str = "faiss",
                  uri: str | None = None, **params: int) -> EmbeddingInfo:
    """Build embedding ``name``'s index again as ``kind`` ("auto", "exact", "hnsw" or "ivf")
    and save it over the old one. ``params``: HNSW M, ef_construction, ef_search; IVF nlist,
    nprobe, k_factor, bits, train_rows (defaults in ``core.index``). ``backend="lancedb"``:
    a LanceDB table at ``uri`` (default ``<embedding>/lance/``; kinds auto, exact, ivf_pq,
    ivf_hnsw_sq), InputError on an unknown backend or a URI that cannot be written.

    Reads the stored vectors through their memory map (no extra copy); the vectors and ids
    are not touched. The old index stays in place until the new one is built; each index
    file is replaced atomically and ``index.json`` last, so an interrupted save is detected
    (and rebuilt) by :func:`load_index`. ``progress(done, total)`` as rows are added.
    Raises NotFoundError (embedding), InputError (kind or params).
    """
    emb = load_embedding(ds, name)
    index = build_index(emb.vectors, emb.ids, kind=kind, progress=progress, backend=backend, uri=uri, **params)
    index.save(emb.path)
    remove_other_backends(emb.path, backend)
    return describe_embedding(ds, emb.name)


def describe_embedding(ds: Dataset, name: str, dataset_rows: int | None = None) -> EmbeddingInfo:
    """Summary of one embedding from its meta.json and file sizes."""
    path = ds.embedding_dir(name)
    meta = atomic.read_json(path / "meta.json")
    size = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    index_kind, index_backend = "none", "faiss"
    if (path / "index.json").exists():
        recorded = atomic.read_json(path / "index.json")
        index_kind, index_backend = recorded.get("kind", "unknown"), recorded.get("backend", "faiss")
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
        index_backend=index_backend,
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

    Chunk by chunk (``chunk_rows`` rows, no float64 copy): norms accumulated in float64,
    each row needing it divided by its norm in float64 and rounded to float32.
    Rows already within ``UNIT_TOLERANCE`` of unit length, zero rows and NaN rows are left
    bit for bit, so stored vectors exported and imported again are identical. Returns
    ``vectors`` itself if no row needs scaling or ``in_place``, else a scaled copy.
    """
    out = vectors
    for start in range(0, len(vectors), chunk_rows):
        block = vectors[start : start + chunk_rows]
        norms = np.sqrt(np.einsum("ij,ij->i", block, block, dtype=np.float64))
        with np.errstate(invalid="ignore"):
            scale = (np.abs(norms - 1.0) > UNIT_TOLERANCE) & (norms > 0)
        if not scale.any():
            continue
        if out is vectors and not in_place:
            out = vectors.copy()
        rows = out[start : start + chunk_rows]
        if scale.all():  # float64 division, rounded once into the float32 rows
            np.divide(block, norms[:, None], out=rows, casting="unsafe")
        else:
            rows[scale] = (block[scale] / norms[scale, None]).astype(np.float32)
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
    backend: str = "faiss",
    uri: str | None = None,
) -> EmbeddingInfo:
    """Validate, normalise, index and atomically save vectors as embedding ``name``.

    ``vectors`` (n, d) float (an array or a memory map, never modified) is written
    :func:`write_embedding_chunks`, ``chunk_rows(d)`` rows at a time; ``meta`` needs
    ``encoder`` (or None) and ``source``. Raises AlreadyExistsError if the name exists and
    not ``replace``, EmbeddingError on a shape that does not match ``ids``.
    """
    vectors = vectors if isinstance(vectors, np.ndarray) else np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[0] != len(ids) or vectors.shape[0] == 0:
        raise EmbeddingError(f"expected ({len(ids)}, d) vectors, got shape {vectors.shape}")
    step = chunk_rows(vectors.shape[1])
    chunks = ((ids[s:s + step], vectors[s:s + step]) for s in range(0, len(vectors), step))
    return write_embedding_chunks(ds, name, chunks, meta, total=len(vectors), replace=replace,
                                  index_kind=index_kind, backend=backend, uri=uri)


IdChunk = Sequence[str] | np.ndarray | pa.Array  # the ids of one chunk


def write_embedding_chunks(
    ds: Dataset,
    name: str,
    chunks: Iterable[tuple[IdChunk, np.ndarray]],
    meta: dict,
    *,
    total: int,
    replace: bool = False,
    index_kind: str = "auto",
    backend: str = "faiss",
    uri: str | None = None,
) -> EmbeddingInfo:
    """Save ``total`` vectors, given as ``(ids (m,), vectors (m, d))`` chunks, as embedding ``name``.

    Each chunk is normalised (:func:`normalise_rows`) into ``vectors.npy``, a memory map
    (``numpy.lib.format.open_memmap``) in a temp folder next to the embedding; the index is
    built from that map, then ``ids.npy``, the index and ``meta.json`` are written and the
    folder swapped in (``atomic.atomic_dir``), so at no point are all the vectors held twice.
    ``meta`` needs ``encoder`` (or None) and ``source``. ``backend``/``uri``: where the
    index lives (:func:`core.index.build_index`; a LanceDB table at an explicit ``uri`` is
    written there before the swap). Raises AlreadyExistsError (name taken, unless
    ``replace``), InputError (``index_kind``, ``backend``, ``uri``), EmbeddingError (a chunk whose
    ids and vectors differ in length, dims that change, more or fewer than ``total`` rows,
    NaN/Inf or zero rows, duplicate ids) and whatever iterating ``chunks`` raises; on any
    error nothing is written.
    """
    check_name(name, "embedding")
    if name in ds.embedding_names() and not replace:
        raise AlreadyExistsError(
            f"embedding {name!r} already exists in {ds.name!r}; pass --replace to overwrite it"
        )
    if total <= 0:
        raise EmbeddingError(f"expected ({total}, d) vectors, got none")
    check_index_target(index_kind, backend, uri)
    with atomic.atomic_dir(ds.embedding_dir(name)) as tmp:
        vectors, ids = _write_vectors(tmp / "vectors.npy", chunks, total)
        index = build_index(vectors, ids, kind=index_kind, backend=backend, uri=uri)
        np.save(tmp / "ids.npy", ids, allow_pickle=False)
        index.save(tmp)
        atomic.write_json(tmp / "meta.json", {
            "name": name, "dims": int(vectors.shape[1]), "rows": int(total),
            "dataset_rows": ds.row_count(), "created": now_iso(), "ids_hash": ids_hash(ids),
            **meta,
        })
        del vectors, index
    if ds.info().get("default_embedding") is None:
        ds.update_info(default_embedding=name)
    return describe_embedding(ds, name)


def _write_vectors(path: Path, chunks: Iterable[tuple[IdChunk, np.ndarray]],
                   total: int) -> tuple[np.ndarray, np.ndarray]:
    """Fill ``path`` (a new .npy of ``total`` float32 rows) from ``chunks``, normalised;
    returns (its read-only memory map (total, d), the ids (total,) unicode)."""
    out, id_parts, done = None, [], 0
    for chunk_ids, block in chunks:
        block = np.asarray(block)
        if block.ndim != 2 or len(block) != len(chunk_ids):
            raise EmbeddingError(f"a chunk of {len(chunk_ids)} ids came with vectors of shape {block.shape}")
        if out is None:
            out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                            shape=(total, block.shape[1]))
        if block.shape[1] != out.shape[1] or done + len(block) > total:
            raise EmbeddingError(f"vectors of {out.shape[1]} dims for {total} rows expected; rows "
                                 f"{done}.. came with shape {block.shape}")
        # normalised in memory (a scaled copy: the caller's block is never changed), then
        # written to the map once: normalising in the map read every page back
        out[done:done + len(block)] = normalise_rows(np.asarray(block, dtype=np.float32))
        id_parts.append(chunk_ids.cast(pa.large_string()) if isinstance(chunk_ids, pa.Array)
                        else pa.array(np.asarray(chunk_ids).astype(str), pa.large_string()))
        done += len(block)
    if out is None or done != total:
        raise EmbeddingError(f"expected {total} vectors, got {done}")
    out.flush()
    del out
    return np.load(path, mmap_mode="r", allow_pickle=False), _unicode(id_parts, total)


def _unicode(parts: list[pa.Array], total: int) -> np.ndarray:
    """The ids of ``parts`` as one (total,) numpy unicode array, filled part by part."""
    width = max((pc.max(pc.utf8_length(p)).as_py() or 0) for p in parts)
    ids = np.empty(total, dtype=f"<U{max(width, 1)}")
    start = 0
    for part in parts:
        ids[start:start + len(part)] = part.to_numpy(zero_copy_only=False)
        start += len(part)
    return ids
