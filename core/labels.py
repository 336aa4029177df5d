"""Label edits: relabel rows and undo; the rows with their edited labels. ``rows.parquet`` is never touched.

The effective label of a row is its latest non-reverted edit (see
:meth:`core.store.Store.label_overrides`), else the ingested label.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from core.errors import InputError, NotFoundError, SchemaError, format_list
from core.workspace import Workspace


def apply_label_edits(rows: pd.DataFrame, overrides: dict[str, str | None]) -> pd.DataFrame:
    """A copy of ``rows`` whose ``label`` is ``overrides[id]`` where present (None clears it).

    ``overrides`` is what :meth:`core.store.Store.label_overrides` returns. Raises
    SchemaError if ``rows`` has no ``id`` column.
    """
    if "id" not in rows.columns:
        raise SchemaError(f"the rows table has no 'id' column; columns: "
                          f"{format_list([str(c) for c in rows.columns], 30)}")
    out = rows.copy()
    if "label" not in out.columns:
        out["label"] = None
    if not overrides:
        return out
    old = out["label"]
    labels = old.astype(object).where(old.notna(), None)
    ids = out["id"].astype(str)
    edited = ids.isin(overrides.keys()).to_numpy()
    labels[edited] = [overrides[i] for i in ids[edited]]
    out["label"] = labels.astype(old.dtype) if isinstance(old.dtype, pd.StringDtype) else labels
    return out


def effective_rows(ws, dataset: str) -> pd.DataFrame:
    """``ws.dataset(dataset).rows()`` with the store's label edits applied.

    Raises NotFoundError if the dataset does not exist.
    """
    rows = ws.dataset(dataset).rows()
    return apply_label_edits(rows, ws.store.label_overrides(dataset))


def relabel_rows(
    ws: Workspace, dataset: str, row_ids: Sequence[str], new_label: str, *, source: str = "manual"
) -> list[int]:
    """Set the label of ``row_ids`` to ``new_label``; returns the edit ids (for undo).

    Rows whose effective label already equals ``new_label`` are left alone.
    Raises NotFoundError for unknown ids, InputError for an empty label.
    """
    if not isinstance(new_label, str) or not new_label.strip():
        raise InputError("the new label is empty")
    new_label = new_label.strip()
    rows = effective_rows(ws, dataset)
    current = dict(zip(rows["id"].astype(str), rows["label"]))
    ids = list(dict.fromkeys(str(r) for r in row_ids))
    missing = [r for r in ids if r not in current]
    if missing:
        raise NotFoundError(f"{len(missing)} row(s) not in {dataset!r}: {format_list(missing)}")
    changing = [r for r in ids if current[r] != new_label]
    if not changing:
        return []
    old = [None if current[r] is None or current[r] != current[r] else str(current[r]) for r in changing]
    return ws.store.relabel(dataset, changing, new_label, old, source=source)


def undo_relabel(ws: Workspace, dataset: str, edit_ids: Sequence[int]) -> int:
    """Revert label edits by id; returns how many were reverted."""
    return ws.store.revert_edits(dataset, list(edit_ids))
