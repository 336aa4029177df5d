"""Readers of user vector files for :func:`core.embeddings_io.import_embeddings`.

Formats (``parquet``, ``npy`` + ids file, ``csv``; see :mod:`core.embeddings.io`) are read
in chunks into one (n, d) float32 array by a :class:`_Collector`, which records bad rows
(null ids, inconsistent dims, non-numeric, NaN/Inf, all-zero) and raises a typed error
naming the first kind found once the whole file is read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core._shared import ProgressFn, read_utf8_text
from core.errors import (
    EmbeddingError,
    InputError,
    NotFoundError,
    SchemaError,
    format_list,
)

log = logging.getLogger(__name__)

MAX_DIMS = 4096
_IDS_SUFFIXES = (".ids.npy", ".ids.txt", ".ids.csv")
_CHUNK_VALUES = 1 << 23  # values per chunk read or written (32 MB of float32)
_NA = ["", "nan", "NaN", "NA", "N/A", "null", "NULL", "None"]
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)


def plural(count: int, noun: str) -> str:
    """``plural(1, "row")`` → ``'1 row'``; ``plural(2_000, "row")`` → ``'2,000 rows'``."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def chunk_rows(dims: int) -> int:
    """Rows per chunk read or written for vectors of ``dims`` values (about 32 MB of float32)."""
    return max(256, _CHUNK_VALUES // max(dims, 1))


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
        self.missing = _Problems()  # CSV: empty cells, NA tokens or rows shorter than the header

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
            raise SchemaError(f"{w} has {plural(self.null_ids.count, 'row')} with a null or empty id "
                              f"(row numbers, 0-based: {', '.join(self.null_ids.examples)})")
        if self.bad_dims.count:
            raise EmbeddingError(
                f"inconsistent dims in {w}: expected {self.dims} values per vector (as in the first "
                f"rows) but {plural(self.bad_dims.count, 'row')} differ, e.g. {', '.join(self.bad_dims.examples)}")
        if self.non_numeric.count:
            raise EmbeddingError(f"{w} has {plural(self.non_numeric.count, 'non-numeric value')}, e.g. "
                                 f"{'; '.join(self.non_numeric.examples)}")
        if self.missing.count:
            raise EmbeddingError(f"{w} has {plural(self.missing.count, 'row')} with missing values (empty "
                                 f"cells, NA/NaN, or fewer fields than the header): ids "
                                 f"{', '.join(self.missing.examples)}")
        if self.non_finite.count:
            raise EmbeddingError(f"{w} has {plural(self.non_finite.count, 'vector')} with NaN or Inf (or values "
                                 f"beyond float32 range): ids {', '.join(self.non_finite.examples)}")
        if self.zero.count:
            raise EmbeddingError(f"{w} has {plural(self.zero.count, 'all-zero vector')} (no direction to "
                                 f"compare): ids {', '.join(self.zero.examples)}; drop those rows")
        if self.n == 0:
            raise EmbeddingError(f"{w} has no vectors")
        ids = np.concatenate(self.ids)
        vectors = self.array[: self.n] if self.array is not None else np.concatenate(self.blocks)
        return ids, vectors


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
        for batch in pf.iter_batches(batch_size=chunk_rows(len(others)), columns=names):
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
    batch_rows = chunk_rows(dims) if dims else 16_384
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
            lines = read_utf8_text(path, "ids file").split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            return np.asarray([line.removesuffix("\r") for line in lines], dtype=object)
        if suffix == ".csv":
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
            return df[id_col if id_col in df.columns else df.columns[0]].to_numpy(dtype=object)
    except InputError:
        raise  # already names the file and the problem
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
    step = chunk_rows(arr.shape[1])
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
        reader = pd.read_csv(path, chunksize=chunk_rows(len(dims)), dtype={idc: str},
                             keep_default_na=False, na_values={c: _NA for c in dims})
        for chunk in reader:
            values = chunk[dims]
            for col in [c for c in dims if not pd.api.types.is_numeric_dtype(values[c].dtype)]:
                num = pd.to_numeric(values[col], errors="coerce")
                bad = np.flatnonzero(num.isna().to_numpy() & values[col].notna().to_numpy())
                out.non_numeric.add([f"column {col!r}, id {chunk[idc].iloc[i]!r}: {values[col].iloc[i]!r}"
                                     for i in bad[:5]], len(bad))
                values = values.assign(**{col: num})
            missing = np.flatnonzero(values.isna().to_numpy().any(axis=1))
            if len(missing):
                out.missing.add([repr(chunk[idc].iloc[i]) for i in missing[:5]], len(missing))
            out.add(chunk[idc].to_numpy(dtype=object), values.to_numpy(dtype=np.float64))
    except (ValueError, pd.errors.ParserError) as err:
        raise InputError(f"cannot read {where} as CSV: {err}") from err
    return out


def read_vectors(path: Path, fmt: str, *, ids_file: str | Path | None = None, id_col: str = "id",
                 progress: ProgressFn | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read ``path`` as ``fmt`` (one of parquet, npy, csv): (ids (n,) object of str,
    vectors (n, d) float32, not normalised). ``progress(done, total)`` per chunk.

    Raises NotFoundError (missing ids file), InputError (unreadable file, no ids file),
    SchemaError (missing id column, null ids) and EmbeddingError (bad dims or values).
    """
    where = repr(str(path))
    if fmt == "parquet":
        collector = _read_parquet(path, where, id_col, progress)
    elif fmt == "npy":
        collector = _read_npy(path, where, ids_file, id_col, progress)
    else:
        collector = _read_csv(path, where, id_col, progress)
    return collector.finish()
