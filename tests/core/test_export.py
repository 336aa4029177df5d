"""Tests for core.export: CSV/JSONL round trips through ingest, NDJSON and Label Studio
tasks for labeling tools, label edits, recipe sidecars and errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core._shared import ids_hash
from core.errors import InputError, SchemaError
from core.export import EXPORT_FORMATS, ExportReport, export_rows
from core.ingest import ingest_table
from core.labels import apply_label_edits, effective_rows
from core.workspace import Workspace

TEXT_TABLE = pd.DataFrame({
    "id": ["007", "b-2", "c 3", "d4", "e5"],
    "text": ["plain text", "comma, and \"quotes\"", "two\nlines", "ünïcödé ✓", "last one"],
    "label": ["1", "spam", None, "ham", "1"],
    "views": [10, 0, 3, 12345678901, 7],
    "score": [0.125, None, 1e-9, 3.141592653589793, -2.5],
    "lang": ["en", "fr", None, "de", "en"],
})


def value(v):
    """A comparable plain value: None for nulls, floats for numbers."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    return str(v)


def records(rows: pd.DataFrame) -> list[dict]:
    return [{str(c): value(v) for c, v in zip(rows.columns, vals)}
            for vals in rows.itertuples(index=False, name=None)]


def png(path: Path, shade: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((6, 5, 3), shade, np.uint8)).save(path)


@pytest.fixture
def text_ws(ws: Workspace, tmp_path: Path) -> Workspace:
    src = tmp_path / "src" / "texts.csv"
    src.parent.mkdir()
    TEXT_TABLE.to_csv(src, index=False)
    ingest_table(ws, src, "texts")
    return ws


@pytest.fixture
def image_ws(ws: Workspace, tmp_path: Path) -> Workspace:
    media = tmp_path / "media"
    for i, rel in enumerate(["cats/a.png", "cats/b.png", "dogs/c.png"]):
        png(media / rel, 40 * i)
    table = pd.DataFrame({
        "id": ["img-a", "img-b", "img-c", "txt-d"],
        "image": ["cats/a.png", "cats/b.png", "dogs/c.png", None],
        "text": [None, "a caption", None, "a text-only row"],
        "label": ["cat", "cat", "dog", None],
        "width_cm": [1.5, None, 2.0, 0.25],
        "source": ["cam", "cam", None, "web"],
    })
    src = tmp_path / "src" / "images.jsonl"
    src.parent.mkdir()
    table.to_json(src, orient="records", lines=True)
    ingest_table(ws, src, "images", image_root=media)
    return ws


# ---- round trips ---------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_text_table_export_reingests_to_the_same_rows(text_ws, tmp_path, fmt):
    rows = effective_rows(text_ws, "texts")
    out = tmp_path / "out" / f"texts.{fmt}"
    out.parent.mkdir()
    report = export_rows(rows, out, fmt, recipe={"method": "random", "n": 5, "seed": 0})
    assert isinstance(report, ExportReport) and report.rows == 5 and report.format == fmt
    ingest_table(text_ws, out, "again", format=fmt)
    again = text_ws.dataset("again").rows()
    assert list(again.columns) == list(rows.columns)
    assert records(again) == records(rows)
    assert again["views"].tolist() == TEXT_TABLE["views"].tolist()  # numbers stay numbers
    assert again["id"].tolist() == ["007", "b-2", "c 3", "d4", "e5"]
    assert again.loc[again["id"] == "c 3", "text"].item() == "two\nlines"


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_image_table_export_reingests_with_the_media_root(image_ws, tmp_path, fmt):
    ds = image_ws.dataset("images")
    rows = effective_rows(image_ws, "images")
    out = tmp_path / "out" / f"images.{fmt}"
    out.parent.mkdir()
    export_rows(rows, out, fmt, media_root=ds.media_root)
    ingest_table(image_ws, out, "images2", format=fmt, image_root=ds.media_root)
    again = image_ws.dataset("images2").rows()
    assert records(again) == records(rows)
    assert again["modality"].tolist() == ["image", "image", "image", "text"]
    assert again["image"].tolist()[:3] == ["cats/a.png", "cats/b.png", "dogs/c.png"]


