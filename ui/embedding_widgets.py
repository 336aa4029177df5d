"""Streamlit glue of the Embeddings page: the embeddings table, compute / import / export /
delete actions, the default and the active embedding.

Uploads are written to a private temporary folder and passed to
:func:`core.embeddings.import_embeddings`; exports go through a temporary folder too
and reach the browser as bytes (an ``.npy`` export is zipped with its ids file). Actions
that change the sidebar's choices (import, compute, delete, make active) finish with a
message shown once on the next run (:func:`ui.messages.flash`).
"""

from __future__ import annotations

import importlib.util

import io
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core.embeddings import (
    IMPORT_FORMATS,
    EmbeddingInfo,
    ImportReport,
    delete_embedding,
    export_embeddings,
    import_embeddings,
    rebuild_index,
)
from core.encoders import DEFAULT_ENCODERS, encoder_kind, is_custom_spec, normalise_spec
from core.errors import CatalogError, InputError
from core.index import EXACT_MAX_ROWS
from core.workspace import Workspace
from ui import jobs, loaders, state
from ui.messages import flash, flash_error, show_error

OTHER = "other"  # encoder choice: a clip:/st: spec typed by the user
OTHER_LABEL = "Other: clip:NAME_OR_PATH or st:NAME_OR_PATH"
UPLOAD_TYPES = ["parquet", "npy", "csv", "txt"]
EXPORT_FORMATS = IMPORT_FORMATS
MIME = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv", "npy": "application/zip"}
IDS_SUFFIXES = (".ids.npy", ".ids.txt", ".ids.csv")
CONFIRM_KEY = "emb:del_ok"
PICK_KEY = "emb:pick"
PICK_NEXT_KEY = "emb:pick_next"  # an embedding just made, to pick on the next run


# ---- widgets ---------------------------------------------------------------------------
def progress_bar(label: str) -> Callable[[int, int], None]:
    """An ``st.progress`` bar as a ``progress(done, total)`` callback."""
    bar = st.progress(0.0, text=f"{label}…")

    def update(done: int, total: int) -> None:
        bar.progress(min(done / max(total, 1), 1.0), text=f"{label}: {done:,} of {total:,} rows")

    return update


def prepare_pick(names: Sequence[str], active: str | None) -> None:
    """Before the "Embedding" selectbox: pick the embedding just made, else keep a valid
    choice, else the active one (else the first)."""
    wanted = st.session_state.pop(PICK_NEXT_KEY, None)
    if wanted in names:
        st.session_state[PICK_KEY] = wanted
    elif st.session_state.get(PICK_KEY) not in names:
        st.session_state[PICK_KEY] = active if active in names else names[0]


# ---- table -----------------------------------------------------------------------------
def human_size(n: int) -> str:
    """``1536`` → ``'1.5 KB'`` (powers of 1024, up to TB)."""
    size, unit = float(n), "B"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            break
        size /= 1024
    return f"{int(size):,} B" if unit == "B" else f"{size:,.1f} {unit}"


def embedding_table(infos: Sequence[EmbeddingInfo], default: str | None, active: str | None,
                    derived: Sequence[str] = ()) -> pd.DataFrame:
    """One display row per embedding: default/active markers, encoder, dims, coverage, index;
    ``derived`` ones (built by Catalog for a feature, e.g. text search) are marked so."""
    return pd.DataFrame([{
        "Kind": "derived (text search)" if i.name in derived else
                "class names (text search on images)" if encoder_kind(i.encoder) == "class-names" else "",
        "Default": "★ default" if i.name == default else "",
        "Active": "● active" if i.name == active else "",
        "Name": i.name,
        "Encoder": i.encoder or "imported",
        "Dims": i.dims,
        "Rows": f"covers {i.rows:,} of {i.dataset_rows:,} rows",
        "Index": i.index_kind if i.index_backend == "faiss" else f"{i.index_kind} ({i.index_backend})",
        "Size on disk": human_size(i.size_bytes),
        "Created": i.created.replace("T", " ")[:19],
    } for i in infos], columns=["Kind", "Default", "Active", "Name", "Encoder", "Dims", "Rows", "Index",
                                "Size on disk", "Created"])


def encoder_choices(ws: Workspace, dataset: str) -> list[str]:
    """The built-in encoders for the modalities present (text, image), then :data:`OTHER`."""
    present = set(loaders.source_rows(ws, dataset)["modality"].astype(str))
    return [DEFAULT_ENCODERS[m] for m in ("text", "image") if m in present] + [OTHER]


