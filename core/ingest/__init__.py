"""Ingest: folders of images and tables (CSV, Parquet, JSONL) into a dataset's rows.

- :mod:`core.ingest.pipeline`: :func:`ingest` (format detection), :func:`ingest_folder`,
  :func:`ingest_table`, :class:`IngestReport`; checks and the atomic write of ``rows.parquet``.
- :mod:`core.ingest.readers`: reading tables, captions and folder trees.
- :mod:`core.ingest.images`: image paths under the media root and image checks.
"""

from __future__ import annotations

from core.ingest.pipeline import (
    FORMATS,
    IMAGE_COL_DEFAULTS,
    IngestReport,
    detect_format,
    ingest,
    ingest_folder,
    ingest_table,
)

__all__ = ["FORMATS", "IMAGE_COL_DEFAULTS", "IngestReport", "detect_format", "ingest",
           "ingest_folder", "ingest_table"]
