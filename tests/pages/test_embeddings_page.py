"""The Embeddings page: list, import (uploaded files), make active, default, export,
delete and compute; and a similarity search with the imported embedding."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.errors import InputError, SchemaError
from core.ingest import ingest
from core.workspace import open_workspace
from tests.conftest import REPO, tree_hash
from tests.helpers.apptest import finish_job, grid_ids, grid_payload
from tests.pages.shown import unescaped
from ui import embedding_widgets as ew

PAGE = "pages/embeddings.py"
DIMS = 32


@pytest.fixture
def upload(app_home):
    """api-docs ids, the 80% given vectors (every 5th row left out), and a Parquet of them."""
    rows = open_workspace(app_home).dataset("api-docs").rows()
    ids = rows["id"].astype(str).tolist()
    covered = [rid for i, rid in enumerate(ids) if i % 5 != 4]
    vectors = np.random.default_rng(5).normal(size=(len(covered), DIMS)).astype(np.float32)
    buf = io.BytesIO()
    pq.write_table(pa.table({"id": covered, "vector": list(vectors)}), buf)
    return ids, covered, vectors, buf.getvalue()


def _table(at) -> pd.DataFrame:
    (table,) = at.dataframe  # the only table on the page
    return table.value


def _import(at, files, name: str = "", **checks):
    at.file_uploader(key="emb:upload").set_value(files).run()
    if name:
        at.text_input(key="emb:import_name").input(name).run()
    for key, value in checks.items():
        at.checkbox(key=f"emb:{key}").set_value(value).run()
    at.button(key="emb:import").click().run()
    assert not at.exception, at.exception
    return at


def test_upload_parquet_list_make_active_and_search_with_it(make_app, upload, app_home):
    ids, covered, vectors, data = upload
    at = make_app(PAGE, dataset="api-docs")
    assert not at.exception and [t.value for t in at.title] == ["Embeddings"]
    assert _table(at)["Name"].tolist() == ["minilm"]
    _import(at, ("mine.parquet", data, "application/octet-stream"))
    summary = f"imported 'mine': {len(covered):,} vectors × {DIMS} dims; covers {len(covered):,} of {len(ids):,} rows"
    assert any(unescaped(s.value).startswith(summary) for s in at.success), [unescaped(s.value) for s in at.success]
    table = _table(at).set_index("Name")
    assert table.loc["mine", "Encoder"] == "imported" and table.loc["mine", "Dims"] == DIMS
    assert table.loc["mine", "Rows"] == f"covers {len(covered):,} of {len(ids):,} rows"
    assert table.loc["minilm", "Default"] == "★ default" and table.loc["mine", "Default"] == ""
    assert table.loc["minilm", "Active"] == "● active"
    assert f"mine ({DIMS}-d, imported)" in at.selectbox(key="sidebar:embedding").options  # listed at once

    assert at.selectbox(key="emb:pick").value == "mine"  # the new embedding is picked
    at.button(key="emb:activate").click().run()
    assert not at.exception
    assert at.session_state["sidebar:embedding"] == "mine"
    assert at.selectbox(key="sidebar:embedding").value == "mine"
    assert _table(at).set_index("Name").loc["mine", "Active"] == "● active"

    at.switch_page(str(REPO / "pages/similarity.py")).run()
    anchor = covered[10]
    at.text_area(key="sim:ids").input(anchor).run()
    at.button(key="sim:add_pos").click().run()
    assert not at.exception, at.exception
    shown = grid_ids(at, "sim:grid")
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = unit @ unit[10]
    order = [covered[i] for i in np.argsort(-scores) if covered[i] != anchor]
    # ranked by the imported vectors, best first
    assert len(shown) == 50 and shown[0] == order[0] and set(shown) == set(order[:50])
    by_id = dict(zip(covered, scores))
    badges = [float(r["badge"]) for r in grid_payload(at, "sim:grid")["rows"]]
    assert badges == pytest.approx([by_id[i] for i in shown], abs=1e-3)  # the score on each card
    assert not set(shown) - set(covered)


def test_npy_with_ids_upload_partial_and_error_messages(make_app, upload, app_home):
    _, covered, vectors, _ = upload
    at = make_app(PAGE, dataset="api-docs")
    emb_dir = open_workspace(app_home).dataset("api-docs").embeddings_dir
    before = tree_hash(emb_dir)
    bad = vectors.copy()
    bad[3] = np.nan
    npy, npy_ids = io.BytesIO(), io.BytesIO()
    np.save(npy, bad)
    np.save(npy_ids, np.asarray(covered))
    _import(at, [("vecs.npy", npy.getvalue(), "application/octet-stream"),
                 ("vecs.ids.npy", npy_ids.getvalue(), "application/octet-stream")], name="np")
    assert any("NaN" in unescaped(e.value) and repr(covered[3]) in unescaped(e.value) and "'vecs.npy'" in unescaped(e.value)
               for e in at.error), [unescaped(e.value) for e in at.error]
    assert "/tmp" not in " ".join(e.value for e in at.error)  # the upload's name, not a temp path
    assert tree_hash(emb_dir) == before and _table(at)["Name"].tolist() == ["minilm"]

    _import(at, ("vecs.npy", npy.getvalue(), "application/octet-stream"))
    assert any("upload its ids file" in e.value for e in at.error)

    good = io.BytesIO()
    np.save(good, vectors)
    text_ids = ("\n".join(covered) + "\n").encode()
    _import(at, [("vecs.npy", good.getvalue(), "application/octet-stream"),
                 ("ids.txt", text_ids, "text/plain")], name="np")
    assert not at.error and any("covers" in s.value for s in at.success)
    assert "np" in _table(at)["Name"].tolist()

    _import(at, [("vecs.npy", good.getvalue(), "application/octet-stream"),
                 ("ids.txt", text_ids, "text/plain")], name="np")
    assert any("already exists" in e.value for e in at.error)
    _import(at, [("vecs.npy", good.getvalue(), "application/octet-stream"),
                 ("ids.txt", text_ids, "text/plain")], name="np", import_replace=True)
    assert not at.error


def test_unknown_ids_need_the_skip_checkbox(make_app, app_home):
    at = make_app(PAGE, dataset="api-docs")
    rows = open_workspace(app_home).dataset("api-docs").rows()
    frame = pd.DataFrame(np.eye(3, 5), columns=[f"d{j}" for j in range(5)])
    frame.insert(0, "id", [rows["id"].iloc[0], rows["id"].iloc[1], "not.a.row"])
    data = frame.to_csv(index=False).encode()
    _import(at, ("few.csv", data, "text/csv"))
    assert any("not.a.row" in unescaped(e.value) and "not rows of dataset" in unescaped(e.value) for e in at.error)
    _import(at, ("few.csv", data, "text/csv"), skip_unknown=True)
    assert any("skipped 1 ids not in the dataset" in s.value for s in at.success)
    assert _table(at).set_index("Name").loc["few", "Rows"] == f"covers 2 of {len(rows):,} rows"


def test_default_delete_with_confirmation(make_app, upload, app_home):
    *_, data = upload
    at = _import(make_app(PAGE, dataset="api-docs"), ("mine.parquet", data, "application/octet-stream"))
    ds = open_workspace(app_home).dataset("api-docs")
    at.selectbox(key="emb:pick").set_value("mine").run()
    at.button(key="emb:default").click().run()
    assert ds.info()["default_embedding"] == "mine"
    assert _table(at).set_index("Name").loc["mine", "Default"] == "★ default"
    at.button(key="emb:activate").click().run()
    assert at.button(key="emb:delete").disabled  # not before "I understand"
    at.checkbox(key="emb:del_ok").check().run()
    at.button(key="emb:delete").click().run()
    assert not at.exception
    assert ds.embedding_names() == ["minilm"] and ds.info()["default_embedding"] is None
    assert _table(at)["Name"].tolist() == ["minilm"]
    assert at.session_state["sidebar:embedding"] == "minilm"  # the deleted active one is replaced
    assert any("Deleted embedding mine" in s.value for s in at.success)
    assert at.checkbox(key="emb:del_ok").value is False


def test_export_bytes_round_trip_through_import_upload(app_home):
    ws = open_workspace(app_home)
    ds = ws.dataset("api-docs")
    stored = np.load(ds.embedding_dir("minilm") / "vectors.npy")
    for fmt in ew.EXPORT_FORMATS:
        data = ew.export_bytes(ws, "api-docs", "minilm", fmt)
        if fmt == "npy":
            files = [(n, zipfile.ZipFile(io.BytesIO(data)).read(n))
                     for n in zipfile.ZipFile(io.BytesIO(data)).namelist()]
            assert sorted(n for n, _ in files) == ["minilm.ids.npy", "minilm.npy"]
        else:
            files = [(ew.export_file_name("api-docs", "minilm", fmt), data)]
        report = ew.import_upload(ws, "api-docs", files, f"back-{fmt}")
        assert report.uncovered == 0 and report.info.dims == 384
        assert np.load(ds.embedding_dir(f"back-{fmt}") / "vectors.npy").tobytes() == stored.tobytes()
    assert ew.export_file_name("api-docs", "minilm", "npy") == "api-docs-minilm.zip"


def test_sizes_are_human_readable():
    assert [ew.human_size(n) for n in (10, 1536, 5 * 1024**2, 3 * 1024**4)] == [
        "10 B", "1.5 KB", "5.0 MB", "3.0 TB"]


def test_split_upload_rules(tmp_path: Path):
    def touch(*names: str) -> list[Path]:
        for n in names:
            (tmp_path / n).write_bytes(b"")
        return [tmp_path / n for n in names]

    assert ew.split_upload(touch("a.parquet")) == (tmp_path / "a.parquet", None)
    assert ew.split_upload(touch("v.npy", "v.ids.npy")) == (tmp_path / "v.npy", tmp_path / "v.ids.npy")
    assert ew.split_upload(touch("v.npy", "ids.csv")) == (tmp_path / "v.npy", tmp_path / "ids.csv")
    np.save(tmp_path / "x.npy", np.zeros((2, 3)))
    np.save(tmp_path / "names.npy", np.asarray(["a", "b"]))
    assert ew.split_upload([tmp_path / "names.npy", tmp_path / "x.npy"]) == (tmp_path / "x.npy",
                                                                            tmp_path / "names.npy")
    for bad, words in (([], "no file uploaded"), (touch("a.csv", "b.txt"), "only goes with .npy"),
                       (touch("a.npy", "b.npy", "c.txt"), "got 3"), (touch("solo.npy"), "ids file")):
        with pytest.raises(InputError, match=words):
            ew.split_upload(bad)


def test_compute_a_new_embedding_with_progress(make_app, app_home, tmp_path):
    table = tmp_path / "tiny.csv"
    pd.DataFrame({"id": [f"t{i}" for i in range(8)],
                  "text": ["cats", "dogs", "stocks", "bonds", "bread", "cake", "rain", "snow"]}).to_csv(table, index=False)
    ingest(open_workspace(app_home), table, "tiny")
    at = make_app(PAGE, dataset="tiny")
    assert any("no embeddings yet" in i.value for i in at.info)
    assert at.selectbox(key="emb:encoder").options == ["text:minilm", ew.OTHER_LABEL]
    at.selectbox(key="emb:encoder").set_value(ew.OTHER).run()
    at.text_input(key="emb:custom").input("huggingface:thing").run()
    at.button(key="emb:compute").click().run()
    assert any("'huggingface:thing'" in unescaped(e.value) and "clip:NAME_OR_PATH" in unescaped(e.value) for e in at.error)
    at.selectbox(key="emb:encoder").set_value("text:minilm").run()
    at.text_input(key="emb:new_name").input("mini").run()
    at.button(key="emb:compute").click().run()
    assert not at.exception and not at.error
    # computed as a background job: said at once, the table fills in when it ends
    assert any("Embedding tiny with text:minilm: running in the background" in unescaped(i.value)
               for i in at.info)
    job = finish_job(at, app_home, "tiny", "embed")
    assert job.result["embeddings"] == ["mini"]
    table = _table(at).set_index("Name")
    assert table.loc["mini", "Encoder"] == "text:minilm" and table.loc["mini", "Default"] == "★ default"
    assert at.session_state["sidebar:embedding"] == "mini"
    meta = json.loads((open_workspace(app_home).dataset("tiny").embedding_dir("mini") / "meta.json").read_text())
    assert meta["source"] == "computed" and meta["rows"] == 8
    with pytest.raises(SchemaError):  # sanity: the helper's errors keep their type
        ew.import_upload(open_workspace(app_home), "tiny", [("x.csv", b"name,d0\na,1\n")], "x", id_col="nope")


def test_rebuild_the_index_as_a_graph_from_the_page(make_app, app_home):
    at = make_app(PAGE, dataset="api-docs")
    assert _table(at).set_index("Name").loc["minilm", "Index"] == "exact"
    at.selectbox(key="emb:index_kind").set_value("hnsw").run()
    at.button(key="emb:reindex").click().run()
    assert not at.exception, at.exception
    assert any("Building the hnsw index of minilm: running in the background" in i.value
               for i in at.info)
    job = finish_job(at, app_home, "api-docs", "index")
    assert job.result["summary"].startswith("minilm: hnsw index over")
    assert _table(at).set_index("Name").loc["minilm", "Index"] == "hnsw"
    emb = open_workspace(app_home).dataset("api-docs").embedding_dir("minilm")
    assert json.loads((emb / "index.json").read_text())["kind"] == "hnsw"


def test_the_class_name_embedding_an_image_embed_writes_is_listed(make_app):
    at = make_app(PAGE)  # digits: embedded with EfficientNet-Lite0, which wrote its class names too
    assert not at.exception, at.exception
    table = _table(at).set_index("Name")
    row = table.loc["efficientnet-lite0-text"]
    assert row["Encoder"] == "class-names:efficientnet-lite0" and row["Dims"] == 384
    assert row["Kind"] == "class names (text search on images)"
    assert table.loc["efficientnet-lite0", "Kind"] == ""