def resolve_spec(choice: str, custom: str) -> str:
    """The encoder spec to compute with; raises InputError for an unusable custom spec."""
    if choice != OTHER:
        return choice
    spec = (custom or "").strip()
    if not is_custom_spec(spec):
        raise InputError(f"encoder spec {spec!r} is not usable here; give clip:NAME_OR_PATH or "
                         "st:NAME_OR_PATH (e.g. clip:clip-ViT-B-32), or choose a built-in encoder")
    return spec


# ---- actions ----------------------------------------------------------------------------
def make_active(name: str) -> None:
    """Button callback: make ``name`` the sidebar's active embedding (runs before the sidebar)."""
    st.session_state[state.EMBEDDING_KEY] = name
    flash(f"{name} is now the active embedding: every page searches with it.", "info")


def set_default(ws: Workspace, dataset: str, name: str) -> None:
    """Button callback: record ``name`` as the dataset's default embedding."""
    ds = ws.dataset(dataset)
    try:
        ds.update_info(default_embedding=ds.require_embedding(name))
    except CatalogError as err:  # e.g. deleted from the CLI meanwhile
        flash_error(err)
        return
    flash(f"{name} is now the default embedding of {dataset}.")


def delete(ws: Workspace, dataset: str, name: str) -> None:
    """Button callback: delete embedding ``name`` if the confirmation box is ticked."""
    if not st.session_state.get(CONFIRM_KEY):
        flash_error("Tick “I understand” first to delete an embedding.")
        return
    st.session_state[CONFIRM_KEY] = False
    try:
        delete_embedding(ws.dataset(dataset), name)
    except CatalogError as err:
        flash_error(err)
        return
    if st.session_state.get(state.EMBEDDING_KEY) == name:
        st.session_state.pop(state.EMBEDDING_KEY)  # the sidebar falls back to the default
    flash(f"Deleted embedding {name} of {dataset}.")


def run_compute(ws: Workspace, dataset: str, choice: str, custom: str, name: str | None,
                replace: bool) -> bool:
    """Start computing an embedding (encoder ``choice``, or ``custom`` for :data:`OTHER`)
    as a background job (progress in the sidebar, seen by every tab); a bad spec is drawn
    with :func:`ui.messages.show_error` at once. True when the job started (or was already
    running): a message is flashed."""
    try:
        spec = normalise_spec(resolve_spec(choice, custom))
    except CatalogError as err:
        show_error(err)
        return False
    job = jobs.start_embedding(ws, dataset, spec, (name or "").strip() or None, replace=replace)
    flash(f"{job.label}: running in the background (progress in the sidebar); the new "
          "embedding appears here when it is done.", "info")
    return True


INDEX_KINDS = {"auto": f"auto (exact up to {EXACT_MAX_ROWS:,} rows, IVF above)",
               "ivf": "IVF, compressed codes re-ranked from the vectors (large sets: fast build, "
                      "little memory)",
               "hnsw": "HNSW graph (fast queries, minutes to build on large sets)",
               "exact": "exact (every query scans all rows)"}
if importlib.util.find_spec("lancedb") is not None:  # the scale extra is installed
    INDEX_KINDS["lancedb:auto"] = ("LanceDB table beside the vectors (IVF-PQ from 10,000 rows, "
                                   "exact scores; catalog index --uri for an object store)")


def run_rebuild_index(ws: Workspace, dataset: str, name: str, kind: str) -> bool:
    """Start rebuilding ``name``'s index as ``kind`` (a key of :data:`INDEX_KINDS`:
    ``backend:kind`` for another backend) as a background job (``rebuild_index``, as
    ``catalog index`` runs it; progress in the sidebar); True when it started (a message is
    flashed; the table shows the new index when the job ends)."""
    backend, _, of_backend = kind.rpartition(":")

    def work(ctx) -> dict:
        ctx.stage(f"building the {INDEX_KINDS.get(kind, kind).split(' (')[0]} index")
        info = rebuild_index(ws.dataset(dataset), name, of_backend, progress=ctx.progress,
                             backend=backend or "faiss")
        return {"summary": f"{info.name}: {info.index_kind} index over {info.rows:,} rows"}

    job = jobs.board(ws).submit(dataset, "index", work,
                                label=f"Building the {kind} index of {name}",
                                params={"embedding": name, "kind": kind})
    flash(f"{job.label}: running in the background (progress in the sidebar).", "info")
    return True


# ---- import / export ----------------------------------------------------------------------
def _npy_ndim(path: Path) -> int:
    try:
        return int(np.load(path, mmap_mode="r", allow_pickle=False).ndim)
    except (ValueError, OSError):
        return -1


