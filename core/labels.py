"""Label edits as a capability: relabel rows and undo, never touching rows.parquet.

The effective label of a row is its latest non-reverted edit (see
:meth:`core.store.Store.label_overrides`), else the ingested label.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.errors import InputError, NotFoundError, format_list
from core.export import effective_rows
from core.workspace import Workspace


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
