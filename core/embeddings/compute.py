"""Compute a dataset's embeddings with an encoder: batched, chunked, resumable.

A computation in progress lives in ``embeddings/.<name>.partial/``: one ``.npy`` file
per finished chunk (vectors, then its ``ok`` mask, each written atomically). A killed
run leaves finished chunks behind and the next run with the same encoder and rows
continues from them, retrying image rows that could not be read before. The result is
streamed into :func:`core.embeddings.write_embedding_chunks` (swapped in atomically).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core import atomic
from core._shared import ProgressFn, check_positive_int, ids_hash
from core.embeddings.files import (
    EmbeddingInfo,
    describe_embedding,
    write_embedding_chunks,
)
from core.embeddings import text_space
from core.embeddings.ray_run import RayRun
from core.embeddings.update import append_vectors
from core.engines.cluster import check_address, import_ray, ray_session
from core.engines.plan import check_engine
from core.errors import AlreadyExistsError, EmbeddingError, InputError, MediaError
from core.index import check_index_target, recorded_backend
from core.workspace import Dataset, check_name

log = logging.getLogger(__name__)

DEFAULT_CHUNK_ROWS = 256


@dataclass(frozen=True)
class ComputeReport:
    """What one ``compute_embeddings`` call did."""

    embeddings: tuple[EmbeddingInfo, ...]
    encoded_rows: int  # rows encoded by this call
    resumed_rows: int  # rows taken from chunks finished by an earlier, interrupted run
    skipped: dict  # reason -> count (rows not embedded)
    engine: str = "local"  # the engine that ran (core.engines.ENGINES)
    workers: dict | None = None  # ray: the actor pool used (core.engines.ActorPlan.to_json())


@dataclass(frozen=True)
class Output:
    """One embedding a run writes: ``name``; ``meta`` (written whole) or ``meta_update`` (on
    append); ``columns`` of the encoded rows it keeps; ``only`` the ids it stores (None: every
    encoded row); ``target`` its index backend (see ``_index_target``)."""

    name: str
    meta: dict
    append: bool
    columns: slice = field(default_factory=lambda: slice(None))
    only: np.ndarray | None = None
    target: dict | None = None
    meta_update: dict | None = None


def rows_for_encoder(rows: pd.DataFrame, modalities: frozenset[str]) -> pd.DataFrame:
    """Rows an encoder with ``modalities`` can embed (flagged rows excluded)."""
    ok = rows["modality"].isin(modalities)
    if "ingest_issue" in rows.columns:
        ok &= rows["ingest_issue"].isna()
    return rows.loc[ok]


def compute_embeddings(
    ds: Dataset,
    encoder_spec: str | None = None,
    name: str | None = None,
    *,
    batch_size: int | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    replace: bool = False,
    device: str = "auto",
    progress: ProgressFn | None = None,
    engine: str = "local",
    address: str | None = None,
    backend: str | None = None,
    uri: str | None = None,
    class_names: bool = True,
) -> ComputeReport:
    """Encode the dataset's rows and save them as embedding(s).

    ``encoder_spec`` None → one embedding per modality present, with the default
    encoder of each (``text:minilm``, ``image:efficientnet-lite0``). ``name`` defaults
    to the encoder's short name. An embedding that exists already (and ``replace`` is False)
    gets only the rows without a vector encoded (new rows, rows whose content changed in an
    update), appended and added to its index (``encoded_rows`` counts them; 0 when none is
    missing); AlreadyExistsError if it was made with another encoder or imported. ``replace``
    recomputes every row. Work is saved per chunk of ``chunk_rows`` rows; an
    interrupted run is resumed: finished chunks are reused, and their image rows that could
    not be read then are tried again; ``skipped`` counts the rows left out of the final
    embedding. The encoders run on ``device`` (``auto``: CUDA, else MPS, else the CPU; see
    :func:`core.encoders.choose_device`) in batches of ``batch_size`` rows (None: the
    device's default, 32 on the CPU). Raises InputError (``batch_size`` or ``chunk_rows`` not
    a whole number >= 1, an unknown or unavailable device: before any work), EncoderError,
    AlreadyExistsError, EmbeddingError, MediaError (no image row readable: nothing is saved
    and no partial work is kept).

    ``engine``: ``local`` (this process) or ``ray`` (a Ray Data job: actors on the devices
    the cluster at ``address`` has, see :func:`core.engines.encode_shards_ray`; ``address``
    None: a local Ray). Both write the same resumable shards, so either resumes the other's
    work, and the same embedding (``meta.json`` records the engine). EngineError (an
    InputError): unknown engine, Ray not installed, ``address`` unreachable (nothing written).

    ``backend``/``uri``: where the index of an embedding written whole goes (``faiss``, or
    ``lancedb`` with the table in the embedding's folder or at ``uri``; see
    :func:`core.index.build_index`); None keeps the backend an existing embedding has, else
    FAISS. Rows appended to an existing embedding go to the index it has: InputError if
    that is not ``backend``/``uri`` (rebuild it with ``rebuild_index``), or if ``uri`` is
    given for two embeddings (image and text rows) or a backend or uri is unusable.

    ``class_names``: EfficientNet-Lite0 runs also write ``<name>-text``, each image's ConSE
    vector over its ImageNet class names in MiniLM's space, from the same forward pass (text
    rows of the dataset join it): what answers text queries on images without CLIP
    (:mod:`core.embeddings.text_space`).
    """
    from core import encoders
    from core.encoders import DEFAULT_ENCODERS, choose_device

    engine = check_engine(engine)
    if engine == "ray":  # actors choose their device on their node; the driver checks the spec on CPU
        batch_size = None if batch_size is None else check_positive_int(batch_size, "batch_size")
        import_ray()
        check_address(address)  # refused before a model is loaded
        run = RayRun(device, batch_size, address, encoders.load_encoder)
        load_device = "cpu"
    else:
        choice = choose_device(device, batch_size=batch_size)
        batch_size, load_device, run = choice.batch_size, choice.device, None
    chunk_rows = check_positive_int(chunk_rows, "chunk_rows")
    rows = ds.rows()
    if encoder_spec is None:
        present = [m for m in ("image", "text") if (rows["modality"] == m).any()]
        specs = [DEFAULT_ENCODERS[m] for m in present]
        if name is not None and len(specs) > 1:
            raise EmbeddingError(
                f"dataset {ds.name!r} has image and text rows: they get one embedding each; "
                "omit --embedding or pass --encoder"
            )
    else:
        specs = [encoder_spec]
    if backend is not None:
        check_index_target("auto", backend, uri)
    if uri is not None and len(specs) > 1:
        raise InputError(f"one --uri for the {len(specs)} embeddings of {ds.name!r} (image and text "
                         "rows): pass --encoder to embed one, each with its own --uri")
    for spec in specs if backend is not None else ():  # an index that cannot take the rows: before a model loads
        emb_name = check_name(name or encoders.encoder_name(spec), "embedding")
        _index_target(ds, emb_name, (backend, uri), emb_name in ds.embedding_names() and not replace)
    loaded = [encoders.load_encoder(spec, load_device) for spec in specs]  # fail fast on a bad spec
    with contextlib.ExitStack() as stack:
        if run:  # connected (or refused: EngineError) before anything is written
            stack.enter_context(ray_session(address))
        infos, encoded, resumed, skipped = _compute_all(ds, rows, loaded, name, replace, batch_size,
                                                        chunk_rows, progress, run, (backend, uri), class_names)
    return ComputeReport(tuple(infos), encoded, resumed, skipped, engine,
                         run.plan.to_json() if run and run.plan else None)


def _compute_all(ds, rows, loaded, name, replace, batch_size, chunk_rows, progress, run, target,
                 class_names=True):
    """Each encoder of ``loaded`` over its rows: (infos, encoded, resumed, skipped);
    ``target`` the requested (backend or None, uri). EfficientNet-Lite0 also writes its
    class-name (ConSE) embedding from the same pass when ``class_names``
    (:mod:`core.embeddings.text_space`)."""
    infos, encoded, resumed, skipped = [], 0, 0, {}
    for encoder in loaded:
        emb_name = check_name(name or encoder.name, "embedding")
        todo = rows_for_encoder(rows, encoder.modalities)
        if todo.empty:
            raise EmbeddingError(
                f"encoder {encoder.spec!r} embeds {', '.join(sorted(encoder.modalities))} rows; "
                f"dataset {ds.name!r} has none"
            )
        existing = emb_name in ds.embedding_names() and not replace
        where = _index_target(ds, emb_name, target, existing)
        outputs = None
        if class_names and text_space.pairs_with_class_names(encoder):
            encoder, todo, outputs = text_space.plan_paired_run(
                ds, encoder, emb_name, todo, replace, where,
                lambda comp, exists: _index_target(ds, comp, (target[0], None), exists),
                lambda emb, enc, rows_: _rows_without_vector(ds, emb, enc, rows_))
        elif existing:
            todo = _rows_without_vector(ds, emb_name, encoder, todo)
        if todo.empty:  # every row already has its vector(s): nothing to encode
            infos.extend(describe_embedding(ds, n) for n in ([o.name for o in outputs] if outputs else [emb_name]))
            continue
        done, n_new, n_old, skip = _compute_one(ds, encoder, emb_name, todo, batch_size, chunk_rows,
                                                progress, append=existing, ray=run, target=where,
                                                outputs=outputs)
        infos.extend(done)
        encoded += n_new
        resumed += n_old
        for reason, count in skip.items():
            skipped[reason] = skipped.get(reason, 0) + count
    if class_names:  # text rows join the class-name space of a dataset of images and texts
        infos = [text_space.complete_text_space(ds, rows, info) for info in infos]
    return infos, encoded, resumed, skipped


def _index_target(ds: Dataset, emb_name: str, target: tuple[str | None, str | None],
                  existing: bool) -> dict:
    """``{"backend", "uri"}`` for embedding ``emb_name``'s index: the requested one, else
    what the stored embedding has (else FAISS). InputError when rows would be appended to
    an index other than the requested one."""
    backend, uri = target
    stored = (recorded_backend(ds.embedding_dir(emb_name)) if emb_name in ds.embedding_names()
              else {"backend": "faiss", "uri": None})
    if backend is None:
        return stored
    if existing and (stored["backend"], stored["uri"]) != (backend, uri):
        at = f" at {stored['uri']!r}" if stored["uri"] else ""
        raise InputError(f"embedding {emb_name!r} has a {stored['backend']} index{at}; new rows go to "
                         f"that index. Rebuild it with `catalog index {ds.name} --embedding {emb_name} "
                         f"--backend {backend}` first, or pass --replace to recompute every row")
    return {"backend": backend, "uri": uri}


def _rows_without_vector(ds: Dataset, emb_name: str, encoder, todo: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``todo`` without a vector in the stored embedding ``emb_name`` (new rows,
    or rows whose content changed in an update). AlreadyExistsError if that embedding was
    made another way (another encoder, or imported): only ``replace`` may recompute it."""
    meta = atomic.read_json(ds.embedding_dir(emb_name) / "meta.json")
    if meta.get("encoder") != encoder.spec:
        made = f"with encoder {meta['encoder']!r}" if meta.get("encoder") else "by an import"
        raise AlreadyExistsError(
            f"embedding {emb_name!r} already exists in {ds.name!r}, made {made}, not with "
            f"{encoder.spec!r}; pass --replace to recompute it or --embedding for another name"
        )
    stored = np.load(ds.embedding_dir(emb_name) / "ids.npy", allow_pickle=False)
    return todo.loc[~todo["id"].astype(str).isin(stored)]