def test_ndjson_rows_have_the_labeling_tool_shape(image_ws, tmp_path):
    ds = image_ws.dataset("images")
    rows = effective_rows(image_ws, "images")
    out = tmp_path / "rows.ndjson"
    export_rows(rows, out, "ndjson", media_root=ds.media_root)
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [line["global_key"] for line in lines] == ["img-a", "img-b", "img-c", "txt-d"]
    for line in lines:
        assert set(line) == {"global_key", "row_data", "media_type", "metadata_fields", "label"}
    a, b, c, d = lines
    assert a["media_type"] == "IMAGE" and Path(a["row_data"]).is_absolute()
    assert Path(a["row_data"]) == (tmp_path / "media" / "cats" / "a.png").resolve()
    assert all(Path(x["row_data"]).is_file() for x in (a, b, c))
    assert d == {"global_key": "txt-d", "row_data": "a text-only row", "media_type": "TEXT",
                 "metadata_fields": [{"name": "width_cm", "value": 0.25},
                                     {"name": "source", "value": "web"}],
                 "label": None}
    assert a["metadata_fields"] == [{"name": "width_cm", "value": 1.5},
                                    {"name": "source", "value": "cam"}]
    assert b["metadata_fields"] == [{"name": "source", "value": "cam"}]  # nulls left out
    assert c["label"] == "dog"
    with pytest.raises(InputError, match="needs media_root"):
        export_rows(rows, tmp_path / "no-root.ndjson", "ndjson")


def _tasks(path: Path) -> list[dict]:
    tasks = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(tasks, list)
    for task in tasks:
        assert set(task) <= {"data", "predictions"} and isinstance(task["data"], dict)
    return tasks


def test_label_studio_tasks_reference_images_by_local_files_url(image_ws, tmp_path):
    ds = image_ws.dataset("images")
    rows = effective_rows(image_ws, "images")
    picked = rows.set_index("id").loc[["img-c", "txt-d", "img-a", "img-b"]].reset_index()
    recipe = {"method": "ids"}
    report = export_rows(picked, tmp_path / "tasks.json", "label-studio", recipe=recipe,
                         media_root=ds.media_root)
    assert report.format == "label-studio" and report.rows == 4
    c, d, a, b = _tasks(report.path)
    assert [t["data"]["id"] for t in (c, d, a, b)] == ["img-c", "txt-d", "img-a", "img-b"]
    root = Path(ds.media_root).resolve()
    assert root == (tmp_path / "media").resolve()
    assert a == {
        "data": {"id": "img-a", "image": "/data/local-files/?d=media/cats/a.png", "label": "cat",
                 "width_cm": 1.5, "source": "cam"},
        "predictions": [{"model_version": "catalog", "result": [
            {"from_name": "label", "to_name": "image", "type": "choices",
             "value": {"choices": ["cat"]}}]}],
    }
    # d= is relative to the media root's parent (Label Studio's document root)
    assert (root.parent / a["data"]["image"].split("?d=", 1)[1]).is_file()
    assert b["data"]["text"] == "a caption" and b["data"]["width_cm"] is None  # NaN -> null
    assert c["data"]["source"] is None
    assert d == {"data": {"id": "txt-d", "text": "a text-only row", "label": None,
                          "width_cm": 0.25, "source": "web"}}  # no label, no prediction
    side = json.loads((tmp_path / "tasks.json.recipe.json").read_text())
    assert side["format"] == "label-studio" and side["rows"] == 4 and side["recipe"] == recipe
    assert side["ids_hash"] == ids_hash(["img-c", "txt-d", "img-a", "img-b"])
    assert "NaN" not in report.path.read_text()


def test_label_studio_image_url_prefix_is_joined_to_the_image_path(image_ws, tmp_path):
    rows = effective_rows(image_ws, "images")
    out = tmp_path / "prefixed.json"
    export_rows(rows, out, "label-studio", image_url_prefix="http://localhost:8081/")  # no root needed
    urls = [t["data"].get("image") for t in _tasks(out)]
    assert urls == ["http://localhost:8081/cats/a.png", "http://localhost:8081/cats/b.png",
                    "http://localhost:8081/dogs/c.png", None]
    spaced = rows.iloc[:1].assign(image=["my cats/a #1.png"])
    export_rows(spaced, out, "label-studio", image_url_prefix="s3://bucket/photos/")
    assert _tasks(out)[0]["data"]["image"] == "s3://bucket/photos/my%20cats/a%20%231.png"


def test_label_studio_text_tasks_put_the_text_in_data_text(text_ws, tmp_path):
    texts = effective_rows(text_ws, "texts")
    export_rows(texts, tmp_path / "texts.json", "label-studio")
    tasks = _tasks(tmp_path / "texts.json")
    assert [t["data"]["id"] for t in tasks] == ["007", "b-2", "c 3", "d4", "e5"]
    first, second, third = tasks[:3]
    assert first == {"data": {"id": "007", "text": "plain text", "label": "1", "views": 10,
                              "score": 0.125, "lang": "en"},
                     "predictions": [{"model_version": "catalog", "result": [
                         {"from_name": "label", "to_name": "text", "type": "choices",
                          "value": {"choices": ["1"]}}]}]}
    assert second["data"]["score"] is None and second["data"]["text"] == 'comma, and "quotes"'
    assert third["data"]["label"] is None and "predictions" not in third
    assert tasks[3]["data"]["views"] == 12345678901


