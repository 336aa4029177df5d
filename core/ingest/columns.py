"""Which table columns become a row's id, text, image and label: the defaults and the one
rule (:func:`pick_columns`) that both :func:`~core.ingest.pipeline.ingest_table` and
:func:`~core.ingest.sources.preview_source` use, so a preview guesses exactly what an
ingest would pick."""

from __future__ import annotations

from pathlib import Path

from core.errors import SchemaError, format_list

ID_COL_DEFAULTS = ("id",)
TEXT_COL_DEFAULTS = ("text",)
IMAGE_COL_DEFAULTS = ("image", "image_path", "file", "filepath", "path")
LABEL_COL_DEFAULTS = ("label",)
#: role -> column names tried in order when no column is given for that role
COLUMN_DEFAULTS = {"id": ID_COL_DEFAULTS, "text": TEXT_COL_DEFAULTS,
                   "image": IMAGE_COL_DEFAULTS, "label": LABEL_COL_DEFAULTS}
#: every default name (read verbatim as strings by the table readers)
DEFAULT_COLUMN_NAMES = tuple(c for names in COLUMN_DEFAULTS.values() for c in names)


def pick_columns(present: list[str], src: Path, *, id_col: str | None = None,
                 text_col: str | None = None, image_col: str | None = None,
                 label_col: str | None = None) -> dict[str, str | None]:
    """``{"id", "text", "image", "label"} -> column or None``: each given column (which must
    be in ``present``, else SchemaError naming ``src`` and the columns present), else the
    first of :data:`COLUMN_DEFAULTS` for that role found in ``present``."""
    given = {"id": id_col, "text": text_col, "image": image_col, "label": label_col}
    out: dict[str, str | None] = {}
    for role, defaults in COLUMN_DEFAULTS.items():
        col = given[role]
        if col is not None and col not in present:
            raise SchemaError(f"{role} column {col!r} not found in {str(src)!r}; columns "
                              f"present: {format_list(present, 30)}")
        out[role] = col if col is not None else next((c for c in defaults if c in present), None)
    return out


__all__ = ["COLUMN_DEFAULTS", "DEFAULT_COLUMN_NAMES", "ID_COL_DEFAULTS", "IMAGE_COL_DEFAULTS",
           "LABEL_COL_DEFAULTS", "TEXT_COL_DEFAULTS", "pick_columns"]
