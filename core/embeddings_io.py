"""Import user vectors as an embedding of a dataset; export an embedding to a file.

Import formats (:data:`IMPORT_FORMATS`), read in chunks into one (n, d) float32 array
(preallocated when the row count is known, so memory stays near the vectors' size):

- ``parquet``: an id column plus one list / fixed-size-list column, or one numeric
  column per dimension (every other column, in file order).
- ``npy``: an (n, d) numeric array (memory-mapped, never unpickled); ids from an ids
  file: ``.npy`` of strings, ``.txt`` (one per line) or ``.csv`` (column ``id_col``, else
  the first); by default ``<stem>.ids.npy`` / ``.ids.txt`` / ``.ids.csv`` next to it.
- ``csv``: the id column (``id_col`` if present, else the first) and one column per
  dimension.

Everything is validated before anything is written; the vectors are saved with
:func:`core.embeddings.write_embedding` (normalise, index, atomic swap). Rows already of
unit length are stored bit for bit, so export → import round-trips exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core import atomic
from core.embeddings import EmbeddingInfo, load_embedding, normalise_rows, write_embedding
from core.index import EXACT_MAX_ROWS, resolve_kind
from core.errors import (AlreadyExistsError, EmbeddingError, InputError, NotFoundError,
                         SchemaError, format_list)
from core.workspace import Dataset, check_name

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]
MAX_DIMS = 4096
IMPORT_FORMATS = ("parquet", "npy", "csv")
_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".npy": "npy", ".csv": "csv"}
_IDS_SUFFIXES = (".ids.npy", ".ids.txt", ".ids.csv")
_CHUNK_VALUES = 1 << 23  # values per chunk read or written (32 MB of float32)
_NA = ["", "nan", "NaN", "NA", "N/A", "null", "NULL", "None"]
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)


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
            text += (f"; exact index (every query scans all {i.rows:,} rows): build an HNSW graph "
                     f"for faster queries with `catalog index DATASET --embedding {i.name} --kind hnsw`")
        return text

    def to_json(self) -> dict:
        return {**self.info.to_json(), "skipped_unknown": self.skipped_unknown,
                "uncovered": self.uncovered, "coverage": round(self.info.coverage, 6)}


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _chunk_rows(dims: int) -> int:
    return max(256, _CHUNK_VALUES // max(dims, 1))


def _format_of(path: Path, format: str | None) -> str:
    fmt = format.lower() if format else _SUFFIXES.get(path.suffix.lower())
    if fmt not in IMPORT_FORMATS:
        raise InputError(f"unknown embedding file format {format or path.suffix or str(path)!r}; choose one "
                         f"of {', '.join(IMPORT_FORMATS)} (or name the file .parquet, .npy or .csv)")
    return fmt


@dataclass
class _Problems:
    """Count and first examples of one kind of bad row."""

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, examples: list[str], count: int) -> None:
        self.count += count
        self.examples.extend(examples[: 5 - len(self.examples)])


class _Collector:
    """Gathers ids and (n, d) float32 vectors chunk by chunk and records bad rows.

    With ``total`` known the vectors go into one preallocated array; otherwise the
    chunks are concatenated at the end (about twice the vectors' size at peak).
    """

    def __init__(self, where: str, dims: int, total: int | None, progress: ProgressFn | None,
                 total_hint: int | None = None) -> None:
        if dims == 0:
            raise EmbeddingError(f"{where} has no vector column besides the id")
        if dims > MAX_DIMS:
            raise EmbeddingError(f"{where} has {dims:,} dims; at most {MAX_DIMS:,} are supported")
        self.where, self.dims, self.progress = where, dims, progress
        self.total_hint = total if total is not None else total_hint
        self.array = np.empty((total, dims), np.float32) if total is not None else None
        self.blocks: list[np.ndarray] = []
        self.ids: list[np.ndarray] = []
        self.n = 0
        self.null_ids, self.bad_dims, self.non_numeric = _Problems(), _Problems(), _Problems()
        self.non_finite, self.zero = _Problems(), _Problems()

    def add(self, ids: np.ndarray, block: np.ndarray | None, lengths: np.ndarray | None = None) -> None:
        """Take ``ids`` (m,) and ``block`` (m, d) numbers; ``lengths`` (m,) flags rows of other lengths."""
        ids = np.asarray(ids, dtype=object)
        m = len(ids)
        null = pd.isna(ids) | (ids == "")
        if null.any():
            self.null_ids.add([str(self.n + i) for i in np.flatnonzero(null)], int(null.sum()))
        if lengths is not None and (lengths != self.dims).any():
            bad = np.flatnonzero(lengths != self.dims)
            self.bad_dims.add([f"{ids[i]!r} ({lengths[i]})" for i in bad[:5]], len(bad))
            block = None
        if block is None:
            dest = np.zeros((m, self.dims), np.float32) if self.array is None else None
        else:
            dest = np.empty((m, self.dims), np.float32) if self.array is None else self.array[self.n:self.n + m]
            with np.errstate(over="ignore", invalid="ignore"):
                dest[...] = block
            bad = ~np.isfinite(dest).all(axis=1)
            if bad.any():
                self.non_finite.add([repr(i) for i in ids[bad][:5]], int(bad.sum()))
            zero = ~dest.any(axis=1)
            if zero.any():
                self.zero.add([repr(i) for i in ids[zero][:5]], int(zero.sum()))
        if dest is not None and self.array is None:
            self.blocks.append(dest)
        self.ids.append(ids)
        self.n += m
        if self.progress:
            self.progress(self.n, max(self.n, self.total_hint or 0))

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids (n,) object of str, vectors (n, d) float32); raises on the first kind of bad row."""
        w = self.where
        if self.null_ids.count:
            raise SchemaError(f"{w} has {_n(self.null_ids.count, 'row')} with a null or empty id "
                              f"(row numbers, 0-based: {', '.join(self.null_ids.examples)})")
        if self.bad_dims.count:
            raise EmbeddingError(
                f"inconsistent dims in {w}: expected {self.dims} values per vector (as in the first "
                f"rows) but {_n(self.bad_dims.count, 'row')} differ, e.g. {', '.join(self.bad_dims.examples)}")
        if self.non_numeric.count:
            raise EmbeddingError(f"{w} has {_n(self.non_numeric.count, 'non-numeric value')}, e.g. "
                                 f"{'; '.join(self.non_numeric.examples)}")
        if self.non_finite.count:
            raise EmbeddingError(f"{w} has {_n(self.non_finite.count, 'vector')} with NaN or Inf (or values "
                                 f"beyond float32 range): ids {', '.join(self.non_finite.examples)}")
        if self.zero.count:
            raise EmbeddingError(f"{w} has {_n(self.zero.count, 'all-zero vector')} (no direction to "
                                 f"compare): ids {', '.join(self.zero.examples)}; drop those rows")
        if self.n == 0:
            raise EmbeddingError(f"{w} has no vectors")
        ids = np.concatenate(self.ids)
        vectors = self.array[: self.n] if self.array is not None else np.concatenate(self.blocks)
        return ids, vectors


# ---- readers ----------------------------------------------------------------------
def _numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _arrow_ids(col: pa.Array) -> np.ndarray:
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        col = pc.cast(col, pa.string())
    return col.to_numpy(zero_copy_only=False)


def _read_parquet(path: Path, where: str, id_col: str, progress: ProgressFn | None) -> _Collector:
    try:
        # buffered, not pre-buffered: decode a row group piece by piece, not whole in memory
        pf = pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)
    except (*_ARROW_ERRORS, OSError) as err:
        raise InputError(f"cannot read {where} as Parquet: {err}") from err
    schema = pf.schema_arrow
    if id_col not in schema.names:
        raise SchemaError(f"{where} has no id column {id_col!r}; columns: {format_list(schema.names, 12)}; "
                          "pass --id-col (id_col=...)")
    others = [f for f in schema if f.name != id_col and not f.name.startswith("__index_level_")]
    lists = [f for f in others if _is_list(f.type)]
    total = pf.metadata.num_rows
    if len(lists) > 1:
        raise SchemaError(f"{where} has {len(lists)} list columns ({format_list([f.name for f in lists])}); "
                          "keep only the id column and one vector column")
    if not lists:
        bad = [f"{f.name} ({f.type})" for f in others if not _numeric(f.type)]
        if bad:
            raise EmbeddingError(f"{where} has non-numeric columns besides the id: {format_list(bad)}; "
                                 "give one list column or one numeric column per dimension")
        names = [id_col, *(f.name for f in others)]
        out = _Collector(where, len(others), total, progress)
        for batch in pf.iter_batches(batch_size=_chunk_rows(len(others)), columns=names):
            block = np.column_stack([c.to_numpy(zero_copy_only=False) for c in batch.columns[1:]])
            out.add(_arrow_ids(batch.column(0)), block)
        return out
    vec = lists[0]
    if not _numeric(vec.type.value_type):
        raise EmbeddingError(f"column {vec.name!r} of {where} holds non-numeric values "
                             f"({vec.type}); vectors must be lists of numbers")
    if len(others) > 1:
        log.info("%s: using list column %r; ignoring %s", where, vec.name,
                 format_list([f.name for f in others if f is not vec]))
    dims = vec.type.list_size if pa.types.is_fixed_size_list(vec.type) else None
    out = None
    batch_rows = _chunk_rows(dims) if dims else 16_384
    for batch in pf.iter_batches(batch_size=batch_rows, columns=[id_col, vec.name]):
        arr = batch.column(1)
        lengths = pc.list_value_length(arr).fill_null(0).to_numpy(zero_copy_only=False)
        if out is None:
            if dims is None:
                sizes, counts = np.unique(lengths[lengths > 0], return_counts=True)
                if not len(sizes):
                    raise EmbeddingError(f"column {vec.name!r} of {where} has no values in its first "
                                         f"{len(arr):,} rows (null or empty lists)")
                dims = int(sizes[np.argmax(counts)])
            out = _Collector(where, dims, total, progress)
        block = None
        if (lengths == dims).all():
            block = arr.flatten().to_numpy(zero_copy_only=False).reshape(len(arr), dims)
        out.add(_arrow_ids(batch.column(0)), block, lengths)
        del arr, block, batch
        pa.default_memory_pool().release_unused()  # hand decoded pages back between chunks
    if out is None:
        raise EmbeddingError(f"{where} has no rows")
    return out


