"""A Catalog filter carried to another page is shown there ("Filtered by the Catalog: …")
with a "Clear filter" button that drops it on every page (the panels' widgets included)."""

from __future__ import annotations

import pytest

from core.filters import RowFilter
from core.workspace import open_workspace
from tests.helpers.apptest import go
from tests.pages.shown import unescaped

THREES = RowFilter(labels=("3",), text_contains="digit")
NOTE = "Filtered by the Catalog: label in {3}; text contains 'digit'"


def notes(at) -> list[str]:
    return [unescaped(i.value) for i in at.info if unescaped(i.value).startswith("Filtered by the Catalog")]


def carried(make_app, page: str, **session):
    at = make_app()
    at.session_state["row_filter"] = {"digits": THREES}
    at.session_state["clu:method"] = "pca"
    for key, value in session.items():
        at.session_state[key] = value
    return go(at, page)


@pytest.fixture
def threes(app_home) -> int:
    rows = open_workspace(app_home).dataset("digits").rows()
    return int((rows["label"] == "3").sum())


def test_cluster_map_shows_the_filter_and_clears_it(make_app, threes):
    at = carried(make_app, "clusters")
    assert notes(at) == [NOTE]
    assert any(c.value.startswith(f"{threes:,} rows on the map") for c in at.caption)
    at.button(key="clu:clear_filter").click().run()
    assert not at.exception, at.exception
    assert at.session_state["row_filter"]["digits"] == RowFilter()
    assert not notes(at) and not [b for b in at.button if b.key == "clu:clear_filter"]
    assert any(c.value.startswith("1,797 rows on the map") for c in at.caption)


@pytest.mark.parametrize("page, prefix", [("similarity", "sim"), ("text_search", "txt")])
def test_search_pages_show_the_filter_and_clear_it_with_their_panel(make_app, page, prefix):
    at = carried(make_app, page)
    assert notes(at) == [NOTE]
    assert at.multiselect(key=f"{prefix}:flt:digits:labels").value == ["3"]
    at.button(key=f"{prefix}:clear_filter").click().run()
    assert not at.exception, at.exception
    assert at.session_state["row_filter"]["digits"] == RowFilter()
    assert not notes(at)
    assert at.multiselect(key=f"{prefix}:flt:digits:labels").value == []  # the panel follows
    assert at.text_input(key=f"{prefix}:flt:digits:text").value == ""
    at.run()
    assert at.session_state["row_filter"]["digits"] == RowFilter()  # not written back
    go(at, "catalog")  # and the Catalog's own panel shows no filter either
    assert at.session_state["row_filter"]["digits"] == RowFilter()
    assert at.multiselect(key="flt:digits:labels").value == []


def test_smart_select_shows_the_filter_when_it_is_the_scope(make_app, threes):
    at = carried(make_app, "smart_select")
    assert not notes(at)  # scope "whole dataset": the filter does not apply
    at.selectbox(key="sel:scope").select("filter").run()
    assert notes(at) == [NOTE]
    assert any(c.value.endswith(f": {threes:,} rows") for c in at.caption)
    at.button(key="sel:clear_filter").click().run()
    assert not at.exception, at.exception
    assert not notes(at) and any(c.value.endswith(": 1,797 rows") for c in at.caption)
