"""``ingest(..., update=True)``: a stored dataset brought up to date with its changed source,
keeping what did not change (vectors, tags, slices, label edits).

The new source is read and checked as a fresh ingest would (:mod:`core.ingest.pipeline`),
its rows written to a staged copy of the dataset folder, and compared by id with the stored
rows in DuckDB: ids only in the source are *added*; ids in both are *changed* when any column
differs (compared as text) or their content fingerprint (:mod:`core.ingest.fingerprints`)
does, else *kept*; stored ids missing from the source are *removed* (or kept, with
``keep_missing``, after the source's rows). Rows whose content changed, and removed rows,
lose their vectors in every embedding (:func:`core.embeddings.carry_embeddings`); the next
``compute_embeddings`` encodes only rows without one. Everything is built in a temp folder
(other files hard-linked) and swapped in at the end (:func:`core.atomic.atomic_dir`): an
error or a kill before the swap leaves the stored dataset as it was. Tags, slices and label
edits live in the store keyed by (dataset, id) and are not touched.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable
from dataclasses import replace as with_fields
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core import atomic
from core._shared import now_iso
from core.embeddings import carry_embeddings, link_tree
from core.errors import SchemaError
from core.ingest.fingerprints import (
    FINGERPRINTS_FILE,
    read_fingerprints,
    write_fingerprints,
)
from core.ingest.report import IngestReport, Tally, UpdateCounts
from core.workspace import Workspace

log = logging.getLogger(__name__)

_INCOMING, _INCOMING_CONTENT, _OLD_CONTENT = ".incoming.parquet", ".incoming_content.parquet", ".old_content.parquet"
_BATCH = 65_536


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _connect(readable: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that may read files under ``readable`` only."""
    con = duckdb.connect(config={"threads": 2})
    con.execute(f"SET allowed_directories = ['{str(readable).replace(chr(39), chr(39) * 2)}/']")
    con.execute("SET enable_external_access = false")
    return con


def _write_rows(path: Path, schema: pa.Schema, tables: Iterable[pa.Table]) -> None:
    with pq.ParquetWriter(path, schema) as writer:
        for table in tables:
            if table.num_rows:
                writer.write_table(table)


def compare(con: duckdb.DuckDBPyConnection, old: Path, new: Path, old_content: Path,
            new_content: Path) -> tuple[dict[str, int], np.ndarray, np.ndarray]:
    """Compare the rows tables ``old`` and ``new`` (and their sidecars) by id: (counts added,
    changed, content_changed, kept, missing; ids (m,) str of rows in both whose content
    changed; (n_old,) bool, True where an old row's id is missing from ``new``)."""
    old_cols, new_cols = pq.read_schema(old).names, pq.read_schema(new).names
    for view, path in (("o", old), ("n", new), ("oc", old_content), ("nc", new_content)):
        con.read_parquet(str(path)).create_view(view)
    if old_cols == new_cols:
        diff = " OR ".join(f"CAST(o.{_quote(c)} AS VARCHAR) IS DISTINCT FROM CAST(n.{_quote(c)} AS VARCHAR)"
                           for c in new_cols if c != "id") or "FALSE"
    else:  # columns added, dropped or moved: every row's record changed
        diff = "TRUE"
    con.execute(f"""CREATE TEMP TABLE cmp AS SELECT n.id AS id, o.id IS NULL AS added,
        ({diff}) AS record_changed, nc.content IS DISTINCT FROM oc.content AS content_changed
        FROM n LEFT JOIN o ON o.id = n.id LEFT JOIN nc ON nc.id = n.id LEFT JOIN oc ON oc.id = n.id""")
    added, changed, content, kept = con.execute("""SELECT
        count(*) FILTER (WHERE added),
        count(*) FILTER (WHERE NOT added AND (record_changed OR content_changed)),
        count(*) FILTER (WHERE NOT added AND content_changed),
        count(*) FILTER (WHERE NOT added AND NOT record_changed AND NOT content_changed) FROM cmp""").fetchone()
    content_ids = con.execute("SELECT id FROM cmp WHERE NOT added AND content_changed").fetchnumpy()["id"]
    missing = con.execute("""SELECT n.id IS NULL AS missing
        FROM read_parquet(?, file_row_number = true) o LEFT JOIN (SELECT id FROM n) n ON n.id = o.id
        ORDER BY o.file_row_number""", [str(old)]).fetchnumpy()["missing"]
    mask = np.asarray(missing, dtype=bool)
    counts = {"added": added, "changed": changed, "content_changed": content, "kept": kept,
              "missing": int(mask.sum())}
    return counts, np.asarray(content_ids, dtype=str), mask