def split_upload(paths: Sequence[Path]) -> tuple[Path, Path | None]:
    """(vectors file, ids file or None) among uploaded ``paths``.

    One file: it holds the vectors (and, unless ``.npy``, the ids). Two files: ``.npy``
    vectors and their ids (``*.ids.npy`` / ``.ids.txt`` / ``.ids.csv``, any ``.txt``, the
    non-``.npy`` one, or the 1-D ``.npy``). Raises InputError otherwise.
    """
    if not paths:
        raise InputError("no file uploaded; choose a .parquet or .csv file, or an .npy file with its ids file")
    names = ", ".join(p.name for p in paths)
    if len(paths) > 2:
        raise InputError(f"upload one vectors file (for .npy: plus its ids file); got {len(paths)}: {names}")
    if len(paths) == 1:
        if paths[0].suffix.lower() == ".npy":
            raise InputError(f"{paths[0].name} holds vectors only: upload its ids file (.ids.npy, "
                             ".txt or .csv, one id per vector, in order) together with it")
        return paths[0], None
    ids = [p for p in paths if p.name.lower().endswith(IDS_SUFFIXES) or p.suffix.lower() == ".txt"]
    if len(ids) != 1:
        npy = [p for p in paths if p.suffix.lower() == ".npy"]
        ids = [p for p in paths if p not in npy] if len(npy) == 1 else [p for p in npy if _npy_ndim(p) == 1]
    if len(ids) != 1:
        raise InputError(f"cannot tell which of {names} holds the ids; name it <stem>.ids.npy, "
                         "<stem>.ids.txt or <stem>.ids.csv")
    vectors = next(p for p in paths if p != ids[0])
    if vectors.suffix.lower() != ".npy":
        raise InputError(f"an ids file only goes with .npy vectors; {vectors.name} carries its own id "
                         f"column: upload it alone")
    return vectors, ids[0]


def import_upload(ws: Workspace, dataset: str, files: Sequence[tuple[str, bytes]], name: str | None,
                  replace: bool = False, skip_unknown: bool = False, *, id_col: str = "id",
                  progress: Callable[[int, int], None] | None = None) -> ImportReport:
    """Import uploaded ``files`` ([(file name, bytes)]) as embedding ``name`` of ``dataset``.

    ``name`` empty → the vectors file's stem. The files are written to a temporary
    folder (removed afterwards). Raises the CatalogErrors of :func:`import_embeddings`
    (messages name the uploaded file, not the temporary path) and InputError for
    unusable uploads (see :func:`split_upload`).
    """
    with tempfile.TemporaryDirectory(prefix="catalog-upload-") as tmp:
        root = Path(tmp)
        paths: list[Path] = []
        for file_name, data in files:
            base = Path(str(file_name)).name
            if base in ("", ".", "..") or (root / base).exists():
                raise InputError(f"uploaded file name {file_name!r} is empty or repeated; rename it")
            (root / base).write_bytes(data)
            paths.append(root / base)
        vectors, ids_file = split_upload(paths)
        emb_name = (name or "").strip() or vectors.name.split(".")[0]
        try:
            return import_embeddings(ws.dataset(dataset), vectors, emb_name, ids_file=ids_file,
                                     id_col=id_col or "id", replace=replace,
                                     skip_unknown=skip_unknown, progress=progress)
        except CatalogError as err:
            message = str(err).replace(str(root) + "/", "")
            raise type(err)(message) from err


def run_import(ws: Workspace, dataset: str, uploads: Sequence, name: str, replace: bool,
               skip_unknown: bool, id_col: str) -> bool:
    """Import Streamlit ``UploadedFile``s with a progress bar; True on success (then flash)."""
    files = [(f.name, f.getvalue()) for f in uploads]
    try:
        report = import_upload(ws, dataset, files, name, replace, skip_unknown, id_col=id_col,
                               progress=progress_bar("Importing vectors"))
    except CatalogError as err:
        show_error(err)
        return False
    flash(report.summary())
    st.session_state[PICK_NEXT_KEY] = report.info.name
    return True


def export_file_name(dataset: str, name: str, fmt: str) -> str:
    """Download file name: ``<dataset>-<embedding>.<fmt>`` (``.zip`` for npy)."""
    return f"{dataset}-{name}.{'zip' if fmt == 'npy' else fmt}"


def export_bytes(ws: Workspace, dataset: str, name: str, fmt: str) -> bytes:
    """Embedding ``name`` as one file's bytes; ``npy`` → a zip of ``<name>.npy`` + ``<name>.ids.npy``.

    Raises NotFoundError (no such embedding), InputError (unknown format).
    """
    with tempfile.TemporaryDirectory(prefix="catalog-export-") as tmp:
        written = export_embeddings(ws.dataset(dataset), name, Path(tmp) / f"{name}.{fmt}", format=fmt)
        if fmt != "npy":
            return written[0].read_bytes()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for path in written:
                archive.write(path, arcname=path.name)
        return buffer.getvalue()
