"""Read an image folder or a CSV/Parquet/JSONL table into a dataset's rows table.

Writes ``<home>/datasets/<name>/rows.parquet`` with the columns ``id, modality, text,
image, label, ingest_issue`` (strings; ``id``/``modality`` never null) followed by every
other source column as-is, and ``dataset.json``. Tables are streamed in record batches
(:mod:`core.ingest.tables`): a first pass checks ids and texts (:mod:`core.ingest.checks`),
a second writes the rows batch by batch (:mod:`core.ingest.writer`). The dataset directory
is built in a temp dir and swapped in only when complete, so any error leaves the
workspace unchanged. Rows whose image is corrupt, empty or missing are kept with
``ingest_issue`` set.

A table source is a local path or a URI (``file://``, ``s3://``, ``gs://``, ``az://``...:
:mod:`core.locations`), read through the same code. Image files stay local: a table at an
object store with image paths needs ``image_root``, a local folder; folders are local.
"""

from __future__ import annotations

import logging
import posixpath
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.fs as pafs

from core._shared import ProgressFn, check_positive_int, read_utf8_text
from core.errors import (
    AlreadyExistsError,
    InputError,
    MediaError,
    NotFoundError,
    SchemaError,
    format_list,
)
from core.ingest.checks import check_scan, scan_table
from core.ingest.columns import DEFAULT_COLUMN_NAMES, pick_columns
from core.ingest.convert import rename_clashes
from core.ingest.images import (
    check_images,
    check_media_root,
    fail_if_all_broken,
    media_module,
)
from core.ingest.readers import read_captions, scan_folder
from core.ingest.report import IngestReport, Tally, counts_text
from core.ingest.tables import open_table
from core.ingest.writer import TablePlan, folder_table, save_dataset
from core.locations import Location, is_uri, parse_location
from core.predictions import DEFAULT_MODEL, PredictionColumns
from core.workspace import Workspace, check_name

log = logging.getLogger(__name__)

FORMATS = ("folder", "csv", "parquet", "jsonl")
_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet",
             ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
DEFAULT_BATCH_ROWS = 131_072  # rows read, checked and written at a time


def detect_format(source: str | Path | Location) -> str:
    """``folder`` for a directory, else from the suffix (.csv/.tsv, .parquet/.pq,
    .jsonl/.ndjson/.json) of a path, URI or Location. Raises InputError naming the file
    and :data:`FORMATS`."""
    shown = str(source) if isinstance(source, Location) or is_uri(source) else str(Path(source))
    loc = source if isinstance(source, Location) else parse_location(source)
    if loc.is_dir():
        return "folder"
    fmt = _SUFFIXES.get(loc.suffix.lower())
    if fmt is None:
        raise InputError(f"cannot tell the format of {shown!r} from its extension; "
                         f"pass a format: one of {', '.join(FORMATS)}")
    return fmt


def ingest(ws: Workspace, source: str | Path | Location, name: str, *, format: str | None = None,
           id_col: str | None = None, text_col: str | None = None, image_col: str | None = None,
           label_col: str | None = None, image_root: str | Path | None = None,
           replace: bool = False, skip_invalid: bool = False, update: bool = False,
           keep_missing: bool = False, predictions: PredictionColumns | None = None,
           model: str = DEFAULT_MODEL, progress: ProgressFn | None = None) -> IngestReport:
    """Ingest ``source`` (folder or table; a table may be at a URI) as dataset ``name``;
    ``format`` None = detect.

    ``predictions``: columns of a table holding a model's predictions, stored as model
    ``model``'s predictions beside the rows (:mod:`core.predictions`), not as metadata.

    ``update``: bring the existing dataset ``name`` up to date with ``source`` instead of
    replacing it: ids compared, rows added / changed / removed (kept with ``keep_missing``),
    vectors of rows whose content is unchanged kept (:mod:`core.ingest.update`).
    Raises InputError (unknown format, bad name, column options with a folder, ``update``
    with ``replace``, ``keep_missing`` without ``update``), NotFoundError (``update`` of a
    dataset that does not exist), AlreadyExistsError, SchemaError, MediaError (see the two
    ingesters).
    """
    if format is not None and format not in FORMATS:
        raise InputError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    src = _check_target(ws, source, name, replace, update, keep_missing)
    fmt = format or detect_format(src)
    modes = {"replace": replace, "update": update, "keep_missing": keep_missing}
    if fmt == "folder":
        given = {"id_col": id_col, "text_col": text_col, "image_col": image_col,
                 "label_col": label_col, "image_root": image_root,
                 "predictions": predictions if predictions is not None and predictions.given else None}
        extra = [k for k, v in given.items() if v is not None]
        if extra:
            raise InputError(f"{', '.join(extra)} only apply to tables (csv, parquet, jsonl), "
                             f"not to the folder {src.uri!r}")
        return ingest_folder(ws, src, name, progress=progress, **modes)
    return ingest_table(ws, src, name, format=fmt, id_col=id_col, text_col=text_col,
                        image_col=image_col, label_col=label_col, image_root=image_root,
                        skip_invalid=skip_invalid, predictions=predictions, model=model,
                        progress=progress, **modes)


