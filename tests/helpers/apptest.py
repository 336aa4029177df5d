"""AppTest steps the page tests share."""

from __future__ import annotations

from tests.conftest import REPO


def go(at, page: str):
    """Switch ``at`` to ``pages/<page>.py``, run it, and fail on an exception in the app."""
    at.switch_page(str(REPO / "pages" / f"{page}.py"))
    at.run()
    assert not at.exception, at.exception
    return at


def grid_payload(at, key: str) -> dict | None:
    """The data the grid ``key`` (``ui.grid.render_grid(key=...)``) sent to the browser:
    ``{"rows": [{"id", "label", "text", "src", "badge", "hover"...}], "selected": [...]...}``,
    or None when that grid is not on the page."""
    import json

    for element in at.get("bidi_component"):
        if element.proto.id.endswith(f"-{key}:tiles"):
            return json.loads(element.proto.json)
    return None


def grid_ids(at, key: str) -> list[str]:
    """Row ids the grid ``key`` shows on its current page, in order ([] if absent)."""
    payload = grid_payload(at, key)
    return [row["id"] for row in payload["rows"]] if payload else []


def select_rows(at, dataset: str, ids) -> None:
    """Select ``ids`` of ``dataset`` as the grid does after clicks in the browser (the
    selection lives in session state; the next run sees it)."""
    current = dict(at.session_state["selection"]) if "selection" in at.session_state else {}
    bucket = dict(current.get(dataset, {}))
    bucket.update({str(rid): True for rid in ids})
    current[dataset] = bucket
    at.session_state["selection"] = current
