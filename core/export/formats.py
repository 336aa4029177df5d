"""The bytes of each export format: JSON-native cell values (:func:`_plain`), JSON lines,
Labelbox-style NDJSON data rows and Label Studio tasks (:func:`label_studio_tasks`).

:data:`EXPORT_FORMATS` names the formats :func:`core.export.export_rows` writes and
:data:`EXPORT_SUFFIXES` the file name suffix of each (``label-studio`` files are ``.json``).
"""

from __future__ import annotations

import itertools
import json
import math
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from core._shared import CORE_COLUMNS
from core.errors import InputError, SchemaError

EXPORT_FORMATS = ("csv", "jsonl", "ndjson", "label-studio")
EXPORT_SUFFIXES = {"csv": ".csv", "jsonl": ".jsonl", "ndjson": ".ndjson", "label-studio": ".json"}
# Label Studio serves files under LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT at this URL.
LOCAL_FILES_URL = "/data/local-files/?d="
# The model version of the label pre-annotations (pick it in the project's prelabeling settings).
LABEL_STUDIO_MODEL_VERSION = "catalog"


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


def _jsonl_bytes(records: list[dict]) -> bytes:
    encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
    lines = [encode(r) for r in records]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _table_records(table: pd.DataFrame) -> list[dict]:
    columns = [str(c) for c in table.columns]
    values = zip(*(table[c].tolist() for c in table.columns))
    return [dict(zip(columns, map(_plain, row))) for row in values]


def _row_fields(rows: pd.DataFrame, media_root: str | Path | None):
    """Per-row columns the record writers walk: (images, texts, labels, is_image, root,
    meta_cols, meta) where ``meta`` yields each row's metadata values in ``meta_cols`` order."""
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
    return images, texts, labels, is_image, root, meta_cols, meta


def _ndjson_records(rows: pd.DataFrame, media_root: str | Path | None) -> list[dict]:
    """Labelbox-style data rows: global_key, row_data, media_type, metadata_fields, label."""
    images, texts, labels, is_image, root, meta_cols, meta = _row_fields(rows, media_root)
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


# ---- Label Studio ------------------------------------------------------------------------
def check_image_url_prefix(prefix: str | None) -> None:
    """InputError unless ``prefix`` is None or a URL prefix an image path can be appended
    to: non-empty, ending in ``/`` or ``=``, and not ``file:`` (browsers do not load
    ``file://`` images inside the Label Studio page)."""
    if prefix is None:
        return
    if not isinstance(prefix, str) or not prefix.strip():
        raise InputError(f"image URL prefix {prefix!r} is empty; give one such as "
                         "'http://localhost:8081/' or leave it out for Label Studio local files")
    if prefix.strip().lower().startswith("file:"):
        raise InputError(f"image URL prefix {prefix!r} will not load: browsers block file:// "
                         "images in Label Studio; serve the media folder over http(s) or leave "
                         f"the prefix out for Label Studio local files ({LOCAL_FILES_URL}...)")
    if not prefix.endswith(("/", "=")):
        raise InputError(f"image URL prefix {prefix!r} must end with '/' or '=' (the image "
                         "path relative to the media root is appended to it)")


def _image_url(rid: str, image: Any, root: Path | None, prefix: str | None) -> str:
    rel = _plain(image)
    if rel is None:
        raise SchemaError(f"image row {rid!r} has no image path")
    path = Path(rel)
    if path.is_absolute():
        if root is None:
            raise InputError(f"image {rel!r} of row {rid!r} is absolute; exporting it as "
                             "label-studio needs media_root (the folder image paths are under)")
        try:
            path = path.relative_to(root)
        except ValueError:
            raise InputError(f"image {rel!r} of row {rid!r} is not under the media root "
                             f"{str(root)!r}; Label Studio image URLs are relative to it") from None
    if prefix is not None:
        return prefix + quote(path.as_posix())
    if root is None:
        raise InputError("exporting image rows as label-studio needs media_root (the folder "
                         f"image paths are relative to) or an image URL prefix, e.g. for {rel!r}")
    under_parent = f"{root.name}/{path.as_posix()}" if root.name else path.as_posix()
    return LOCAL_FILES_URL + quote(under_parent)


