"""Tables read in record batches for :func:`core.ingest.pipeline.ingest_table`.

- Parquet: ``pyarrow.parquet.ParquetFile.iter_batches``, the file's column types as they are
  (pandas index columns dropped; :attr:`TableReader.pandas_metadata` keeps pandas' dtypes).
- CSV/TSV: ``pyarrow.csv.open_csv`` with every field read as verbatim text. ``raw`` columns
  (id, text, image and label candidates) stay verbatim; every other column is typed as pandas
  types a whole file: the narrowest of int64, double, bool and string that all its values
  convert to, pandas' NA tokens (``NA``, ``null``, empty...) as nulls, double if no value.
- JSONL: one JSON object a line (blank lines skipped), parsed in chunks of lines; each key
  a column (in order of first appearance) with the Arrow type of its values promoted over
  the whole file (int64 with double: double), text (:func:`json_text`) where they disagree.

A reader yields ``pa.Table`` batches of at most ``batch_rows`` rows. CSV types are settled by
the first :meth:`TableReader.scan`, JSONL columns and types by :meth:`TableReader.prepare`;
every batch of :meth:`TableReader.batches` then has the same schema. Errors are typed and
name the file (and the line, byte or column). A table is read through its
:class:`~core.locations.Location`: a local path or an object-store URI, the same code.
"""

from __future__ import annotations

import codecs
import itertools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
import pyarrow.parquet as pq

from core.errors import InputError, SchemaError
from core.ingest.readers import jsonl_records
from core.locations import Location, parse_location

_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)
#: pandas' default NA tokens (``pandas.read_csv`` ``na_values``)
PANDAS_NA = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
             "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")
_BOOL_TOKENS = pa.array(["True", "TRUE", "true", "False", "FALSE", "false"])
_NA_TOKENS = pa.array(PANDAS_NA)
#: types a CSV column may widen to from its current type, narrowest first
_WIDER = {pa.null(): (pa.int64(), pa.float64(), pa.bool_(), pa.string()),
          pa.int64(): (pa.float64(), pa.string()), pa.float64(): (pa.string(),),
          pa.bool_(): (pa.string(),)}
_CSV_BLOCK = 8 << 20          # bytes parsed at a time (grown when one row is longer)
_CSV_MAX_BLOCK = 1 << 30


class TableReader:
    """One table file read in batches (see the module docstring). ``columns`` (source order)
    and ``total_rows`` (None until known) describe it; ``passes`` is how many times an
    ingest reads it (for progress). ``source``: a Location, or a path / URI to parse."""

    passes = 2

    def __init__(self, source: Location | Path | str, raw_cols: set[str], batch_rows: int) -> None:
        self.source = source if isinstance(source, Location) else parse_location(source)
        self.raw_cols, self.batch_rows = raw_cols, batch_rows
        self.where = repr(str(self.source))
        self.columns: list[str] = []
        self.total_rows: int | None = None
        self.pandas_metadata: dict | None = None

    def prepare(self, on_rows: Callable[[int], None]) -> None:
        """Learn what a full read needs before the first :meth:`scan` (JSONL: a pass)."""

    def scan(self, columns: Sequence[str]) -> Iterator[pa.Table]:
        """The first pass: batches of ``columns`` only (CSV: every column's type is settled
        on the way). Sets ``total_rows`` when it ends."""
        count = 0
        for batch in self._read(list(columns)):
            count += batch.num_rows
            yield batch
        self.total_rows = count

    def batches(self) -> Iterator[pa.Table]:
        """Every column with its final type, batch by batch."""
        return self._read(None)

    def field(self, name: str) -> pa.Field:
        """The final field of source column ``name``."""
        raise NotImplementedError

    def _read(self, columns: list[str] | None) -> Iterator[pa.Table]:
        raise NotImplementedError


# ---- Parquet ------------------------------------------------------------------------
class ParquetReader(TableReader):
    def __init__(self, source: Location | Path | str, raw_cols: set[str], batch_rows: int) -> None:
        super().__init__(source, raw_cols, batch_rows)
        try:
            # not pre-buffered: pyarrow would keep every column chunk read until the file closes
            self._file = pq.ParquetFile(self.source.path, filesystem=self.source.fs,
                                        pre_buffer=False, buffer_size=1 << 20)
        except (*_ARROW_ERRORS, OSError) as exc:
            raise InputError(f"cannot read {self.where} as Parquet: {exc}") from None
        self._schema = self._file.schema_arrow
        meta = self._schema.pandas_metadata or {}
        index = {c for c in meta.get("index_columns", []) if isinstance(c, str)}
        self.columns = [n for n in self._schema.names if n not in index]
        self.total_rows = self._file.metadata.num_rows
        self.pandas_metadata = meta or None

    def field(self, name: str) -> pa.Field:
        return self._schema.field(name)

    def _read(self, columns: list[str] | None) -> Iterator[pa.Table]:
        try:
            for batch in self._file.iter_batches(batch_size=self.batch_rows,
                                                 columns=columns or self.columns):
                yield pa.Table.from_batches([batch])
        except (*_ARROW_ERRORS, OSError) as exc:
            raise InputError(f"cannot read {self.where} as Parquet: {exc}") from None


