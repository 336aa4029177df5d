"""Compute a dataset's embeddings with an encoder: batched, chunked, resumable.

A computation in progress lives in ``embeddings/.<name>.partial/``: one ``.npy`` file
per finished chunk (vectors, then its ``ok`` mask, each written atomically). A killed
run leaves finished chunks behind and the next run with the same encoder and rows
continues from them, retrying image rows that could not be read before. The result is
streamed into :func:`core.embeddings.write_embedding_chunks` (swapped in atomically).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core import atomic
from core._shared import ProgressFn, check_positive_int, ids_hash
from core.embeddings.files import (
    EmbeddingInfo,
    describe_embedding,
    write_embedding_chunks,
)
from core.embeddings.update import append_vectors
from core.errors import AlreadyExistsError, EmbeddingError, MediaError
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
    """
    from core.encoders import DEFAULT_ENCODERS, choose_device, load_encoder

    choice = choose_device(device, batch_size=batch_size)
    batch_size = choice.batch_size
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
    encoders = [load_encoder(spec, choice.device) for spec in specs]  # fail fast on a bad spec
    infos, encoded, resumed, skipped = [], 0, 0, {}
    for encoder in encoders:
        emb_name = check_name(name or encoder.name, "embedding")
        todo = rows_for_encoder(rows, encoder.modalities)
        if todo.empty:
            raise EmbeddingError(
                f"encoder {encoder.spec!r} embeds {', '.join(sorted(encoder.modalities))} rows; "
                f"dataset {ds.name!r} has none"
            )
        existing = emb_name in ds.embedding_names() and not replace
        if existing:
            todo = _rows_without_vector(ds, emb_name, encoder, todo)
            if todo.empty:  # every row already has its vector: nothing to encode
                infos.append(describe_embedding(ds, emb_name))
                continue
        info, n_new, n_old, skip = _compute_one(ds, encoder, emb_name, todo, batch_size, chunk_rows,
                                                progress, append=existing)
        infos.append(info)
        encoded += n_new
        resumed += n_old
        for reason, count in skip.items():
            skipped[reason] = skipped.get(reason, 0) + count
    return ComputeReport(tuple(infos), encoded, resumed, skipped)


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


def _compute_one(ds, encoder, emb_name, todo, batch_size, chunk_rows, progress, append=False):
    """Encode ``todo`` in resumable chunks; save them as embedding ``emb_name`` (``append``:
    after its stored vectors, :func:`core.embeddings.update.append_vectors`)."""
    from core.media import open_image

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
    n_new = n_old = 0
    done = 0
    for chunk_no, start in enumerate(starts):
        chunk = todo.iloc[start : start + chunk_rows]
        vec_path = partial / f"chunk_{chunk_no:06d}.npy"
        ok_path = partial / f"chunk_{chunk_no:06d}.ok.npy"
        if vec_path.exists() and ok_path.exists():  # finished by an earlier run
            ok = np.load(ok_path, allow_pickle=False)
            retry = np.flatnonzero(~ok)  # images that were unreadable then: try them again
            n_old += len(chunk) - len(retry)
            if len(retry):
                vecs = np.load(vec_path, allow_pickle=False)
                _encode_rows(ds, encoder, chunk, retry, vecs, ok, batch_size, open_image)
        else:
            retry = np.arange(len(chunk))
            vecs = np.zeros((len(chunk), encoder.dims), dtype=np.float32)
            ok = np.ones(len(chunk), dtype=bool)
            _encode_rows(ds, encoder, chunk, retry, vecs, ok, batch_size, open_image)
        if len(retry):
            atomic.write_npy(vec_path, vecs)
            atomic.write_npy(ok_path, ok)  # written last: marks the chunk (or its retries) finished
        n_new += len(retry)
        done += len(chunk)
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
    # chunk files streamed into the embedding's memory map: never all vectors in memory
    chunks = ((all_ids[start:start + len(ok)][ok],
               np.load(partial / f"chunk_{chunk_no:06d}.npy", allow_pickle=False)[ok])
              for chunk_no, (start, ok) in enumerate(zip(starts, oks)))
    modalities = sorted(set(todo["modality"]) & set(encoder.modalities))
    if append:
        info = append_vectors(ds, emb_name, chunks, total=int(keep.sum()))
    else:
        info = write_embedding_chunks(
            ds, emb_name, chunks,
            {"encoder": encoder.spec, "source": "computed", "modalities": modalities},
            total=int(keep.sum()), replace=True,
        )
    shutil.rmtree(partial)
    log.info("embedding %s: %d rows encoded, %d resumed", emb_name, n_new, n_old)
    return info, n_new, n_old, skipped
