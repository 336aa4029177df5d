"""`catalog index NAME --backend lancedb [--uri URI]` as a user runs it: the index moves to
LanceDB and search keeps working; a bad backend, an unwritable URI or a table of another
width exits 2 with one line and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.cli.test_cli import catalog
from tests.conftest import tree_hash

pytest.importorskip("lancedb")

N, DIMS = 30, 16
IDS = [f"n{i:02d}" for i in range(N)]


@pytest.fixture
def notes(home: Path, tmp_path: Path) -> Path:
    """Dataset 'notes' (30 text rows) with embedding 'base' imported from NPY via the CLI."""
    table = tmp_path / "notes.csv"
    pd.DataFrame({"id": IDS, "text": [f"note {i}" for i in range(N)]}).to_csv(table, index=False)
    assert catalog(home, "ingest", table, "--name", "notes").returncode == 0
    np.save(tmp_path / "base.npy", np.random.default_rng(0).normal(size=(N, DIMS)).astype(np.float32))
    np.save(tmp_path / "base.ids.npy", np.asarray(IDS))
    out = catalog(home, "import-embeddings", "notes", tmp_path / "base.npy", "--embedding", "base")
    assert out.returncode == 0, out.stderr
    return home


def _search(home: Path) -> list:
    out = catalog(home, "search", "notes", "--id", "n03", "-k", "4", "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["results"]


def test_index_on_lancedb_and_back(notes: Path, tmp_path: Path) -> None:
    before = _search(notes)
    folder = notes / "datasets" / "notes" / "embeddings" / "base"
    out = catalog(notes, "index", "notes", "--backend", "lancedb", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["embedding"]["index_kind"] == "exact"
    assert json.loads((folder / "index.json").read_text())["backend"] == "lancedb"
    assert (folder / "lance").is_dir() and not (folder / "index.faiss").exists()
    assert [r["id"] for r in _search(notes)] == [r["id"] for r in before]
    uri = tmp_path / "store"
    assert catalog(notes, "index", "notes", "--backend", "lancedb", "--uri", uri).returncode == 0
    assert json.loads((folder / "index.json").read_text())["uri"] == str(uri) and (uri / "vectors.lance").is_dir()
    assert [r["id"] for r in _search(notes)] == [r["id"] for r in before]
    assert catalog(notes, "index", "notes").returncode == 0  # back to FAISS
    assert (folder / "index.faiss").exists() and not (folder / "lance").exists()


def test_bad_backend_uri_or_width_exits_2_with_one_line(notes: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    other = tmp_path / "other"
    other.mkdir()
    import lancedb
    import pyarrow as pa

    lancedb.connect(str(other)).create_table("vectors", pa.table({
        "slot": pa.array([0], pa.int64()), "id": ["x"],
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(np.ones(8, np.float32)), 8)}))
    before = tree_hash(notes)
    for args, message in ((("--backend", "annoy"), "unknown index backend 'annoy'; choose one of faiss, lancedb"),
                          (("--backend", "lancedb", "--uri", tmp_path / "file" / "db"), "is not writable"),
                          (("--backend", "lancedb", "--uri", other), "holds 8-d vectors; these are 16-d"),
                          (("--uri", other), "applies to the lancedb backend only")):
        out = catalog(notes, "index", "notes", *args)
        assert out.returncode == 2, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], out.stderr
    assert tree_hash(notes) == before


def test_import_embeddings_and_embed_write_straight_into_lancedb(notes: Path, tmp_path: Path) -> None:
    uri = tmp_path / "lake"
    out = catalog(notes, "import-embeddings", "notes", tmp_path / "base.npy", "--embedding", "direct",
                  "--backend", "lancedb", "--uri", uri, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["embedding"]["index_backend"] == "lancedb" and (uri / "vectors.lance").is_dir()
    found = catalog(notes, "search", "notes", "--id", "n03", "-k", "4", "--embedding", "direct", "--json")
    assert [r["id"] for r in json.loads(found.stdout)["results"]] == [r["id"] for r in _search(notes)]
    out = catalog(notes, "embed", "notes", "--backend", "lancedb", "--json")
    assert out.returncode == 0, out.stderr
    (emb,) = json.loads(out.stdout)["embeddings"]
    folder = notes / "datasets" / "notes" / "embeddings" / emb["name"]
    assert emb["index_backend"] == "lancedb" and (folder / "lance").is_dir()
    before = tree_hash(notes)
    for args, message in ((("import-embeddings", "notes", tmp_path / "base.npy", "--embedding", "x",
                            "--backend", "annoy"), "unknown index backend 'annoy'"),
                          (("import-embeddings", "notes", tmp_path / "base.npy", "--embedding", "x",
                            "--backend", "lancedb", "--uri", tmp_path / "base.npy"), "is not writable"),
                          (("embed", "notes", "--backend", "faiss"), "has a lancedb index; new rows go to that index")):
        out = catalog(notes, *args)
        assert out.returncode == 2, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], out.stderr
    assert tree_hash(notes) == before
