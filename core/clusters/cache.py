"""The projection cache on disk (``cache_dir``, normally ``Dataset.projections_dir``):
one record per (vectors, params), the JSON written last so a record is complete or
absent::

    proj-<key>.json        params, vectors_hash, model file, row count
    proj-<key>.coords.npy  (n, 2) float32, row order = ids
    proj-<key>.ids.npy     (n,) str
    model-<key>.joblib     fitted PCA/UMAP (our own file, never user-supplied)
    hash-<stamp>.json      vectors_hash of a memory-mapped vectors file, by its file stamp
    .place-<key>.partial/  a large map being placed: job.json, fit.npy, chunk_NNNNNN.npy

A memory-mapped ``vectors.npy`` is hashed once per file version: its hash is kept by
file stamp (path, inode, size, mtime) with the ids' hash, so a warm call reads no
vectors (Catalog replaces vector files by rename, which changes the stamp).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core import atomic
from core._shared import ids_hash
from core.errors import EmbeddingError, format_list

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the cache layout or algorithm changes
HASH_ROWS = 16_384
MODEL_ERRORS = (OSError, EOFError, ValueError, AttributeError, ImportError, RuntimeError,
                pickle.UnpicklingError)  # what loading a damaged model file raises


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:24]


def hash_rows(ids: Sequence[str], vectors: np.ndarray, positions: np.ndarray | None = None,
               check_finite: bool = False) -> str:
    """:func:`vectors_hash` of ``vectors[positions]`` (all rows when None), read
    ``HASH_ROWS`` rows at a time; ``check_finite``: raise EmbeddingError naming the first
    rows (by id) that hold NaN or Inf."""
    n = len(positions) if positions is not None else vectors.shape[0]
    h = hashlib.sha256(f"{FORMAT}:{n}x{vectors.shape[1]}\n".encode())
    h.update("\0".join(map(str, ids)).encode("utf-8"))
    for start in range(0, n, HASH_ROWS):
        rows = slice(start, start + HASH_ROWS)
        chunk = vectors[positions[rows]] if positions is not None else vectors[rows]
        chunk = np.ascontiguousarray(chunk, dtype="<f4")
        if check_finite and not (finite := np.isfinite(chunk).all(axis=1)).all():
            bad = start + np.flatnonzero(~finite)
            raise EmbeddingError(f"vectors contain NaN or Inf at {len(bad)} rows from row {bad[0]}, "
                                 f"e.g. ids {format_list([ids[i] for i in bad])}")
        h.update(memoryview(chunk).cast("B"))
    return h.hexdigest()


def vectors_hash(ids: Sequence[str], vectors: np.ndarray) -> str:
    """sha256 hex of the ids (in order), the shape and the float32 bytes of ``vectors`` (n, d)."""
    return hash_rows(ids, vectors)


def file_stamp(vectors: np.ndarray) -> dict | None:
    """Path, inode, size and mtime of the ``.npy`` file ``vectors`` maps whole (None when
    it is not a memory map of a whole ``.npy`` file, in its stored order)."""
    name = getattr(vectors, "filename", None)
    if not isinstance(vectors, np.memmap) or name is None or not vectors.flags.c_contiguous:
        return None
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    try:
        with open(name, "rb") as fh:
            read = readers.get(np.lib.format.read_magic(fh))
            if read is None:
                return None
            shape, fortran, dtype = read(fh)
        st = os.stat(name)
    except (OSError, ValueError):
        return None
    if fortran or tuple(shape) != vectors.shape or dtype != vectors.dtype:
        return None  # a view of part of the file
    return {"file": os.path.realpath(name), "dev": st.st_dev, "ino": st.st_ino, "size": st.st_size,
            "mtime_ns": st.st_mtime_ns}


def _ids_key(ids: Sequence[str]) -> str:
    """A digest of the ids for the memo's name: sha256 of a str array's bytes (0.3 s at 10M
    ids, where :func:`ids_hash` takes 1.1 s), else :func:`ids_hash`."""
    if isinstance(ids, np.ndarray) and ids.dtype.kind == "U":
        return f"{ids.dtype.str}:{hashlib.sha256(np.ascontiguousarray(ids).data).hexdigest()}"
    return ids_hash(ids)


def content_hash(ids: Sequence[str], vectors: np.ndarray, cache: Path | None) -> str:
    """:func:`vectors_hash`, checking every row is finite; for a memory-mapped vectors file
    with a ``cache`` directory, kept there by file stamp and ids hash so the vectors are
    read once per file version. Raises EmbeddingError for NaN/Inf rows."""
    stamp = file_stamp(vectors) if cache is not None else None
    if stamp is None:
        return hash_rows(ids, vectors, check_finite=True)
    memo = cache / f"hash-{digest({**stamp, 'ids': _ids_key(ids)})}.json"
    try:
        known = atomic.read_json(memo)["vectors_hash"]
        if isinstance(known, str):
            return known
    except (OSError, ValueError, KeyError, TypeError):
        pass
    vhash = hash_rows(ids, vectors, check_finite=True)
    atomic.write_json(memo, {"vectors_hash": vhash, **stamp})
    return vhash


def is_projection_cached(key: str, cache_dir: str | Path) -> bool:
    """True if ``cache_dir`` holds the finished record of :func:`projection_key` ``key``
    (an interrupted large map is not finished)."""
    try:
        meta = atomic.read_json(Path(cache_dir) / f"proj-{key}.json")
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and isinstance(meta.get("vectors_hash"), str)


def save_record(cache: Path, key: str, ids: Sequence[str], coords: np.ndarray, meta: dict) -> None:
    atomic.write_npy(cache / f"proj-{key}.ids.npy", np.asarray(ids, dtype=str))
    atomic.write_npy(cache / f"proj-{key}.coords.npy", coords)
    atomic.write_json(cache / f"proj-{key}.json", meta)


def load_coords(cache: Path, key: str, n: int) -> tuple[dict, np.ndarray] | None:
    meta_path = cache / f"proj-{key}.json"
    if not meta_path.exists():
        return None
    try:
        meta = atomic.read_json(meta_path)
        coords = np.load(cache / f"proj-{key}.coords.npy", allow_pickle=False)
    except (OSError, ValueError) as err:
        log.warning("ignoring unreadable projection cache %s: %s", meta_path, err)
        return None
    if coords.shape != (n, 2) or not np.isfinite(coords).all():
        log.warning("ignoring projection cache %s: shape %s, expected (%d, 2)", meta_path, coords.shape, n)
        return None
    return meta, coords.astype(np.float32, copy=False)


def find_base(cache: Path, family: str, ids: Sequence[str],
               vectors: np.ndarray) -> tuple[dict, dict, np.ndarray, np.ndarray] | None:
    """The largest cached record of ``family`` whose rows are a subset of ``ids`` with
    unchanged vectors: (meta, fitted model, old coords, positions of old ids) or None."""
    candidates = []
    for path in cache.glob("proj-*.json"):
        try:
            meta = atomic.read_json(path)
        except (OSError, ValueError):
            continue
        usable = meta.get("family") == family and meta.get("n", 0) < len(ids)
        if usable and (cache / meta.get("model", "")).is_file():
            candidates.append((meta["n"], path.name[5:-5], meta))
    where: dict[str, int] | None = None
    for n_old, key, meta in sorted(candidates, key=lambda c: -c[0]):
        if len(ids) - n_old > n_old:
            break  # more new rows than placed ones: a fresh fit is better
        try:
            old_ids = np.load(cache / f"proj-{key}.ids.npy", allow_pickle=False).tolist()
            coords = np.load(cache / f"proj-{key}.coords.npy", allow_pickle=False)
        except (OSError, ValueError):
            continue
        where = where if where is not None else {rid: i for i, rid in enumerate(ids)}
        pos = np.fromiter((where.get(r, -1) for r in old_ids), dtype=np.int64, count=len(old_ids))
        if (pos < 0).any() or coords.shape != (len(old_ids), 2):
            continue
        if hash_rows(old_ids, vectors, pos) != meta["vectors_hash"]:
            continue
        import joblib

        try:
            model = joblib.load(cache / meta["model"])
        except MODEL_ERRORS as err:
            log.warning("ignoring unreadable projection model %s: %s", meta["model"], err)
            continue
        return meta, model, coords.astype(np.float32), pos
    return None


def resume_partial(cache: Path, partial: Path, job: dict, model_file: str, n_fit: int) -> tuple[dict, np.ndarray] | None:
    """(model, sample coords) of an interrupted large map with the same ``job``, or None
    (any other partial work for this key is discarded)."""
    if not partial.is_dir():
        return None
    try:
        if atomic.read_json(partial / "job.json") == job:
            import joblib

            fit_coords = np.load(partial / "fit.npy", allow_pickle=False)
            if fit_coords.shape == (n_fit, 2):
                log.info("resuming the map %s from %s", job["key"], partial)
                return joblib.load(cache / model_file), fit_coords
    except MODEL_ERRORS as err:
        log.warning("discarding unreadable partial map %s: %s", partial, err)
    shutil.rmtree(partial, ignore_errors=True)
    return None


