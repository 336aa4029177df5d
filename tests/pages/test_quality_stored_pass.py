"""An embedding above the in-memory row limit is never scored on a page load: the Catalog
shows its rows without quality columns, Label review says why and offers a button that
runs the stored neighbours pass as a background job; then both use it."""

from __future__ import annotations

import pytest

from core.quality import DEFAULT_K, load_neighbours
from core.workspace import open_workspace
from tests.helpers.apptest import finish_job, go, grid_payload
from tests.pages.test_quality_job import N, _app, large_home  # noqa: F401 (a fixture)
from ui import quality_data


@pytest.fixture
def large_unscored_home(large_home, monkeypatch):  # noqa: F811
    monkeypatch.setattr(quality_data, "IN_MEMORY_MAX_ROWS", N - 1)  # "large" at this size
    return large_home


def test_large_embedding_is_scored_only_after_the_user_starts_the_pass(large_unscored_home):
    home = large_unscored_home
    from ui import jobs

    at = _app()
    assert not at.exception, at.exception
    assert "label_issue_score" not in grid_payload(at, "catalog")["columns"]
    ws = open_workspace(home)
    assert jobs.board(ws).latest("big", "quality") is None  # nothing started on a page load

    at = go(at, "quality", finish_jobs=False)
    assert any("needs the nearest neighbours" in i.value for i in at.info)
    assert not any("rows to review" in m.value for m in at.markdown)
    at.button(key="qa:start_pass").click().run()
    assert not at.exception, at.exception
    job = finish_job(at, home, "big", "quality", timeout=600)
    assert job.result == {"rows": N, "k": DEFAULT_K}  # as wide as the label issues read
    assert load_neighbours(ws.dataset("big"), "rand") is not None
    if not any("rows to review" in m.value for m in at.markdown):  # then the scoring job
        finish_job(at, home, "big", "quality", timeout=600)
    assert any("rows to review" in m.value for m in at.markdown)
    at = go(at, "catalog", finish_jobs=False)
    assert "label_issue_score" in grid_payload(at, "catalog")["columns"]


def test_the_catalog_of_a_large_unscored_embedding_loads_neither_its_index_nor_all_labels(
        large_unscored_home, monkeypatch):
    from ui import loaders

    def refuse(*args, **kwargs):
        raise AssertionError("the Catalog's first load touched the whole index or table")

    monkeypatch.setattr(loaders, "vector_index", refuse)
    monkeypatch.setattr(loaders, "effective_rows", refuse)
    at = _app()
    assert not at.exception, at.exception
    payload = grid_payload(at, "catalog")
    assert "label_issue_score" not in payload["columns"] and payload["rows"]
