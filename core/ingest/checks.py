"""The first pass of a table ingest: the checks that need the whole table (null ids, duplicate
ids, rows without text or image) run over the id, text and image columns before anything is
written or any image is opened.

Duplicate ids are found by a 64-bit hash of each id (``pandas.util.hash_array``): 8 bytes a
row (80 MB at 10M rows) however long the ids, sorted once at the end. Rows whose hashes meet
are read again and compared as strings, so a hash collision is never reported as a duplicate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from core.errors import SchemaError, format_list
from core.ingest.convert import CoreValues, as_text, core_values, generated_ids
from core.ingest.tables import TableReader

_EXAMPLES = 5


@dataclass
class Examples:
    """How many rows have one problem, and the first few of them (row numbers or ids)."""

    count: int = 0
    first: list = field(default_factory=list)

    def add(self, values: list, count: int) -> None:
        self.count += count
        self.first.extend(values[: _EXAMPLES - len(self.first)])

    def text(self) -> str:
        """``'a', 'b' (+12 more)``, as :func:`core.errors.format_list` of every row."""
        more = self.count - len(self.first)
        return format_list(self.first) + (f" (+{more} more)" if more > 0 else "")


class IdHashes:
    """One uint64 hash per id, in row order (preallocated when the row count is known)."""

    def __init__(self, total: int | None) -> None:
        self._array = np.empty(total, np.uint64) if total is not None else None
        self._parts: list[np.ndarray] = []
        self._n = 0

    def add(self, ids: pa.Array) -> None:
        hashes = pd.util.hash_array(ids.fill_null("").to_numpy(zero_copy_only=False),
                                    categorize=False)
        if self._array is not None and self._n + len(hashes) <= len(self._array):
            self._array[self._n:self._n + len(hashes)] = hashes
        else:
            self._parts.append(hashes)
        self._n += len(hashes)

    def shared(self) -> np.ndarray:
        """Sorted row numbers whose hash another row shares (possible duplicates)."""
        parts = ([self._array[: min(self._n, len(self._array))]] if self._array is not None
                 else []) + self._parts
        hashes = np.concatenate(parts) if len(parts) != 1 else parts[0]
        ordered = np.sort(hashes)
        repeated = ordered[1:][ordered[1:] == ordered[:-1]]
        if not len(repeated):
            return np.empty(0, np.int64)
        return np.flatnonzero(np.isin(hashes, np.unique(repeated)))


@dataclass
class TableScan:
    """What the first pass found in a table of ``rows`` rows."""

    hashes: IdHashes | None
    rows: int = 0
    image_rows: int = 0
    null_ids: Examples = field(default_factory=Examples)     # row numbers
    bad_text: Examples = field(default_factory=Examples)     # (row number, id or None)

    def add(self, core: CoreValues) -> None:
        m = len(core.text)
        if core.ids is not None:
            bad = np.flatnonzero(core.id_blank)
            self.null_ids.add((bad[:_EXAMPLES] + self.rows).tolist(), len(bad))
            self.hashes.add(core.ids)
        bad = np.flatnonzero(core.bad_text)
        if len(bad):
            ids = (core.ids.take(pa.array(bad[:_EXAMPLES])).to_pylist() if core.ids is not None
                   else [None] * min(len(bad), _EXAMPLES))
            self.bad_text.add(list(zip((bad[:_EXAMPLES] + self.rows).tolist(), ids)), len(bad))
        self.image_rows += int(core.has_image.sum())
        self.rows += m


def scan_table(reader: TableReader, cols: dict[str, str | None],
               tick: Callable[[int], None]) -> TableScan:
    """Read the id, text and image columns of ``reader`` (mapped by ``cols``) once."""
    wanted = list(dict.fromkeys(c for c in (cols["id"], cols["text"], cols["image"]) if c))
    scan = TableScan(IdHashes(reader.total_rows) if cols["id"] else None)
    for batch in reader.scan(wanted):
        scan.add(core_values(batch, cols, ("id", "text", "image")))
        tick(batch.num_rows)
    return scan


def duplicate_ids(reader: TableReader, id_col: str, rows: np.ndarray) -> dict[str, list[int]]:
    """Id -> row numbers, for the ids at ``rows`` (sorted) that occur more than once."""
    found: dict[str, list[int]] = {}
    start = 0
    for batch in reader.scan([id_col]):
        lo, hi = np.searchsorted(rows, [start, start + batch.num_rows])
        if hi > lo:
            ids = as_text(batch.column(id_col)).take(pa.array(rows[lo:hi] - start)).to_pylist()
            for row, value in zip(rows[lo:hi].tolist(), ids):
                found.setdefault(value, []).append(row)
        start += batch.num_rows
    return {k: v for k, v in found.items() if len(v) > 1}


def _where(rows: list[int]) -> str:
    shown = [f"{r:,}" for r in rows[:4]]
    text = ", ".join(shown[:-1]) + f" and {shown[-1]}" if len(shown) > 1 else shown[0]
    return text + (f" (+{len(rows) - 4} more)" if len(rows) > 4 else "")


def check_scan(scan: TableScan, reader: TableReader, src: Path, cols: dict[str, str | None],
               skip_invalid: bool) -> dict[str, int]:
    """Raise the first problem of ``scan`` in the order an ingest reports them; returns the
    rows skipped by reason (``skip_invalid``). Raises SchemaError: no rows, null or empty
    ids (their row numbers), duplicate ids (each with its row numbers, 0-based), rows
    without image and text, nothing left after skipping."""
    if scan.rows == 0:
        raise SchemaError(f"table {str(src)!r} has no rows")
    if scan.null_ids.count:
        raise SchemaError(f"{scan.null_ids.count} rows have a null or empty id in column "
                          f"{cols['id']!r} (row numbers, 0-based: {scan.null_ids.text()})")
    shared = scan.hashes.shared() if scan.hashes is not None else np.empty(0)
    dups = duplicate_ids(reader, cols["id"], shared) if len(shared) else {}
    if dups:
        ordered = sorted(dups, key=lambda k: dups[k][1])  # by each id's second row, as pandas
        rows = "; ".join(f"{k!r} at rows {_where(dups[k])}" for k in ordered[:_EXAMPLES])
        raise SchemaError(f"duplicate ids: {len(dups)} ids appear more than once in column "
                          f"{cols['id']!r}, e.g. {format_list(ordered)}; ids must be unique "
                          f"({rows}; row numbers 0-based)")
    skipped: dict[str, int] = {}
    if scan.bad_text.count:
        scan.bad_text.first = [i if i is not None else generated_ids(r, 1, scan.rows)[0].as_py()
                               for r, i in scan.bad_text.first]
        if not skip_invalid:
            raise SchemaError(f"{scan.bad_text.count} rows have no image and empty or null text "
                              f"(ids {scan.bad_text.text()}); fix them or pass --skip-invalid "
                              "(skip_invalid=True) to skip them")
        skipped["empty text"] = scan.bad_text.count
        if scan.bad_text.count == scan.rows:
            raise SchemaError(f"every row of {str(src)!r} has empty text; nothing to ingest")
    return skipped


__all__ = ["Examples", "IdHashes", "TableScan", "check_scan", "duplicate_ids", "scan_table"]
