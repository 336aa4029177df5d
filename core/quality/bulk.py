"""The stored neighbours pass: computed once per embedding in chunks (each chunk file
written atomically, so a killed pass resumes from its finished chunks), kept beside the
embedding as memory-mapped ``(n, k)`` arrays that label issues, duplicates and
uniqueness read without holding them whole.

Files in ``<embedding>/quality/``: ``neighbours.json`` (what the pass was computed for:
ids hash, sha256 of ``meta.json`` and ``index.json``, ``k``, method), then
``neighbours_scores.npy`` (n, k) float32 and ``neighbours_positions.npy`` (n, k) int32,
``neighbours.lock`` (held while a pass runs);
while it runs, ``neighbours.partial/`` (``job.json`` + ``chunk-NNNNNN.npz``, and the list
partition of the ``lists`` method). A partial or a result computed for other files is
discarded, never mixed in.

Methods: ``search`` (exact and hnsw indexes) queries the index with each chunk's rows
(``VectorIndex.search_positions``); ``lists`` (ivf indexes) scores every list of rows
against its nearest lists in one matrix product each (:mod:`core.quality.lists`).

Engines: ``local`` computes the chunks in this process; ``ray`` on a Ray actor pool
(:func:`core.engines.compute_chunks_ray`: each actor opens the embedding and index once
from the dataset's path, so Ray's workers must share the workspace's filesystem), the
partition and probes of the ``lists`` method chosen once here and handed to the actors.
Either way this process writes every chunk file as it arrives, and the stored files are
the same bit for bit, so either engine resumes the other's partial pass.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core import atomic
from core._shared import ProgressFn, check_positive_int, ids_hash
from core.errors import IndexStateError
from core.quality.knn import (
    DUPLICATE_CANDIDATES,
    Neighbours,
    index_ids,
    rows_neighbours,
)
from core.quality.lists import (
    PROBE_CHOICES,
    ListPlan,
    Partition,
    TARGET_RECALL,
    choose_probes,
    fine_partition,
    list_neighbours,
    plan_lists,
)

if TYPE_CHECKING:
    from core.embeddings import Embedding
    from core.index import VectorIndex
    from core.quality.lists import ReadRows
    from core.workspace import Dataset

log = logging.getLogger(__name__)

FORMAT = 1
QUALITY_DIR = "quality"
MANIFEST = "neighbours.json"
SCORES_FILE = "neighbours_scores.npy"
POSITIONS_FILE = "neighbours_positions.npy"
PARTIAL_DIR = "neighbours.partial"
LOCK_FILE = "neighbours.lock"
CHUNK_ROWS = 65_536      # rows per chunk file (~8 MB at k = 16)
COPY_ROWS = 1 << 20      # rows copied into the final arrays at a time


def _sha(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _folder(ds: Dataset, embedding: str | None) -> tuple[str, Path]:
    name = ds.require_embedding(embedding)
    return name, ds.embedding_dir(name)


def _files_key(folder: Path) -> dict:
    return {"format": FORMAT, "meta": _sha(folder / "meta.json"), "index": _sha(folder / "index.json")}


def _method_of(index: VectorIndex) -> dict:
    if index.kind == "ivf":  # the index's own lists, split where long
        return {"method": "lists", "partition": "index", "probes": "auto", "max_probes": max(PROBE_CHOICES)}
    return {"method": "search"}


def stored_pass_file(ds: Dataset, embedding: str | None = None) -> Path:
    """The file whose stamp changes whenever the stored pass of ``embedding`` is (re)written
    (its manifest, written last); a cache key part for the app."""
    return _folder(ds, embedding)[1] / QUALITY_DIR / MANIFEST


def load_neighbours(ds: Dataset, embedding: str | None = None,
                    k: int = DUPLICATE_CANDIDATES) -> Neighbours | None:
    """The stored pass of ``embedding`` (None → the default) if it is current (computed for
    the embedding's present ids, vectors and index) and at least ``k`` wide, else None.
    ``scores`` / ``positions`` are memory maps (read-only; ``positions`` int32)."""
    k = check_positive_int(k, "k")
    _, folder = _folder(ds, embedding)
    where = folder / QUALITY_DIR
    try:
        manifest = atomic.read_json(where / MANIFEST)
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("files") != _files_key(folder) or int(manifest.get("k", 0)) < k:
        return None
    try:
        ids = np.load(folder / "ids.npy", allow_pickle=False)
        scores = np.load(where / SCORES_FILE, mmap_mode="r", allow_pickle=False)
        positions = np.load(where / POSITIONS_FILE, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        log.warning("stored neighbours of %s unreadable (%s); ignored", folder, err)
        return None
    wide = (len(ids), int(manifest["k"]))
    if scores.shape != wide or positions.shape != wide or ids_hash(ids) != manifest.get("ids"):
        return None
    recall = manifest.get("recall")
    return Neighbours(ids=ids, scores=scores, positions=positions, k=wide[1],
                      recall=float(recall) if isinstance(recall, (int, float)) else None)


def compute_neighbours(ds: Dataset, embedding: str | None = None, *, k: int = DUPLICATE_CANDIDATES,
                       chunk_rows: int = CHUNK_ROWS, progress: ProgressFn | None = None,
                       index: VectorIndex | None = None, engine: str = "local",
                       address: str | None = None) -> Neighbours:
    """The ``k`` (default 16) nearest neighbours of every row of ``embedding`` (None → the
    default), self excluded, stored under the embedding's folder and returned memory-mapped
    (as :func:`load_neighbours`). A current stored pass at least ``k`` wide is returned
    as is; an unfinished one computed for the same files, ``k`` and ``chunk_rows`` resumes
    from its finished chunks. ``progress(done, total)`` after each chunk (``lists``
    method: the rows assigned to lists count first, so total = 2n). ``index``: the
    embedding's loaded index (else ``core.embeddings.load_index``).

    ``engine``: ``local`` (default: this process) or ``ray`` (the missing chunks on a Ray
    actor pool at ``address``, None: a local Ray; the same stored files). A second call for
    the same embedding while one runs (another process, the app and the CLI) waits for it
    and returns its result.

    Raises InputError if ``k`` < 1 or the embedding has < 2 rows; EngineError (unknown
    engine, Ray missing, ``address`` unreachable) before anything is written.
    """
    from core.embeddings import load_index
    from core.engines import check_address, check_engine, import_ray

    engine = check_engine(engine)
    if engine == "ray":
        import_ray()
        address = check_address(address)
    k, chunk_rows = check_positive_int(k, "k"), check_positive_int(chunk_rows, "chunk_rows")
    name, folder = _folder(ds, embedding)
    if (done := load_neighbours(ds, name, k)) is not None:
        return done
    (folder / QUALITY_DIR).mkdir(parents=True, exist_ok=True)
    with atomic.exclusive(folder / QUALITY_DIR / LOCK_FILE):  # one pass at a time per embedding
        if (done := load_neighbours(ds, name, k)) is not None:  # another process finished it meanwhile
            return done
        return _compute(ds, name, folder, k, chunk_rows, progress,
                        index if index is not None else load_index(ds, name), engine, address)


def _compute(ds: Dataset, name: str, folder: Path, k: int, chunk_rows: int,
             progress: ProgressFn | None, index: VectorIndex, engine: str = "local",
             address: str | None = None) -> Neighbours:
    """The body of :func:`compute_neighbours`, under the embedding's pass lock."""
    from core.embeddings import load_embedding

    index_ids(index, check_only=True)
    ids = np.asarray(index.ids)
    files, method = _files_key(folder), _method_of(index)
    job = {"files": files, "ids": ids_hash(ids), "k": k, "chunk_rows": chunk_rows, **method}
    partial = _open_partial(folder / QUALITY_DIR / PARTIAL_DIR, job)
    read, plan, direct, used = None, None, True, {}
    if method["method"] == "lists":
        emb = load_embedding(ds, name)
        direct = _in_order(emb, ids, job["ids"])
        read = _read_rows(emb, index, ids, direct)
        plan, used = _list_plan(partial, read, index, progress)
        chunks, offset = plan.chunks(chunk_rows), len(ids)
    else:
        chunks = [np.arange(s, min(s + chunk_rows, len(ids))) for s in range(0, len(ids), chunk_rows)]
        offset = 0
    work = _ChunkWork(ds, name, method["method"], k, files, plan, direct)
    _run_chunks(partial, chunks, work, offset, offset + len(ids), progress,
                engine=engine, address=address, index=index, read=read)
    _finish(partial, folder / QUALITY_DIR, len(ids), k,
            {"files": files, "ids": job["ids"], "k": k, **method, **used})
    shutil.rmtree(partial, ignore_errors=True)
    stored = load_neighbours(ds, name, k)
    if stored is None:
        raise IndexStateError(f"the neighbours pass of {name!r} was written but does not read back "
                              "as current (the embedding changed meanwhile?); run it again")
    return stored


@dataclass(frozen=True)
class _ChunkWork:
    """What the chunks of one pass are computed from, small and picklable: a Ray actor opens
    the files itself (:func:`_chunk_compute`). ``files``: :func:`_files_key` when the pass
    began; ``plan``: the ``lists`` method's plan (made once, by the driver); ``direct``:
    its rows are read from the embedding's memory map (else through the index)."""

    ds: Dataset
    name: str
    method: str
    k: int
    files: dict
    plan: ListPlan | None = None
    direct: bool = True


def _chunk_compute(work: _ChunkWork, index: VectorIndex | None = None, read: ReadRows | None = None
                   ) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``compute(part)`` → (rows (m,) int64, scores (m, k) float32, positions (m, k) int32) for
    the chunks of ``work`` (``search``: ``part`` holds row positions; ``lists``: list numbers),
    from this process's ``index`` / ``read`` when given, else from the dataset's files as
    they are (a Ray actor: never rebuilt; IndexStateError if they changed since the pass began)."""
    if index is None and read is None:  # a Ray actor: the files as they are, if still the pass's
        from core.index import open_index

        folder = work.ds.embedding_dir(work.name)
        if _files_key(folder) != work.files:
            raise IndexStateError(f"the embedding {work.name!r} changed while its neighbours pass ran; "
                                  "run it again")
        if work.method == "search" or not work.direct:
            index = open_index(folder)
    if work.method == "lists":
        if read is None:
            from core.embeddings import load_embedding

            ids = None if index is None else np.asarray(index.ids)
            read = _read_rows(load_embedding(work.ds, work.name), index, ids, work.direct)
        plan, k = work.plan, work.k
        return lambda lists: list_neighbours(read, plan, lists, k)
    ids = np.asarray(index.ids)

    def compute(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        scores, pos = rows_neighbours(index, ids, rows, work.k)
        return rows, scores, pos.astype(np.int32)
    return compute


# ---------------------------------------------------------------- chunks on disk


def _open_partial(partial: Path, job: dict) -> Path:
    """``partial`` holding the chunks of ``job``: kept if made for the same job, else emptied."""
    try:
        same = atomic.read_json(partial / "job.json") == job
    except (OSError, ValueError):
        same = False
    if not same:
        if partial.exists():
            log.info("discarding the unfinished neighbours pass in %s (computed for other files)", partial)
            shutil.rmtree(partial)
        partial.mkdir(parents=True)
        atomic.write_json(partial / "job.json", job)
    return partial


def _chunk_file(partial: Path, c: int) -> Path:
    return partial / f"chunk-{c:06d}.npz"


def _write_npz(target: Path, **arrays: np.ndarray) -> None:
    def write(path: Path) -> None:
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
    atomic.write_with(target, write)


def _run_chunks(partial: Path, chunks: list[np.ndarray], work: _ChunkWork, offset: int, total: int,
                progress: ProgressFn | None, *, engine: str = "local", address: str | None = None,
                index: VectorIndex | None = None, read: ReadRows | None = None) -> None:
    """Compute and store every chunk whose file is missing (here, or on Ray's actors; this
    process writes each file as it arrives); ``progress(offset + rows done, total)`` after
    each chunk, the finished ones first on Ray."""
    done, todo, compute = offset, [], None

    def store(c: int, result: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        nonlocal done
        rows, scores, pos = result
        _write_npz(_chunk_file(partial, c), rows=rows, scores=scores, positions=pos)
        done += len(rows)
        if progress is not None:
            progress(done, total)
    for c, part in enumerate(chunks):
        target = _chunk_file(partial, c)
        if target.is_file():
            with np.load(target, allow_pickle=False) as z:
                done += len(z["rows"])
            if progress is not None:
                progress(done, total)
        elif engine == "ray":
            todo.append((c, part))
        else:
            compute = compute or _chunk_compute(work, index, read)
            store(c, compute(part))
    if todo:
        from core.engines import compute_chunks_ray

        compute_chunks_ray(todo, _chunk_compute, work, store, address=address)


def _finish(partial: Path, where: Path, n: int, k: int, manifest: dict) -> None:
    """Copy the chunks into the (n, k) result files (atomically), manifest last."""
    chunks = sorted(partial.glob("chunk-*.npz"))

    def writer(name: str, dtype: type, fill: float) -> Callable[[Path], None]:
        def write(path: Path) -> None:
            out = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(n, k))
            for s in range(0, n, COPY_ROWS):
                out[s:s + COPY_ROWS] = fill
            for chunk in chunks:
                with np.load(chunk, allow_pickle=False) as z:
                    out[z["rows"]] = z[name]
            out.flush()
            del out
        return write
    (where / MANIFEST).unlink(missing_ok=True)
    atomic.write_with(where / SCORES_FILE, writer("scores", np.float32, -np.inf))
    atomic.write_with(where / POSITIONS_FILE, writer("positions", np.int32, -1))
    atomic.write_json(where / MANIFEST, manifest)


# ---------------------------------------------------------------- the lists method


def _in_order(emb: Embedding, ids: np.ndarray, ids_sha: str) -> bool:
    """Whether the index holds the embedding's rows in order (``ids``, ``ids_sha`` their
    :func:`ids_hash`): the ids hash recorded in ``meta.json`` matches, or the ids compare equal."""
    recorded = emb.meta.get("ids_hash")
    return len(emb.ids) == len(ids) and (recorded == ids_sha if recorded
                                         else np.array_equal(emb.ids, ids.astype(str)))


def _read_rows(emb: Embedding, index: VectorIndex | None, ids: np.ndarray | None, direct: bool) -> ReadRows:
    """Unit rows by position into the index's ``ids``: straight from the embedding's memory
    map when ``direct`` (:func:`_in_order`), else through the index."""
    if direct:
        vectors = emb.vectors
        return lambda rows: np.asarray(vectors[rows], dtype=np.float32)
    log.info("index rows differ from the embedding's order; reading vectors through the index")
    return lambda rows: index.vectors_for(ids[rows])


def _list_plan(partial: Path, read: ReadRows, index: VectorIndex, progress: ProgressFn | None
               ) -> tuple[ListPlan, dict]:
    """The plan of the chunks (groups of lists) and what the manifest records of it. The
    partition is the ivf index's lists (each split where long), stored in ``partial`` (made
    once, reused on resume)."""
    stored, n = partial / "partition.npz", len(index)
    if stored.is_file():
        with np.load(stored, allow_pickle=False) as z:
            part, probes, recall = Partition(z["centroids"], z["assign"]), int(z["probes"]), float(z["recall"])
    else:
        centroids, assign = index.coarse_lists()
        part = fine_partition(read, Partition(centroids, assign),
                              progress=None if progress is None else (lambda d, _t: progress(d, 2 * n)))
        if progress is not None:
            progress(n, 2 * n)
        probes, recall = choose_probes(read, part)
        _write_npz(stored, centroids=part.centroids, assign=part.assign, probes=np.int64(probes),
                   recall=np.float64(recall))
    log.info("neighbours pass of %d rows: %d lists, %d probed per list (recall@10 of a sample %.3f)",
             n, part.nlist, probes, recall)
    if recall < TARGET_RECALL:
        log.warning("the neighbours pass finds %.0f%% of the exact 10 nearest of sampled rows (target "
                    "%.0f%%): their neighbours lie spread over many lists; the scores it keeps are "
                    "exact, its neighbours approximate", 100 * recall, 100 * TARGET_RECALL)
    return plan_lists(part, probes), {"probes_used": probes, "nlist_used": part.nlist,
                                      "recall": round(recall, 4)}
