"""Writing a dataset: the second pass of a table ingest (:class:`TablePlan`, one rows batch
per source batch) and the atomic write of ``rows.parquet`` + ``dataset.json``
(:func:`save_dataset`, a Parquet row group per batch into a temp folder swapped in at the end).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core import atomic
from core._shared import CORE_COLUMNS
from core.errors import AlreadyExistsError, MediaError
from core.ingest.convert import core_values, generated_ids
from core.ingest.fingerprints import FINGERPRINTS_FILE, write_fingerprints
from core.ingest.images import check_images, resolve_images
from core.ingest.report import IngestReport, Tally
from core.ingest.tables import TableReader
from core.workspace import Workspace

log = logging.getLogger(__name__)


class Progress(Protocol):
    """Rows done: ``progress(rows)`` after a batch, ``progress.within(rows)`` inside one."""

    def __call__(self, rows: int) -> None: ...

    def within(self, rows: int) -> None: ...


@dataclass(frozen=True)
class TablePlan:
    """The second pass of a table ingest: each source batch into a rows batch (the core
    columns as text, metadata as read, image paths resolved and checked)."""

    reader: TableReader
    cols: dict[str, str | None]
    meta_cols: list[str]        # source columns kept as metadata, in source order
    meta_names: list[str]       # their names in rows.parquet
    total: int                  # source rows
    skip_bad_text: bool
    root: Path | None           # image root (None: no image rows)
    src: Path

    def schema(self) -> pa.Schema:
        fields = [pa.field(c, pa.string()) for c in CORE_COLUMNS]
        fields += [self.reader.field(c).with_name(n) for c, n in zip(self.meta_cols, self.meta_names)]
        return pa.schema(fields, metadata=self._pandas_metadata())

    def _pandas_metadata(self) -> dict[bytes, bytes] | None:
        """The source's pandas metadata (its dtypes, e.g. nullable Int64) for the columns kept."""
        meta = self.reader.pandas_metadata
        if not meta:
            return None
        entries = {e.get("field_name", e.get("name")): e for e in meta.get("columns", [])}
        columns = [{"name": c, "field_name": c, "pandas_type": "unicode", "numpy_type": "object",
                    "metadata": None} for c in CORE_COLUMNS]
        columns += [{**entries[c], "name": n, "field_name": n}
                    for c, n in zip(self.meta_cols, self.meta_names) if c in entries]
        return {b"pandas": json.dumps({**meta, "index_columns": [], "columns": columns}).encode()}

    def batches(self, tally: Tally, tick: Progress) -> Iterator[pa.Table]:
        """Rows batches in source order (images checked); MediaError at the end if every
        image is unreadable."""
        schema, start = self.schema(), 0
        for batch in self.reader.batches():
            m = batch.num_rows
            core = core_values(batch, self.cols)
            ids = core.ids if core.ids is not None else generated_ids(start, m, self.total)
            modality = pc.if_else(core.image.is_valid(), "image", "text")
            arrays = [ids, modality, core.text, core.image, core.label, pa.nulls(m, pa.string())]
            table = pa.Table.from_arrays(arrays + [batch.column(c) for c in self.meta_cols],
                                         schema=schema)
            if self.skip_bad_text:
                table = table.filter(pa.array(~core.bad_text))
            if self.root is not None:
                table = self._check_images(table, tally, tick)
            tally.add(table)
            start += m
            tick(m)
            yield table
        if tally.image_rows and tally.broken == tally.image_rows:
            raise MediaError(f"all {tally.image_rows} images referenced by {str(self.src)!r} under "
                             f"the image root {self.root} are unreadable, e.g. "
                             f"{tally.first_broken[0]!r}: {tally.first_broken[1]}")

    def _check_images(self, table: pa.Table, tally: Tally, tick: Progress) -> pa.Table:
        has = np.flatnonzero(table.column("image").is_valid().to_numpy(zero_copy_only=False))
        if not len(has):
            return table
        rel, full = resolve_images(table.column("image").take(has).to_pylist(), self.root)
        issues = [c[0] for c in check_images(full, lambda done, _: tick.within(done), dims=False)]
        images = table.column("image").to_pylist()
        flags: list[str | None] = [None] * table.num_rows
        for i, path, issue in zip(has.tolist(), rel, issues):
            images[i], flags[i] = path, issue
            if issue is not None:
                tally.broken += 1
                tally.first_broken = tally.first_broken or (path, issue)
        tally.image_rows += len(has)
        table = table.set_column(3, "image", pa.array(images, pa.string()))
        return table.set_column(5, "ingest_issue", pa.array(flags, pa.string()))


def folder_table(rows: pd.DataFrame) -> pa.Table:
    """Arrow table of the folder rows with string core columns."""
    table = pa.Table.from_pandas(rows, preserve_index=False)
    for i, col in enumerate(CORE_COLUMNS):
        table = table.set_column(i, col, table.column(i).cast(pa.string()))
    return table


def save_dataset(ws: Workspace, name: str, schema: pa.Schema, tables: Iterable[pa.Table],
                 tally: Tally, info: dict, skipped: dict[str, int], replace: bool) -> IngestReport:
    """Write ``tables`` as rows.parquet (one row group a batch), the content fingerprints
    of its image files (:mod:`core.ingest.fingerprints`; none for text-only rows) and dataset.json in a temp dir and swap it in as the
    dataset; any error leaves the workspace as it was."""

    def write(path: Path) -> None:
        with pq.ParquetWriter(path, schema) as writer:
            for table in tables:
                if table.num_rows:
                    writer.write_table(table)

    with atomic.atomic_dir(ws.dataset_path(name)) as tmp:
        atomic.write_with(tmp / "rows.parquet", write)
        report = tally.report(name, skipped)
        if report.modalities.get("image"):  # a text row's content is its text in rows.parquet
            root = info.get("media_root")
            write_fingerprints(tmp / "rows.parquet", tmp / FINGERPRINTS_FILE, Path(root) if root else None)
        atomic.write_json(tmp / "dataset.json", {
            **info, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "rows": report.rows, "ingest": report.to_json()})
        if not replace and ws.has_dataset(name):  # created meanwhile by another process
            raise AlreadyExistsError(f"dataset {name!r} already exists in {ws.home}; "
                                     "pass --replace (replace=True) to overwrite it")
    log.info("ingested %s: %d rows from %s", name, report.rows, info["source"])
    return report


__all__ = ["Progress", "TablePlan", "folder_table", "save_dataset"]
