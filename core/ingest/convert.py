"""One batch of a source table into the rows table's own columns (``id, text, image, label``
as text, blanks as nulls) and its metadata column names; the same for every batch, so a
table read in batches gives the rows it would give read whole."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core._shared import CORE_COLUMNS, as_text  # as_text: ingest's reading of ids, shared with predictions


def blank(values: pa.Array) -> np.ndarray:
    """(m,) bool: True where a string value is null or only whitespace (as ``str.strip``)."""
    empty = pc.equal(pc.utf8_trim_whitespace(values), "")
    return pc.fill_null(empty, True).to_numpy(zero_copy_only=False)


def blank_to_null(values: pa.Array, is_blank: np.ndarray) -> pa.Array:
    """``values`` with the rows where ``is_blank`` made null."""
    return pc.if_else(pa.array(is_blank), pa.nulls(len(values), values.type), values)


def generated_ids(start: int, count: int, total: int) -> pa.Array:
    """``row-<n>`` for rows ``start .. start+count-1`` of ``total``, zero-padded to the width
    of ``total`` (``row-007`` of 100)."""
    numbers = np.arange(start, start + count).astype(str)
    return pa.array(np.char.add("row-", np.char.zfill(numbers, len(str(total)))), pa.string())


@dataclass(frozen=True)
class CoreValues:
    """The row columns of one batch of m source rows (string arrays; blanks are null)."""

    ids: pa.Array | None    # None: no id column (ids are generated)
    id_blank: np.ndarray    # (m,) bool
    text: pa.Array
    image: pa.Array
    label: pa.Array

    @property
    def has_image(self) -> np.ndarray:
        """(m,) bool: rows with an image path."""
        return self.image.is_valid().to_numpy(zero_copy_only=False)

    @property
    def bad_text(self) -> np.ndarray:
        """(m,) bool: rows without an image whose text is null or blank."""
        return ~self.has_image & ~self.text.is_valid().to_numpy(zero_copy_only=False)


def core_values(batch: pa.Table, cols: dict[str, str | None], columns: tuple[str, ...] = ("id", "text", "image", "label")
                ) -> CoreValues:
    """The ``columns`` roles of ``batch`` mapped by ``cols`` (role -> source column or None)
    as :class:`CoreValues`; roles not asked for, or unmapped, are all null."""
    m = batch.num_rows
    nulls = pa.nulls(m, pa.string())

    def role(name: str) -> pa.Array:
        if name not in columns or cols[name] is None:
            return nulls
        values = as_text(batch.column(cols[name]))
        return blank_to_null(values, blank(values))

    ids = as_text(batch.column(cols["id"])) if cols["id"] and "id" in columns else None
    id_blank = blank(ids) if ids is not None else np.zeros(m, bool)
    return CoreValues(ids, id_blank, role("text"), role("image"), role("label"))


def rename_clashes(columns: list[str]) -> list[str]:
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


__all__ = ["CoreValues", "as_text", "blank", "blank_to_null", "core_values", "generated_ids",
           "rename_clashes"]
