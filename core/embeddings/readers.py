"""Readers of user vector files for :func:`core.embeddings.io.import_embeddings`, streamed.

:func:`open_vectors` reads a file's shape and all of its ids ((n,) Arrow strings: a few
bytes a row), refusing null ids; :meth:`VectorFile.blocks` then yields the vectors as
(m, d) float32 blocks in file order, about 32 MB at a time, records the bad rows of each
block (inconsistent dims, e.g. a ragged last batch; non-numeric values; CSV rows with missing
values; NaN/Inf; all zeros) and, after the last block, raises a typed error naming the
first kind found and its ids. No more than one block of vectors is held at a time.
Files are read through :mod:`core.locations`: a local path or a URI, the same code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core._shared import ProgressFn, utf8_error
from core.errors import (
    EmbeddingError,
    InputError,
    NotFoundError,
    SchemaError,
    format_list,
)
from core.locations import Location, parse_location

log = logging.getLogger(__name__)

MAX_DIMS = 4096
_IDS_SUFFIXES = (".ids.npy", ".ids.txt", ".ids.csv")
_CHUNK_VALUES = 1 << 23  # values per chunk read or written (32 MB of float32)
_NA = ["", "nan", "NaN", "NA", "N/A", "null", "NULL", "None"]
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)
_PEEK_ROWS = 16_384  # rows of a list column read to learn its dims


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


class _BlockChecks:
    """The bad rows of a file's blocks, and the error naming the first kind of them."""

    def __init__(self, where: str, dims: int) -> None:
        self.where, self.dims = where, dims
        self.bad_dims, self.non_numeric, self.missing = _Problems(), _Problems(), _Problems()
        self.non_finite, self.zero = _Problems(), _Problems()

    def take(self, ids: pa.Array, block: np.ndarray | None,
             lengths: np.ndarray | None = None) -> np.ndarray:
        """``block`` (m, d) numbers as float32 (zeros if None or of other ``lengths``; ``block``
        itself, maybe read-only, when already C-order float32), recording its bad rows by the
        ``ids`` (m,) of the block."""
        m = len(ids)
        if lengths is not None and (lengths != self.dims).any():
            bad = np.flatnonzero(lengths != self.dims)
            names = ids.take(pa.array(bad[:5])).to_pylist()
            self.bad_dims.add([f"{i!r} ({lengths[b]})" for i, b in zip(names, bad)], len(bad))
            block = None
        if block is None:
            return np.zeros((m, self.dims), np.float32)
        if block.dtype == np.float32 and block.flags.c_contiguous:
            dest = block  # as read (maybe a read-only view of Arrow's buffer): no copy
        else:
            dest = np.empty((m, self.dims), np.float32)
            with np.errstate(over="ignore", invalid="ignore"):
                dest[...] = block
        non_finite = ~np.isfinite(dest).all(axis=1)
        for problems, bad in ((self.non_finite, non_finite), (self.zero, ~dest.any(axis=1))):
            if bad.any():
                rows = np.flatnonzero(bad)
                problems.add([repr(i) for i in ids.take(pa.array(rows[:5])).to_pylist()], len(rows))
        if non_finite.any():  # refused at the end; zeros meanwhile normalise quietly
            dest = dest if dest.flags.writeable else dest.copy()
            dest[non_finite] = 0
        return dest

    def raise_first(self) -> None:
        """Raise EmbeddingError for the first kind of bad row found, if any."""
        w = self.where
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


RawBlocks = Callable[[_BlockChecks], Iterator[tuple[np.ndarray | None, np.ndarray | None, int]]]


@dataclass(frozen=True)
class VectorFile:
    """A vectors file opened by :func:`open_vectors`: ``ids`` (n,) large_string, ``dims``."""

    where: str
    ids: pa.Array
    dims: int
    _raw: RawBlocks  # yields (block (m, d) or None, lengths (m,) or None, m) in file order

    def blocks(self, progress: ProgressFn | None = None) -> Iterator[np.ndarray]:
        """(m, d) float32 blocks covering every row in file order (a bad block as zeros);
        ``progress(done, n)`` per block. After the last one, raises EmbeddingError for the
        first kind of bad row (see the module docstring)."""
        checks = _BlockChecks(self.where, self.dims)
        start, n = 0, len(self.ids)
        for block, lengths, m in self._raw(checks):
            yield checks.take(self.ids.slice(start, m), block, lengths)
            start += m
            if progress:
                progress(start, n)
        checks.raise_first()


