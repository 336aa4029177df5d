"""Read an image folder or a CSV/Parquet/JSONL table into a dataset's rows table.

Writes ``<home>/datasets/<name>/rows.parquet`` with the columns ``id, modality, text,
image, label, ingest_issue`` (strings; ``id``/``modality`` never null) followed by every
other source column as-is, and ``dataset.json``. The dataset directory is built in a
temp dir and swapped in only when complete, so any error leaves the workspace unchanged.
Rows whose image is corrupt, empty or missing are kept with ``ingest_issue`` set.
"""

from __future__ import annotations

import logging
import posixpath
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core import atomic
from core._shared import CORE_COLUMNS, ProgressFn, read_utf8_text
from core.errors import (
    AlreadyExistsError,
    InputError,
    MediaError,
    NotFoundError,
    SchemaError,
    format_list,
)
from core.ingest.columns import DEFAULT_COLUMN_NAMES, pick_columns
from core.ingest.images import (
    check_images,
    check_media_root,
    fail_if_all_broken,
    media_module,
    resolve_images,
)
from core.ingest.readers import READERS, read_captions, scan_folder
from core.workspace import Workspace, check_name

log = logging.getLogger(__name__)

FORMATS = ("folder", "csv", "parquet", "jsonl")
_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet",
             ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
_MAX_FLAGGED_IDS = 20
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)