def _read_ids_file(path: Path, id_col: str) -> np.ndarray:
    """Ids (n,) object of str from a ``.npy`` of strings, ``.txt`` or ``.csv`` file."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise NotFoundError(f"ids file {str(path)!r} does not exist")
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
            if arr.ndim != 1 or arr.dtype.kind not in "USiu":
                raise InputError(f"ids file {str(path)!r} must be a 1-D array of strings, got "
                                 f"{arr.dtype} of shape {arr.shape}")
            return (np.char.decode(arr, "utf-8") if arr.dtype.kind == "S" else arr).astype(str).astype(object)
        if suffix == ".txt":
            lines = path.read_text(encoding="utf-8").split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            return np.asarray([line.removesuffix("\r") for line in lines], dtype=object)
        if suffix == ".csv":
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
            return df[id_col if id_col in df.columns else df.columns[0]].to_numpy(dtype=object)
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(f"cannot read ids from {str(path)!r}: {err}") from err
    raise InputError(f"unknown ids file type {suffix!r} for {str(path)!r}; use .npy, .txt or .csv")


def _read_npy(path: Path, where: str, ids_file: str | Path | None, id_col: str,
              progress: ProgressFn | None) -> _Collector:
    if ids_file is None:
        found = [path.with_name(path.stem + s) for s in _IDS_SUFFIXES]
        found = [p for p in found if p.is_file()]
        if not found:
            raise InputError(f"no ids file next to {where} (looked for {', '.join(path.stem + s for s in _IDS_SUFFIXES)}); "
                             "pass --ids-file (ids_file=...)")
        ids_path = found[0]
    else:
        ids_path = Path(ids_file).expanduser()
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as err:
        raise EmbeddingError(f"{where} holds non-numeric values (it must be a numeric array saved "
                             f"without pickle): {err}") from err
    except OSError as err:
        raise InputError(f"cannot read {where} as .npy: {err}") from err
    if arr.dtype.kind not in "iuf":
        raise EmbeddingError(f"{where} holds non-numeric values ({arr.dtype}); vectors must be numbers")
    if arr.ndim != 2:
        raise EmbeddingError(f"{where} has shape {arr.shape}; expected (rows, dims)")
    ids = _read_ids_file(ids_path, id_col)
    if len(ids) != arr.shape[0]:
        raise EmbeddingError(f"{str(ids_path)!r} has {len(ids):,} ids but {where} has {arr.shape[0]:,} vectors")
    out = _Collector(where, arr.shape[1], arr.shape[0], progress)
    step = _chunk_rows(arr.shape[1])
    for start in range(0, arr.shape[0], step):
        out.add(ids[start:start + step], arr[start:start + step])
    return out


def _read_csv(path: Path, where: str, id_col: str, progress: ProgressFn | None) -> _Collector:
    try:
        columns = [str(c) for c in pd.read_csv(path, nrows=0).columns]
        with open(path, "rb") as fh:
            lines = sum(buf.count(b"\n") for buf in iter(lambda: fh.read(1 << 22), b""))
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(f"cannot read {where} as CSV: {err}") from err
    if id_col in columns:
        idc = id_col
    elif id_col == "id" and columns:
        idc = columns[0]
    else:
        raise SchemaError(f"{where} has no id column {id_col!r}; columns: {format_list(columns, 12)}")
    dims = [c for c in columns if c != idc]
    out = _Collector(where, len(dims), None, progress, total_hint=max(lines - 1, 0))
    try:
        reader = pd.read_csv(path, chunksize=_chunk_rows(len(dims)), dtype={idc: str},
                             keep_default_na=False, na_values={c: _NA for c in dims})
        for chunk in reader:
            values = chunk[dims]
            for col in [c for c in dims if not pd.api.types.is_numeric_dtype(values[c].dtype)]:
                num = pd.to_numeric(values[col], errors="coerce")
                bad = np.flatnonzero(num.isna().to_numpy() & values[col].notna().to_numpy())
                out.non_numeric.add([f"column {col!r}, id {chunk[idc].iloc[i]!r}: {values[col].iloc[i]!r}"
                                     for i in bad[:5]], len(bad))
                values = values.assign(**{col: num})
            out.add(chunk[idc].to_numpy(dtype=object), values.to_numpy(dtype=np.float64))
    except (ValueError, pd.errors.ParserError) as err:
        raise InputError(f"cannot read {where} as CSV: {err}") from err
    return out


# ---- import / export ----------------------------------------------------------------
def _match_dataset(ds: Dataset, ids: np.ndarray, vectors: np.ndarray, skip_unknown: bool,
                   where: str) -> tuple[np.ndarray, np.ndarray, int, list[str]]:
    """Check ids against the dataset; returns (ids, vectors, skipped, modalities)."""
    index = pd.Index(ids)
    dups = index[index.duplicated()].unique()
    if len(dups):
        raise SchemaError(f"{where} has {_n(len(dups), 'duplicate id')}, e.g. "
                          f"{format_list(dups.tolist())}; ids must be unique")
    rows = pq.read_table(ds.rows_path, columns=["id", "modality"])
    ds_ids = pd.Index(rows.column("id").to_numpy(zero_copy_only=False))
    pos = ds_ids.get_indexer(index)
    unknown = pos < 0
    skipped = int(unknown.sum())
    if skipped == len(ids):
        raise EmbeddingError(f"none of the {len(ids):,} ids in {where} are rows of dataset {ds.name!r} "
                             f"(file ids: {format_list(ids[:3])}; dataset ids: {format_list(ds_ids[:3])}); "
                             "nothing to import — check --id-col")
    if skipped and not skip_unknown:
        raise EmbeddingError(f"{skipped:,} of {len(ids):,} ids in {where} are not rows of dataset "
                             f"{ds.name!r}: {format_list(ids[unknown])}; pass --skip-unknown "
                             "(skip_unknown=True) to drop them")
    if skipped:  # compact in place, in order: every kept row moves to a position <= its own
        keep = np.flatnonzero(~unknown)
        step = _chunk_rows(vectors.shape[1])
        for start in range(0, len(keep), step):
            vectors[start:start + len(keep[start:start + step])] = vectors[keep[start:start + step]]
        ids, vectors, pos = ids[keep], vectors[: len(keep)], pos[keep]
    modality = rows.column("modality").to_numpy(zero_copy_only=False)
    return ids, vectors, skipped, sorted(str(m) for m in pd.unique(modality[pos]))


def import_embeddings(ds: Dataset, source: str | Path, name: str, *, format: str | None = None,
                      ids_file: str | Path | None = None, id_col: str = "id", replace: bool = False,
                      skip_unknown: bool = False, index_kind: str = "exact",
                      progress: ProgressFn | None = None) -> ImportReport:
    """Import vectors from ``source`` (Parquet, NPY + ids, CSV) as embedding ``name`` of ``ds``.

    ``format`` defaults to the file's extension. Rows of the dataset without a vector
    are allowed (see ``EmbeddingInfo.coverage``). Every check runs before anything is
    written. Raises AlreadyExistsError (name taken, unless ``replace``), NotFoundError
    (missing file), InputError (unknown format, unreadable file, no ids file),
    SchemaError (missing id column, null or duplicate ids) and EmbeddingError
    (inconsistent or > MAX_DIMS dims, non-numeric, NaN/Inf, all-zero vectors, ids not in
    the dataset unless ``skip_unknown``, nothing left). ``progress(done, total)`` per chunk.
    ``index_kind`` defaults to "exact" so a large import is searchable in seconds; an HNSW
    graph (minutes to build at 1M rows) is then built with ``rebuild_index`` / ``catalog index``.
    """
    resolve_kind(index_kind, 0)
    check_name(name, "embedding")
    if name in ds.embedding_names() and not replace:
        raise AlreadyExistsError(f"embedding {name!r} already exists in {ds.name!r}; pass --replace to overwrite it")
    path = Path(source).expanduser()
    fmt = _format_of(path, format)
    if path.is_dir():
        raise InputError(f"{str(path)!r} is a folder; give the vectors file")
    if not path.is_file():
        raise NotFoundError(f"embedding file {str(path)!r} does not exist")
    if ids_file is not None and fmt != "npy":
        raise InputError(f"an ids file only goes with .npy vectors; {str(path)!r} is {fmt} with its own id column")
    where = repr(str(path))
    if fmt == "parquet":
        collector = _read_parquet(path, where, id_col, progress)
    elif fmt == "npy":
        collector = _read_npy(path, where, ids_file, id_col, progress)
    else:
        collector = _read_csv(path, where, id_col, progress)
    ids, vectors = collector.finish()
    ids, vectors, skipped, modalities = _match_dataset(ds, ids, vectors, skip_unknown, where)
    vectors = normalise_rows(vectors, in_place=True)  # so write_embedding needs no copy
    meta = {"encoder": None, "source": "imported", "modalities": modalities, "imported_from": path.name}
    info = write_embedding(ds, name, ids, vectors, meta, replace=replace, index_kind=index_kind)
    report = ImportReport(info, skipped, max(info.dataset_rows - info.rows, 0))
    log.info("%s", report.summary())
    return report


def export_embeddings(ds: Dataset, name: str | None, out: str | Path, *, format: str | None = None) -> list[Path]:
    """Write embedding ``name`` (None → the default) to ``out``; returns the files written.

    Format from ``format`` or ``out``'s extension: ``.parquet`` (columns id, vector as
    list<float32>), ``.npy`` (+ ``<stem>.ids.npy`` of strings), ``.csv`` (id, d0..d{n-1},
    9 significant digits: exact for float32). Each file is written atomically.
    Raises NotFoundError (no such embedding), InputError (unknown format, ``out`` a folder).
    """
    emb = load_embedding(ds, name)
    out = Path(out).expanduser()
    fmt = _format_of(out, format)
    if out.is_dir():
        raise InputError(f"{str(out)!r} is a folder; give a file name ending in .{fmt}")
    ids, vectors = emb.ids.astype(str), emb.vectors
    step = _chunk_rows(vectors.shape[1])
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
