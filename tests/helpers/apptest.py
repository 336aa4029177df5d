"""AppTest steps the page tests share."""

from __future__ import annotations

from tests.conftest import REPO


def go(at, page: str):
    """Switch ``at`` to ``pages/<page>.py``, run it, and fail on an exception in the app."""
    at.switch_page(str(REPO / "pages" / f"{page}.py"))
    at.run()
    assert not at.exception, at.exception
    return at
