"""Per-row content fingerprints: what an encoder reads from a row, hashed, so an update can
tell a row whose vector is still good from one that must be encoded again.

The sidecar ``<dataset>/row_content.parquet`` (not a user column: ``rows.parquet`` keeps the
user's columns) holds, in row order, ``id``, ``image`` (the path as stored), ``size`` and
``mtime_ns`` of the image file, and ``content``: 16 bytes of BLAKE2b over the row's modality
and what its encoder reads, the text of a text row or the bytes of an image row's file; null
when there is nothing to read (a missing or unreadable file). A caption of an image row is
metadata here: no encoder of an image row reads it.

Ingest writes the sidecar only for a dataset with image rows: a text row's content is its
text, kept in ``rows.parquet``, so an update computes those digests from the stored rows
when there is no sidecar (~1.5 s CPU per million rows, paid by an update instead of by
every ingest).

An update re-reads an image file only when its path, size or ``mtime_ns`` differ from the
recorded ones (or the media root moved); otherwise the recorded content is taken as is.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core import atomic

FINGERPRINTS_FILE = "row_content.parquet"
DIGEST_BYTES = 16
READ_BYTES = 1 << 20
SCHEMA = pa.schema([("id", pa.string()), ("image", pa.string()), ("size", pa.int64()),
                    ("mtime_ns", pa.int64()), ("content", pa.binary(DIGEST_BYTES))])


def text_digest(text: str | None) -> bytes | None:
    """BLAKE2b-128 of a text row's text (None: no text)."""
    if text is None:
        return None
    return hashlib.blake2b(b"text\0" + text.encode("utf-8", "surrogatepass"),
                           digest_size=DIGEST_BYTES).digest()


def file_stat(path: Path) -> tuple[int, int] | None:
    """(size, mtime_ns) of ``path``, None if it cannot be read."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def file_digest(path: Path) -> bytes | None:
    """BLAKE2b-128 of the bytes of ``path`` (read 1 MiB at a time), None if unreadable."""
    h = hashlib.blake2b(b"image\0", digest_size=DIGEST_BYTES)
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(READ_BYTES):
                h.update(chunk)
    except OSError:
        return None
    return h.digest()


def _image_row(full: Path, old: tuple | None) -> tuple[int | None, int | None, bytes | None]:
    """(size, mtime_ns, content) of one image file; ``old`` = (size, mtime_ns, content) recorded
    for the same path under the same root, reused when size and mtime_ns still match."""
    stat = file_stat(full)
    if stat is None:
        return None, None, None
    if old is not None and old[2] is not None and (old[0], old[1]) == stat:
        return stat[0], stat[1], old[2]
    return stat[0], stat[1], file_digest(full)


def fingerprint_batch(batch: pa.Table, root: Path | None, previous: dict[str, tuple],
                      pool: ThreadPoolExecutor) -> pa.Table:
    """The sidecar rows of one rows batch (columns id, modality, text, image, ingest_issue).
    ``previous``: id -> (image, size, mtime_ns, content) recorded before under ``root``."""
    ids = batch.column("id").to_pylist()
    modality = batch.column("modality").to_pylist()
    texts = batch.column("text").to_pylist()
    images = batch.column("image").to_pylist()
    out_size: list[int | None] = [None] * len(ids)
    out_mtime: list[int | None] = [None] * len(ids)
    content: list[bytes | None] = [None] * len(ids)
    jobs = []
    for i, (row_id, mod) in enumerate(zip(ids, modality)):
        if mod == "image" and images[i] is not None and root is not None:
            old = previous.get(row_id)
            same = old[1:] if old is not None and old[0] == images[i] else None
            jobs.append((i, root / images[i], same))
        elif mod == "text":
            content[i] = text_digest(texts[i])
    for (i, _, _), (size, mtime, digest) in zip(jobs, pool.map(lambda j: _image_row(j[1], j[2]), jobs)):
        out_size[i], out_mtime[i], content[i] = size, mtime, digest
    return pa.Table.from_arrays(
        [pa.array(ids, pa.string()), pa.array(images, pa.string()), pa.array(out_size, pa.int64()),
         pa.array(out_mtime, pa.int64()), pa.array(content, pa.binary(DIGEST_BYTES))], schema=SCHEMA)


def read_fingerprints(path: Path) -> dict[str, tuple]:
    """id -> (image, size, mtime_ns, content) of the image rows of the sidecar file ``path``
    (what an update may reuse; text rows are compared from their digests in the file)."""
    table = pq.read_table(path, filters=pc.field("image").is_valid())
    cols = [table.column(c).to_pylist() for c in ("image", "size", "mtime_ns", "content")]
    return dict(zip(table.column("id").to_pylist(), zip(*cols)))


def write_fingerprints(rows_path: Path, target: Path, root: Path | None,
                       previous: dict[str, tuple] | None = None, batch_rows: int = 65_536) -> None:
    """Write the sidecar of ``rows_path`` to ``target`` (atomically), batch by batch."""
    rows = pq.ParquetFile(rows_path)

    def write(path: Path) -> None:
        with pq.ParquetWriter(path, SCHEMA) as writer, \
                ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            for batch in _batches(rows, batch_rows):
                writer.write_table(fingerprint_batch(batch, root, previous or {}, pool))

    atomic.write_with(target, write)


def _batches(rows: pq.ParquetFile, batch_rows: int) -> Iterator[pa.Table]:
    cols = ["id", "modality", "text", "image"]
    for batch in rows.iter_batches(batch_size=batch_rows, columns=cols):
        yield pa.Table.from_batches([batch])


__all__ = ["DIGEST_BYTES", "FINGERPRINTS_FILE", "SCHEMA", "file_digest", "file_stat",
           "fingerprint_batch", "read_fingerprints", "text_digest", "write_fingerprints"]