# ---- CSV ----------------------------------------------------------------------------
def _mangle(names: list[str]) -> list[str]:
    """Column names made unique as pandas does: a repeated ``a`` becomes ``a.1``, ``a.2``..."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        new = name
        while new in seen:
            seen[name] += 1
            new = f"{name}.{seen[name]}"
        seen.setdefault(name, 0)
        seen[new] = 0
        out.append(new)
    return out


def _fits(values: pa.Array, kind: pa.DataType) -> bool:
    """Whether every value of ``values`` (non-null strings) converts to ``kind``."""
    if kind == pa.string():
        return True
    if kind == pa.bool_():
        return bool(pc.all(pc.is_in(values, value_set=_BOOL_TOKENS)).as_py())
    try:
        pc.cast(values, kind)
    except _ARROW_ERRORS:
        return False
    return True


class CsvReader(TableReader):
    def __init__(self, source: Location | Path | str, raw_cols: set[str], batch_rows: int) -> None:
        super().__init__(source, raw_cols, batch_rows)
        self._delimiter = "\t" if self.source.suffix.lower() == ".tsv" else ","
        self._block = _CSV_BLOCK
        first = next(self._text_batches(header=True), None)
        if first is None:
            raise SchemaError(f"table {self.where} is empty (no header, no rows)")
        if any(pa.types.is_binary(t) for t in first.schema.types):  # bytes that are not UTF-8
            raise utf8_problem(self.source) or InputError(f"file {self.where} is not UTF-8 text")
        self.columns = _mangle([str(v) for v in first.slice(0, 1).to_pylist()[0].values()])
        self._types = {c: pa.string() if c in raw_cols else pa.null() for c in self.columns}
        self._settled = False

    def field(self, name: str) -> pa.Field:
        return pa.field(name, self._types[name])

    def _open(self, width: int | None) -> pv.CSVStreamingReader:
        """Every row (the header too) as verbatim text in columns ``f0``, ``f1``..."""
        read = pv.ReadOptions(block_size=self._block, autogenerate_column_names=True)
        parse = pv.ParseOptions(delimiter=self._delimiter, newlines_in_values=True)
        text = {f"f{i}": pa.string() for i in range(width or 0)}
        convert = pv.ConvertOptions(column_types=text, null_values=[], strings_can_be_null=False,
                                    quoted_strings_can_be_null=False)
        return pv.open_csv(self.source.open_stream(), read_options=read, parse_options=parse,
                           convert_options=convert)

    def _guard(self, step: Callable):
        """``step()`` with pyarrow's errors as typed errors naming the file."""
        try:
            return step()
        except pa.ArrowInvalid as exc:
            raise self._error(exc) from None
        except OSError as exc:
            raise InputError(f"cannot read {self.where}: {exc}") from None

    def _error(self, exc: pa.ArrowInvalid) -> InputError:
        text = str(exc)
        if "Empty CSV file" in text:
            return SchemaError(f"table {self.where} is empty (no header, no rows)")
        if "invalid UTF8" in text:
            return utf8_problem(self.source) or InputError(f"file {self.where} is not UTF-8 text")
        return InputError(f"cannot parse {self.where} as CSV: {text}")

    def _text_batches(self, header: bool = False) -> Iterator[pa.RecordBatch]:
        """The data rows (``header``: the header row alone) as verbatim text, ``batch_rows``
        at a time; a row longer than the parse block restarts the read with a larger block
        (skipping the rows already given)."""
        given = 0
        while True:
            reader = self._guard(lambda: self._open(None if header else len(self.columns)))
            seen = -1  # the header row
            try:
                for batch in reader:
                    if header:
                        yield batch
                        return
                    for start in range(0, batch.num_rows, self.batch_rows):
                        part = batch.slice(start, self.batch_rows)
                        seen += part.num_rows
                        if seen > given:
                            part = part.slice(part.num_rows - (seen - given))
                            given = seen
                            yield pa.RecordBatch.from_arrays(part.columns, names=self.columns)
                return
            except pa.ArrowInvalid as exc:
                if "straddl" not in str(exc) or self._block >= _CSV_MAX_BLOCK:
                    raise self._error(exc) from None
                self._block *= 4
            except OSError as exc:
                raise InputError(f"cannot read {self.where}: {exc}") from None

    def _settle(self, batch: pa.RecordBatch) -> None:
        for name in self.columns:
            kind = self._types[name]
            if name in self.raw_cols or kind == pa.string():
                continue
            values = batch.column(name)
            values = values.filter(pc.invert(pc.is_in(values, value_set=_NA_TOKENS)))
            if len(values) == 0 or (kind != pa.null() and _fits(values, kind)):
                continue
            self._types[name] = next(t for t in _WIDER[kind] if _fits(values, t))

    def _typed(self, batch: pa.RecordBatch) -> pa.Table:
        arrays = []
        for name, values in zip(self.columns, batch.columns):
            kind = self._types[name]
            if name not in self.raw_cols:
                values = pc.if_else(pc.is_in(values, value_set=_NA_TOKENS), None, values)
                values = pc.cast(values, kind)
            arrays.append(values)
        return pa.Table.from_arrays(arrays, names=self.columns)

    def _read(self, columns: list[str] | None) -> Iterator[pa.Table]:
        for batch in self._text_batches():
            if columns is not None:
                if not self._settled:
                    self._settle(batch)
                yield pa.Table.from_batches([batch]).select(columns)
            else:
                yield self._typed(batch)
        if columns is not None and not self._settled:
            self._settled = True
            self._types = {c: pa.float64() if t == pa.null() else t for c, t in self._types.items()}