@pytest.mark.parametrize("prefix, message", [
    ("", "is empty"),
    ("file:///data/media/", "browsers block file://"),
    ("http://localhost:8081/img", "must end with '/' or '='"),
])
def test_label_studio_bad_prefix_or_path_names_the_problem(image_ws, tmp_path, prefix, message):
    rows = effective_rows(image_ws, "images")
    with pytest.raises(InputError, match=message):
        export_rows(rows, tmp_path / "bad.json", "label-studio", image_url_prefix=prefix)
    assert not list(tmp_path.glob("bad.json*"))


def test_label_studio_image_rows_need_a_media_root_or_a_prefix(image_ws, tmp_path):
    ds = image_ws.dataset("images")
    rows = effective_rows(image_ws, "images")
    with pytest.raises(InputError, match="needs media_root .* or an image URL prefix"):
        export_rows(rows, tmp_path / "x.json", "label-studio")
    outside = rows.iloc[:1].assign(image=[str(tmp_path / "elsewhere" / "z.png")])
    with pytest.raises(InputError, match="not under the media root"):
        export_rows(outside, tmp_path / "x.json", "label-studio", media_root=ds.media_root)
    inside = rows.iloc[:1].assign(image=[str(Path(ds.media_root) / "cats" / "a.png")])
    export_rows(inside, tmp_path / "x.json", "label-studio", media_root=ds.media_root)
    assert _tasks(tmp_path / "x.json")[0]["data"]["image"] == "/data/local-files/?d=media/cats/a.png"
    with pytest.raises(InputError, match="only to the label-studio format, not ndjson"):
        export_rows(rows, tmp_path / "y.ndjson", "ndjson", media_root=ds.media_root,
                    image_url_prefix="http://localhost:8081/")
    assert not list(tmp_path.glob("y.ndjson*"))


# ---- label edits, order, recipe ----------------------------------------------------------
def test_edited_labels_are_exported_as_edited(text_ws, tmp_path):
    store = text_ws.store
    store.relabel("texts", ["b-2", "c 3"], "ham", ["spam", None])
    store.relabel("texts", ["d4"], None, ["ham"])
    undone = store.relabel("texts", ["e5"], "oops", ["1"])
    store.revert_edits("texts", undone)
    rows = effective_rows(text_ws, "texts")
    assert {i: value(v) for i, v in zip(rows["id"], rows["label"])} == {
        "007": "1", "b-2": "ham", "c 3": "ham", "d4": None, "e5": "1"}
    assert text_ws.dataset("texts").rows()["label"].tolist()[1] == "spam"  # source untouched
    out = tmp_path / "edited.ndjson"
    export_rows(rows, out, "ndjson")
    labels = [json.loads(line)["label"] for line in out.read_text().splitlines()]
    assert labels == ["1", "ham", "ham", None, "1"]
    export_rows(rows, tmp_path / "edited.csv", "csv")
    ingest_table(text_ws, tmp_path / "edited.csv", "edited")
    again = text_ws.dataset("edited").rows()["label"].tolist()
    assert [value(v) for v in again] == ["1", "ham", "ham", None, "1"]


def test_apply_label_edits_returns_a_copy():
    rows = pd.DataFrame({"id": ["a", "b"], "label": ["x", None]})
    edited = apply_label_edits(rows, {"b": "y", "zz": "ignored"})
    assert edited["label"].tolist() == ["x", "y"]
    assert rows["label"].tolist()[0] == "x" and pd.isna(rows["label"].tolist()[1])


def test_export_keeps_the_given_order_and_writes_the_recipe_sidecar(text_ws, tmp_path):
    rows = effective_rows(text_ws, "texts")
    picked = rows.set_index("id").loc[["e5", "007", "c 3"]].reset_index()
    recipe = {"method": "cluster", "n": 3, "seed": 4, "k": 2, "scope_rows": 5}
    report = export_rows(picked, tmp_path / "picked.jsonl", "jsonl", recipe=recipe)
    ids = [json.loads(line)["id"] for line in report.path.read_text().splitlines()]
    assert ids == ["e5", "007", "c 3"]
    assert "modality" not in json.loads(report.path.read_text().splitlines()[0])
    assert report.recipe_path == tmp_path / "picked.jsonl.recipe.json"
    side = json.loads(report.recipe_path.read_text())
    assert side["recipe"] == recipe and side["rows"] == 3 and side["format"] == "jsonl"
    assert side["ids_hash"] == ids_hash(["e5", "007", "c 3"])
    assert side["exported"].startswith(str(pd.Timestamp.now(tz="UTC").year))


