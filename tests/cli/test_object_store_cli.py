"""`catalog ingest URI`, `catalog import-embeddings NAME URI` and `catalog index --backend
lancedb --uri s3://...` as a user runs them, against a real S3 API: moto's server on
127.0.0.1 (pyarrow's and LanceDB's own S3 clients, no network). Settings come from
$CATALOG_STORAGE_OPTIONS or the standard AWS variables. Bad locations and a LanceDB URI that
cannot be written exit 2 with one line naming them and change nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.cli.test_cli import assert_bad_input, catalog
from tests.conftest import tree_hash
from tests.helpers.object_store import s3_store, use_store

N, DIMS = 30, 16
IDS = [f"n{i:02d}" for i in range(N)]
VECTORS = np.random.default_rng(0).normal(size=(N, DIMS)).astype(np.float32)


@pytest.fixture(scope="module")
def s3():
    with s3_store() as store:
        yield store


@pytest.fixture(scope="module")
def sources(s3, tmp_path_factory) -> dict[str, str]:
    """The notes table (Parquet, CSV) and its vectors (NPY + ids, Parquet) uploaded to the bucket."""
    folder = tmp_path_factory.mktemp("sources")
    table = pd.DataFrame({"id": IDS, "text": [f"note {i}" for i in range(N)], "label": ["x", "y", "z"] * 10})
    table.to_parquet(folder / "notes.parquet", index=False)
    table.to_csv(folder / "notes.csv", index=False)
    np.save(folder / "base.npy", VECTORS)
    np.save(folder / "base.ids.npy", np.asarray(IDS))
    pd.DataFrame({"id": IDS, "vector": list(VECTORS)}).to_parquet(folder / "base.parquet", index=False)
    return {name: s3.put(folder / name, f"in/{name}") for name in
            ("notes.parquet", "notes.csv", "base.npy", "base.ids.npy", "base.parquet")} | {"local": str(folder)}


def ok(home: Path, *args) -> str:
    out = catalog(home, *args)
    assert out.returncode == 0, out.stderr
    return out.stdout


def ids_of(stdout: str) -> list[str]:
    return [r["id"] for r in json.loads(stdout)["results"]]


@pytest.mark.parametrize("via", ["options", "env"])
def test_ingest_import_and_a_lancedb_index_all_at_s3(home: Path, s3, sources, monkeypatch: pytest.MonkeyPatch,
                                                     via: str) -> None:
    pytest.importorskip("lancedb")
    use_store(monkeypatch, s3, via=via)
    report = json.loads(ok(home, "ingest", sources["notes.parquet"], "--name", "notes", "--json"))
    assert report["rows"] == N
    ok(home, "ingest", sources["notes.csv"], "--name", "notes-csv")
    ok(home, "import-embeddings", "notes", sources["base.npy"], "--embedding", "base")
    ok(home, "import-embeddings", "notes", sources["base.parquet"], "--embedding", "same")
    exact = ids_of(ok(home, "search", "notes", "--id", "n03", "-k", "5", "--embedding", "base", "--json"))
    lance = s3.uri(f"lance-{via}")
    ok(home, "index", "notes", "--embedding", "base", "--backend", "lancedb", "--uri", lance)
    assert any(k.startswith(f"lance-{via}/vectors.lance/") for k in s3.keys(f"lance-{via}"))
    index_json = json.loads((home / "datasets/notes/embeddings/base/index.json").read_text())
    assert index_json["backend"] == "lancedb" and index_json["uri"] == lance
    assert "endpoint" not in json.dumps(index_json)  # settings stay in the environment, not on disk
    # a new process opens the table at s3 from index.json and the environment
    assert ids_of(ok(home, "search", "notes", "--id", "n03", "-k", "5", "--embedding", "base", "--json")) == exact
    listed = json.loads(ok(home, "list", "notes", "--json"))["datasets"][0]["embeddings"]
    assert {e["name"]: e["index_backend"] for e in listed} == {"base": "lancedb", "same": "faiss"}
    info = json.loads((home / "datasets/notes/dataset.json").read_text())
    assert info["source"] == sources["notes.parquet"]


def test_file_uris_and_plain_paths_take_the_same_road(home: Path, sources, tmp_path: Path) -> None:
    local = Path(sources["local"])
    ok(home, "ingest", (local / "notes.csv").as_uri(), "--name", "a")
    ok(home, "ingest", local / "notes.csv", "--name", "b")
    pd.testing.assert_frame_equal(pd.read_parquet(home / "datasets/a/rows.parquet"),
                                  pd.read_parquet(home / "datasets/b/rows.parquet"))
    ok(home, "import-embeddings", "a", (local / "base.npy").as_uri(), "--embedding", "base")
    ok(home, "import-embeddings", "b", local / "base.npy", "--embedding", "base")
    assert np.array_equal(np.load(home / "datasets/a/embeddings/base/vectors.npy"),
                          np.load(home / "datasets/b/embeddings/base/vectors.npy"))


def test_bad_locations_exit_2_with_one_line(home: Path, s3, sources, monkeypatch: pytest.MonkeyPatch) -> None:
    use_store(monkeypatch, s3)
    ok(home, "ingest", sources["notes.csv"], "--name", "notes")
    missing = s3.uri("in/missing.csv")
    cases = [
        (("ingest", missing, "--name", "x"), f"source '{missing}' does not exist"),
        (("ingest", "s3://no-such-bucket-here/t.csv", "--name", "x"), "does not exist"),
        (("ingest", "gopher://host/t.csv", "--name", "x"), "unknown scheme 'gopher'"),
        (("ingest", s3.uri("in/"), "--name", "x"), "image folders are read from the local disk only"),
        (("import-embeddings", "notes", s3.uri("in/missing.npy"), "--embedding", "e"), "does not exist"),
        (("import-embeddings", "notes", "gopher://host/v.npy", "--embedding", "e"), "unknown scheme 'gopher'"),
        (("import-embeddings", "notes", sources["base.npy"], "--embedding", "e", "--ids-file",
          s3.uri("in/none.ids.npy")), "ids file"),
    ]
    for args, mentions in cases:
        assert_bad_input(home, *args, mentions=mentions)
    monkeypatch.setenv("CATALOG_STORAGE_OPTIONS", '{"endpoint": "http://x"}')
    assert_bad_input(home, "ingest", sources["notes.csv"], "--name", "x",
                     mentions="unknown key(s) 'endpoint' in $CATALOG_STORAGE_OPTIONS")


@pytest.fixture
def notes(home: Path, sources) -> Path:
    """Dataset 'notes' with embedding 'base' (FAISS), from the local copies."""
    local = Path(sources["local"])
    ok(home, "ingest", local / "notes.csv", "--name", "notes")
    ok(home, "import-embeddings", "notes", local / "base.npy", "--embedding", "base")
    return home


def test_a_lancedb_uri_that_is_not_writable_changes_nothing(notes: Path, s3, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("lancedb")
    use_store(monkeypatch, s3)
    (tmp_path / "file").write_text("not a folder")
    keys, before = s3.keys(), tree_hash(notes)
    for uri, why in ((tmp_path / "file" / "db", "is not a folder"), ((tmp_path / "file" / "db").as_uri(), "is not a folder"),
                     (tmp_path / "file", "is not a folder"), ("s3://no-such-bucket-here/lance", "NoSuchBucket")):
        out = catalog(notes, "index", "notes", "--embedding", "base", "--backend", "lancedb", "--uri", uri)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1, out.stderr
        assert f"LanceDB URI '{uri}' is not writable: " in lines[0] and why in lines[0], lines[0]
    assert tree_hash(notes) == before and s3.keys() == keys
    assert (tmp_path / "file").read_text() == "not a folder"


@pytest.mark.skipif(getattr(os, "geteuid", lambda: 1)() == 0, reason="root may write into a read-only folder")
def test_a_read_only_lancedb_folder_is_not_writable(notes: Path, tmp_path: Path) -> None:
    pytest.importorskip("lancedb")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert not os.access(locked, os.W_OK)
        assert_bad_input(notes, "index", "notes", "--embedding", "base", "--backend", "lancedb",
                         "--uri", locked / "db", mentions="is not writable")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)
