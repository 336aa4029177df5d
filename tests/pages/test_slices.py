"""Slices page: list, rename, delete with undo, open in the Catalog, export downloads
(and the function that produces the downloaded bytes)."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from core._shared import ids_hash
from core.workspace import open_workspace
from tests.helpers.apptest import grid_ids

PAGE = "pages/slices.py"


@pytest.fixture
def downloads(monkeypatch) -> dict[str, bytes]:
    """url → bytes of every file the app hands to st.download_button / st.image.

    AppTest keeps media in a MemoryMediaFileStorage that it drops after each run; this
    records what went in so a test can read what the user would download.
    """
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    from streamlit.testing.v1 import app_test

    saved: dict[str, bytes] = {}

    class Recording(MemoryMediaFileStorage):
        def load_and_get_id(self, path_or_data, mimetype, kind, filename=None) -> str:
            file_id = super().load_and_get_id(path_or_data, mimetype, kind, filename)
            saved[self.get_url(file_id)] = self.get_file(file_id).content
            return file_id

    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", Recording)
    return saved


def downloaded(at, downloads: dict[str, bytes], key: str) -> bytes:
    """The bytes behind download button ``key`` of the last run."""
    button = at.download_button(key=key)
    assert button.proto.url in downloads, button.proto.url
    return downloads[button.proto.url]


def _texts(at) -> list[str]:
    return [m.value for m in at.markdown] + [c.value for c in at.caption]


@pytest.fixture
def two_slices(app_home):
    ws = open_workspace(app_home)
    ids = ws.dataset("digits").rows()["id"].astype(str).tolist()
    ws.store.save_slice("digits", "first", ids[:5], {"method": "random", "n": 5, "seed": 3})
    ws.store.save_slice("digits", "second", ids[100:112], {"method": "ordered", "n": 12})
    return ws, ids


def test_rename_delete_undo_and_open_in_catalog(make_app, two_slices):
    ws, ids = two_slices
    at = make_app(PAGE)  # the session saw the Catalog (and its filter widgets) first
    assert not at.exception
    table = at.dataframe[0].value
    assert sorted(table["name"]) == ["first", "second"]
    assert dict(zip(table["name"], table["rows"])) == {"first": 5, "second": 12}
    assert dict(zip(table["name"], table["method"])) == {"first": "random", "second": "ordered"}

    at.selectbox(key="slices:pick").select("first").run()
    at.text_input(key="slices:new_name").input("batch-1").run()
    at.button(key="slices:rename").click().run()
    assert not at.exception
    assert at.selectbox(key="slices:pick").value == "batch-1"
    assert {s.name for s in ws.store.list_slices("digits")} == {"batch-1", "second"}

    at.button(key="slices:delete").click().run()
    assert [s.name for s in ws.store.list_slices("digits")] == ["second"]
    assert sorted(at.dataframe[0].value["name"]) == ["second"]
    at.button(key="slices:undo").click().run()
    assert not at.exception
    assert ws.store.get_slice("digits", "batch-1").ids == tuple(ids[:5])
    assert at.selectbox(key="slices:pick").value == "batch-1"
    assert not [b for b in at.button if b.key == "slices:undo"]

    at.button(key="slices:open").click().run()
    assert not at.exception
    assert at.title[0].value == "Catalog"
    assert "**5 of 1,797 rows**" in _texts(at)
    shown = grid_ids(at, "catalog")
    assert sorted(shown) == sorted(ids[:5])


def test_rename_to_a_taken_name_shows_an_error_and_changes_nothing(make_app, two_slices):
    ws, _ = two_slices
    at = make_app(PAGE)
    at.selectbox(key="slices:pick").select("first").run()
    at.text_input(key="slices:new_name").input("second").run()
    at.button(key="slices:rename").click().run()
    assert not at.exception
    assert any("already exists" in e.value for e in at.error)
    assert {s.name: len(s.ids) for s in ws.store.list_slices("digits")} == {"first": 5, "second": 12}


def test_csv_download_has_the_slice_rows_with_edited_labels(make_app, two_slices, downloads):
    ws, ids = two_slices
    rows = ws.dataset("digits").rows().set_index("id")
    target = ids[101]
    new_label = "7" if rows.loc[target, "label"] != "7" else "1"
    ws.store.relabel("digits", [target], new_label, [rows.loc[target, "label"]])
    at = make_app(PAGE)
    at.selectbox(key="slices:pick").select("second").run()
    at.selectbox(key="slices:format").select("csv").run()
    assert not at.exception
    assert at.download_button(key="slices:download").label.endswith("digits-second.csv")
    table = pd.read_csv(io.BytesIO(downloaded(at, downloads, "slices:download")), dtype=str)
    assert table["id"].tolist() == ids[100:112]
    expected = rows.loc[ids[100:112], "label"].tolist()
    expected[1] = new_label
    assert table["label"].tolist() == expected
    recipe = json.loads(downloaded(at, downloads, "slices:download_recipe"))
    assert recipe["rows"] == 12 and recipe["format"] == "csv"
    assert recipe["ids_hash"] == ids_hash(ids[100:112])
    assert recipe["recipe"]["method"] == "ordered" and recipe["recipe"]["slice"] == "second"


@pytest.mark.parametrize("fmt, suffix, mime", [
    ("csv", "csv", "text/csv"), ("jsonl", "jsonl", "application/jsonl"),
    ("ndjson", "ndjson", "application/x-ndjson"), ("label-studio", "json", "application/json")])
def test_export_bytes_parse_as_the_format_with_the_slice_ids(digits_ws, fmt, suffix, mime):
    from ui.slice_widgets import export_bytes

    rows = digits_ws.dataset("digits").rows()
    ids = rows["id"].astype(str).tolist()[40:47][::-1]  # slice order, not dataset order
    digits_ws.store.save_slice("digits", "to label/v1", ids, {"method": "diverse", "seed": 2})
    old = rows.set_index("id").loc[ids[0], "label"]
    digits_ws.store.relabel("digits", [ids[0]], "edited", [old])

    out = export_bytes(digits_ws, "digits", "to label/v1", fmt)
    assert out.file_name == f"digits-to_label_v1.{suffix}" and out.mime == mime
    assert out.recipe_name == f"digits-to_label_v1.{suffix}.recipe.json" and out.rows == 7
    if fmt == "csv":
        table = pd.read_csv(io.BytesIO(out.data), dtype=str)
        got_ids, labels = table["id"].tolist(), table["label"].tolist()
    elif fmt == "label-studio":
        tasks = json.loads(out.data)
        got_ids = [t["data"]["id"] for t in tasks]
        labels = [t["data"]["label"] for t in tasks]
        assert all(t["data"]["image"].startswith("/data/local-files/?d=digits/") for t in tasks)
        assert tasks[0]["predictions"][0]["result"][0]["value"] == {"choices": ["edited"]}
    else:
        records = [json.loads(line) for line in out.data.decode("utf-8").splitlines()]
        got_ids = [r["global_key" if fmt == "ndjson" else "id"] for r in records]
        labels = [r["label"] for r in records]
        if fmt == "ndjson":
            assert {r["media_type"] for r in records} == {"IMAGE"}
    assert got_ids == ids
    assert labels[0] == "edited"
    recipe = json.loads(out.recipe)
    assert recipe["recipe"]["method"] == "diverse" and recipe["recipe"]["slice"] == "to label/v1"
    assert recipe["ids_hash"] == ids_hash(ids) and recipe["format"] == fmt


def test_export_bytes_names_the_missing_slice(digits_ws):
    from core.errors import NotFoundError
    from ui.slice_widgets import export_bytes

    ids = digits_ws.dataset("digits").rows()["id"].astype(str).tolist()
    digits_ws.store.save_slice("digits", "kept", ids[:2])
    with pytest.raises(NotFoundError, match="nope.*kept"):
        export_bytes(digits_ws, "digits", "nope", "csv")


def test_the_download_is_what_catalog_export_writes(digits_ws, tmp_path, capsys):
    from core.cli import main
    from ui.slice_widgets import export_bytes

    ids = digits_ws.dataset("digits").rows()["id"].astype(str).tolist()[::97]
    digits_ws.store.save_slice("digits", "batch", ids, {"method": "random", "n": len(ids)})
    digits_ws.store.relabel("digits", [ids[1]], "edited", ["0"])
    page = export_bytes(digits_ws, "digits", "batch", "ndjson")
    out = tmp_path / "batch.ndjson"
    assert main(["--home", str(digits_ws.home), "export", "digits", "--slice", "batch",
                 "--format", "ndjson", "--out", str(out)]) == 0, capsys.readouterr().err
    assert page.data == out.read_bytes()
    cli_side = json.loads((tmp_path / "batch.ndjson.recipe.json").read_text(encoding="utf-8"))
    page_side = json.loads(page.recipe)
    assert {k: v for k, v in cli_side.items() if k != "exported"} == \
        {k: v for k, v in page_side.items() if k != "exported"}
    assert page_side["recipe"]["slice"] == "batch" and "slice_created" in page_side["recipe"]


def test_open_in_catalog_shows_exactly_the_slice_on_its_own_dataset(make_app, two_slices):
    from core.filters import RowFilter
    from tests.conftest import REPO

    _, ids = two_slices
    at = make_app("pages/catalog.py")
    at.text_input(key="flt:digits:text").input("digit").run()  # an earlier Catalog filter
    at.switch_page(str(REPO / PAGE)).run()
    at.selectbox(key="slices:pick").select("second").run()
    at.button(key="slices:open").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Catalog"
    assert at.session_state["row_filter"]["digits"] == RowFilter(slice_name="second")  # only it
    assert at.selectbox(key="flt:digits:slice").value == "second"
    assert at.text_input(key="flt:digits:text").value == ""
    assert "**12 of 1,797 rows**" in _texts(at)
    assert sorted(grid_ids(at, "catalog")) == sorted(ids[100:112])

    # the dataset is switched in the sidebar as "Open in Catalog" is pressed (one rerun for
    # both): the slice still opens on its own dataset, digits, not on api-docs
    at.switch_page(str(REPO / PAGE)).run()
    at.selectbox(key="slices:pick").select("first").run()
    at.selectbox(key="sidebar:dataset").set_value("api-docs")
    at.button(key="slices:open").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Catalog" and at.session_state["sidebar:dataset"] == "digits"
    assert at.session_state["row_filter"]["digits"] == RowFilter(slice_name="first")
    assert "**5 of 1,797 rows**" in _texts(at)
    assert sorted(grid_ids(at, "catalog")) == sorted(ids[:5])
