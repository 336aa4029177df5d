"""Stored embeddings that follow a changing dataset, without encoding everything again.

- :func:`carry_embeddings` (a dataset update, :mod:`core.ingest.update`): every embedding of
  the old dataset is staged into the new dataset folder less the vectors of the rows that
  were removed or whose content changed. An embedding that loses nothing is hard-linked
  (no copy). One that loses rows gets a compacted ``vectors.npy`` (kept rows in their order,
  copied bit for bit) and its index takes the removal with :meth:`VectorIndex.remove`
  (the ivf kind is then :meth:`VectorIndex.rebase`\\ d onto the compacted file); no rebuild.
- :func:`append_vectors` (:func:`core.embeddings.compute_embeddings` on an existing
  embedding): the new rows' vectors are appended after the stored ones and added to the
  index with :meth:`VectorIndex.add`, in a staged folder swapped in at the end.

Why compact rather than tombstones: every reader takes ``Embedding.vectors`` as one (n, d)
matrix aligned with ``ids`` (clusters, select, export, quality); tombstones would leak into
all of them or cost a gathered copy of the matrix. Compaction costs one sequential copy of
the kept vectors, and only when an update drops vectors.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from core import atomic
from core._shared import ids_hash, now_iso
from core.embeddings.files import (
    EmbeddingInfo,
    describe_embedding,
    load_embedding,
    load_index,
    normalise_rows,
)
from core.embeddings.readers import chunk_rows
from core.errors import EmbeddingError, IndexStateError, NotFoundError, format_list
from core.index import VectorBackend, build_index, open_index, recorded_backend
from core.workspace import Dataset

log = logging.getLogger(__name__)

VECTORS, IDS, META = "vectors.npy", "ids.npy", "meta.json"


def link_tree(src: Path, dst: Path, skip: Iterable[str] = ()) -> None:
    """Hard-link every file under ``src`` into ``dst`` (folders made), except the top-level
    names in ``skip`` and hidden top-level entries (temp and partial work)."""
    skip = set(skip)
    dst.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        if entry.name in skip or entry.name.startswith("."):
            continue
        if entry.is_dir():
            shutil.copytree(entry, dst / entry.name, copy_function=os.link)
        else:
            os.link(entry, dst / entry.name)


def _copy_rows(source: np.ndarray, keep: np.ndarray | None, out: np.ndarray) -> int:
    """Copy the rows of ``source`` where ``keep`` (all if None) into the top of ``out``,
    chunk by chunk, bytes unchanged; returns the rows copied."""
    done, step = 0, chunk_rows(source.shape[1])
    for s in range(0, len(source), step):
        block = source[s:s + step] if keep is None else source[s:s + step][keep[s:s + step]]
        out[done:done + len(block)] = block
        done += len(block)
    return done


def _meta(old: dict, ids: np.ndarray, dataset_rows: int) -> dict:
    return {**old, "rows": len(ids), "dataset_rows": int(dataset_rows),
            "ids_hash": ids_hash(ids), "updated": now_iso()}


def _own_copy(index: VectorBackend, folder: Path) -> None:
    """Before a LanceDB index changes, its table beside the vectors is copied into the staged
    ``folder`` (its ``save`` does that), so the stored embedding is never written. (A table
    at a URI has no staged copy: it changes in place.) FAISS indexes change in memory."""
    if getattr(index, "backend", "faiss") == "lancedb":
        index.save(folder)


def _carried_index(src: Path, dst: Path, dropped: np.ndarray) -> VectorBackend | None:
    """The index saved in ``src`` less ``dropped`` ids (changed in ``dst``); None when it is
    missing or does not hold exactly the stored ids (it is then rebuilt on first use)."""
    try:
        index = open_index(src)
        _own_copy(index, dst)
        index.remove(dropped)
    except (IndexStateError, NotFoundError) as err:
        log.warning("index in %s not carried over (%s); it is rebuilt on first use", src, err)
        return None
    return index


def carry_embeddings(ds: Dataset, staging: Path, drop_ids: np.ndarray,
                     dataset_rows: int) -> dict[str, int]:
    """Stage every embedding of ``ds`` into ``staging/embeddings/<name>/`` less the vectors
    of ``drop_ids`` (n,) str; returns embedding name -> vectors dropped. An embedding left
    with no vector is not staged (it is gone after the update: ``-1`` in the result).
    Nothing under ``ds`` is written."""
    dropped: dict[str, int] = {}
    drop_index = pd.Index(np.asarray(drop_ids, dtype=object))
    for name in ds.embedding_names():
        src, dst = ds.embedding_dir(name), staging / "embeddings" / name
        emb = load_embedding(ds, name)
        drop = pd.Index(emb.ids).isin(drop_index) if len(drop_index) else np.zeros(len(emb.ids), bool)
        if drop.all():
            dropped[name] = -1
            log.info("embedding %s: every vector dropped by the update", name)
            continue
        dropped[name] = int(drop.sum())
        if not drop.any():
            link_tree(src, dst, skip=(META,))
            atomic.write_json(dst / META, _meta(emb.meta, emb.ids, dataset_rows))
            continue
        dst.mkdir(parents=True)
        keep = ~drop
        ids = emb.ids[keep]
        out = np.lib.format.open_memmap(dst / VECTORS, mode="w+", dtype=np.float32,
                                        shape=(len(ids), emb.dims))
        _copy_rows(emb.vectors, keep, out)
        out.flush()
        del out
        np.save(dst / IDS, ids, allow_pickle=False)
        index = _carried_index(src, dst, emb.ids[drop])
        if index is not None:
            if not np.array_equal(np.asarray(index.ids, dtype=str), ids):
                index = None  # rows in another order than the stored ids: rebuilt on first use
            else:
                index.rebase(np.load(dst / VECTORS, mmap_mode="r", allow_pickle=False))
                index.save(dst)
        atomic.write_json(dst / META, _meta(emb.meta, ids, dataset_rows))
    return dropped


def append_vectors(ds: Dataset, name: str, chunks: Iterable[tuple[np.ndarray, np.ndarray]],
                   total: int, *, meta_update: dict | None = None) -> EmbeddingInfo:
    """Append ``total`` new vectors, given as ``(ids (m,), vectors (m, d))`` chunks, to the
    stored embedding ``name``: normalised into a staged ``vectors.npy`` after the stored rows
    (copied bit for bit), added to the index (:meth:`VectorIndex.add`; ivf rebased onto the
    new file), swapped in atomically. Raises EmbeddingError (dims, ids already stored,
    fewer or more than ``total`` rows); on any error the stored embedding is unchanged.
    ``meta_update`` keys replace those of its ``meta.json`` (e.g. ``modalities``)."""
    emb = load_embedding(ds, name)
    index = load_index(ds, name)
    n, d = len(emb.ids), emb.dims
    with atomic.atomic_dir(ds.embedding_dir(name)) as tmp:
        out = np.lib.format.open_memmap(tmp / VECTORS, mode="w+", dtype=np.float32, shape=(n + total, d))
        _copy_rows(emb.vectors, None, out)
        done, new_ids = n, []
        for chunk_ids, block in chunks:
            block = np.asarray(block, dtype=np.float32)
            if block.ndim != 2 or block.shape[1] != d or done + len(block) > n + total:
                raise EmbeddingError(f"embedding {name!r} has {d} dims; rows {done - n}.. of the "
                                     f"{total} new ones came with shape {block.shape}")
            out[done:done + len(block)] = block
            normalise_rows(out[done:done + len(block)], in_place=True)
            new_ids.append(np.asarray(chunk_ids).astype(str))
            done += len(block)
        if done != n + total:
            raise EmbeddingError(f"expected {total} new vectors for {name!r}, got {done - n}")
        out.flush()
        del out
        added = np.concatenate(new_ids) if new_ids else np.empty(0, str)
        taken = pd.Index(added).intersection(pd.Index(emb.ids))
        if len(taken):
            raise EmbeddingError(f"{len(taken)} ids already have a vector in {name!r}: {format_list(list(taken))}")
        ids = np.concatenate([emb.ids, added])
        vectors = np.load(tmp / VECTORS, mmap_mode="r", allow_pickle=False)
        if np.array_equal(np.asarray(index.ids, dtype=str), emb.ids):
            _own_copy(index, tmp)
            index.add(vectors[n:], added)
            index.rebase(vectors)
        else:  # an index over rows in another order: built again over the new file
            log.warning("index of %s does not follow its stored ids; rebuilding it", name)
            index = build_index(vectors, ids, kind=index.kind, **index.params,
                                **recorded_backend(ds.embedding_dir(name)))
        np.save(tmp / IDS, ids, allow_pickle=False)
        index.save(tmp)
        atomic.write_json(tmp / META, _meta({**emb.meta, **(meta_update or {})}, ids, ds.row_count()))
        del vectors, index
    return describe_embedding(ds, name)


__all__ = ["append_vectors", "carry_embeddings", "link_tree"]
