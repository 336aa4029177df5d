"""Paginated card grid: image thumbnails or text cards, label and score badges,
a checkbox per card (the selection), and optional per-card actions.

All user text goes through :func:`safe_text`, so metadata such as
``<script>…</script>`` is displayed as text, never interpreted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence

import pandas as pd
import streamlit as st

from core.errors import MediaError
from core.media import thumbnail_path
from core.workspace import Dataset
from ui import state
from ui.loaders import file_stamp

PAGE_SIZES = (50, 75, 100)
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$&])")


def _plain(value: object, limit: int | None) -> str:
    text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    text = " ".join(text.split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def safe_text(value: object, limit: int | None = None) -> str:
    """``value`` as text for st.markdown/caption: markdown and HTML characters escaped."""
    return _MD_SPECIAL.sub(r"\\\1", _plain(value, limit))


def safe_code(value: object, limit: int | None = None) -> str:
    """``value`` as an inline code span for st.markdown/caption, shown verbatim.

    Backslash escapes are not processed inside code spans (``safe_text`` inside
    backticks would show its backslashes), so backticks are replaced by ``'`` instead.
    """
    text = _plain(value, limit).replace("`", "'")
    return f"`{text}`"


@st.cache_data(show_spinner=False, max_entries=20_000)
def _thumb(src: str, thumbs_dir: str, stamp: str) -> str | None:
    """Thumbnail of ``src``; ``stamp`` (mtime_ns-size of ``src``) is only a cache key part,
    so a replaced image (or one fixed after being unreadable) gets a new thumbnail."""
    from pathlib import Path

    try:
        return str(thumbnail_path(Path(src), Path(thumbs_dir)))
    except MediaError:
        return None


def card_image(ds: Dataset, image_rel: str) -> str | None:
    """Path of a cached thumbnail for a row's image, or None if unreadable.

    One ``stat`` of the image per call: its mtime and size key the cached thumbnail."""
    try:
        src = ds.resolve_media(image_rel)
    except MediaError:
        return None
    try:
        stamp = file_stamp(src)
    except OSError:  # e.g. a path through a regular file: thumbnail_path reports it
        stamp = "unreadable"
    return _thumb(str(src), str(ds.thumbs_dir), stamp)


def _toggle(dataset: str, rid: str, key: str) -> None:
    if st.session_state.get(key):
        state.select(dataset, [rid])
    else:
        state.deselect(dataset, [rid])


def paginate(view: pd.DataFrame, key: str) -> pd.DataFrame:
    """Draw page controls and return the rows of the current page."""
    n = len(view)
    left, right = st.columns([1, 3])
    size = left.selectbox("Rows per page", PAGE_SIZES, key=f"{key}:page_size")
    pages = max(1, math.ceil(n / size))
    page = right.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, value=1,
                              step=1, key=f"{key}:page")
    start = (int(page) - 1) * size
    return view.iloc[start : start + size]


def render_grid(
    ds: Dataset,
    view: pd.DataFrame,
    *,
    key: str,
    scores: Mapping[str, float] | None = None,
    columns: int = 5,
    actions: Sequence[tuple[str, Callable[[str], None]]] = (),
    paginate_rows: bool = True,
) -> None:
    """Draw ``view`` as cards, ``columns`` per line, with checkboxes bound to the selection.

    ``actions`` are (button label, callback(row_id)) pairs drawn on each card.
    """
    if view.empty:
        st.info("No rows to show.")
        return
    page = paginate(view, key) if paginate_rows else view
    selected = set(state.selection(ds.name))
    version = state.selection_version()
    cols = st.columns(columns)
    for i, row in enumerate(page.itertuples(index=False)):
        rid = str(row.id)
        with cols[i % columns].container(border=True):
            image = getattr(row, "image", None)
            if row.modality == "image" and isinstance(image, str):
                thumb = card_image(ds, image)
                if thumb:
                    st.image(thumb, width="stretch")
                else:
                    st.caption("⚠ unreadable image")
            else:
                st.markdown(safe_text(getattr(row, "text", ""), 220))
            badges = [safe_code(rid, 40)]
            label = getattr(row, "label", None)
            if isinstance(label, str):
                badges.append(f"**{safe_text(label, 30)}**")
            if scores is not None and rid in scores:
                badges.append(f"score {scores[rid]:.3f}")
            st.caption(" · ".join(badges))
            ck = f"{key}:sel:{version}:{rid}"
            st.session_state[ck] = rid in selected
            st.checkbox("Select", key=ck, on_change=_toggle, args=(ds.name, rid, ck))
            for label_text, callback in actions:
                st.button(label_text, key=f"{key}:{label_text}:{rid}", on_click=callback, args=(rid,))