def _encode_rows(ds, encoder, chunk, rows, vecs, ok, batch_size, open_image) -> None:
    """Encode the rows at positions ``rows`` of ``chunk`` into ``vecs`` (len(chunk), d) in
    place; ``ok[i]`` is set False for an image row whose file cannot be read (logged), True
    for every row encoded."""
    is_image = (chunk["modality"] == "image").to_numpy()
    text_rows = rows[~is_image[rows]]
    if len(text_rows):
        texts = chunk["text"].iloc[text_rows].fillna("").astype(str).tolist()
        vecs[text_rows] = encoder.encode_texts(texts, batch_size=batch_size)
        ok[text_rows] = True
    images, where = [], []
    for i in rows[is_image[rows]]:
        try:
            images.append(open_image(ds.resolve_media(chunk["image"].iloc[i])))
            where.append(i)
        except MediaError as err:
            log.warning("skipping row %s: %s", chunk["id"].iloc[i], err)
            ok[i] = False
    if images:
        vecs[np.asarray(where)] = encoder.encode_images(images, batch_size=batch_size)
        ok[np.asarray(where)] = True


def _shard_paths(partial: Path, chunk_no: int) -> tuple[Path, Path]:
    """The vectors and ``ok`` mask files of shard (chunk) ``chunk_no`` of a partial run."""
    return partial / f"chunk_{chunk_no:06d}.npy", partial / f"chunk_{chunk_no:06d}.ok.npy"


