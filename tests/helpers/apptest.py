"""AppTest steps the page tests share."""

from __future__ import annotations

from tests.conftest import REPO


def go(at, page: str, *, finish_jobs: bool = True):
    """Switch ``at`` to ``pages/<page>.py``, run it, and fail on an exception in the app.

    ``finish_jobs``: when the page started background work (e.g. a first map: it says it
    "runs in the background"), wait for the workspace's running jobs, require each to end
    "done", and run the page again (what the sidebar's job panel does in the browser)."""
    at.switch_page(str(REPO / "pages" / f"{page}.py"))
    at.run()
    assert not at.exception, at.exception
    if finish_jobs and any("runs in the background" in c.value for c in at.caption):
        finish_running_jobs(at)
    return at


def finish_running_jobs(at, timeout: float = 900) -> None:
    """Wait for every running job of the workspace ``$CATALOG_HOME``, fail unless each ended
    "done", then rerun ``at``."""
    import os

    from ui.jobs import job_board

    board = job_board(os.environ["CATALOG_HOME"])
    for job in board.jobs(active=True):
        done = board.wait(job.id, timeout=timeout)
        assert done.status == "done", (done.label, done.status, done.error)
    at.run()
    assert not at.exception, at.exception


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


def _grid_element(at, key: str):
    for element in at.get("bidi_component"):
        if element.proto.id.endswith(f"-{key}:tiles"):
            return element
    raise AssertionError(f"no grid {key!r} on the page")


def _send_widget_state(at, state) -> None:
    """Rerun ``at`` with the widget states of its last run, ``state`` replacing the one of
    the same id: what the browser sends (private AppTest API, pinned Streamlit)."""
    states = at._tree.get_widget_states()
    kept = [w for w in states.widgets if w.id != state.id]
    del states.widgets[:]
    states.widgets.extend([*kept, state])
    at._run(states)


def click_rows(at, key: str, selected) -> None:
    """Send the page selection of grid ``key`` as the browser does after clicks: of the rows
    on its current page, exactly ``selected`` are selected (one state update, with the
    payload's selection token). Runs ``at``."""
    import json

    from streamlit.proto.WidgetStates_pb2 import WidgetState

    payload = grid_payload(at, key)
    assert payload is not None, f"no grid {key!r} on the page"
    page = [row["id"] for row in payload["rows"]]
    value = {"selection": {"page": page, "selected": [rid for rid in page if rid in set(selected)],
                           "token": payload["token"]}}
    _send_widget_state(at, WidgetState(id=_grid_element(at, key).proto.id,
                                       json_value=json.dumps(value)))


def press_action(at, key: str, label: str, row_id: str) -> None:
    """Press the hover button ``label`` (e.g. "Open", "Anchor") of row ``row_id`` in grid
    ``key`` as the browser does (a trigger event of the component). Runs ``at``; fails if
    the grid does not offer that action."""
    import json
    import time

    from streamlit.proto.WidgetStates_pb2 import WidgetState
    from streamlit.runtime.state.session_state import STREAMLIT_INTERNAL_KEY_PREFIX

    payload = grid_payload(at, key)
    assert payload is not None, f"no grid {key!r} on the page"
    names = {a["label"]: a["name"] for a in payload["actions"]}
    assert label in names, f"grid {key!r} offers {sorted(names)}, not {label!r}"
    assert row_id in [row["id"] for row in payload["rows"]], f"{row_id!r} is not on the page"
    base = _grid_element(at, key).proto.id
    event = [{"event": "action", "value": {"name": names[label], "id": row_id, "n": time.time_ns()}}]
    _send_widget_state(at, WidgetState(id=f"{STREAMLIT_INTERNAL_KEY_PREFIX}_{base}__events",
                                       json_trigger_value=json.dumps(event)))


def open_row(at, key: str, row_id: str) -> None:
    """Open the detail dialog of ``row_id`` with the "Open" hover button of grid ``key``.

    The button's callback really runs (:func:`press_action`) and must set the open row.
    In the browser the action reruns the grid's fragment, which then reruns the app, and
    that run opens the dialog; AppTest cannot run a fragment alone, so the full run that
    handled the action already consumed the dialog request: it is made again here, as
    the callback made it, and the app rerun."""
    press_action(at, key, "Open", row_id)
    assert not at.exception, at.exception
    assert at.session_state["detail_row"] == row_id
    at.session_state["detail_pending"] = True
    at.run()


def finish_job(at, home, dataset: str, kind: str, timeout: float = 900):
    """Wait for the newest ``kind`` job of ``dataset`` (e.g. "derive", "embed") that a page
    started in the background, fail unless it ended "done", then rerun ``at`` (the app's
    job panel reruns the page when a job ends). Returns the job."""
    from core.workspace import open_workspace
    from ui import jobs

    board = jobs.board(open_workspace(home))
    job = board.latest(dataset, kind)
    assert job is not None, f"no {kind} job of {dataset} was started"
    job = board.wait(job.id, timeout=timeout)
    assert job.status == "done", (job.status, job.error)
    at.run()
    assert not at.exception, at.exception
    return job