def utf8_problem(source: Location | Path | str) -> InputError | None:
    """InputError naming the offset, line and value of the first byte of ``source`` (a
    Location, path or URI) that is not UTF-8 (a leading byte-order mark allowed), read in
    chunks; None if it all decodes."""
    loc = source if isinstance(source, Location) else parse_location(source)
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 1
    with loc.open_stream() as fh:
        chunk = fh.read(1 << 22)
        offset = len(codecs.BOM_UTF8) if chunk.startswith(codecs.BOM_UTF8) else 0
        chunk = chunk[offset:]
        while True:
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as err:
                pending = len(err.object) - len(chunk)
                at = offset - pending + err.start
                line = lines + err.object.count(b"\n", 0, err.start)
                return InputError(f"file {str(loc)!r} is not UTF-8 text: byte "
                                  f"0x{err.object[err.start]:02x} at offset {at} (line {line}) "
                                  "cannot be decoded; save it as UTF-8")
            if not chunk:
                return None
            offset += len(chunk)
            lines += chunk.count(b"\n")
            chunk = fh.read(1 << 22)


# ---- JSONL --------------------------------------------------------------------------
def json_text(value) -> str | None:
    """A JSON value as text: None stays None, whole floats lose '.0', bools are True/False."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _inferred(values: list) -> pa.DataType | None:
    """Arrow's type for ``values``, or None when they do not share one (stored as text)."""
    try:
        return pa.array(values).type
    except _ARROW_ERRORS:
        return None


def _promoted(old: pa.DataType | None, new: pa.DataType | None) -> pa.DataType | None:
    if old is None or new is None:
        return None
    try:
        return pa.unify_schemas([pa.schema([("v", old)]), pa.schema([("v", new)])],
                                promote_options="permissive").field("v").type
    except _ARROW_ERRORS:
        return None


class JsonlReader(TableReader):
    passes = 3

    def __init__(self, source: Location | Path | str, raw_cols: set[str], batch_rows: int) -> None:
        super().__init__(source, raw_cols, batch_rows)
        self._types: dict[str, pa.DataType | None] = {}

    def _chunks(self) -> Iterator[list[dict]]:
        records = jsonl_records(self.source)
        while chunk := list(itertools.islice(records, self.batch_rows)):
            yield chunk

    def prepare(self, on_rows: Callable[[int], None]) -> None:
        """Read the whole file once: its keys (in order of first appearance), their types
        and the row count."""
        count = 0
        for chunk in self._chunks():
            keys = dict.fromkeys(k for record in chunk for k in record)
            for key in keys:
                kind = _inferred([record.get(key) for record in chunk])
                self._types[key] = _promoted(self._types[key], kind) if key in self._types else kind
            count += len(chunk)
            on_rows(len(chunk))
        self.columns = list(self._types)
        self.total_rows = count

    def field(self, name: str) -> pa.Field:
        return pa.field(name, self._types[name] or pa.string())

    def _read(self, columns: list[str] | None) -> Iterator[pa.Table]:
        names = columns or self.columns
        for chunk in self._chunks():
            arrays = []
            for name in names:
                values = [record.get(name) for record in chunk]
                kind = self._types[name]
                if kind is None or kind == pa.string():
                    arrays.append(pa.array([json_text(v) for v in values], pa.string()))
                else:
                    arrays.append(pa.array(values, kind))
            yield pa.Table.from_arrays(arrays, names=names)


READERS = {"parquet": ParquetReader, "csv": CsvReader, "jsonl": JsonlReader}


def open_table(source: Location | Path | str, fmt: str, raw_cols: set[str],
               batch_rows: int) -> TableReader:
    """A :class:`TableReader` for ``source`` (a Location, local path or URI) read as ``fmt``
    (parquet, csv or jsonl). Raises InputError (unreadable file, unknown scheme),
    NotFoundError (a missing file), SchemaError (an empty CSV)."""
    return READERS[fmt](source, raw_cols, batch_rows)


__all__ = ["PANDAS_NA", "CsvReader", "JsonlReader", "ParquetReader", "TableReader",
           "json_text", "open_table", "utf8_problem"]
