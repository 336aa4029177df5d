"""Small readers for :mod:`core.ingest`: the first rows of a CSV, Parquet or JSONL table as a
DataFrame (:data:`READERS`, for :func:`~core.ingest.preview_source`), the lines of a JSONL
file one object at a time (:func:`jsonl_records`), ``captions.csv`` and image-folder scanning.
Whole tables are read in batches by :mod:`core.ingest.tables`. Each raises a typed error
naming the file (and line or byte)."""

from __future__ import annotations

import itertools
import json
import logging
import os
import posixpath
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core._shared import utf8_error
from core.errors import InputError, MediaError, SchemaError, format_list
from core.locations import Location
from core.workspace import is_within

log = logging.getLogger(__name__)

_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)


def _media():
    import core.media

    return core.media


def _read_csv(path: Path, str_cols: set[str], **options: Any) -> pd.DataFrame:
    """CSV (or TSV by suffix), strictly UTF-8. ``str_cols`` are read verbatim as strings
    (no 'NA'/'null' → NaN, no '007' → 7); other columns get pandas' inferred dtypes."""
    options = {"sep": "\t" if path.suffix.lower() == ".tsv" else ",", "encoding": "utf-8-sig",
               "encoding_errors": "strict", "low_memory": False, **options}
    try:
        df = pd.read_csv(path, dtype={c: str for c in str_cols}, **options)
        keep = [c for c in df.columns if c in str_cols]
        if keep:
            raw = pd.read_csv(path, usecols=keep, dtype=str, keep_default_na=False, **options)
            df[keep] = raw[keep].astype(object)
        return df
    except UnicodeDecodeError:
        raise (utf8_error(path, path.read_bytes()) or InputError(f"file {str(path)!r} is not UTF-8 text")) from None
    except pd.errors.EmptyDataError:
        raise SchemaError(f"table {str(path)!r} is empty (no header, no rows)") from None
    except pd.errors.ParserError as exc:
        raise InputError(f"cannot parse {str(path)!r} as CSV: {exc}") from None


def _read_parquet(path: Path, str_cols: set[str], nrows: int | None = None) -> pd.DataFrame:
    """The whole table, or only its first ``nrows`` rows (read batch-wise, not in full)."""
    try:
        if nrows is None:
            return pd.read_parquet(path)
        file = pq.ParquetFile(path)
        batch = next(file.iter_batches(batch_size=nrows), None)
        table = file.schema_arrow.empty_table() if batch is None else pa.Table.from_batches([batch])
        return table.replace_schema_metadata(file.schema_arrow.metadata).to_pandas()
    except (*_ARROW_ERRORS, OSError) as exc:
        raise InputError(f"cannot read {str(path)!r} as Parquet: {exc}") from None


def jsonl_records(path: Path | Location) -> Iterator[dict]:
    """The JSON object of each line of ``path`` (a local path, or a Location: local or at a
    URI) in order (blank lines skipped), read lazily; InputError names the bad line (not
    UTF-8, not JSON, not an object) or a read that failed."""
    try:
        with path.open_lines() if isinstance(path, Location) else open(path, "rb") as fh:
            yield from _records(path, fh)
    except OSError as exc:
        raise InputError(f"cannot read {str(path)!r}: {exc}") from None


def _records(path: Path | Location, fh) -> Iterator[dict]:
    """The records of the binary lines ``fh`` of ``path`` (see :func:`jsonl_records`)."""
    for lineno, raw in enumerate(fh, 1):
        try:
            text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{str(path)!r} line {lineno} is not valid UTF-8 (byte "
                             f"{exc.start} of the line); re-save the file as UTF-8") from None
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{str(path)!r} line {lineno} is not valid JSON: {exc.msg} "
                             f"(column {exc.colno}); expected one object per line") from None
        if not isinstance(record, dict):
            raise InputError(f"{str(path)!r} line {lineno} holds a JSON "
                             f"{type(record).__name__}, expected one object per line")
        yield record


def _read_jsonl(path: Path, str_cols: set[str], nrows: int | None = None) -> pd.DataFrame:
    """One JSON object per line (blank lines ignored), all of them or the first ``nrows``
    (lines after those are not read); InputError names the bad line."""
    return pd.DataFrame.from_records(list(itertools.islice(jsonl_records(path), nrows)))


READERS = {"csv": _read_csv, "parquet": _read_parquet, "jsonl": _read_jsonl}


def read_captions(root: Path) -> dict[str, str]:
    """``captions.csv`` at the folder root: normalised relative file path -> text."""
    path = root / "captions.csv"
    if not path.is_file():
        return {}
    df = _read_csv(path, {"file", "text"})
    if not {"file", "text"} <= set(df.columns):
        raise SchemaError(f"{str(path)!r} needs the columns file,text; columns present: "
                          f"{format_list(list(df.columns), 30)}")
    out: dict[str, str] = {}
    for file, text in zip(df["file"], df["text"]):
        key = posixpath.normpath(str(file).strip().replace("\\", "/"))
        if str(text).strip() and key not in out:
            out[key] = str(text).strip()
    return out


def _is_utf8(name: str) -> bool:
    """False for a name holding bytes that are not UTF-8 (os decodes them to lone
    surrogates, which cannot be written to Parquet or JSON as text)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def scan_folder(root: Path, home: Path
                 ) -> tuple[list[str], dict[str, int | None], dict[str, str], dict[str, int]]:
    """Walk ``root`` (no symlinked dirs, no hidden entries, not the workspace home).

    Returns (sorted image paths, their sizes, sidecar stem -> .txt path, skipped counts).
    Raises MediaError for a symlink that resolves outside ``root``.
    """
    exts = _media().IMAGE_EXTENSIONS
    images: list[str] = []
    sizes: dict[str, int | None] = {}
    sidecars: dict[str, str] = {}
    skipped: Counter[str] = Counter()
    bad_names: list[bytes] = []
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            if folder == root:
                raise InputError(f"cannot read the folder {root}: {exc.strerror}") from None
            skipped["unreadable folder"] += 1
            continue
        for entry in entries:
            rel = prefix + entry.name
            if entry.name.startswith("."):
                skipped["hidden file or folder"] += 1
                continue
            if not _is_utf8(entry.name):
                # undecodable bytes (surrogate-escaped by os) cannot be stored as an id
                kind = "folder" if _is_dir(entry) else "file"
                skipped[f"{kind} name is not valid UTF-8"] += 1
                bad_names.append(os.fsencode(rel))
                continue
            if entry.is_symlink() and not is_within(Path(entry.path), root):
                raise MediaError(f"{rel!r} is a symlink to {os.path.realpath(entry.path)}, "
                                 f"outside the data root {root}")
            if entry.is_dir():
                if entry.is_symlink():
                    skipped["symlinked folder"] += 1
                elif Path(entry.path) == home:
                    skipped["workspace folder"] += 1
                else:
                    stack.append((Path(entry.path), rel + "/"))
                continue
            stem, ext = posixpath.splitext(rel)
            if ext.lower() in exts:
                images.append(rel)
                try:
                    sizes[rel] = entry.stat().st_size
                except OSError:
                    sizes[rel] = None
            elif ext.lower() == ".txt":
                sidecars[stem] = rel
            elif rel != "captions.csv":
                skipped["not an image file"] += 1
    if bad_names:
        log.warning("skipped %d files or folders in %s whose names are not valid UTF-8 "
                    "(rename them to ingest them), e.g. %s", len(bad_names), root,
                    format_list(sorted(bad_names)))
    return sorted(images), sizes, sidecars, dict(skipped)

