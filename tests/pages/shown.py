"""What a reader sees of a message the app escaped for markdown (``ui.grid.safe_text``,
``ui.messages``): AppTest gives the markdown source, a browser shows it unescaped."""

from __future__ import annotations

import re


def unescaped(markdown: str) -> str:
    """``markdown`` with its backslash escapes removed: ``'a\\\\.b'`` → ``'a.b'``."""
    return re.sub(r"\\(.)", r"\1", markdown)
