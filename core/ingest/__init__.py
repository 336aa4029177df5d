"""Ingest: folders of images and tables (CSV, Parquet, JSONL) into a dataset's rows.

- :mod:`core.ingest.pipeline`: :func:`ingest` (format detection), :func:`ingest_folder`,
  :func:`ingest_table` (streamed: a checking pass, then a writing pass).
- :mod:`core.ingest.columns`: the default column names and the rule that picks id, text,
  image and label columns (shared by ingest and the preview).
- :mod:`core.ingest.tables`: Parquet, CSV and JSONL tables read in record batches, with
  column types settled over the whole file.
- :mod:`core.ingest.convert`: one batch into the rows table's id, text, image and label.
- :mod:`core.ingest.checks`: the first pass (null and duplicate ids, rows without text).
- :mod:`core.ingest.writer`: the second pass and the atomic write of ``rows.parquet``.
- :mod:`core.ingest.update`: ``ingest(..., update=True)``: a stored dataset brought up to
  date by id, vectors of unchanged rows kept; :mod:`core.ingest.fingerprints`: the per-row
  content fingerprints (``row_content.parquet``) it compares.
- :mod:`core.ingest.report`: :class:`IngestReport` and the counts behind it.
- :mod:`core.ingest.readers`: the first rows of a table (previews), JSONL lines,
  captions and folder trees.
- :mod:`core.ingest.images`: image paths under the media root and image checks.
- :mod:`core.ingest.sources`: sources from the browser: server paths inside the allowed
  roots (``$CATALOG_DATA_ROOTS``), uploaded tables, uploaded zips of images.
- :mod:`core.ingest.preview`: :func:`preview_source`, the first rows and guessed
  :class:`ColumnMapping` of a source.
"""

from __future__ import annotations

from core.ingest.columns import COLUMN_DEFAULTS, IMAGE_COL_DEFAULTS
from core.ingest.pipeline import (
    DEFAULT_BATCH_ROWS,
    FORMATS,
    detect_format,
    ingest,
    ingest_folder,
    ingest_table,
)
from core.ingest.preview import ColumnMapping, SourcePreview, preview_source
from core.ingest.report import IngestReport, UpdateCounts
from core.ingest.sources import (
    DATA_ROOTS_ENV,
    DEFAULT_MAX_UPLOAD_BYTES,
    UPLOAD_SUFFIXES,
    ZIP_MAX_MEMBERS,
    ZIP_MAX_RATIO,
    ZIP_MAX_TOTAL_BYTES,
    allowed_roots,
    check_source_path,
    extract_image_zip,
    save_upload,
    uploads_dir,
)

__all__ = ["COLUMN_DEFAULTS", "DATA_ROOTS_ENV", "DEFAULT_BATCH_ROWS", "DEFAULT_MAX_UPLOAD_BYTES",
           "FORMATS",
           "IMAGE_COL_DEFAULTS", "UPLOAD_SUFFIXES", "ZIP_MAX_MEMBERS", "ZIP_MAX_RATIO",
           "ZIP_MAX_TOTAL_BYTES", "ColumnMapping", "IngestReport", "SourcePreview", "UpdateCounts",
           "allowed_roots", "check_source_path", "detect_format", "extract_image_zip", "ingest",
           "ingest_folder", "ingest_table", "preview_source", "save_upload", "uploads_dir"]