def label_studio_tasks(rows: pd.DataFrame, media_root: str | Path | None = None,
                       image_url_prefix: str | None = None) -> list[dict]:
    """One Label Studio task per row of ``rows``, in order: what ``label-studio`` exports
    write (a JSON array of these), in the JSON format Label Studio imports.

    Each task is ``{"data": {...}}`` plus, for labeled rows, ``"predictions"``:

    - ``data.id``: the row id (a string); ``data.label``: the current (edited) label as a
      string, or null; then every user metadata column as a JSON-native value (NaN and
      other nulls -> null).
    - Image rows: ``data.image`` is a URL (and ``data.text`` the caption, if any).

      * ``image_url_prefix`` None (default): Label Studio local files,
        ``/data/local-files/?d=<media root folder name>/<image path>``, i.e. the path
        relative to the media root's *parent*. Start Label Studio with
        ``LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true`` and
        ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=<parent of the media root>``, and add a
        *Local files* source storage to the project whose absolute path is the media root
        (Label Studio serves a file only under a storage path; no need to sync it).
      * ``image_url_prefix`` given: the prefix + the image path relative to the media
        root, e.g. ``http://localhost:8081/`` for ``python -m http.server 8081`` run in the
        media root, or ``s3://bucket/photos/`` with that bucket connected as storage. It
        must end with ``/`` or ``=``; ``file://`` is refused (browsers do not load
        ``file://`` images inside the Label Studio page).

      Paths are percent-encoded (``/`` kept). Absolute image paths must be under the media
      root (InputError otherwise).
    - Text rows: ``data.text`` is the text.
    - ``predictions`` (labeled rows only): one pre-annotation, ``{"model_version":
      "catalog", "result": [{"from_name": "label", "to_name": "image" | "text", "type":
      "choices", "value": {"choices": [label]}}]}``: a prediction, not an annotation, so
      imported tasks still count as unlabeled and the label shows preselected for review.

    The labeling config this assumes: a ``Choices`` control named ``label`` on an object
    named ``image`` (or ``text``), with one ``Choice`` per label value (a label without a
    matching ``Choice`` is not shown). Paste into Settings > Labeling Interface > Code::

        <View>
          <Image name="image" value="$image"/>
          <Choices name="label" toName="image" choice="single" showInline="true">
            <Choice value="cat"/>
            <Choice value="dog"/>
          </Choices>
        </View>

    For text rows use ``<Text name="text" value="$text"/>`` and ``toName="text"``. One
    project takes one modality (its config names ``$image`` or ``$text``), so export image
    and text rows separately (e.g. ``--where "modality = image"``). For the labels to show
    preselected, keep predictions as pre-labels in the project settings (Annotation >
    "Use predictions to prelabel tasks", model version ``catalog``).

    Raises InputError (a bad ``image_url_prefix``; image rows without a media root and
    without a prefix; an absolute image path outside the media root) and SchemaError (an
    image row without an image path).
    """
    check_image_url_prefix(image_url_prefix)
    images, texts, labels, is_image, root, meta_cols, meta = _row_fields(rows, media_root)
    tasks = []
    for rid, image, text, label, image_row, values in zip(
            rows["id"].astype(str), images, texts, labels, is_image, meta):
        data: dict[str, Any] = {"id": rid}
        text = _plain(text)
        if image_row:
            data["image"] = _image_url(rid, image, root, image_url_prefix)
            if text is not None:
                data["text"] = text
        else:
            data["text"] = text
        label = _plain(label)
        data["label"] = None if label is None else str(label)
        data.update(zip(meta_cols, map(_plain, values)))
        task: dict[str, Any] = {"data": data}
        if label is not None:
            choice = {"from_name": "label", "to_name": "image" if image_row else "text",
                      "type": "choices", "value": {"choices": [str(label)]}}
            task["predictions"] = [{"model_version": LABEL_STUDIO_MODEL_VERSION,
                                    "result": [choice]}]
        tasks.append(task)
    return tasks


def _json_array_bytes(records: list[dict]) -> bytes:
    """A JSON array with one record a line (valid JSON, readable, diff-friendly)."""
    encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
    return ("[\n" + ",\n".join(encode(r) for r in records) + "\n]\n").encode("utf-8")


__all__ = ["EXPORT_FORMATS", "EXPORT_SUFFIXES", "LABEL_STUDIO_MODEL_VERSION", "LOCAL_FILES_URL",
           "check_image_url_prefix", "label_studio_tasks"]
