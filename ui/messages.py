"""Messages shown to the user: an error now (:func:`show_error`), a message now
(:func:`show`), and a message after the rerun an action triggers (:func:`flash`, drawn once
by :func:`show_flash`, which :func:`ui.page.start_page` calls on every page).

All text is drawn as plain text: markdown and HTML characters are escaped (line breaks
kept as paragraph breaks), so a user value inside a message (a tag, a slice name, a bad
id in a :class:`core.errors.CatalogError`) is shown as typed, never interpreted.
"""

from __future__ import annotations

from typing import Literal

import streamlit as st

from core.errors import CatalogError
from ui.grid import safe_text

Kind = Literal["success", "info", "warning", "error"]
KINDS: tuple[Kind, ...] = ("success", "info", "warning", "error")
FLASH_KEY = "ui:flash"


def plain_text(text: str) -> str:
    """``text`` as markdown that renders as itself: each line escaped with
    :func:`ui.grid.safe_text`, lines separated by blank lines (paragraphs)."""
    return "\n\n".join(safe_text(line) for line in str(text).splitlines() if line.strip())


def _check_kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise ValueError(f"unknown message kind {kind!r}; choose one of {', '.join(KINDS)}")
    return kind  # type: ignore[return-value]


def show(text: str, kind: Kind = "success") -> None:
    """Draw ``text`` now as plain text in an ``st.<kind>`` box (success, info, warning or
    error). Raises ValueError for another ``kind``."""
    getattr(st, _check_kind(kind))(plain_text(text))


def show_error(err: CatalogError | str) -> None:
    """Draw the one-line message of ``err`` (a CatalogError, or a message) with ``st.error``,
    as plain text."""
    show(str(err), "error")


def flash(text: str, kind: Kind = "success") -> None:
    """Keep ``text`` (plain text) to show once on the next run of this session, e.g. from a
    button callback or before ``st.rerun()``. A later flash before that run replaces it.
    Raises ValueError for a ``kind`` other than success, info, warning or error."""
    st.session_state[FLASH_KEY] = (_check_kind(kind), str(text))


def flash_error(err: CatalogError | str) -> None:
    """:func:`flash` the message of ``err`` as an error."""
    flash(str(err), "error")


def show_flash() -> None:
    """Draw, once, the message kept by :func:`flash` (nothing if none is kept)."""
    kept = st.session_state.pop(FLASH_KEY, None)
    if kept is not None:
        kind, text = kept
        show(text, kind)


__all__ = ["FLASH_KEY", "KINDS", "Kind", "flash", "flash_error", "plain_text", "show", "show_error",
           "show_flash"]
