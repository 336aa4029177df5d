from __future__ import annotations

import pandas as pd

from core.workspace import open_workspace
from tests.helpers.apptest import grid_ids, grid_payload, select_rows


def _texts(at) -> list[str]:
    return [m.value for m in at.markdown] + [c.value for c in at.caption]


def _label_counts(home) -> pd.Series:
    return open_workspace(home).dataset("digits").rows()["label"].value_counts()


def test_catalog_renders_the_demo_with_counts(make_app, app_home):
    at = make_app()
    assert not at.exception
    assert at.title[0].value == "Catalog"
    assert "**1,797 of 1,797 rows**" in _texts(at)
    assert len(grid_ids(at, "catalog")) == 100  # the default page size
    assert not any(c.key.startswith("catalog:sel:") for c in at.checkbox)  # no per-tile widgets


def test_filter_by_label_shows_only_that_label(make_app, app_home):
    at = make_app()
    at.multiselect(key="flt:digits:labels").select("3").run()
    assert not at.exception
    expected = int(_label_counts(app_home)["3"])
    assert f"**{expected:,} of 1,797 rows**" in _texts(at)
    card_labels = [row["label"] for row in grid_payload(at, "catalog")["rows"]]
    assert card_labels and set(card_labels) == {"3"}


def test_tagging_three_rows_persists_across_sessions(make_app, app_home):
    at = make_app()
    chosen = grid_ids(at, "catalog")[:3]
    select_rows(at, "digits", chosen)
    at.run()
    assert grid_payload(at, "catalog")["total_selected"] == 3
    at.text_input(key="catalog:tag").input("to-label").run()
    at.button(key="catalog:tag_btn").click().run()
    assert not at.exception
    assert any("Tagged 3 rows" in s.value for s in at.success)

    fresh = make_app()  # a new session on the same workspace
    fresh.multiselect(key="flt:digits:tags").select("to-label").run()
    assert "**3 of 1,797 rows**" in _texts(fresh)
    assert sorted(grid_ids(fresh, "catalog")) == sorted(chosen)


def test_open_row_detail_shows_metadata_and_history(make_app, app_home):
    at = make_app()
    rid = grid_ids(at, "catalog")[4]
    at.session_state["detail_row"] = rid  # what the tile's "Open" (double-click) does
    at.session_state["detail_pending"] = True
    at.run()
    assert not at.exception
    assert any(f"`{rid}` · 5 of 1,797" in m.value for m in at.markdown)
    fields = at.dataframe[0].value
    assert rid in fields["value"].tolist()
