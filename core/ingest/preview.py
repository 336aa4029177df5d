"""A cheap look at a source before ingesting it: its first rows, its columns, a row count
when one is cheap, and the column mapping :func:`~core.ingest.ingest` would guess (the same
rule, :func:`~core.ingest.columns.pick_columns`), which the user may then change."""

from __future__ import annotations

import io
import logging
import posixpath
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core._shared import check_positive_int
from core.errors import InputError, MediaError, NotFoundError, SchemaError, format_list
from core.ingest.columns import DEFAULT_COLUMN_NAMES, IMAGE_COL_DEFAULTS, pick_columns
from core.ingest.images import media_module
from core.ingest.pipeline import FORMATS, detect_format
from core.ingest.readers import READERS, read_captions, scan_folder

log = logging.getLogger(__name__)

COUNT_ROWS_MAX_BYTES = 64 * 1024**2  # CSV/JSONL files up to this size get a row count


@dataclass(frozen=True)
class ColumnMapping:
    """Source columns for a row's id, text, image and label (None: none / generated).

    ``fixed`` (folders): the mapping is the folder layout and cannot be changed.
    """

    id: str | None = None
    text: str | None = None
    image: str | None = None
    label: str | None = None
    fixed: bool = False

    def to_ingest_kwargs(self) -> dict[str, str | None]:
        """``id_col, text_col, image_col, label_col`` for :func:`~core.ingest.ingest`
        (all None for a fixed folder mapping)."""
        if self.fixed:
            return {"id_col": None, "text_col": None, "image_col": None, "label_col": None}
        return {"id_col": self.id, "text_col": self.text, "image_col": self.image,
                "label_col": self.label}


@dataclass(frozen=True, eq=False)
class SourcePreview:
    """The first rows of a source, its columns, row count (None if not cheap to know) and
    the guessed mapping, with notes for the user."""

    path: Path
    format: str
    columns: tuple[str, ...]
    rows: pd.DataFrame
    total_rows: int | None
    mapping: ColumnMapping
    notes: tuple[str, ...] = ()


def preview_source(path: Path, *, format: str | None = None, rows: int = 20) -> SourcePreview:
    """Preview ``path`` (``format`` None = :func:`~core.ingest.detect_format`): its first
    ``rows`` rows and the mapping ingest would guess (:func:`~core.ingest.columns.pick_columns`).

    A folder previews its first images (``image`` = relative path, ``label`` = first-level
    folder, ``text`` when captions exist) with a fixed mapping. Raises NotFoundError,
    InputError (format, unreadable or corrupt file), SchemaError (empty table), MediaError
    (a folder without images, or with a symlink leaving it).
    """
    rows = check_positive_int(rows, "rows")
    path = Path(path).expanduser()
    if not path.exists():
        raise NotFoundError(f"source {str(path)!r} does not exist")
    if format is not None and format not in FORMATS:
        raise InputError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    fmt = format or detect_format(path)
    if (fmt == "folder") != path.is_dir():
        raise InputError(f"{str(path)!r} is {'a folder' if path.is_dir() else 'a file'}, "
                         f"not a {fmt} source")
    return _preview_folder(path, rows) if fmt == "folder" else _preview_table(path, fmt, rows)


def _preview_folder(path: Path, n: int) -> SourcePreview:
    root = path.resolve()
    # Path() never equals a scanned entry: the workspace home is not skipped in a preview
    images, _, sidecars, _ = scan_folder(root, Path())
    if not images:
        raise MediaError(f"no images found in {root}; supported extensions: "
                         f"{', '.join(sorted(media_module().IMAGE_EXTENSIONS))}")
    first = images[:n]
    table = pd.DataFrame({"image": first,
                          "label": [r.split("/", 1)[0] if "/" in r else None for r in first]})
    captions = read_captions(root)
    if captions or sidecars:
        side = {rel: sidecars.get(posixpath.splitext(rel)[0]) for rel in first}
        table["text"] = [captions.get(rel) or (_read_text(root / side[rel]) if side[rel] else None)
                         for rel in first]
    notes = ("a folder's mapping is fixed: id and image are each file's path inside the folder, "
             "label is its first-level subfolder (none for images at the top)"),
    if "text" in table:
        notes += ("text comes from captions.csv (file,text) or a <name>.txt next to each image",)
    mapping = ColumnMapping(id="image", image="image", label="label",
                            text="text" if "text" in table else None, fixed=True)
    return SourcePreview(root, "folder", tuple(table.columns), table, len(images), mapping, notes)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8-sig").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def _preview_table(path: Path, fmt: str, n: int) -> SourcePreview:
    df = READERS[fmt](path, set(DEFAULT_COLUMN_NAMES), nrows=n)
    if len(df) == 0:
        raise SchemaError(f"table {str(path)!r} has no rows")
    df.columns = [str(c) for c in df.columns]
    columns = tuple(df.columns)
    mapping = ColumnMapping(**pick_columns(list(columns), path))
    total = len(df) if len(df) < n else _count_rows(path, fmt)
    notes: list[str] = []
    if mapping.id is None:
        notes.append("no 'id' column: rows get the ids row-0, row-1, ... unless you choose one")
    if mapping.text is None and mapping.image is None:
        notes.append(f"no text or image column recognised (looked for 'text'; "
                     f"{format_list(IMAGE_COL_DEFAULTS)}); choose at least one")
    if mapping.image is not None:
        notes.append(f"image paths are read relative to {path.resolve().parent} "
                     "unless an image root is given")
    return SourcePreview(path.resolve(), fmt, columns, df, total, mapping, tuple(notes))


def _count_rows(path: Path, fmt: str) -> int | None:
    """Rows of the table when cheap: Parquet metadata; CSV/JSONL up to
    :data:`COUNT_ROWS_MAX_BYTES` (CSV with quotes parsed, else lines counted); else None."""
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
        if path.stat().st_size > COUNT_ROWS_MAX_BYTES:
            return None
        data = path.read_bytes()
        if fmt == "csv" and b'"' in data:  # quoted fields may hold line breaks: parse
            sep = "\t" if path.suffix.lower() == ".tsv" else ","
            return len(pd.read_csv(io.BytesIO(data), sep=sep, usecols=[0], dtype=str,
                                   keep_default_na=False, encoding="utf-8-sig"))
        lines = sum(1 for line in data.splitlines() if line.strip())
        return max(lines - 1, 0) if fmt == "csv" else lines
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        log.warning("cannot count the rows of %s: %s", path, exc)
        return None



__all__ = ["COUNT_ROWS_MAX_BYTES", "ColumnMapping", "SourcePreview", "preview_source"]
