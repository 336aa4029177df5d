"""Streamlit glue of the Slices page: the slice table, rename / delete / undo and "Open in
Catalog" callbacks, the export downloads, and saving a slice with an explicit replace.

Exports go through :func:`core.export.export_rows` into a temporary folder (so the
bytes offered for download are exactly what ``catalog export`` writes), with edited
labels applied. They are cached with ``st.cache_data`` keyed by the slice's ids hash,
the format and the rows stamp + label edits, so a rerun never exports again.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from core._shared import ids_hash
from core.errors import CatalogError, NotFoundError, format_list
from core.export import (
    EXPORT_FORMATS,
    EXPORT_SUFFIXES,
    export_rows,
    recipe_path_for,
    rows_for_export,
)
from core.filters import RowFilter
from core.store import Slice
from core.workspace import Workspace
from ui import state
from ui.filter_panel import rename_slice_in_filter, set_filter
from ui.grid import safe_text
from ui.loaders import labels_key as rows_key
from ui.messages import flash, flash_error, show, show_error

MIME = {"csv": "text/csv", "jsonl": "application/jsonl", "ndjson": "application/x-ndjson",
        "label-studio": "application/json"}
PICK_KEY = "slices:pick"
NEW_NAME_KEY = "slices:new_name"
DELETED_KEY = "slices:deleted"
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class SliceDownload:
    """An exported slice: ``data`` (the file), ``recipe`` (the ``.recipe.json`` sidecar)."""

    data: bytes
    recipe: bytes
    file_name: str  # e.g. "digits-to-label.ndjson"; label-studio: "digits-to-label.json"
    recipe_name: str  # e.g. "digits-to-label.ndjson.recipe.json"
    mime: str
    rows: int


def slice_table(ws: Workspace, dataset: str) -> pd.DataFrame:
    """Live slices, newest first: columns name, rows, method, created."""
    slices = ws.store.list_slices(dataset)
    return pd.DataFrame({"name": [s.name for s in slices], "rows": [len(s.ids) for s in slices],
                         "method": [s.method for s in slices], "created": [s.created for s in slices]})


def slice_rows(rows: pd.DataFrame, sl: Slice) -> pd.DataFrame:
    """The rows of ``sl`` in slice order. Raises NotFoundError naming ids no longer in the
    dataset (e.g. after a re-ingest)."""
    pos = pd.Index(rows["id"].astype(str)).get_indexer(list(sl.ids))
    if (pos < 0).any():
        missing = [rid for rid, p in zip(sl.ids, pos) if p < 0]
        raise NotFoundError(f"{len(missing)} row(s) of slice {sl.name!r} are no longer in "
                            f"{sl.dataset!r}: {format_list(missing)}")
    return rows.iloc[pos].reset_index(drop=True)


def file_stem(dataset: str, name: str) -> str:
    """``<dataset>-<slice>`` with characters unsafe in file names replaced by ``_``."""
    return _UNSAFE_FILE_CHARS.sub("_", f"{dataset}-{name}").strip("._") or "slice"


def export_bytes(ws: Workspace, dataset: str, name: str, fmt: str) -> SliceDownload:
    """Export slice ``name`` of ``dataset`` as ``fmt`` (csv | jsonl | ndjson | label-studio,
    a ``.json`` file of Label Studio tasks with local-files image URLs) and return the
    bytes of the file and of its recipe sidecar: the rows and recipe of
    :func:`core.export.rows_for_export` (what ``catalog export --slice`` writes), with
    the effective (edited) labels.

    Raises NotFoundError (no such slice, rows gone) and InputError (unknown format;
    ndjson or label-studio of image rows without a media root).
    """
    chosen = rows_for_export(ws, dataset, slice_name=name)
    ds = ws.dataset(dataset)
    file_name = file_stem(dataset, chosen.recipe["slice"]) + EXPORT_SUFFIXES.get(fmt, f".{fmt}")
    with tempfile.TemporaryDirectory(prefix="catalog-export-") as tmp:
        report = export_rows(chosen.rows, Path(tmp) / file_name, fmt, recipe=chosen.recipe,
                             media_root=ds.media_root)
        data, recipe = report.path.read_bytes(), report.recipe_path.read_bytes()
    return SliceDownload(data, recipe, file_name, recipe_path_for(file_name).name,
                         MIME.get(fmt, "application/octet-stream"), report.rows)


@st.cache_data(show_spinner="Exporting…", max_entries=16)
def _cached_export(home: str, dataset: str, name: str, slice_hash: str, created: str, fmt: str,
                   table_key: str, _ws: Workspace) -> SliceDownload:
    return export_bytes(_ws, dataset, name, fmt)


def cached_export(ws: Workspace, dataset: str, sl: Slice, fmt: str) -> SliceDownload:
    """:func:`export_bytes`, cached per slice content, format and rows/label-edit state."""
    return _cached_export(str(ws.home), dataset, sl.name, ids_hash(list(sl.ids)), sl.created,
                          fmt, rows_key(ws, dataset), ws)


# ---- actions (run as button callbacks, before the page redraws) --------------------------
def rename(ws: Workspace, dataset: str, old: str) -> None:
    """Rename ``old`` to the name typed in the rename box; keeps it picked."""
    try:
        new = ws.store.rename_slice(dataset, old, st.session_state.get(NEW_NAME_KEY, ""))
    except CatalogError as err:
        flash_error(err)
        return
    st.session_state[PICK_KEY] = new.name
    st.session_state[NEW_NAME_KEY] = ""
    rename_slice_in_filter(dataset, old, new.name)
    flash(f"Renamed slice '{old}' to '{new.name}'.")


def deleted(dataset: str) -> list[str]:
    """Names deleted in this session, most recent last (what Undo restores)."""
    return st.session_state.setdefault(DELETED_KEY, {}).setdefault(dataset, [])


def delete(ws: Workspace, dataset: str, name: str) -> None:
    """Soft-delete ``name`` and remember it for Undo."""
    try:
        ws.store.delete_slice(dataset, name)
    except CatalogError as err:
        flash_error(err)
        return
    deleted(dataset).append(name)
    rename_slice_in_filter(dataset, name, None)
    flash(f"Deleted slice '{name}'.")


def undo_delete(ws: Workspace, dataset: str) -> None:
    """Restore the most recently deleted slice and pick it."""
    stack = deleted(dataset)
    if not stack:
        return
    name = stack.pop()
    try:
        ws.store.restore_slice(dataset, name)
    except CatalogError as err:
        flash_error(err)
        return
    st.session_state[PICK_KEY] = name
    flash(f"Restored slice '{name}'.")


def open_in_catalog(sl: Slice) -> None:
    """Callback of "Open in Catalog": the slice's dataset becomes the active one (the
    sidebar picker) and its Catalog filter exactly "in slice <name>" (other conditions
    and every panel's widgets reset), so the Catalog shows the slice's rows and only
    them. The page then calls ``st.switch_page`` (a no-op inside a callback)."""
    st.session_state[state.DATASET_KEY] = sl.dataset
    set_filter(sl.dataset, RowFilter(slice_name=sl.name))


# ---- saving under a taken name -----------------------------------------------------------
def replace_choice(ws: Workspace, dataset: str, name: str, *, key: str) -> bool:
    """The explicit "Replace slice '<name>'" checkbox (widget ``key``), drawn only when
    slice ``name`` exists; True if it exists and is ticked. A save never replaces a slice
    without it: the store refuses a taken name unless asked to replace."""
    name = (name or "").strip()
    if not name or name not in {s.name for s in ws.store.list_slices(dataset)}:
        return False
    return st.checkbox(f"Replace slice '{safe_text(name, 60)}'", key=key,
                       help="Overwrite its rows and recipe with these rows.")


def save_slice(ws: Workspace, dataset: str, name: str, ids: Sequence[str], recipe: dict | None, *,
               replace: bool = False) -> None:
    """Save ``ids`` as slice ``name`` (``replace``: over the existing slice, through
    :meth:`core.store.Store.save_slice`) and show the outcome or the error (e.g. the name
    is taken and ``replace`` is False)."""
    try:
        saved = ws.store.save_slice(dataset, name, list(ids), recipe, replace=replace)
    except CatalogError as err:
        show_error(err)
        return
    verb = "Replaced" if replace else "Saved"
    show(f"{verb} slice '{saved.name}' with {len(saved.ids):,} rows.")


__all__ = [
    "EXPORT_FORMATS",
    "SliceDownload",
    "cached_export",
    "delete",
    "deleted",
    "export_bytes",
    "open_in_catalog",
    "rename",
    "replace_choice",
    "save_slice",
    "slice_rows",
    "slice_table",
    "undo_delete",
]