def ingest_folder(ws: Workspace, source: str | Path | Location, name: str, *, replace: bool = False,
                  update: bool = False, keep_missing: bool = False,
                  progress: ProgressFn | None = None) -> IngestReport:
    """Every image under ``source`` (recursive, sorted) becomes one row.

    id = image = path relative to the folder ('/' separators); label = first-level
    subfolder (None at the root); text from ``captions.csv`` (``file,text``) or a sidecar
    ``<stem>.txt``. Metadata: ``file_size``, ``width``, ``height`` (nullable Int64).
    ``update``/``keep_missing`` as in :func:`ingest`. Raises MediaError if no image is
    readable or a symlink leaves the folder, InputError for a folder at an object store.
    """
    src = _check_target(ws, source, name, replace, update, keep_missing)
    if src.local is None:
        raise InputError(f"{src.uri!r} is a folder at an object store; image folders are read "
                         "from the local disk only: copy it locally, or ingest a table "
                         "(csv, parquet, jsonl) from the store with --image-root DIR")
    if not src.is_dir():
        raise InputError(f"{src.uri!r} is not a folder; for a table use format csv, parquet "
                         "or jsonl")
    root = src.local.resolve()
    check_media_root(ws, name, root)
    images, sizes, sidecars, skipped = scan_folder(root, ws.home)
    captions = read_captions(root)
    if not images:
        extra = f" ({counts_text(skipped)})" if skipped else ""
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
    table = folder_table(rows)
    tally = Tally()
    tally.add(table)
    return _save(ws, name, table.schema, [table], tally, _info(name, src, "folder", columns, root),
                 skipped, replace, update, keep_missing)