def _local_shards(ds, encoder, todo, starts, chunk_rows, work, batch_size) -> Iterator:
    """The local engine: encode each ``(shard no, positions)`` of ``work`` in this process;
    yields ``(no, positions, vecs (m, d), ok (m,))``."""
    from core.media import open_image

    for chunk_no, pos in work:
        chunk = todo.iloc[starts[chunk_no] : starts[chunk_no] + chunk_rows]
        vecs = np.zeros((len(chunk), encoder.dims), dtype=np.float32)
        ok = np.ones(len(chunk), dtype=bool)
        _encode_rows(ds, encoder, chunk, pos, vecs, ok, batch_size, open_image)
        yield chunk_no, pos, vecs[pos], ok[pos]


def _compute_one(ds, encoder, emb_name, todo, batch_size, chunk_rows, progress, append=False, ray=None,
                 target=None, outputs=None):
    """Encode ``todo`` in resumable chunks (shards) on the local engine, or on Ray when
    ``ray`` (a :class:`RayRun`) is given; save them as embedding ``emb_name`` (``append``:
    after its stored vectors, :func:`core.embeddings.update.append_vectors`), or as each of
    ``outputs`` (:class:`Output`: columns of the encoded rows). Returns (infos, encoded,
    resumed, skipped)."""
    partial = ds.embeddings_dir / f".{emb_name}.partial"
    job = {
        "encoder": encoder.spec, "chunk_rows": int(chunk_rows), "append": bool(append),
        "ids_hash": ids_hash(list(todo["id"].astype(str))),
    }
    job_path = partial / "job.json"
    if partial.exists() and (not job_path.exists() or atomic.read_json(job_path) != job):
        log.info("discarding partial work for %s: rows or encoder changed", emb_name)
        shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    if not job_path.exists():
        atomic.write_json(job_path, job)

    total = len(todo)
    starts = list(range(0, total, chunk_rows))
    work, n_old, done = [], 0, 0  # work: (shard no, positions of its rows to encode)
    for chunk_no, start in enumerate(starts):
        size = min(chunk_rows, total - start)
        vec_path, ok_path = _shard_paths(partial, chunk_no)
        if vec_path.exists() and ok_path.exists():  # finished by an earlier run
            retry = np.flatnonzero(~np.load(ok_path, allow_pickle=False))  # unreadable then: try again
            n_old += size - len(retry)
            if not len(retry):
                done += size
                continue
        else:
            retry = np.arange(size)
        work.append((chunk_no, retry))
    if progress and done:
        progress(done, total)
    if ray is None:
        shards = _local_shards(ds, encoder, todo, starts, chunk_rows, work, batch_size)
    else:
        shards = ray.shards(ds, encoder, todo, starts, work) if work else iter(())
    n_new = 0
    for chunk_no, pos, part_vecs, part_ok in shards:
        vec_path, ok_path = _shard_paths(partial, chunk_no)
        size = min(chunk_rows, total - starts[chunk_no])
        if vec_path.exists() and ok_path.exists():
            vecs, ok = np.load(vec_path, allow_pickle=False), np.load(ok_path, allow_pickle=False)
        else:
            vecs, ok = np.zeros((size, encoder.dims), dtype=np.float32), np.ones(size, dtype=bool)
        vecs[pos], ok[pos] = part_vecs, part_ok
        atomic.write_npy(vec_path, vecs)
        atomic.write_npy(ok_path, ok)  # written last: marks the shard (or its retries) finished
        n_new += len(pos)
        done += size
        if progress:
            progress(done, total)

    oks = [np.load(partial / f"chunk_{chunk_no:06d}.ok.npy", allow_pickle=False)
           for chunk_no in range(len(starts))]
    keep = np.concatenate(oks)
    if not keep.any():  # nothing could be read: no embedding, and no partial work to resume
        shutil.rmtree(partial)
        raise MediaError(f"none of the {total} image rows of dataset {ds.name!r} could be read for "
                         f"embedding {emb_name!r}, e.g. {todo['image'].iloc[0]!r}; check that the "
                         f"images under {ds.media_root} are there and readable")
    skipped = {"unreadable image": int((~keep).sum())} if not keep.all() else {}
    all_ids = todo["id"].astype(str).to_numpy()
    if outputs is None:
        modalities = sorted(set(todo["modality"]) & set(encoder.modalities))
        meta = {"encoder": encoder.spec, "source": "computed", "modalities": modalities}
        outputs = [Output(emb_name, meta, append, target=target)]
    engine = "local" if ray is None else "ray"
    infos = [_store(ds, out, engine, all_ids, starts, oks, partial) for out in outputs]
    shutil.rmtree(partial)
    log.info("embedding %s: %d rows encoded, %d resumed", emb_name, n_new, n_old)
    return infos, n_new, n_old, skipped


def _store(ds: Dataset, out: Output, engine: str, all_ids: np.ndarray, starts: list[int],
           oks: list[np.ndarray], partial: Path) -> EmbeddingInfo:
    """Write output ``out`` of a finished run from its shard files (streamed: never all
    vectors in memory): appended to the stored embedding, or written whole."""
    masks = []
    for start, ok in zip(starts, oks):
        mask = ok.copy()
        if out.only is not None:
            mask &= np.isin(all_ids[start:start + len(ok)], out.only)
        masks.append(mask)
    total = int(sum(int(m.sum()) for m in masks))
    chunks = ((all_ids[start:start + len(mask)][mask],
               np.load(partial / f"chunk_{no:06d}.npy", allow_pickle=False)[mask][:, out.columns])
              for no, (start, mask) in enumerate(zip(starts, masks)))
    if out.append:
        if not total:
            return describe_embedding(ds, out.name)
        return append_vectors(ds, out.name, chunks, total=total, meta_update=out.meta_update)
    return write_embedding_chunks(ds, out.name, chunks, {**out.meta, "engine": engine}, total=total,
                                  replace=True, **(out.target or {}))