def _old_rows(path: Path, mask: np.ndarray, schema: pa.Schema) -> Iterable[pa.Table]:
    """The rows of ``path`` where ``mask`` (row order), cast to ``schema`` (columns it lacks
    are null); SchemaError naming the column that does not convert."""
    start = 0
    for table in _batches(path):
        part = table.filter(pa.array(mask[start:start + table.num_rows]))
        start += table.num_rows
        if not part.num_rows:
            continue
        arrays = []
        for field in schema:
            if field.name not in part.column_names:
                arrays.append(pa.nulls(part.num_rows, field.type))
                continue
            try:
                arrays.append(part.column(field.name).cast(field.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
                raise SchemaError(f"cannot keep the rows missing from the source: their column "
                                  f"{field.name!r} does not convert to the source's "
                                  f"{field.type}: {err}") from None
        yield pa.Table.from_arrays(arrays, schema=schema)


def save_update(ws: Workspace, name: str, schema: pa.Schema, tables: Iterable[pa.Table],
                tally: Tally, info: dict, skipped: dict[str, int],
                keep_missing: bool = False) -> IngestReport:
    """Bring the stored dataset ``name`` up to date with the source rows ``tables`` (see the
    module docstring). Raises NotFoundError (no such dataset), SchemaError (missing rows that
    do not fit the new columns, with ``keep_missing``); on any error nothing is changed."""
    ds = ws.dataset(name)
    old_info = ds.info()
    old_root, new_root = old_info.get("media_root"), info.get("media_root")
    notes: list[str] = []
    with atomic.atomic_dir(ds.path) as tmp:
        incoming = tmp / _INCOMING
        atomic.write_with(incoming, lambda p: _write_rows(p, schema, tables))
        old_content = ds.path / FINGERPRINTS_FILE
        if not old_content.is_file():  # text rows only, or ingested before fingerprints were recorded
            old_content = tmp / _OLD_CONTENT
            write_fingerprints(ds.rows_path, old_content, Path(old_root) if old_root else None)
            stored = (old_info.get("ingest") or {}).get("modalities")
            if stored is None or stored.get("image"):
                notes.append("no content fingerprints were recorded for the stored rows: image files "
                             "at the same path are taken as unchanged")
        previous = read_fingerprints(old_content) if old_root == new_root else None
        write_fingerprints(incoming, tmp / _INCOMING_CONTENT, Path(new_root) if new_root else None, previous)
        con = _connect(ws.datasets_dir)
        try:
            counts, content_ids, missing = compare(con, ds.rows_path, incoming, old_content,
                                                   tmp / _INCOMING_CONTENT)
        finally:
            con.close()
        rows_out, content_out = tmp / "rows.parquet", tmp / FINGERPRINTS_FILE
        if keep_missing and missing.any():
            kept_old = (_tallied(t, tally) for t in _old_rows(ds.rows_path, missing, schema))
            atomic.write_with(rows_out, lambda p: _write_rows(
                p, schema, itertools.chain(_batches(incoming), kept_old)))
            content_schema = pq.read_schema(tmp / _INCOMING_CONTENT)
            atomic.write_with(content_out, lambda p: _write_rows(p, content_schema, itertools.chain(
                _batches(tmp / _INCOMING_CONTENT), _old_rows(old_content, missing, content_schema))))
        else:
            incoming.rename(rows_out)
            (tmp / _INCOMING_CONTENT).rename(content_out)
        drop = content_ids
        if not keep_missing and missing.any():
            old_ids = pq.read_table(ds.rows_path, columns=["id"]).column("id")
            removed = old_ids.filter(pa.array(missing)).to_numpy(zero_copy_only=False).astype(str)
            drop = np.concatenate([content_ids, removed])
        total_rows = pq.ParquetFile(rows_out).metadata.num_rows
        dropped = carry_embeddings(ds, tmp, drop, total_rows)
        link_tree(ds.path, tmp, skip=("rows.parquet", "dataset.json", FINGERPRINTS_FILE, "embeddings"))
        for leftover in (_INCOMING, _INCOMING_CONTENT, _OLD_CONTENT):
            (tmp / leftover).unlink(missing_ok=True)
        gone = [e for e, n in dropped.items() if n < 0]
        if gone:
            notes.append(f"embeddings left without a vector were removed: {', '.join(gone)}")
        update = UpdateCounts(
            added=counts["added"], changed=counts["changed"], content_changed=counts["content_changed"],
            removed=0 if keep_missing else counts["missing"], kept=counts["kept"],
            kept_missing=counts["missing"] if keep_missing else 0,
            vectors_dropped={e: n for e, n in dropped.items() if n >= 0}, notes=tuple(notes))
        report = with_fields(tally.report(name, skipped), update=update)
        default = old_info.get("default_embedding")
        atomic.write_json(tmp / "dataset.json", {
            **old_info, **info, "default_embedding": None if default in gone else default,
            "created": old_info.get("created"), "updated": now_iso(), "rows": report.rows,
            "ingest": report.to_json()})
    log.info("updated %s: %s", name, update.text())
    return report


def _batches(path: Path) -> Iterable[pa.Table]:
    for batch in pq.ParquetFile(path).iter_batches(batch_size=_BATCH):
        yield pa.Table.from_batches([batch])


def _tallied(table: pa.Table, tally: Tally) -> pa.Table:
    tally.add(table)
    return table


__all__ = ["compare", "save_update"]
