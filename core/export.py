"""Export selected rows for labeling: CSV, JSONL (re-ingestable) or NDJSON (labeling tools).

:func:`rows_for_export` resolves what to export (a slice, a tag, ids, an ids file or a
filter) into rows with edited labels and a recipe; :func:`export_rows` writes them.

Each export writes the file atomically and a sidecar ``<out>.recipe.json`` holding the
recipe of the selection, the row count, the format, the time and the hash of the ids,
so an exported file can always be traced back to how it was chosen.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import atomic
from core._shared import CORE_COLUMNS, ids_hash, now_iso, read_ids_file
from core.errors import InputError, NotFoundError, SchemaError, format_list
from core.filters import RowFilter
from core.labels import effective_rows
from core.workspace import Workspace

log = logging.getLogger(__name__)

EXPORT_FORMATS = ("csv", "jsonl", "ndjson")
# Not written to csv/jsonl: ingest derives ``modality`` from the image column (a column
# named "modality" would come back as metadata "modality_source") and sets ``ingest_issue``.
_DERIVED = ("modality", "ingest_issue")


@dataclass(frozen=True)
class ExportReport:
    """Where an export went: the data file, its recipe sidecar, the row count, the format."""

    path: Path
    recipe_path: Path
    rows: int
    format: str

    def to_json(self) -> dict:
        return {"path": str(self.path), "recipe_path": str(self.recipe_path),
                "rows": self.rows, "format": self.format}


def recipe_path_for(out: str | Path) -> Path:
    """The sidecar of an export file: ``<out>.recipe.json``."""
    out = Path(out)
    return out.with_name(out.name + ".recipe.json")


# ---- what to export ----------------------------------------------------------------------
EXPORT_SOURCES = ("slice", "tag", "ids", "ids_file", "where")


@dataclass(frozen=True, eq=False)
class ExportSelection:
    """Rows chosen for export, in the source's order, with edited labels, and the recipe
    of how they were chosen (what :func:`export_rows` writes to the sidecar)."""

    rows: pd.DataFrame
    recipe: dict

    @property
    def ids(self) -> list[str]:
        return self.rows["id"].astype(str).tolist()



def _filter_ids(ws: Workspace, dataset: str, where: str | RowFilter,
                embedding: str | None) -> tuple[list[str], dict]:
    from core.rows import filter_ids

    ids, flt, used = filter_ids(ws, dataset, where, embedding)
    recipe = {"method": "filter", "filter": flt.to_json(), "description": flt.describe(),
              "embedding": used}
    return ids, recipe


def rows_for_export(
    ws: Workspace,
    dataset: str,
    *,
    slice_name: str | None = None,
    tag: str | None = None,
    ids: Sequence[str] | None = None,
    ids_file: str | Path | None = None,
    where: str | RowFilter | None = None,
    embedding: str | None = None,
) -> ExportSelection:
    """The rows of exactly one source, with edited labels, in the source's order: a slice
    (slice order; recipe = the slice's recipe + ``slice``, ``slice_created``), a tag
    (tagging order), ``ids``, an ``ids_file`` (one id per line, UTF-8, BOM dropped) or a
    filter ``where`` (a ``--where`` expression or a :class:`RowFilter`; dataset order;
    ``embedding`` gives the quality columns a filter may use). The Slices page download
    and ``catalog export`` both call it.

    Raises InputError (none or several sources, naming the choices; a missing or
    unreadable ids file, naming it; a malformed ``where``; a quality filter without an
    embedding), NotFoundError (unknown slice or tag; ids not in the dataset, listing the
    first few) and SchemaError (a filter on a column the rows do not have).
    """
    given = {"slice": slice_name, "tag": tag, "ids": ids, "ids_file": ids_file, "where": where}
    chosen = [k for k, v in given.items() if v is not None]
    if len(chosen) != 1:
        got = f"got {', '.join(chosen)}" if chosen else "got none"
        raise InputError(f"say what to export with exactly one of {', '.join(EXPORT_SOURCES)}; {got}")
    source = chosen[0]
    if source == "slice":
        sl = ws.store.get_slice(dataset, slice_name)
        wanted, recipe = list(sl.ids), {**sl.recipe, "slice": sl.name, "slice_created": sl.created}
        what = f"slice {sl.name!r}"
    elif source == "tag":
        wanted, recipe = ws.store.rows_with_tag(dataset, tag), {"method": "tag", "tag": tag}
        what = f"tag {tag!r}"
    elif source == "ids":
        if isinstance(ids, str):
            raise InputError(f"ids must be a list of ids, not the string {ids!r}")
        wanted, recipe, what = [str(i) for i in ids], {"method": "ids"}, "the given ids"
    elif source == "ids_file":
        wanted = read_ids_file(ids_file)
        recipe = {"method": "ids-file", "file": str(Path(ids_file).expanduser().resolve())}
        what = f"ids file {str(ids_file)!r}"
    else:
        wanted, recipe = _filter_ids(ws, dataset, where, embedding)
        what = "the filter"
    rows = effective_rows(ws, dataset)
    pos = pd.Index(rows["id"].astype(str)).get_indexer(wanted)
    if (pos < 0).any():
        missing = [rid for rid, p in zip(wanted, pos) if p < 0]
        raise NotFoundError(f"{len(missing)} id(s) of {what} not in dataset {dataset!r}: "
                            f"{format_list(missing)}")
    return ExportSelection(rows.iloc[pos].reset_index(drop=True), recipe)




def _plain(value: Any) -> Any:
    """``value`` as a JSON-native object: None for nulls and non-finite floats."""
    kind = type(value)
    if kind is str or kind is int or kind is bool:  # fast path: most cells
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (str, bool)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, (datetime, date)):
        return None if pd.isna(value) else value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _check_out(out: str | Path) -> Path:
    path = Path(out).expanduser()
    parent = path.parent
    if not parent.is_dir():
        raise InputError(f"cannot write {str(path)!r}: the folder {str(parent)!r} does not exist")
    if path.is_dir():
        raise InputError(f"cannot write {str(path)!r}: it is a folder; give a file name")
    if not os.access(parent, os.W_OK):
        raise InputError(f"cannot write {str(path)!r}: the folder {str(parent)!r} is not writable")
    return path


def _check_rows(rows: pd.DataFrame) -> list[str]:
    if "id" not in rows.columns:
        raise SchemaError(f"the rows table has no 'id' column; columns: "
                          f"{format_list([str(c) for c in rows.columns], 30)}")
    if len(rows) == 0:
        raise InputError("nothing to export: the selection has no rows")
    ids = rows["id"].astype(str).tolist()
    index = pd.Index(ids)
    if index.has_duplicates:
        dups = index[index.duplicated()].unique().tolist()
        raise SchemaError(f"{len(dups)} ids appear more than once in the export: {format_list(dups)}")
    return ids


def _jsonl_bytes(records: list[dict]) -> bytes:
    encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
    lines = [encode(r) for r in records]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _table_records(table: pd.DataFrame) -> list[dict]:
    columns = [str(c) for c in table.columns]
    values = zip(*(table[c].tolist() for c in table.columns))
    return [dict(zip(columns, map(_plain, row))) for row in values]


def _ndjson_records(rows: pd.DataFrame, media_root: str | Path | None) -> list[dict]:
    """Labelbox-style data rows: global_key, row_data, media_type, metadata_fields, label."""
    n = len(rows)

    def column(name: str) -> list:
        return rows[name].tolist() if name in rows.columns else [None] * n

    images, texts, labels = column("image"), column("text"), column("label")
    if "modality" in rows.columns:
        is_image = [m == "image" for m in column("modality")]
    else:
        is_image = [_plain(v) is not None for v in images]
    root = Path(media_root).expanduser().resolve() if media_root is not None else None
    meta_cols = [str(c) for c in rows.columns if c not in CORE_COLUMNS]
    meta = zip(*(rows[c].tolist() for c in meta_cols)) if meta_cols else itertools.repeat(())
    records = []
    for rid, image, text, label, image_row, values in zip(
            rows["id"].astype(str), images, texts, labels, is_image, meta):
        if image_row:
            rel = _plain(image)
            if rel is None:
                raise SchemaError(f"image row {rid!r} has no image path")
            path = Path(rel)
            if not path.is_absolute():
                if root is None:
                    raise InputError("exporting image rows as ndjson needs media_root (the "
                                     f"folder image paths are relative to), e.g. for {rel!r}")
                path = root / path
            row_data, media_type = str(path), "IMAGE"
        else:
            row_data, media_type = _plain(text), "TEXT"
        fields = [{"name": col, "value": v} for col, v in zip(meta_cols, map(_plain, values))
                  if v is not None]
        records.append({"global_key": rid, "row_data": row_data, "media_type": media_type,
                        "metadata_fields": fields, "label": _plain(label)})
    return records


def export_rows(
    rows: pd.DataFrame,
    out: str | Path,
    format: str,
    *,
    recipe: dict | None = None,
    media_root: str | Path | None = None,
) -> ExportReport:
    """Write ``rows`` (the rows table, labels already effective) to ``out`` in their order.

    - ``csv`` / ``jsonl``: every column except ``modality`` and ``ingest_issue`` (both
      re-derived by ingest); ``core.ingest.ingest_table(ws, out, name,
      image_root=media_root)`` gives back the same ids, texts, labels, image paths and
      metadata. Image paths stay relative to the media root. JSONL keeps types exactly;
      CSV re-reads numbers as numbers (so text metadata like "007" comes back as 7).
    - ``ndjson``: one labeling-tool data row per line: ``global_key`` (id), ``row_data``
      (absolute image path ``media_root / image`` or the text), ``media_type``
      (``IMAGE``/``TEXT``), ``metadata_fields`` (non-null user metadata) and ``label``.

    Also writes ``<out>.recipe.json`` (recipe, rows, format, exported, ids_hash). Both
    writes are atomic. Raises InputError (unknown format, no rows, missing or unwritable
    folder, image rows without ``media_root`` for ndjson) and SchemaError (no ``id``
    column, repeated ids).
    """
    if format not in EXPORT_FORMATS:
        raise InputError(f"unknown export format {format!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    ids = _check_rows(rows)
    path = _check_out(out)
    sidecar = recipe_path_for(path)
    if format == "ndjson":
        data = _jsonl_bytes(_ndjson_records(rows, media_root))
    else:
        table = rows.drop(columns=[c for c in _DERIVED if c in rows.columns])
        if format == "jsonl":
            data = _jsonl_bytes(_table_records(table))
        else:
            data = table.to_csv(index=False, lineterminator="\n").encode("utf-8")
    info = {"recipe": dict(recipe or {}), "rows": len(ids), "format": format,
            "exported": now_iso(), "ids_hash": ids_hash(ids)}
    try:
        atomic.write_bytes(path, data)
        atomic.write_json(sidecar, info)
    except OSError as err:
        raise InputError(f"cannot write {str(path)!r}: {err.strerror or err}") from err
    log.info("exported %d rows as %s to %s", len(ids), format, path)
    return ExportReport(path=path, recipe_path=sidecar, rows=len(ids), format=format)


__all__ = ["EXPORT_FORMATS", "EXPORT_SOURCES", "ExportReport", "ExportSelection", "export_rows",
           "recipe_path_for", "rows_for_export"]