def ingest_table(ws: Workspace, source: str | Path | Location, name: str, *, format: str | None = None,
                 id_col: str | None = None, text_col: str | None = None,
                 image_col: str | None = None, label_col: str | None = None,
                 image_root: str | Path | None = None, replace: bool = False,
                 skip_invalid: bool = False, update: bool = False, keep_missing: bool = False,
                 batch_rows: int = DEFAULT_BATCH_ROWS, predictions: PredictionColumns | None = None,
                 model: str = DEFAULT_MODEL, progress: ProgressFn | None = None) -> IngestReport:
    """Ingest a CSV/TSV, Parquet or JSONL table; one row per table row, streamed.

    Column defaults: id ← ``id`` (else ``row-<n>``), text ← ``text``, image ← ``image``/
    ``image_path``/``file``/``filepath``/``path``, label ← ``label``. Image paths resolve
    against ``image_root`` (default: the table's folder). The table is read ``batch_rows``
    rows at a time (:mod:`core.ingest.tables`), twice: a first pass checks the ids and texts
    (:mod:`core.ingest.checks`), the second checks images and writes ``rows.parquet`` batch
    by batch into a temp folder swapped in at the end, so memory does not grow with the
    table (but for 8 bytes a row to find duplicate ids) and a refused table writes nothing.
    ``progress(done, total)`` in rows (each counted in part per pass; total 0 while a
    CSV/JSONL row count is unknown). Raises SchemaError (missing or unmapped columns, bad or
    duplicate ids, empty text unless ``skip_invalid``), InputError (unreadable file,
    ``batch_rows`` not a whole number >= 1), MediaError (image path outside the root, or
    every image unreadable). ``update``/``keep_missing`` as in :func:`ingest`.

    ``source``: a local path or a URI (:mod:`core.locations`; NotFoundError if missing,
    InputError on an unknown scheme). Images stay local: the image paths of a table at an
    object store resolve against ``image_root`` only (InputError without it, or for a URI).

    ``predictions`` (:class:`~core.predictions.PredictionColumns`): a model's prediction
    columns, checked before anything is written (the same errors as ``catalog
    import-predictions``) and stored as model ``model``; they are not metadata columns.
    """
    src = _check_target(ws, source, name, replace, update, keep_missing)
    fmt = format or detect_format(src)
    if fmt not in FORMATS[1:]:
        raise InputError(f"unknown table format {fmt!r}; choose one of {', '.join(FORMATS[1:])}")
    if src.is_dir():
        raise InputError(f"{src.uri!r} is a folder, not a {fmt} table; use format 'folder'")
    if image_root is not None and is_uri(image_root) and not str(image_root).startswith("file://"):
        raise InputError(f"image root {str(image_root)!r} is a URI; images are read from the "
                         "local disk only: give a local folder")
    batch_rows = check_positive_int(batch_rows, "batch_rows")
    raw_cols = {c for c in (id_col, text_col, image_col, label_col, *DEFAULT_COLUMN_NAMES) if c}
    reader = open_table(src, fmt, raw_cols, batch_rows)
    tick = _Ticker(progress, reader.passes, reader.total_rows)
    reader.prepare(tick)
    if reader.total_rows == 0:
        raise SchemaError(f"table {src.uri!r} has no rows")
    cols = pick_columns(reader.columns, src, id_col=id_col, text_col=text_col,
                        image_col=image_col, label_col=label_col)
    if cols["text"] is None and cols["image"] is None:
        raise SchemaError(f"table {src.uri!r} has neither a text nor an image column; columns "
                          f"present: {format_list(reader.columns, 30)}; pass --text-col or "
                          "--image-col")
    scan = scan_table(reader, cols, tick)
    tick.total = scan.rows
    skipped = check_scan(scan, reader, src, cols, skip_invalid)
    root = None
    if scan.image_rows:
        if image_root is None and src.local is None:
            raise InputError(f"table {src.uri!r} has image paths ({scan.image_rows:,} rows) but "
                             "images are read from the local disk only: pass --image-root DIR "
                             "(image_root=...), the local folder they are relative to")
        root = _local_root(image_root) if image_root is not None else src.local.parent
        if not root.is_dir():
            raise NotFoundError(f"image root {str(root)!r} does not exist or is not a folder")
        root = root.resolve()
        check_media_root(ws, name, root)
    preds = _table_predictions(src, fmt, cols, scan.rows, predictions, model)
    taken = set(cols.values()) | set(preds[1] if preds else ())
    meta_cols = [c for c in reader.columns if c not in taken]
    plan = TablePlan(reader, cols, meta_cols, rename_clashes(meta_cols), scan.rows,
                     skip_invalid and bool(skipped), root, src)
    tally = Tally()
    report = _save(ws, name, plan.schema(), plan.batches(tally, tick), tally,
                   _info(name, src, fmt, cols, root), skipped, replace, update, keep_missing)
    if preds:
        _store_predictions(ws, name, preds[0], preds[1], src)
    return report


