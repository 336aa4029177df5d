"""Export selected rows for labeling: CSV, JSONL (re-ingestable), NDJSON (Labelbox-style
data rows) or ``label-studio`` (a JSON array of Label Studio tasks).

:func:`rows_for_export` resolves what to export (a slice, a tag, ids, an ids file or a
filter) into rows with edited labels and a recipe; :func:`export_rows` writes them.

Each export writes the file atomically and a sidecar ``<out>.recipe.json`` holding the
recipe of the selection, the row count, the format, the time and the hash of the ids,
so an exported file can always be traced back to how it was chosen.

- :mod:`core.export.selection`: :func:`rows_for_export` and :class:`ExportSelection`.
- :mod:`core.export.write`: :func:`export_rows`, :class:`ExportReport`,
  :func:`recipe_path_for`.
- :mod:`core.export.formats`: the bytes of each format (:data:`EXPORT_FORMATS`,
  :data:`EXPORT_SUFFIXES`), including :func:`label_studio_tasks` (the task shape and the
  Label Studio labeling config it assumes).
"""

from __future__ import annotations

from core.export.formats import (
    EXPORT_FORMATS,
    EXPORT_SUFFIXES,
    LOCAL_FILES_URL,
    check_image_url_prefix,
    label_studio_tasks,
)
from core.export.selection import EXPORT_SOURCES, ExportSelection, rows_for_export
from core.export.write import ExportReport, export_rows, recipe_path_for

# ``core``'s lazy front door maps ``effective_rows`` here.
from core.labels import effective_rows as effective_rows

__all__ = ["EXPORT_FORMATS", "EXPORT_SOURCES", "EXPORT_SUFFIXES", "LOCAL_FILES_URL", "ExportReport",
           "ExportSelection", "check_image_url_prefix", "export_rows", "label_studio_tasks",
           "recipe_path_for", "rows_for_export"]
