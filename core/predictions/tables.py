"""Prediction columns read from a table (CSV/TSV, Parquet, JSONL at a path or URI), by pyarrow.

:class:`PredictionColumns` names them: ``pred_col`` a predicted label, ``score_col`` its
confidence, ``probs_col`` per-class probabilities, either one list column (its values in
the order of the sorted class names, or of ``classes``) or, given as ``PREFIX*``, one column
per class named ``PREFIX<class>`` (``p_*`` reads ``p_cat``, ``p_dog``; ``*`` alone: every
column named by a label). Ids are read as text the way ingest reads them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core._shared import as_text
from core.errors import InputError, SchemaError, format_list
from core.locations import Location, parse_location

ID_DEFAULT = "id"
PRED_DEFAULTS = ("prediction", "predicted", "pred", "predicted_label")
SCORE_DEFAULTS = ("score", "confidence", "prediction_score", "pred_score")
PROBS_DEFAULTS = ("probs", "probabilities", "pred_probs")
_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet",
             ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


@dataclass(frozen=True)
class PredictionColumns:
    """Which columns of a table hold predictions (None: not given)."""

    pred_col: str | None = None
    score_col: str | None = None
    probs_col: str | None = None

    @property
    def given(self) -> bool:
        return any((self.pred_col, self.score_col, self.probs_col))


@dataclass(frozen=True)
class PredictionTable:
    """What :func:`read_prediction_table` read: (n,) ids as text (None where blank), and the
    probabilities (n, C) with their class names, and/or predicted labels and scores."""

    ids: np.ndarray
    probs: np.ndarray | None
    classes: tuple[str, ...] | None
    predicted: list | None
    score: np.ndarray | None
    columns: tuple[str, ...]  # the source columns holding predictions
    labels: list | None = None  # the ``label_col`` values, when asked for


def table_format(loc: Location) -> str:
    fmt = _SUFFIXES.get(loc.suffix.lower())
    if fmt is None:
        raise InputError(f"cannot tell the format of {loc.uri!r} from its extension; predictions are "
                         "read from .csv, .tsv, .parquet or .jsonl")
    return fmt


def _schema(loc: Location, fmt: str) -> list[str]:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if fmt == "parquet":
        with loc.open_file() as fh:
            return list(pq.read_schema(fh).names)
    if fmt == "csv":
        with loc.open_stream() as fh:
            return list(pacsv.open_csv(fh, parse_options=_csv_parse(loc)).schema.names)
    return list(_read_json(loc).column_names)


def _csv_parse(loc: Location):
    import pyarrow.csv as pacsv

    return pacsv.ParseOptions(delimiter="\t" if loc.suffix.lower() == ".tsv" else ",")


def _read_json(loc: Location) -> pa.Table:
    import pyarrow.json as pajson

    with loc.open_stream() as fh:
        return pajson.read_json(fh)


def _read(loc: Location, fmt: str, columns: list[str], text_cols: set[str]) -> pa.Table:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        if fmt == "parquet":
            with loc.open_file() as fh:
                return pq.read_table(fh, columns=columns)
        if fmt == "csv":
            convert = pacsv.ConvertOptions(include_columns=columns,
                                           column_types={c: pa.string() for c in text_cols})
            with loc.open_stream() as fh:
                return pacsv.read_csv(fh, parse_options=_csv_parse(loc), convert_options=convert)
        return _read_json(loc).select(columns)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise InputError(f"cannot read predictions from {loc.uri!r}: {exc}") from None


def _pick(present: list[str], given: str | None, defaults: Sequence[str], what: str) -> str | None:
    if given is not None:
        if given not in present:
            raise SchemaError(f"no {what} column {given!r} in the table; columns: {format_list(present, 30)}")
        return given
    return next((c for c in defaults if c in present), None)


def _class_columns(present: list[str], pattern: str, label_classes: Sequence[str] | None,
                   skip: set[str]) -> dict[str, str]:
    """class name -> column for ``PREFIX*`` (``*`` alone: columns named by a label)."""
    prefix = pattern[:-1]
    found = {c[len(prefix):]: c for c in present
             if c not in skip and fnmatch.fnmatchcase(c, pattern) and len(c) > len(prefix)}
    if prefix == "":
        found = {k: v for k, v in found.items() if label_classes is not None and k in set(label_classes)}
    if not found:
        raise SchemaError(f"no probability columns match {pattern!r}; columns: {format_list(present, 30)}")
    return found


def _numbers(table: pa.Table, column: str, what: str) -> np.ndarray:
    values = table.column(column)
    if not (pa.types.is_floating(values.type) or pa.types.is_integer(values.type) or pa.types.is_null(values.type)):
        raise InputError(f"{what} column {column!r} holds {values.type}, not numbers")
    return values.cast(pa.float64()).to_numpy(zero_copy_only=False)


def _list_probs(table: pa.Table, column: str, classes: Sequence[str] | None, ids: np.ndarray
                ) -> np.ndarray:
    values = table.column(column).combine_chunks()
    if not (pa.types.is_list(values.type) or pa.types.is_large_list(values.type)
            or pa.types.is_fixed_size_list(values.type)):
        raise InputError(f"probability column {column!r} holds {values.type}, not a list of numbers; "
                         "in a CSV give one column per class (--probs-col 'PREFIX*')")
    lengths = pc.fill_null(pc.list_value_length(values), 0).to_numpy(zero_copy_only=False)
    want = len(classes) if classes is not None else int(lengths.max(initial=0))
    bad = lengths != want
    if bad.any():
        raise InputError(f"probability lists must hold {want} values (one per class); "
                         f"{int(bad.sum()):,} row(s) do not: {format_list(ids[bad].tolist())}")
    flat = pc.list_flatten(values).cast(pa.float64()).to_numpy(zero_copy_only=False)
    return flat.reshape(len(values), want)


def read_prediction_table(source: str | Location, columns: PredictionColumns, *, id_col: str | None = None,
                          label_classes: Sequence[str] | None = None, ids: np.ndarray | None = None,
                          fmt: str | None = None, label_col: str | None = None) -> PredictionTable:
    """The prediction columns of the table at ``source``. ``id_col`` (default ``id``) holds
    the row ids; ``ids`` given instead (ingest of a table without ids) are used as they are.
    A list ``probs_col`` is in the order of the sorted ``label_classes``. Columns not given
    are looked for under their usual names (``prediction``, ``score``, ``probs``...).
    ``label_col``: also read this column (ingest: the labels the classes are checked against).

    Raises InputError (unknown format, unreadable file, non-numeric values, list lengths)
    and SchemaError (a named column missing; no prediction column at all).
    """
    loc = source if isinstance(source, Location) else parse_location(source)
    loc.require_file("predictions file")
    fmt = fmt or table_format(loc)
    present = _schema(loc, fmt)
    idc = None if ids is not None else _pick(present, id_col, (ID_DEFAULT,), "id")
    if ids is None and idc is None:
        raise SchemaError(f"the predictions table has no {ID_DEFAULT!r} column; pass the id column "
                          f"(--id-col); columns: {format_list(present, 30)}")
    pred = _pick(present, columns.pred_col, () if columns.given else PRED_DEFAULTS, "predicted-label")
    score = _pick(present, columns.score_col, () if columns.given else SCORE_DEFAULTS, "score")
    probs_col, per_class = columns.probs_col, None
    if probs_col is not None and probs_col.endswith("*"):
        per_class = _class_columns(present, probs_col, label_classes, {c for c in (idc, pred, score) if c})
    else:
        probs_col = _pick(present, probs_col, () if columns.given else PROBS_DEFAULTS, "probability")
    if pred is None and probs_col is None:
        raise SchemaError(f"no prediction columns in the table: give a predicted label (--pred-col) "
                          f"or probabilities (--probs-col); columns: {format_list(present, 30)}")
    wanted = [c for c in (idc, pred, score) if c]
    wanted += list(per_class.values()) if per_class else [probs_col] if probs_col else []
    extra = [label_col] if label_col and label_col in present else []
    table = _read(loc, fmt, list(dict.fromkeys(wanted + extra)), {c for c in (idc, pred, *extra) if c})
    row_ids = ids if ids is not None else np.asarray(as_text(table.column(idc)).to_pylist(), dtype=object)
    if len(row_ids) != table.num_rows:
        raise SchemaError(f"the predictions table has {table.num_rows:,} rows, the dataset {len(row_ids):,}")
    probs, classes = None, None
    if per_class:
        classes = tuple(per_class)
        probs = np.column_stack([_numbers(table, per_class[c], "probability") for c in classes])
    elif probs_col:
        classes = tuple(sorted(label_classes)) if label_classes is not None else None
        probs = _list_probs(table, probs_col, classes, row_ids)
        if classes is None:
            classes = tuple(str(i) for i in range(probs.shape[1]))
    predicted = None
    if pred:
        predicted = as_text(table.column(pred)).to_pylist()
    return PredictionTable(ids=row_ids, probs=probs, classes=classes, predicted=predicted,
                           score=_numbers(table, score, "score") if score else None,
                           columns=tuple(c for c in wanted if c != idc),
                           labels=as_text(table.column(label_col)).to_pylist() if extra else None)