@dataclass(frozen=True)
class IngestReport:
    """What an ingest wrote: row counts by modality/label, flagged and skipped rows by reason."""

    dataset: str
    rows: int
    modalities: dict[str, int]
    labels: dict[str, int]
    flagged: dict[str, int]
    flagged_ids: tuple[str, ...]
    skipped: dict[str, int]

    def summary(self) -> str:
        """Multi-line human summary (labels: top 10 by count, then 'N more')."""
        lines = [f"dataset {self.dataset!r}: {self.rows} rows",
                 "modalities: " + (_counts(self.modalities) or "none")]
        if self.labels:
            top = sorted(self.labels.items(), key=lambda kv: (-kv[1], kv[0]))
            text = ", ".join(f"{k} {v}" for k, v in top[:10])
            more = len(top) - 10
            lines.append(f"labels ({len(top)}): {text}" + (f", {more} more" if more > 0 else ""))
        else:
            lines.append("labels: none")
        if self.flagged:
            lines.append(f"flagged {sum(self.flagged.values())} rows (kept, not embedded): "
                         f"{_counts(self.flagged)}; e.g. {format_list(self.flagged_ids, 5)}")
        if self.skipped:
            lines.append(f"skipped {sum(self.skipped.values())}: {_counts(self.skipped)}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        """Plain JSON-serialisable dict of every field (``flagged_ids`` as a list)."""
        return {"dataset": self.dataset, "rows": self.rows, "modalities": dict(self.modalities),
                "labels": dict(self.labels), "flagged": dict(self.flagged),
                "flagged_ids": list(self.flagged_ids), "skipped": dict(self.skipped)}


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def detect_format(source: Path) -> str:
    """``folder`` for a directory, else from the suffix (.csv/.tsv, .parquet/.pq,
    .jsonl/.ndjson/.json). Raises InputError naming the file and :data:`FORMATS`."""
    source = Path(source)
    if source.is_dir():
        return "folder"
    fmt = _SUFFIXES.get(source.suffix.lower())
    if fmt is None:
        raise InputError(f"cannot tell the format of {str(source)!r} from its extension; "
                         f"pass a format: one of {', '.join(FORMATS)}")
    return fmt


def ingest(ws: Workspace, source: str | Path, name: str, *, format: str | None = None,
           id_col: str | None = None, text_col: str | None = None, image_col: str | None = None,
           label_col: str | None = None, image_root: str | Path | None = None,
           replace: bool = False, skip_invalid: bool = False,
           progress: ProgressFn | None = None) -> IngestReport:
    """Ingest ``source`` (folder or table) as dataset ``name``; ``format`` None = detect.

    Raises InputError (unknown format, bad name, column options with a folder),
    NotFoundError, AlreadyExistsError, SchemaError, MediaError (see the two ingesters).
    """
    if format is not None and format not in FORMATS:
        raise InputError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    src = _check_target(ws, source, name, replace)
    fmt = format or detect_format(src)
    if fmt == "folder":
        given = {"id_col": id_col, "text_col": text_col, "image_col": image_col,
                 "label_col": label_col, "image_root": image_root}
        extra = [k for k, v in given.items() if v is not None]
        if extra:
            raise InputError(f"{', '.join(extra)} only apply to tables (csv, parquet, jsonl), "
                             f"not to the folder {str(src)!r}")
        return ingest_folder(ws, src, name, replace=replace, progress=progress)
    return ingest_table(ws, src, name, format=fmt, id_col=id_col, text_col=text_col,
                        image_col=image_col, label_col=label_col, image_root=image_root,
                        replace=replace, skip_invalid=skip_invalid, progress=progress)


def ingest_folder(ws: Workspace, source: str | Path, name: str, *, replace: bool = False,
                  progress: ProgressFn | None = None) -> IngestReport:
    """Every image under ``source`` (recursive, sorted) becomes one row.

    id = image = path relative to the folder ('/' separators); label = first-level
    subfolder (None at the root); text from ``captions.csv`` (``file,text``) or a sidecar
    ``<stem>.txt``. Metadata: ``file_size``, ``width``, ``height`` (nullable Int64).
    Raises MediaError if no image is readable or a symlink leaves the folder.
    """
    src = _check_target(ws, source, name, replace)
    if not src.is_dir():
        raise InputError(f"{str(src)!r} is not a folder; for a table use format csv, parquet "
                         "or jsonl")
    root = src.resolve()
    check_media_root(ws, name, root)
    images, sizes, sidecars, skipped = scan_folder(root, ws.home)
    captions = read_captions(root)
    if not images:
        extra = f" ({_counts(skipped)})" if skipped else ""
        raise MediaError(f"no images found in {root}: 0 image files{extra}; supported "
                         f"extensions: {', '.join(sorted(media_module().IMAGE_EXTENSIONS))}")
    checks = check_images([root / rel for rel in images], progress, dims=True)
    issues = [c[0] for c in checks]
    fail_if_all_broken(images, issues, f"in {root}")
    texts: list[str | None] = []
    used_txt: set[str] = set()
    for rel in images:
        text = captions.get(rel)
        side = sidecars.get(posixpath.splitext(rel)[0])
        if side is not None:
            used_txt.add(side)
            if text is None:
                text = read_utf8_text(root / side).strip() or None
        texts.append(text)
    unused = set(sidecars.values()) - used_txt
    if unused:
        skipped["not an image file"] = skipped.get("not an image file", 0) + len(unused)
    unmatched = set(captions) - set(images)
    if unmatched:
        log.warning("captions.csv names %d files that are not images in %s, e.g. %s",
                    len(unmatched), root, format_list(sorted(unmatched)))
    rows = pd.DataFrame({
        "id": images, "modality": "image", "text": texts, "image": images,
        "label": [rel.split("/", 1)[0] if "/" in rel else None for rel in images],
        "ingest_issue": issues,
        "file_size": pd.array([sizes[rel] for rel in images], dtype="Int64"),
        "width": pd.array([c[1] for c in checks], dtype="Int64"),
        "height": pd.array([c[2] for c in checks], dtype="Int64"),
    })
    text_from = [s for s, ok in (("captions.csv", captions), ("sidecar .txt", used_txt)) if ok]
    columns = {"id": "relative path", "image": "relative path", "label": "first-level folder",
               "text": " + ".join(text_from) or None}
    return _write(ws, name, rows, src, "folder", columns, root, skipped, replace)


def ingest_table(ws: Workspace, source: str | Path, name: str, *, format: str | None = None,
                 id_col: str | None = None, text_col: str | None = None,
                 image_col: str | None = None, label_col: str | None = None,
                 image_root: str | Path | None = None, replace: bool = False,
                 skip_invalid: bool = False, progress: ProgressFn | None = None) -> IngestReport:
    """Ingest a CSV/TSV, Parquet or JSONL table; one row per table row.

    Column defaults: id ← ``id`` (else ``row-<n>``), text ← ``text``, image ← ``image``/
    ``image_path``/``file``/``filepath``/``path``, label ← ``label``. Image paths resolve
    against ``image_root`` (default: the table's folder). Raises SchemaError (missing or
    unmapped columns, bad ids, empty text unless ``skip_invalid``), InputError (unreadable
    file), MediaError (image path outside the root, or every image unreadable).
    """
    src = _check_target(ws, source, name, replace)
    fmt = format or detect_format(src)
    if fmt not in FORMATS[1:]:
        raise InputError(f"unknown table format {fmt!r}; choose one of {', '.join(FORMATS[1:])}")
    if src.is_dir():
        raise InputError(f"{str(src)!r} is a folder, not a {fmt} table; use format 'folder'")
    str_cols = {c for c in (id_col, text_col, image_col, label_col, *DEFAULT_COLUMN_NAMES) if c}
    df = READERS[fmt](src, str_cols)
    if len(df) == 0:
        raise SchemaError(f"table {str(src)!r} has no rows")
    df.columns = [str(c) for c in df.columns]
    present = list(df.columns)
    cols = pick_columns(present, src, id_col=id_col, text_col=text_col, image_col=image_col,
                        label_col=label_col)
    if cols["text"] is None and cols["image"] is None:
        raise SchemaError(f"table {str(src)!r} has neither a text nor an image column; columns "
                          f"present: {format_list(present, 30)}; pass --text-col or --image-col")
    n = len(df)
    if cols["id"]:
        ids = _as_str(df[cols["id"]])
        bad = np.flatnonzero(_blank(ids))
        if len(bad):
            raise SchemaError(f"{len(bad)} rows have a null or empty id in column {cols['id']!r} "
                              f"(row numbers, 0-based: {format_list(bad.tolist())})")
    else:
        width = len(str(n))
        ids = pd.Series([f"row-{i:0{width}d}" for i in range(n)], dtype=object)
    dups = ids[ids.duplicated()].unique()
    if len(dups):
        raise SchemaError(f"duplicate ids: {len(dups)} ids appear more than once in column "
                          f"{cols['id']!r}, e.g. {format_list(dups.tolist())}; ids must be unique")
    null = pd.Series([None] * n, dtype=object)
    image = _as_str(df[cols["image"]]) if cols["image"] else null
    image = image.where(~_blank(image), None)
    text = _as_str(df[cols["text"]]) if cols["text"] else null
    text_blank = _blank(text)
    is_image = image.notna().to_numpy()
    bad_text = ~is_image & text_blank.to_numpy()
    skipped: dict[str, int] = {}
    if bad_text.any():
        if not skip_invalid:
            raise SchemaError(f"{int(bad_text.sum())} rows have no image and empty or null text "
                              f"(ids {format_list(ids[bad_text].tolist())}); fix them or pass "
                              "--skip-invalid (skip_invalid=True) to skip them")
        skipped["empty text"] = int(bad_text.sum())
    label = _as_str(df[cols["label"]]) if cols["label"] else null
    meta = df.drop(columns=sorted({c for c in cols.values() if c}))
    # metadata named like a core column (e.g. 'id' when id_col='key') keeps a suffix
    meta.columns = _rename_clashes(list(meta.columns))
    rows = pd.concat([pd.DataFrame({
        "id": ids.to_numpy(), "modality": np.where(is_image, "image", "text"),
        "text": text.where(~text_blank, None).to_numpy(), "image": image.to_numpy(),
        "label": label.where(~_blank(label), None).to_numpy(),
        "ingest_issue": None}), meta.reset_index(drop=True)], axis=1)
    rows = rows[~bad_text].reset_index(drop=True)
    if len(rows) == 0:
        raise SchemaError(f"every row of {str(src)!r} has empty text; nothing to ingest")
    root = None
    if rows["image"].notna().any():
        root = Path(image_root).expanduser() if image_root is not None else src.parent
        if not root.is_dir():
            raise NotFoundError(f"image root {str(root)!r} does not exist or is not a folder")
        root = root.resolve()
        check_media_root(ws, name, root)
        has = rows["image"].notna().to_numpy()
        rel, full = resolve_images(rows.loc[has, "image"].tolist(), root)
        checks = check_images(full, progress, dims=False)
        rows.loc[has, "image"] = rel
        rows.loc[has, "ingest_issue"] = [c[0] for c in checks]
        fail_if_all_broken(rel, [c[0] for c in checks],
                            f"referenced by {str(src)!r} under the image root {root}")
    return _write(ws, name, rows, src, fmt, cols, root, skipped, replace)


# ---- checks -----------------------------------------------------------------
def _check_target(ws: Workspace, source: str | Path, name: str, replace: bool) -> Path:
    check_name(name)
    src = Path(source).expanduser().absolute()
    if not src.exists():
        raise NotFoundError(f"source {str(src)!r} does not exist")
    if not replace and ws.has_dataset(name):
        raise AlreadyExistsError(f"dataset {name!r} already exists in {ws.home}; "
                                 "pass --replace (replace=True) to overwrite it")
    return src


def _rename_clashes(columns: list[str]) -> list[str]:
    """``columns`` with each core-column name renamed to ``<col>_source`` or, if that is
    taken, ``<col>_source2``, ``<col>_source3``, ...; other names are kept as they are."""
    taken = set(columns) | set(CORE_COLUMNS)
    out = []
    for col in columns:
        if col in CORE_COLUMNS:
            new, n = f"{col}_source", 2
            while new in taken:
                new, n = f"{col}_source{n}", n + 1
            taken.add(new)
            col = new
        out.append(col)
    return out


def _as_str(values: pd.Series) -> pd.Series:
    """Values as str objects, None for nulls; integral floats (ids read as 3.0) lose '.0'."""
    if pd.api.types.is_float_dtype(values.dtype):
        finite = values.dropna()
        if len(finite) and np.isfinite(finite).all() and (finite == np.floor(finite)).all():
            values = values.astype("Int64")
    out = values.astype("string").astype(object)
    return out.where(values.notna().to_numpy(), None)


def _blank(values: pd.Series) -> pd.Series:
    """True where a value is null or only whitespace."""
    return values.isna() | values.fillna("").astype(str).str.strip().eq("")


# ---- readers ----------------------------------------------------------------


def _to_arrow(rows: pd.DataFrame) -> pa.Table:
    """Arrow table with string core columns; metadata columns Arrow cannot type are
    stored as strings (logged)."""
    try:
        table = pa.Table.from_pandas(rows, preserve_index=False)
    except _ARROW_ERRORS:
        rows = rows.copy()
        for col in rows.columns[len(CORE_COLUMNS):]:
            try:
                pa.array(rows[col], from_pandas=True)
            except _ARROW_ERRORS as exc:
                log.warning("metadata column %r has mixed types (%s); storing it as text", col, exc)
                rows[col] = _as_str(rows[col])
        table = pa.Table.from_pandas(rows, preserve_index=False)
    for i, col in enumerate(CORE_COLUMNS):
        table = table.set_column(i, col, table.column(i).cast(pa.string()))
    return table


def _report(name: str, rows: pd.DataFrame, skipped: dict[str, int]) -> IngestReport:
    issues = rows["ingest_issue"].dropna()
    flagged = Counter(str(issue).split(":", 1)[0].strip() for issue in issues)
    return IngestReport(
        dataset=name, rows=len(rows),
        modalities={str(k): int(v) for k, v in rows["modality"].value_counts().items()},
        labels={str(k): int(v) for k, v in rows["label"].dropna().value_counts().items()},
        flagged=dict(flagged.most_common()),
        flagged_ids=tuple(str(i) for i in rows.loc[issues.index[:_MAX_FLAGGED_IDS], "id"]),
        skipped=dict(skipped))


def _write(ws: Workspace, name: str, rows: pd.DataFrame, src: Path, fmt: str,
           columns: dict[str, str | None], media_root: Path | None, skipped: dict[str, int],
           replace: bool) -> IngestReport:
    """Build rows.parquet + dataset.json in a temp dir and swap it in as the dataset."""
    report = _report(name, rows, skipped)
    info = {"name": name, "media_root": str(media_root) if media_root else None,
            "source": str(src.resolve()), "format": fmt, "columns": columns,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "rows": len(rows), "default_embedding": None, "ingest": report.to_json()}
    table = _to_arrow(rows)
    with atomic.atomic_dir(ws.dataset_path(name)) as tmp:
        atomic.write_with(tmp / "rows.parquet", lambda path: pq.write_table(table, path))
        atomic.write_json(tmp / "dataset.json", info)
        if not replace and ws.has_dataset(name):  # created meanwhile by another process
            raise AlreadyExistsError(f"dataset {name!r} already exists in {ws.home}; "
                                     "pass --replace (replace=True) to overwrite it")
    log.info("ingested %s: %d rows from %s", name, len(rows), src)
    return report