def _numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _arrow_ids(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``col`` as one large_string array (integers as their digits)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return pc.cast(col, pa.large_string())


def _checked(where: str, ids: pa.Array, dims: int, raw: RawBlocks) -> VectorFile:
    """The VectorFile, once its dims and ids pass (SchemaError names null ids' rows)."""
    if dims == 0:
        raise EmbeddingError(f"{where} has no vector column besides the id")
    if dims > MAX_DIMS:
        raise EmbeddingError(f"{where} has {dims:,} dims; at most {MAX_DIMS:,} are supported")
    null = pc.fill_null(pc.equal(ids, ""), True).to_numpy(zero_copy_only=False)
    if null.any():
        rows = np.flatnonzero(null)
        raise SchemaError(f"{where} has {plural(len(rows), 'row')} with a null or empty id "
                          f"(row numbers, 0-based: {', '.join(map(str, rows[:5]))})")
    if len(ids) == 0:
        raise EmbeddingError(f"{where} has no vectors")
    return VectorFile(where, ids, dims, raw)


def _open_parquet(loc: Location, where: str, id_col: str) -> VectorFile:
    try:
        # buffered, not pre-buffered: decode a row group piece by piece, not whole in memory
        pf = pq.ParquetFile(loc.path, filesystem=loc.fs, buffer_size=1 << 20, pre_buffer=False)
        schema = pf.schema_arrow
        if id_col not in schema.names:
            raise SchemaError(f"{where} has no id column {id_col!r}; columns: {format_list(schema.names, 12)}; "
                              "pass --id-col (id_col=...)")
        ids = _arrow_ids(pf.read(columns=[id_col]).column(0))
    except (*_ARROW_ERRORS, OSError) as err:
        raise InputError(f"cannot read {where} as Parquet: {err}") from err
    others = [f for f in schema if f.name != id_col and not f.name.startswith("__index_level_")]
    lists = [f for f in others if _is_list(f.type)]
    if len(lists) > 1:
        raise SchemaError(f"{where} has {len(lists)} list columns ({format_list([f.name for f in lists])}); "
                          "keep only the id column and one vector column")
    if not lists:
        bad = [f"{f.name} ({f.type})" for f in others if not _numeric(f.type)]
        if bad:
            raise EmbeddingError(f"{where} has non-numeric columns besides the id: {format_list(bad)}; "
                                 "give one list column or one numeric column per dimension")
        names = [f.name for f in others]

        def wide(checks: _BlockChecks):
            for batch in pf.iter_batches(batch_size=chunk_rows(len(names)), columns=names):
                yield np.column_stack([c.to_numpy(zero_copy_only=False) for c in batch.columns]), None, batch.num_rows

        return _checked(where, ids, len(names), wide)
    vec = lists[0]
    if not _numeric(vec.type.value_type):
        raise EmbeddingError(f"column {vec.name!r} of {where} holds non-numeric values "
                             f"({vec.type}); vectors must be lists of numbers")
    if len(others) > 1:
        log.info("%s: using list column %r; ignoring %s", where, vec.name,
                 format_list([f.name for f in others if f is not vec]))
    dims = vec.type.list_size if pa.types.is_fixed_size_list(vec.type) else None
    if dims is None:
        first = next(pf.iter_batches(batch_size=_PEEK_ROWS, columns=[vec.name]), None)
        if first is None:
            raise EmbeddingError(f"{where} has no rows")
        lengths = pc.list_value_length(first.column(0)).fill_null(0).to_numpy(zero_copy_only=False)
        sizes, counts = np.unique(lengths[lengths > 0], return_counts=True)
        if not len(sizes):
            raise EmbeddingError(f"column {vec.name!r} of {where} has no values in its first "
                                 f"{len(lengths):,} rows (null or empty lists)")
        dims = int(sizes[np.argmax(counts)])

    def listed(checks: _BlockChecks):
        for batch in pf.iter_batches(batch_size=chunk_rows(dims), columns=[vec.name]):
            arr = batch.column(0)
            lengths = pc.list_value_length(arr).fill_null(0).to_numpy(zero_copy_only=False)
            block = None
            if (lengths == dims).all():
                block = arr.flatten().to_numpy(zero_copy_only=False).reshape(len(arr), dims)
            yield block, lengths, len(arr)
            del arr, block, batch
            pa.default_memory_pool().release_unused()  # hand decoded pages back between chunks

    return _checked(where, ids, dims, listed)


def _read_ids_file(path: Location, id_col: str) -> np.ndarray:
    """Ids (n,) object of str from a ``.npy`` of strings, ``.txt`` or ``.csv`` file."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise NotFoundError(f"ids file {str(path)!r} does not exist")
    try:
        if suffix == ".npy":
            with path.readable(stream=False) as src:
                arr = np.load(src, allow_pickle=False)
            if arr.ndim != 1 or arr.dtype.kind not in "USiu":
                raise InputError(f"ids file {str(path)!r} must be a 1-D array of strings, got "
                                 f"{arr.dtype} of shape {arr.shape}")
            return (np.char.decode(arr, "utf-8") if arr.dtype.kind == "S" else arr).astype(str).astype(object)
        if suffix == ".txt":
            data = path.read_bytes()
            if (bad := utf8_error(path, data, "ids file")) is not None:
                raise bad
            lines = data.decode("utf-8-sig").split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            return np.asarray([line.removesuffix("\r") for line in lines], dtype=object)
        if suffix == ".csv":
            with path.readable() as src:
                df = pd.read_csv(src, dtype=str, keep_default_na=False)
            return df[id_col if id_col in df.columns else df.columns[0]].to_numpy(dtype=object)
    except InputError:
        raise  # already names the file and the problem
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(f"cannot read ids from {str(path)!r}: {err}") from err
    raise InputError(f"unknown ids file type {suffix!r} for {str(path)!r}; use .npy, .txt or .csv")


def _npy_blocks(loc: Location, where: str) -> tuple[tuple[int, ...], np.dtype, Callable]:
    """(shape, dtype, blocks(step)) of an .npy: memory-mapped if local, else read front to back."""
    if loc.local is not None:
        arr = np.load(loc.local, mmap_mode="r", allow_pickle=False)
        return arr.shape, arr.dtype, lambda step: (arr[i:i + step] for i in range(0, len(arr), step))

    def header(fh) -> tuple[tuple[int, ...], bool, np.dtype]:
        fmt = np.lib.format
        return (fmt.read_array_header_1_0 if fmt.read_magic(fh) == (1, 0) else fmt.read_array_header_2_0)(fh)

    with loc.open_stream() as fh:
        shape, fortran, dtype = header(fh)
    if fortran and len(shape) > 1:
        raise InputError(f"{where} is a Fortran-order .npy; at a URI only C order streams (np.ascontiguousarray)")

    def blocks(step: int) -> Iterator[np.ndarray]:
        with loc.open_stream() as fh:
            header(fh)
            for start in range(0, shape[0], step):
                size = min(step, shape[0] - start) * shape[1] * dtype.itemsize
                if len(data := fh.read(size)) < size:
                    raise InputError(f"{where} is truncated: shorter than its header's shape {shape}")
                yield np.frombuffer(data, dtype).reshape(-1, shape[1])

    return shape, dtype, blocks


def _open_npy(path: Location, where: str, ids_file: str | Path | None, id_col: str) -> VectorFile:
    if ids_file is None:
        found = [p for p in (path.sibling(path.stem + s) for s in _IDS_SUFFIXES) if p.is_file()]
        if not found:
            raise InputError(f"no ids file next to {where} (looked for {', '.join(path.stem + s for s in _IDS_SUFFIXES)}); "
                             "pass --ids-file (ids_file=...)")
        ids_path = found[0]
    else:
        ids_path = parse_location(ids_file)
    try:
        shape, dtype, blocks = _npy_blocks(path, where)
    except ValueError as err:
        raise EmbeddingError(f"{where} holds non-numeric values (it must be a numeric array saved "
                             f"without pickle): {err}") from err
    except OSError as err:
        raise InputError(f"cannot read {where} as .npy: {err}") from err
    if dtype.kind not in "iuf":
        raise EmbeddingError(f"{where} holds non-numeric values ({dtype}); vectors must be numbers")
    if len(shape) != 2:
        raise EmbeddingError(f"{where} has shape {shape}; expected (rows, dims)")
    ids = _read_ids_file(ids_path, id_col)
    if len(ids) != shape[0]:
        raise EmbeddingError(f"{str(ids_path)!r} has {len(ids):,} ids but {where} has {shape[0]:,} vectors")
    step = chunk_rows(shape[1])

    def rows(checks: _BlockChecks):
        for block in blocks(step):
            yield block, None, len(block)

    return _checked(where, pa.array(ids, pa.large_string()), shape[1], rows)


def _open_csv(path: Location, where: str, id_col: str) -> VectorFile:
    try:
        with path.readable() as src:
            columns = [str(c) for c in pd.read_csv(src, nrows=0).columns]
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(f"cannot read {where} as CSV: {err}") from err
    if id_col in columns:
        idc = id_col
    elif id_col == "id" and columns:
        idc = columns[0]
    else:
        raise SchemaError(f"{where} has no id column {id_col!r}; columns: {format_list(columns, 12)}")
    dims = [c for c in columns if c != idc]
    step = chunk_rows(len(dims))
    try:  # the ids first (one column), then the vectors (every other) with the same parser
        with path.readable() as src:
            parts = [pa.array(chunk[idc].astype(object).where(chunk[idc].notna(), None).to_numpy(),
                              pa.large_string())
                     for chunk in pd.read_csv(src, usecols=[idc], dtype=str, keep_default_na=False,
                                              chunksize=1 << 20)]
    except (ValueError, pd.errors.ParserError) as err:
        raise InputError(f"cannot read {where} as CSV: {err}") from err
    ids = pa.concat_arrays(parts) if parts else pa.array([], pa.large_string())

    def rows(checks: _BlockChecks):
        try:
            with path.readable() as src:
                for chunk in pd.read_csv(src, chunksize=step, dtype={idc: str}, keep_default_na=False,
                                         na_values={c: _NA for c in dims}):
                    values = chunk[dims]
                    for col in [c for c in dims if not pd.api.types.is_numeric_dtype(values[c].dtype)]:
                        num = pd.to_numeric(values[col], errors="coerce")
                        bad = np.flatnonzero(num.isna().to_numpy() & values[col].notna().to_numpy())
                        checks.non_numeric.add([f"column {col!r}, id {chunk[idc].iloc[i]!r}: {values[col].iloc[i]!r}"
                                                for i in bad[:5]], len(bad))
                        values = values.assign(**{col: num})
                    missing = np.flatnonzero(values.isna().to_numpy().any(axis=1))
                    if len(missing):
                        checks.missing.add([repr(chunk[idc].iloc[i]) for i in missing[:5]], len(missing))
                    yield values.to_numpy(dtype=np.float64), None, len(chunk)
        except (ValueError, pd.errors.ParserError) as err:
            raise InputError(f"cannot read {where} as CSV: {err}") from err

    return _checked(where, ids, len(dims), rows)


def open_vectors(path: Location | Path | str, fmt: str, *, ids_file: str | Path | None = None,
                 id_col: str = "id") -> VectorFile:
    """Open ``path`` (a Location, local path or URI; ``ids_file`` too) as ``fmt`` (one of
    parquet, npy, csv): its ids and dims, checked.

    Raises NotFoundError (missing ids file), InputError (unreadable file, no ids file),
    SchemaError (missing id column, null ids) and EmbeddingError (no or too many dims,
    ids and vectors of different counts, no rows); bad values are found by
    :meth:`VectorFile.blocks`.
    """
    path = path if isinstance(path, Location) else parse_location(path)
    where = repr(str(path))
    if fmt == "parquet":
        return _open_parquet(path, where, id_col)
    if fmt == "npy":
        return _open_npy(path, where, ids_file, id_col)
    return _open_csv(path, where, id_col)


__all__ = ["MAX_DIMS", "ProgressFn", "VectorFile", "chunk_rows", "open_vectors", "plural"]
