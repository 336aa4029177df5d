"""Smart select page: preview a selection in the grid, save it as a slice with its recipe,
scopes and exclusions, errors; and the saved slice on the Slices page, exported."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core._shared import ids_hash
from core.embeddings import import_embeddings, load_embedding
from core.errors import InputError
from core.filters import RowFilter
from core.select import scope_vectors, select_by_cluster
from core.workspace import open_workspace
from tests.helpers.apptest import grid_ids, grid_payload
from tests.pages.test_slices import downloaded, downloads  # noqa: F401  (fixture)
from ui.smart_select import SelectRequest, page_rows, page_scope, run_selection

PAGE = "pages/smart_select.py"
EMB = "efficientnet-lite0"


def _grid_ids(at) -> list[str]:
    return grid_ids(at, "sel:grid")


def _counts(at) -> str:
    return next(m.value for m in at.markdown if "rows selected" in m.value)


def _preview(at, method: str, n: int, **widgets):
    at.selectbox(key="sel:method").select(method).run()
    at.number_input(key="sel:n").set_value(n).run()
    for key, value in widgets.items():
        widget = at.get("selectbox") + at.get("number_input") + at.get("checkbox") + at.get("multiselect")
        target = next(w for w in widget if w.key == f"sel:{key}")
        target.set_value(value).run()
    at.button(key="sel:preview_btn").click().run()
    assert not at.exception, at.exception
    return at


def test_cluster_selection_saved_then_listed_and_exported_on_the_slices_page(
        make_app, app_home, downloads, monkeypatch):  # noqa: F811
    import core.select.request

    calls = []

    def counting(*args, **kwargs):
        calls.append(args[2:])
        return select_by_cluster(*args, **kwargs)

    monkeypatch.setattr(core.select.request, "select_by_cluster", counting)
    at = make_app(PAGE)
    assert at.title[0].value == "Smart select"
    assert any("press Preview" in i.value for i in at.info)
    _preview(at, "cluster", 30, k=10)
    shown = _grid_ids(at)
    assert len(shown) == 30 and len(set(shown)) == 30
    assert _counts(at).startswith("**30 rows selected** from 1,797 in scope")

    ws = open_workspace(app_home)
    rows = ws.dataset("digits").rows()
    emb = load_embedding(ws.dataset("digits"), EMB)
    scope, vectors = scope_vectors(emb.ids, emb.vectors, rows["id"].astype(str).tolist())
    expected = list(select_by_cluster(scope, vectors, 30, 10, seed=0).ids)
    assert shown == expected  # the grid lists the preview in selection order
    assert rows.set_index("id").loc[shown, "label"].nunique() >= 8

    at.button(key="sel:preview_btn").click().run()  # same settings: served from the cache
    assert len(calls) == 1 and set(_grid_ids(at)) == set(expected)

    at.text_input(key="sel:slice_name").input("to-label").run()
    at.button(key="sel:save").click().run()
    assert not at.exception
    assert any("Saved slice" in s.value and "30 rows" in s.value for s in at.success)
    saved = ws.store.get_slice("digits", "to-label")
    assert list(saved.ids) == expected  # selection order (round-robin over clusters) kept
    recipe = saved.recipe
    assert recipe["method"] == "cluster" and recipe["k"] == 10 and recipe["seed"] == 0
    assert recipe["n"] == 30 and recipe["per_cluster"] == "proportional" and recipe["pick"] == "central"
    assert recipe["embedding"] == EMB and recipe["dataset"] == "digits"
    assert recipe["dataset_rows"] == 1797 and recipe["rows_in_scope"] == 1797
    assert recipe["scope"] == "whole dataset" and recipe["not_covered"] == 0
    assert recipe["ids_hash"] == ids_hash(expected) and recipe["rows_selected"] == 30

    slices = make_app("pages/slices.py")  # a new session finds it
    table = slices.dataframe[0].value
    row = table[table["name"] == "to-label"].iloc[0]
    assert row["rows"] == 30 and row["method"] == "cluster" and row["created"] == saved.created
    slices.selectbox(key="slices:format").select("ndjson").run()
    assert not slices.exception
    records = [json.loads(line) for line in
               downloaded(slices, downloads, "slices:download").decode("utf-8").splitlines()]
    assert [r["global_key"] for r in records] == expected
    sidecar = json.loads(downloaded(slices, downloads, "slices:download_recipe"))
    assert sidecar["recipe"]["method"] == "cluster" and sidecar["ids_hash"] == ids_hash(expected)


def test_filter_scope_exclusion_and_too_many_rows(make_app, app_home):
    at = make_app(PAGE)
    at.session_state["row_filter"] = {"digits": RowFilter(labels=("3",))}
    at.selectbox(key="sel:scope").select("filter").run()
    rows = open_workspace(app_home).dataset("digits").rows()
    threes = int((rows["label"] == "3").sum())
    assert any(f"{threes:,} rows" in c.value for c in at.caption)
    _preview(at, "random", 10, seed=4)
    labels = rows.set_index("id")["label"]
    first = _grid_ids(at)
    assert len(first) == 10 and set(labels[first]) == {"3"}
    assert _counts(at).startswith(f"**10 rows selected** from {threes:,} in scope")
    at.text_input(key="sel:slice_name").input("sent").run()
    at.button(key="sel:save").click().run()

    at.multiselect(key="sel:exclude_slices").select("sent").run()
    _preview(at, "random", threes - 10)
    rest = _grid_ids(at)
    assert rest and not set(rest) & set(first) and set(labels[rest]) == {"3"}
    assert "10 excluded" in _counts(at)

    _preview(at, "random", threes - 9)
    assert any(f"asked for {threes - 9} rows but the scope has {threes - 10}" in e.value
               for e in at.error)


def test_ordered_by_label_descending_and_stale_preview_warning(make_app):
    at = _preview(make_app(PAGE), "ordered", 20, by="label", desc=True)
    cards = grid_payload(at, "sel:grid")["rows"]
    assert len(cards) == 20 and all(c["label"] == "9" for c in cards)
    recipe = at.json[0].value
    assert json.loads(recipe)["by"] == "label" and json.loads(recipe)["descending"] is True
    assert not at.warning
    at.number_input(key="sel:n").set_value(21).run()
    assert any("press Preview" in w.value for w in at.warning)
    assert len(_grid_ids(at)) == 20  # the preview stays until Preview is pressed again


def test_scope_rows_without_a_vector_are_left_out_and_counted(digits_ws, tmp_path):
    ds = digits_ws.dataset("digits")
    emb = load_embedding(ds, EMB)
    covered = [str(i) for i in emb.ids[:1000]]
    np.save(tmp_path / "part.npy", np.asarray(emb.vectors[:1000]))
    (tmp_path / "part.txt").write_text("\n".join(covered), encoding="utf-8")
    import_embeddings(ds, tmp_path / "part.npy", "partial", ids_file=tmp_path / "part.txt")

    rows = page_rows(digits_ws, "digits")  # what the page queries: no table in memory
    digits_ws.store.save_slice("digits", "done", covered[:100])
    scope = page_scope(digits_ws, "digits", rows, "all", exclude_slices=["done"])
    assert len(scope.ids) == 1697 and scope.excluded_rows == 100
    sel = run_selection(digits_ws, "digits", rows, "partial", SelectRequest("diverse", n=20, seed=1), scope)
    assert len(sel) == 20 and set(sel.ids) <= set(covered[100:])
    r = sel.recipe
    assert r["not_covered"] == 797 and r["rows_in_scope"] == 1697 and r["scope_rows"] == 900
    assert r["embedding"] == "partial" and r["dataset_rows"] == 1797 and r["excluded_rows"] == 100
    assert r["scope"] == "whole dataset minus slice 'done'" and r["excluded_slices"] == ["done"]
    with pytest.raises(InputError, match="asked for 901 rows but the scope has 900"):
        run_selection(digits_ws, "digits", rows, "partial", SelectRequest("cluster", n=901), scope)


def test_ordered_by_a_quality_column_follows_the_active_embedding(make_app, app_home, tmp_path):
    from core.embeddings import load_index
    from core.quality import quality_columns
    from core.select import select_ordered

    ws = open_workspace(app_home)
    ds = ws.dataset("digits")
    rows = ds.rows()
    ids = rows["id"].astype(str).tolist()
    np.save(tmp_path / "rand.npy", np.random.default_rng(7).normal(size=(len(ids), 8)))
    (tmp_path / "rand.txt").write_text("\n".join(ids), encoding="utf-8")
    import_embeddings(ds, tmp_path / "rand.npy", "random", ids_file=tmp_path / "rand.txt")
    labels = dict(zip(ids, rows["label"]))

    def expected(embedding: str) -> list[str]:
        table = quality_columns(load_index(ds, embedding), labels).set_index("id")
        table = table.reindex(ids).reset_index()
        return list(select_ordered(table[["id", "uniqueness"]], 10, "uniqueness", True).ids)

    assert expected(EMB) != expected("random")
    at = make_app()
    at.selectbox(key="sidebar:embedding").set_value(EMB).run()
    at.switch_page(PAGE).run()
    _preview(at, "ordered", 10, by="uniqueness", desc=True)
    assert set(_grid_ids(at)) == set(expected(EMB))
    recipe = json.loads(at.json[0].value)
    assert recipe["embedding"] == EMB and recipe["by"] == "uniqueness"

    at.selectbox(key="sidebar:embedding").set_value("random").run()
    assert any("press Preview" in w.value for w in at.warning)  # made with the other embedding
    at.button(key="sel:preview_btn").click().run()
    assert not at.exception, at.exception
    assert not at.warning
    assert set(_grid_ids(at)) == set(expected("random"))
    assert json.loads(at.json[0].value)["embedding"] == "random"
    assert list(at.session_state["sel:preview"]["digits"][0].ids) == expected("random")

    at.selectbox(key="sel:by").set_value("label").run()  # not embedding-dependent
    at.button(key="sel:preview_btn").click().run()
    assert json.loads(at.json[0].value)["embedding"] is None
    at.selectbox(key="sidebar:embedding").set_value(EMB).run()
    assert not at.warning


def test_saving_under_a_taken_name_needs_the_replace_box(make_app, app_home):
    from tests.pages.shown import unescaped

    store = open_workspace(app_home).store
    at = _preview(make_app(PAGE), "random", 10, seed=1)
    first = list(at.session_state["sel:preview"]["digits"][0].ids)
    at.text_input(key="sel:slice_name").input("batch").run()
    assert "sel:slice_replace" not in [c.key for c in at.checkbox]  # a new name: nothing to replace
    at.button(key="sel:save").click().run()
    assert list(store.get_slice("digits", "batch").ids) == first

    _preview(at, "random", 12, seed=2)
    second = list(at.session_state["sel:preview"]["digits"][0].ids)
    assert set(second) != set(first)
    at.button(key="sel:save").click().run()  # taken, replace not ticked: refused
    assert any("already exists" in unescaped(e.value) for e in at.error)
    assert list(store.get_slice("digits", "batch").ids) == first
    box = at.checkbox(key="sel:slice_replace")
    assert unescaped(box.label) == "Replace slice 'batch'" and not box.value
    box.check().run()
    at.button(key="sel:save").click().run()
    assert not at.exception, at.exception
    assert any("Replaced slice 'batch' with 12 rows" in unescaped(s.value) for s in at.success)
    saved = store.get_slice("digits", "batch")
    assert list(saved.ids) == second and saved.recipe["seed"] == 2
    assert [s.name for s in store.list_slices("digits")] == ["batch"]


def test_the_page_never_loads_the_rows_table(make_app, monkeypatch):
    """Opening the page and previewing every method queries the rows: the whole table is
    never read into pandas (the quality columns' own first pass, for ordering by one,
    reads the labels: not asked here)."""
    import core.labels
    import ui.loaders
    import ui.quality_data

    def whole_table(*args, **kwargs):
        raise AssertionError("the Smart select page read the whole rows table")

    for module, name in ((ui.loaders, "effective_rows"), (ui.loaders, "source_rows"),
                         (ui.quality_data, "rows_with_quality"), (core.labels, "effective_rows")):
        monkeypatch.setattr(module, name, whole_table)
    at = make_app(PAGE)
    assert not at.exception, at.exception
    for method, widgets in (("random", {"seed": 3}), ("ordered", {"by": "label", "desc": True}),
                            ("cluster", {"k": 4}), ("diverse", {})):
        _preview(at, method, 12, **widgets)
        assert len(_grid_ids(at)) == 12, method
        assert _counts(at).startswith("**12 rows selected** from 1,797 in scope")
