"""Import user vectors as an embedding of a dataset; export an embedding to a file.

Import formats (:data:`IMPORT_FORMATS`), streamed: the ids are read first and matched
against the dataset, then the vectors flow block by block (about 32 MB each) through the
checks into :func:`core.embeddings.files.write_embedding_chunks`, which normalises each block
into a memory-mapped ``vectors.npy``; no step holds two copies of the vectors:

- ``parquet``: an id column plus one list / fixed-size-list column, or one numeric
  column per dimension (every other column, in file order).
- ``npy``: an (n, d) numeric array (memory-mapped, never unpickled); ids from an ids
  file: ``.npy`` of strings, ``.txt`` (one per line) or ``.csv`` (column ``id_col``, else
  the first); by default ``<stem>.ids.npy`` / ``.ids.txt`` / ``.ids.csv`` next to it.
- ``csv``: the id column (``id_col`` if present, else the first) and one column per
  dimension.

The readers live in :mod:`core.embeddings.readers`. A file that fails any check (ids first:
null, duplicate, unknown; then each block's values) writes nothing: the new embedding's
folder is swapped in only once every block passed. Rows already of unit length are stored
bit for bit, so export → import round-trips exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from core import atomic
from core.embeddings.files import EmbeddingInfo, load_embedding, write_embedding_chunks
from core.embeddings.readers import (
    MAX_DIMS,
    ProgressFn,
    VectorFile,
    chunk_rows,
    open_vectors,
    plural,
)
from core.errors import (
    AlreadyExistsError,
    EmbeddingError,
    InputError,
    NotFoundError,
    SchemaError,
    format_list,
)
from core.index import EXACT_MAX_ROWS, check_index_target
from core.locations import Location, parse_location
from core.workspace import Dataset, check_name

__all__ = ["IMPORT_FORMATS", "MAX_DIMS", "ImportReport", "export_embeddings", "import_embeddings"]

log = logging.getLogger(__name__)

IMPORT_FORMATS = ("parquet", "npy", "csv")
_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".npy": "npy", ".csv": "csv"}


@dataclass(frozen=True)
class ImportReport:
    """What :func:`import_embeddings` saved."""

    info: EmbeddingInfo
    skipped_unknown: int  # ids not in the dataset, dropped because skip_unknown=True
    uncovered: int  # dataset rows without a vector

    def summary(self) -> str:
        """One line, e.g. ``imported 'mine': 92,310 vectors × 768 dims; covers 92,310 of 100,000 rows``."""
        i = self.info
        text = (f"imported {i.name!r}: {i.rows:,} vectors × {i.dims:,} dims; "
                f"covers {i.rows:,} of {i.dataset_rows:,} rows")
        if self.uncovered:
            text += f" ({self.uncovered:,} without a vector)"
        if self.skipped_unknown:
            text += f"; skipped {self.skipped_unknown:,} ids not in the dataset"
        if i.index_kind == "exact" and i.rows > EXACT_MAX_ROWS:
            text += (f"; exact index (every query scans all {i.rows:,} rows): build an ANN index "
                     f"for faster queries with `catalog index DATASET --embedding {i.name} --kind auto`")
        return text

    def to_json(self) -> dict:
        return {**self.info.to_json(), "skipped_unknown": self.skipped_unknown,
                "uncovered": self.uncovered, "coverage": round(self.info.coverage, 6)}


def _format_of(path: Path | Location, format: str | None) -> str:
    fmt = format.lower() if format else _SUFFIXES.get(path.suffix.lower())
    if fmt not in IMPORT_FORMATS:
        raise InputError(f"unknown embedding file format {format or path.suffix or str(path)!r}; choose one "
                         f"of {', '.join(IMPORT_FORMATS)} (or name the file .parquet, .npy or .csv)")
    return fmt


def _match_dataset(ds: Dataset, ids: pa.Array, skip_unknown: bool, where: str
                   ) -> tuple[np.ndarray | None, int, list[str]]:
    """Check the file's ``ids`` (n,) against the dataset's rows (Arrow hash tables, no Python
    strings); returns (rows to keep (n,) bool or None for all, skipped, modalities)."""
    if len(pc.unique(ids)) < len(ids):
        counts = pc.value_counts(ids)
        dup = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
        at = np.flatnonzero(pc.is_in(ids, value_set=dup).to_numpy(zero_copy_only=False))
        rows: dict[str, list[int]] = {}
        for row, value in zip(at.tolist(), ids.take(pa.array(at)).to_pylist()):
            rows.setdefault(value, []).append(row)
        ordered = sorted(rows, key=lambda k: rows[k][1])  # by second occurrence, as pandas
        shown = "; ".join(f"{k!r} at {', '.join(map(str, rows[k][:4]))}" for k in ordered[:5])
        raise SchemaError(f"{where} has {plural(len(rows), 'duplicate id')}, e.g. "
                          f"{format_list(ordered)}; ids must be unique (rows, 0-based: {shown})")
    table = pq.read_table(ds.rows_path, columns=["id", "modality"])
    ds_ids = pc.cast(table.column("id"), pa.large_string()).combine_chunks()
    pos = pc.index_in(ids, value_set=ds_ids)
    unknown = pos.is_null().to_numpy(zero_copy_only=False)
    skipped = int(unknown.sum())
    if skipped == len(ids):
        raise EmbeddingError(f"none of the {len(ids):,} ids in {where} are rows of dataset {ds.name!r} "
                             f"(file ids: {format_list(ids[:3].to_pylist())}; dataset ids: "
                             f"{format_list(ds_ids[:3].to_pylist())}); nothing to import — check --id-col")
    if skipped and not skip_unknown:
        first = ids.take(pa.array(np.flatnonzero(unknown)[:5])).to_pylist()
        more = f" (+{skipped - len(first)} more)" if skipped > len(first) else ""
        raise EmbeddingError(f"{skipped:,} of {len(ids):,} ids in {where} are not rows of dataset "
                             f"{ds.name!r}: {format_list(first)}{more}; pass --skip-unknown "
                             "(skip_unknown=True) to drop them")
    modality = table.column("modality").take(pos.drop_null())
    modalities = sorted(str(m) for m in pc.unique(modality).to_pylist())
    return (~unknown if skipped else None), skipped, modalities


def _kept_blocks(source: VectorFile, keep: np.ndarray | None, progress: ProgressFn | None
                 ) -> Iterator[tuple[pa.Array, np.ndarray]]:
    """(ids, vectors) of each block of ``source``, only the rows where ``keep``."""
    start = 0
    for block in source.blocks(progress):
        ids, end = source.ids.slice(start, len(block)), start + len(block)
        if keep is not None:
            ids, block = ids.filter(pa.array(keep[start:end])), block[keep[start:end]]
        start = end
        yield ids, block


def import_embeddings(ds: Dataset, source: str | Path | Location, name: str, *, format: str | None = None,
                      ids_file: str | Path | None = None, id_col: str = "id", replace: bool = False,
                      skip_unknown: bool = False, index_kind: str = "exact", backend: str = "faiss",
                      uri: str | None = None, progress: ProgressFn | None = None) -> ImportReport:
    """Import vectors from ``source`` (Parquet, NPY + ids, CSV) as embedding ``name`` of ``ds``.

    ``source`` (and ``ids_file``): a local path or a URI (``file://``, ``s3://``...; see
    :mod:`core.locations`). ``format`` defaults to the file's extension. Rows of the
    dataset without a vector are allowed (see ``EmbeddingInfo.coverage``). The file is
    streamed (ids first, then the vectors block by block); a file that fails any check
    writes nothing. Raises
    AlreadyExistsError (name taken, unless ``replace``), NotFoundError (missing file),
    InputError (unknown format or scheme, unreadable file, no ids file),
    SchemaError (missing id column, null or duplicate ids) and EmbeddingError
    (inconsistent or > MAX_DIMS dims, non-numeric, NaN/Inf, all-zero vectors, ids not in
    the dataset unless ``skip_unknown``, nothing left). ``progress(done, total)`` per chunk.
    ``index_kind`` defaults to "exact" so a large import is searchable in seconds; an HNSW
    graph (minutes to build at 1M rows) is then built with ``rebuild_index`` / ``catalog index``.
    ``backend``/``uri``: where the index goes (``lancedb``: a LanceDB table in the
    embedding's folder or at ``uri``), checked before the file is read.
    """
    check_index_target(index_kind, backend, uri)
    check_name(name, "embedding")
    if name in ds.embedding_names() and not replace:
        raise AlreadyExistsError(f"embedding {name!r} already exists in {ds.name!r}; pass --replace to overwrite it")
    path = source if isinstance(source, Location) else parse_location(source)
    fmt = _format_of(path, format)
    kind = path.info().type
    if kind == pafs.FileType.Directory:
        raise InputError(f"{str(path)!r} is a folder; give the vectors file")
    if kind != pafs.FileType.File:
        raise NotFoundError(f"embedding file {str(path)!r} does not exist")
    if ids_file is not None and fmt != "npy":
        raise InputError(f"an ids file only goes with .npy vectors; {str(path)!r} is {fmt} with its own id column")
    vectors = open_vectors(path, fmt, ids_file=ids_file, id_col=id_col)
    keep, skipped, modalities = _match_dataset(ds, vectors.ids, skip_unknown, vectors.where)
    meta = {"encoder": None, "source": "imported", "modalities": modalities, "imported_from": path.name}
    info = write_embedding_chunks(ds, name, _kept_blocks(vectors, keep, progress), meta,
                                  total=len(vectors.ids) - skipped, replace=replace,
                                  index_kind=index_kind, backend=backend, uri=uri)
    report = ImportReport(info, skipped, max(info.dataset_rows - info.rows, 0))
    log.info("%s", report.summary())
    return report


def export_embeddings(ds: Dataset, name: str | None, out: str | Path, *, format: str | None = None) -> list[Path]:
    """Write embedding ``name`` (None → the default) to ``out``; returns the files written.

    Format from ``format`` or ``out``'s extension: ``.parquet`` (columns id, vector as
    list<float32>), ``.npy`` (+ ``<stem>.ids.npy`` of strings), ``.csv`` (id, d0..d{n-1},
    9 significant digits: exact for float32). Each file is written atomically.
    Missing folders of ``out`` are created. Raises NotFoundError (no such embedding),
    InputError (unknown format, ``out`` a folder, a file where ``out`` needs a folder,
    ``out`` not writable).
    """
    emb = load_embedding(ds, name)
    out = Path(out).expanduser()
    fmt = _format_of(out, format)
    if out.is_dir():
        raise InputError(f"{str(out)!r} is a folder; give a file name ending in .{fmt}")
    blocker = atomic.non_folder_ancestor(out)
    if blocker is not None:
        raise InputError(f"cannot write {str(out)!r}: {str(blocker)!r} is a file, not a folder")
    try:
        return _write_exported(emb, ds, out, fmt)
    except OSError as err:
        raise InputError(f"cannot write {str(out)!r}: {err.strerror or err}") from err


def _write_exported(emb, ds: Dataset, out: Path, fmt: str) -> list[Path]:
    ids, vectors = emb.ids.astype(str), emb.vectors
    step = chunk_rows(vectors.shape[1])
    if fmt == "npy":
        ids_path = out.with_name(out.stem + ".ids.npy")
        atomic.write_npy(ids_path, ids)
        atomic.write_npy(out, vectors)
        return [out, ids_path]
    if fmt == "parquet":
        schema = pa.schema([("id", pa.string()), ("vector", pa.list_(pa.float32()))])

        def write(tmp: Path) -> None:
            with pq.ParquetWriter(tmp, schema) as writer:
                for start in range(0, len(ids), step):
                    block = np.ascontiguousarray(vectors[start:start + step], dtype=np.float32)
                    offsets = pa.array(np.arange(len(block) + 1, dtype=np.int32) * block.shape[1])
                    column = pa.ListArray.from_arrays(offsets, pa.array(block.reshape(-1)))
                    writer.write_table(pa.table([pa.array(ids[start:start + step]), column], schema=schema))
    else:
        columns = [f"d{j}" for j in range(vectors.shape[1])]

        def write(tmp: Path) -> None:
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                for start in range(0, len(ids), step):
                    frame = pd.DataFrame(np.asarray(vectors[start:start + step]), columns=columns)
                    frame.insert(0, "id", ids[start:start + step])
                    frame.to_csv(fh, header=start == 0, index=False, float_format="%.9g", lineterminator="\n")
    atomic.write_with(out, write)
    log.info("exported embedding %s of %s to %s", emb.name, ds.name, out)
    return [out]
