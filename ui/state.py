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
    return st.session_state.get(DATASET_KEY)


def active_embedding() -> str | None:
    return st.session_state.get(EMBEDDING_KEY)


def _bucket(name: str, dataset: str) -> dict:
    store = st.session_state.setdefault(name, {})
    return store.setdefault(dataset, {})


def selection(dataset: str) -> list[str]:
    """Selected row ids of ``dataset`` in selection order."""
    return list(_bucket("selection", dataset))


def select(dataset: str, ids: Iterable[str]) -> None:
    bucket = _bucket("selection", dataset)
    for rid in ids:
        bucket[str(rid)] = True


def deselect(dataset: str, ids: Iterable[str]) -> None:
    bucket = _bucket("selection", dataset)
    for rid in ids:
        bucket.pop(str(rid), None)


def clear_selection(dataset: str) -> None:
    st.session_state.setdefault("selection", {})[dataset] = {}
    st.session_state["selection_version"] = st.session_state.get("selection_version", 0) + 1


def selection_version() -> int:
    """Bumped when the selection is cleared, so card checkboxes get fresh keys."""
    return int(st.session_state.get("selection_version", 0))


def anchors(dataset: str) -> list[str]:
    return list(_bucket("anchors", dataset))


def negatives(dataset: str) -> list[str]:
    return list(_bucket("negatives", dataset))


def add_anchors(dataset: str, ids: Iterable[str], negative: bool = False) -> None:
    bucket = _bucket("negatives" if negative else "anchors", dataset)
    other = _bucket("anchors" if negative else "negatives", dataset)
    for rid in ids:
        bucket[str(rid)] = True
        other.pop(str(rid), None)


def remove_anchor(dataset: str, rid: str) -> None:
    _bucket("anchors", dataset).pop(rid, None)
    _bucket("negatives", dataset).pop(rid, None)


def clear_anchors(dataset: str) -> None:
    st.session_state.setdefault("anchors", {})[dataset] = {}
    st.session_state.setdefault("negatives", {})[dataset] = {}


def row_filter(dataset: str) -> RowFilter:
    """The filter set on the Catalog page (shared with the search and select pages)."""
    return st.session_state.setdefault("row_filter", {}).get(dataset, RowFilter())


def set_row_filter(dataset: str, flt: RowFilter) -> None:
    st.session_state.setdefault("row_filter", {})[dataset] = flt


def detail_row() -> str | None:
    return st.session_state.get("detail_row")


def open_detail(rid: str | None) -> None:
    st.session_state["detail_row"] = rid
