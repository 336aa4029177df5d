"""Per-user state kept in ``st.session_state``: active dataset/embedding, selection,
anchors, the shared row filter and the row whose detail is open.

Pages go through these helpers instead of touching session keys directly, so the
keys are defined once.
"""

from __future__ import annotations

from collections.abc import Iterable

import streamlit as st

from core.filters import RowFilter

DATASET_KEY = "sidebar:dataset"
EMBEDDING_KEY = "sidebar:embedding"


def active_dataset() -> str | None:
    """The dataset chosen in the sidebar (None: the workspace has none)."""
    return st.session_state.get(DATASET_KEY)


def active_embedding() -> str | None:
    """The embedding chosen in the sidebar (None: the dataset has none)."""
    return st.session_state.get(EMBEDDING_KEY)


def _bucket(name: str, dataset: str) -> dict:
    """The per-dataset dict ``st.session_state[name][dataset]`` (created empty): row id →
    True, in insertion order."""
    per_dataset = st.session_state.setdefault(name, {})
    return per_dataset.setdefault(dataset, {})


def selection(dataset: str) -> list[str]:
    """Selected row ids of ``dataset`` in selection order."""
    return list(_bucket("selection", dataset))


def _bump(dataset: str) -> None:
    versions = st.session_state.setdefault("selection_version", {})
    versions[dataset] = versions.get(dataset, 0) + 1


def select(dataset: str, ids: Iterable[str]) -> None:
    """Add ``ids`` to the selection of ``dataset`` (kept in order, no duplicates)."""
    bucket = _bucket("selection", dataset)
    for rid in ids:
        bucket[str(rid)] = True
    _bump(dataset)


def deselect(dataset: str, ids: Iterable[str]) -> None:
    """Remove ``ids`` from the selection of ``dataset`` (unknown ids are ignored)."""
    bucket = _bucket("selection", dataset)
    for rid in ids:
        bucket.pop(str(rid), None)
    _bump(dataset)


def clear_selection(dataset: str) -> None:
    """Empty the selection of ``dataset``."""
    st.session_state.setdefault("selection", {})[dataset] = {}
    _bump(dataset)


def apply_page_selection(dataset: str, page_ids: Iterable[str], selected: Iterable[str]) -> None:
    """The grid's update: of the rows ``page_ids`` shown, exactly ``selected`` are selected
    now (rows of other pages keep their state). Does not bump :func:`selection_version`,
    so the browser keeps the clicks it made meanwhile."""
    bucket = _bucket("selection", dataset)
    chosen = {str(rid) for rid in selected}
    for rid in page_ids:
        rid = str(rid)
        if rid in chosen:
            bucket[rid] = True
        else:
            bucket.pop(rid, None)


def selection_version(dataset: str) -> int:
    """Bumped each time Python changes the selection of ``dataset`` (select, deselect,
    clear), so the grid in the browser drops its own copy and redraws from Python's."""
    return int(st.session_state.get("selection_version", {}).get(dataset, 0))


def anchors(dataset: str) -> list[str]:
    """Similarity anchors (row ids) of ``dataset`` in the order added."""
    return list(_bucket("anchors", dataset))


def negatives(dataset: str) -> list[str]:
    """Similarity negatives (row ids) of ``dataset`` in the order added."""
    return list(_bucket("negatives", dataset))


def add_anchors(dataset: str, ids: Iterable[str], negative: bool = False) -> None:
    """Add ``ids`` as anchors (``negative``: as negatives), taking them out of the other list."""
    bucket = _bucket("negatives" if negative else "anchors", dataset)
    other = _bucket("anchors" if negative else "negatives", dataset)
    for rid in ids:
        bucket[str(rid)] = True
        other.pop(str(rid), None)


def remove_anchor(dataset: str, rid: str) -> None:
    """Drop ``rid`` from the anchors and the negatives."""
    _bucket("anchors", dataset).pop(rid, None)
    _bucket("negatives", dataset).pop(rid, None)


def clear_anchors(dataset: str) -> None:
    """Drop every anchor and negative of ``dataset``."""
    st.session_state.setdefault("anchors", {})[dataset] = {}
    st.session_state.setdefault("negatives", {})[dataset] = {}


def row_filter(dataset: str) -> RowFilter:
    """The filter set on the Catalog page (shared with the search and select pages)."""
    return st.session_state.setdefault("row_filter", {}).get(dataset, RowFilter())


def set_row_filter(dataset: str, flt: RowFilter) -> None:
    """Remember ``flt`` as the filter of ``dataset`` (read by :func:`row_filter`)."""
    st.session_state.setdefault("row_filter", {})[dataset] = flt


def detail_row() -> str | None:
    """The row id whose detail panel is open (None: closed)."""
    return st.session_state.get("detail_row")


def open_detail(rid: str | None) -> None:
    """Open the detail dialog of ``rid`` on the next run (None closes it)."""
    st.session_state["detail_row"] = rid
    st.session_state["detail_pending"] = rid is not None


def take_detail_request() -> bool:
    """True once after :func:`open_detail`: the page should open the dialog now (a closed
    dialog does not come back on the next rerun)."""
    return bool(st.session_state.pop("detail_pending", False))


def replace_selection(dataset: str, ids: Iterable[str]) -> None:
    """Make ``ids`` (in their order, no duplicates) the whole selection of ``dataset``."""
    ids = [str(rid) for rid in ids]
    clear_selection(dataset)
    select(dataset, ids)