# ---- errors ----------------------------------------------------------------------------
def test_export_errors_name_the_problem(text_ws, tmp_path):
    rows = effective_rows(text_ws, "texts")
    with pytest.raises(InputError, match="unknown export format 'xlsx'; choose one of csv, "
                                         "jsonl, ndjson, label-studio"):
        export_rows(rows, tmp_path / "x.xlsx", "xlsx")
    assert EXPORT_FORMATS == ("csv", "jsonl", "ndjson", "label-studio")
    with pytest.raises(InputError, match="no rows"):
        export_rows(rows.iloc[:0], tmp_path / "empty.csv", "csv")
    missing = tmp_path / "nope" / "deeper" / "out.csv"
    with pytest.raises(InputError, match=f"folder '{missing.parent}' does not exist"):
        export_rows(rows, missing, "csv")
    with pytest.raises(InputError, match="is a folder"):
        export_rows(rows, tmp_path, "csv")
    with pytest.raises(SchemaError, match="more than once.*'007'"):
        export_rows(pd.concat([rows, rows.iloc[:1]]), tmp_path / "dup.csv", "csv")
    assert not list(tmp_path.glob("*.csv*")) and not (tmp_path / "nope").exists()


# ---- what to export: rows_for_export -------------------------------------------------------
def test_rows_for_export_of_each_source_keeps_its_order_and_the_edited_labels(text_ws, tmp_path):
    from core.export import rows_for_export

    store = text_ws.store
    store.relabel("texts", ["c 3"], "ham", [None])
    sl = store.save_slice("texts", "batch", ["e5", "c 3", "007"], {"method": "random", "seed": 1})
    out = rows_for_export(text_ws, "texts", slice_name="batch")
    assert out.ids == ["e5", "c 3", "007"]
    assert [value(v) for v in out.rows["label"]] == ["1", "ham", "1"]
    assert out.recipe == {**sl.recipe, "slice": "batch", "slice_created": sl.created}
    assert out.recipe["method"] == "random" and out.recipe["seed"] == 1

    store.tag_rows("texts", ["d4", "b-2"], "sent")
    tagged = rows_for_export(text_ws, "texts", tag="sent")
    assert sorted(tagged.ids) == ["b-2", "d4"] and tagged.recipe == {"method": "tag", "tag": "sent"}

    assert rows_for_export(text_ws, "texts", ids=["d4", "007"]).ids == ["d4", "007"]

    ids_file = tmp_path / "ids.txt"
    ids_file.write_bytes(b"\xef\xbb\xbfc 3\n\n b-2 \n")  # a BOM, a blank line, spaces
    from_file = rows_for_export(text_ws, "texts", ids_file=ids_file)
    assert from_file.ids == ["c 3", "b-2"]
    assert from_file.recipe == {"method": "ids-file", "file": str(ids_file.resolve())}

    hams = rows_for_export(text_ws, "texts", where="label = ham")  # the edited label counts
    assert hams.ids == ["c 3", "d4"] and hams.recipe["method"] == "filter"
    assert hams.recipe["filter"]["labels"] == ("ham",)
    assert rows_for_export(text_ws, "texts", where="lang in (en, de) and views >= 8").ids == ["007", "d4"]

    report = export_rows(out.rows, tmp_path / "batch.jsonl", "jsonl", recipe=out.recipe)
    side = json.loads(report.recipe_path.read_text())
    assert side["recipe"]["slice"] == "batch" and side["ids_hash"] == ids_hash(out.ids)


@pytest.mark.parametrize("kwargs, error, names", [
    ({}, InputError, "slice, tag, ids, ids_file, where; got none"),
    ({"slice_name": "batch", "tag": "sent"}, InputError, "got slice, tag"),
    ({"slice_name": "nope"}, "NotFoundError", "nope"),
    ({"tag": "no-such-tag"}, "NotFoundError", "no-such-tag"),
    ({"ids": ["007", "zz-1", "zz-2"]}, "NotFoundError", "2 id(s) of the given ids not in dataset 'texts': 'zz-1', 'zz-2'"),
    ({"ids_file": "missing-ids.txt"}, InputError, "missing-ids.txt"),
    ({"where": "label in (ham"}, InputError, "expected ')'"),
    ({"where": "tag = unknown-tag"}, "NotFoundError", "unknown-tag"),
    ({"where": "weight >= 2"}, SchemaError, "weight"),
    ({"where": "uniqueness >= 0.5"}, InputError, "needs an embedding"),
])
def test_rows_for_export_errors_name_the_problem(text_ws, tmp_path, kwargs, error, names):
    from core.errors import NotFoundError
    from core.export import rows_for_export

    text_ws.store.save_slice("texts", "batch", ["007"])
    if "ids_file" in kwargs:
        kwargs = {"ids_file": tmp_path / kwargs["ids_file"]}
    error = NotFoundError if error == "NotFoundError" else error
    with pytest.raises(error) as info:
        rows_for_export(text_ws, "texts", **kwargs)
    assert names in str(info.value)