def _table_predictions(src: Location, fmt: str, cols: dict[str, str | None], n_rows: int,
                       columns: PredictionColumns | None, model: str):
    """(checked Predictions, source columns) of the table's prediction columns, or None."""
    if columns is None or not columns.given:
        return None
    from core.ingest.convert import generated_ids
    from core.predictions import build_predictions, read_prediction_table

    check_name(model, "model")
    ids = None if cols["id"] else np.asarray(generated_ids(0, n_rows, n_rows).to_pylist(), dtype=object)
    table = read_prediction_table(src, columns, id_col=cols["id"], ids=ids, fmt=fmt, label_col=cols["label"])
    labels = {str(v).strip() for v in (table.labels or []) if v is not None and str(v).strip()}
    if not labels:
        raise SchemaError("prediction columns need labels to compare against; the table has no "
                          "label column" + (f" values in {cols['label']!r}" if cols["label"] else ""))
    preds = build_predictions(model, table.ids, probs=table.probs, classes=table.classes,
                              predicted=table.predicted, score=table.score, label_classes=sorted(labels))
    return preds, table.columns


def _store_predictions(ws: Workspace, name: str, preds, columns: tuple[str, ...], src: Location) -> None:
    """Store the checked predictions for the rows ingest kept (rows skipped as invalid drop out)."""
    from core.predictions import keep_rows, save_predictions

    ds = ws.dataset(name)
    kept = keep_rows(preds, ds.rows()["id"].astype(str))
    save_predictions(ds, kept, replace=True, source=src.uri, columns=columns)


def _save(ws: Workspace, name: str, schema, tables, tally: Tally, info: dict,
          skipped: dict[str, int], replace: bool, update: bool, keep_missing: bool) -> IngestReport:
    if update:
        from core.ingest.update import save_update  # pulls in core.embeddings (FAISS)

        return save_update(ws, name, schema, tables, tally, info, skipped, keep_missing)
    return save_dataset(ws, name, schema, tables, tally, info, skipped, replace)


def _local_root(image_root: str | Path) -> Path:
    """``image_root`` as a local path (``~`` expanded; a ``file://`` URI as its path)."""
    loc = parse_location(image_root) if is_uri(image_root) else None
    return loc.local if loc is not None and loc.local is not None else Path(image_root).expanduser()


def _check_target(ws: Workspace, source: str | Path | Location, name: str, replace: bool,
                  update: bool = False, keep_missing: bool = False) -> Location:
    check_name(name)
    if update and replace:
        raise InputError("update and replace exclude each other: --update keeps the dataset's "
                         "vectors for unchanged rows, --replace starts over")
    if keep_missing and not update:
        raise InputError("--keep-missing (keep_missing=True) only applies with --update (update=True)")
    src = source if isinstance(source, Location) else parse_location(source)
    if src.info().type == pafs.FileType.NotFound:
        raise NotFoundError(f"source {src.uri!r} does not exist")
    if update and not ws.has_dataset(name):
        raise NotFoundError(f"no dataset {name!r} in {ws.home} to update; ingest it first "
                            "(without --update)")
    if not replace and not update and ws.has_dataset(name):
        raise AlreadyExistsError(f"dataset {name!r} already exists in {ws.home}; "
                                 "pass --replace (replace=True) to overwrite it")
    return src


class _Ticker:
    """``progress(done, total)`` in rows over ``passes`` reads of a table: each row counts
    1/passes each time it is read (``total`` 0 while unknown)."""

    def __init__(self, progress: ProgressFn | None, passes: int, total: int | None) -> None:
        self.progress, self.passes, self.total, self.rows = progress, passes, total, 0

    def __call__(self, rows: int) -> None:
        self.rows += rows
        self.within(0)

    def within(self, rows: int) -> None:
        """Report ``rows`` more than the batches done so far (inside a batch)."""
        if self.progress is not None:
            self.progress((self.rows + rows) // self.passes, self.total or 0)


def _info(name: str, src: Location, fmt: str, columns: dict[str, str | None],
          media_root: Path | None) -> dict:
    return {"name": name, "media_root": str(media_root) if media_root else None,
            "source": str(src.local.resolve()) if src.local is not None else src.uri,
            "format": fmt, "columns": columns,
            "default_embedding": None}


