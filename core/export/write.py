"""Write exports: :func:`export_rows` writes rows as csv, jsonl, ndjson or label-studio,
atomically, with the ``<out>.recipe.json`` sidecar (:func:`recipe_path_for`)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core import atomic
from core._shared import ids_hash, now_iso
from core.errors import InputError, SchemaError, format_list
from core.export.formats import (
    EXPORT_FORMATS,
    _json_array_bytes,
    _jsonl_bytes,
    _ndjson_records,
    _table_records,
    check_image_url_prefix,
    label_studio_tasks,
)

log = logging.getLogger(__name__)

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


def export_rows(
    rows: pd.DataFrame,
    out: str | Path,
    format: str,
    *,
    recipe: dict | None = None,
    media_root: str | Path | None = None,
    image_url_prefix: str | None = None,
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
    - ``label-studio`` (a ``.json`` file): a JSON array of Label Studio tasks, one per row
      (:func:`core.export.formats.label_studio_tasks` has the shape, the labeling config
      it assumes and how to serve the images): ``data`` holds ``id``, ``image`` (a URL)
      and/or ``text``, ``label`` and the user metadata (NaN -> null); labeled rows get the
      label as a ``choices`` prediction (``from_name`` ``label``) so it shows preselected.
      Image URLs: by default Label Studio local files,
      ``/data/local-files/?d=<media root folder name>/<image path>`` (start Label Studio
      with ``LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true`` and
      ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT`` = the media root's parent, and add a
      local files storage for the media root); with ``image_url_prefix`` (ending in ``/``
      or ``=``, not ``file:``), the prefix + the image path relative to the media root.

    Also writes ``<out>.recipe.json`` (recipe, rows, format, exported, ids_hash). Both
    writes are atomic. Raises InputError (unknown format, no rows, missing or unwritable
    folder, image rows without ``media_root`` for ndjson or for label-studio without
    ``image_url_prefix``, a bad ``image_url_prefix`` or one given for another format, an
    absolute image path outside the media root) and SchemaError (no ``id`` column,
    repeated ids).
    """
    if format not in EXPORT_FORMATS:
        raise InputError(f"unknown export format {format!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    if image_url_prefix is not None and format != "label-studio":
        raise InputError(f"an image URL prefix applies only to the label-studio format, not {format}")
    check_image_url_prefix(image_url_prefix)
    ids = _check_rows(rows)
    path = _check_out(out)
    sidecar = recipe_path_for(path)
    if format == "ndjson":
        data = _jsonl_bytes(_ndjson_records(rows, media_root))
    elif format == "label-studio":
        data = _json_array_bytes(label_studio_tasks(rows, media_root, image_url_prefix))
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


__all__ = ["ExportReport", "export_rows", "recipe_path_for"]
