from __future__ import annotations

import pandas as pd

from core.workspace import open_workspace


def _texts(at) -> list[str]:
    return [m.value for m in at.markdown] + [c.value for c in at.caption]


def _label_counts(home) -> pd.Series:
    return open_workspace(home).dataset("digits").rows()["label"].value_counts()


def test_catalog_renders_the_demo_with_counts(make_app, app_home):
    at = make_app()
    assert not at.exception
    assert at.title[0].value == "Catalog"
    assert "**1,797 of 1,797 rows**" in _texts(at)
    assert len([c for c in at.checkbox if c.key.startswith("catalog:sel:")]) == 50


def test_filter_by_label_shows_only_that_label(make_app, app_home):
    at = make_app()
    at.multiselect(key="flt:digits:labels").select("3").run()
    assert not at.exception
    expected = int(_label_counts(app_home)["3"])
    assert f"**{expected:,} of 1,797 rows**" in _texts(at)
    card_labels = [c.value.split(" · ")[1] for c in at.caption if c.value.startswith("`")]
    assert card_labels and set(card_labels) == {"**3**"}


def test_tagging_three_rows_persists_across_sessions(make_app, app_home):
    at = make_app()
    keys = [c.key for c in at.checkbox if c.key.startswith("catalog:sel:")][:3]
    chosen = [k.rsplit(":", 1)[1] for k in keys]
    for key in keys:  # look each box up again: every run builds a new element tree
        at.checkbox(key=key).check().run()
    assert "**3 selected**" in _texts(at)
    at.text_input(key="catalog:tag").input("to-label").run()
    at.button(key="catalog:tag_btn").click().run()
    assert not at.exception
    assert any("Tagged 3 rows" in s.value for s in at.success)

    fresh = make_app()  # a new session on the same workspace
    fresh.multiselect(key="flt:digits:tags").select("to-label").run()
    assert "**3 of 1,797 rows**" in _texts(fresh)
    shown = [b.key.rsplit(":", 1)[1] for b in fresh.checkbox if b.key.startswith("catalog:sel:")]
    assert sorted(shown) == sorted(chosen)


def test_open_row_detail_shows_metadata_and_history(make_app, app_home):
    at = make_app()
    first = [b for b in at.button if b.key.startswith("catalog:Open:")][0]
    rid = first.key.split(":", 2)[2]
    first.click().run()
    assert not at.exception
    assert any(rid in s.value.replace("\\", "") for s in at.subheader)
    fields = at.table[0].value
    assert rid in fields["value"].tolist()
