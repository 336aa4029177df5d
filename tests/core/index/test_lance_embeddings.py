"""An embedding whose index is a LanceDB table: rebuild_index / load_index pick the backend
from index.json, similarity search works on it, appended vectors and a dataset update change
a staged copy of the table (the stored embedding is never written before the swap)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.embeddings import append_vectors, load_index, rebuild_index, write_embedding
from core.embeddings.update import carry_embeddings
from core.errors import EmbeddingError, InputError
from core.ingest import ingest_table
from core.search import find_similar
from tests.conftest import tree_hash

pytest.importorskip("lancedb")

N, D = 400, 16
IDS = [f"r{i:03d}" for i in range(N)]


@pytest.fixture
def ds(ws, tmp_path: Path):
    """A text dataset of N rows with one FAISS-indexed embedding ``e`` of random vectors."""
    src = tmp_path / "texts.csv"
    pd.DataFrame({"id": IDS, "text": [f"sentence {i}" for i in range(N)]}).to_csv(src, index=False)
    ingest_table(ws, src, "texts")
    ds = ws.dataset("texts")
    x = np.random.default_rng(0).standard_normal((N, D)).astype(np.float32)
    write_embedding(ds, "e", IDS, x, {"encoder": None, "source": "imported"})
    return ds


def test_rebuild_as_lancedb_then_load_and_search(ds) -> None:
    before = load_index(ds, "e")
    info = rebuild_index(ds, "e", backend="lancedb")
    assert info.index_kind == "exact"  # 400 rows: below INDEX_MIN_ROWS, LanceDB scans
    index = load_index(ds, "e")
    assert type(index).__name__ == "LanceIndex" and (ds.embedding_dir("e") / "lance").is_dir()
    q = before.vectors_for(["r007"])
    np.testing.assert_array_equal(index.search(q, 10).ids, before.search(q, 10).ids)
    result = find_similar(index, ["r007"], k=5)
    assert len(result.ids) == 5 and "r007" not in result.ids
    with pytest.raises(InputError, match="unknown index backend 'annoy'"):
        rebuild_index(ds, "e", backend="annoy")
    assert type(load_index(ds, "e")).__name__ == "LanceIndex"  # nothing changed
    rebuild_index(ds, "e")  # back to the default FAISS backend
    assert type(load_index(ds, "e")).__name__ == "VectorIndex"


def test_a_stale_lancedb_index_is_rebuilt_as_lancedb_at_its_uri(ds, tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    rebuild_index(ds, "e", backend="lancedb", uri=uri)
    index = load_index(ds, "e")
    index.remove(["r001"])  # the table at the URI changes at once: now stale
    again = load_index(ds, "e")
    assert len(again) == N and again.uri == uri and "r001" in set(again.ids)


def test_appended_vectors_and_an_update_change_a_staged_copy(ds) -> None:
    rebuild_index(ds, "e", backend="lancedb")
    folder = ds.embedding_dir("e")
    digest = tree_hash(folder)
    new = np.random.default_rng(1).standard_normal((3, D)).astype(np.float32)
    with pytest.raises(EmbeddingError):
        append_vectors(ds, "e", [(["n0", "n1", "r000"], new)], total=3)  # r000 exists
    assert tree_hash(folder) == digest  # a failed append leaves the stored embedding as it was
    append_vectors(ds, "e", [(["n0", "n1", "n2"], new)], total=3)
    index = load_index(ds, "e")
    assert type(index).__name__ == "LanceIndex" and len(index) == N + 3
    assert index.search(new[1], 1).row(0)[0] == ["n1"]
    digest = tree_hash(folder)
    staging = folder.parent.parent / "staged-update"
    carry_embeddings(ds, staging, np.array(["r002", "n0"]), N + 1)
    assert tree_hash(folder) == digest  # nothing under the dataset is written
    carried = staging / "embeddings" / "e"
    from core.index import open_index

    staged = open_index(carried)
    assert len(staged) == N + 1 and not {"r002", "n0"} & set(staged.ids)
    assert len(load_index(ds, "e")) == N + 3


def test_write_embedding_straight_into_lancedb_at_the_default_place_and_at_a_uri(ds, tmp_path: Path) -> None:
    from core.embeddings import describe_embedding, load_embedding

    x = np.random.default_rng(2).standard_normal((N, D)).astype(np.float32)
    info = write_embedding(ds, "lance", IDS, x, {"encoder": None, "source": "imported"}, backend="lancedb")
    assert (info.index_backend, info.index_kind) == ("lancedb", "exact")
    assert (ds.embedding_dir("lance") / "lance").is_dir()
    assert not (ds.embedding_dir("lance") / "index.faiss").exists()
    index = load_index(ds, "lance")
    unit = np.asarray(load_embedding(ds, "lance").vectors)
    hits = index.search(unit[5], 3)
    assert hits.ids[0][0] == "r005" and abs(float(hits.scores[0][0]) - 1.0) < 1e-5
    uri = str(tmp_path / "elsewhere")
    write_embedding(ds, "remote", IDS, x, {"encoder": None, "source": "imported"}, backend="lancedb", uri=uri)
    assert load_index(ds, "remote").uri == uri and (Path(uri) / "vectors.lance").is_dir()
    assert describe_embedding(ds, "remote").to_json()["index_backend"] == "lancedb"


def test_a_bad_backend_or_uri_writes_no_embedding(ds, tmp_path: Path) -> None:
    x = np.ones((N, D), np.float32)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for kwargs, message in (({"backend": "annoy"}, "unknown index backend 'annoy'"),
                            ({"backend": "faiss", "uri": str(tmp_path / "x")}, "applies to the lancedb backend only"),
                            ({"backend": "lancedb", "uri": str(blocker / "db")}, "is not writable"),
                            ({"backend": "lancedb", "index_kind": "hnsw"}, "unknown index kind 'hnsw' for the lancedb")):
        with pytest.raises(InputError, match=message):
            write_embedding(ds, "nope", IDS, x, {"encoder": None, "source": "imported"}, **kwargs)
        assert "nope" not in ds.embedding_names()


def test_compute_embeddings_into_lancedb_then_appends_go_to_that_table(ws, tmp_path: Path) -> None:
    from core.embeddings import compute_embeddings, describe_embedding
    from core.ingest import ingest

    src = tmp_path / "notes.csv"
    rows = pd.DataFrame({"id": [f"n{i}" for i in range(12)], "text": [f"note {i} about cats" for i in range(12)]})
    rows.iloc[:10].to_csv(src, index=False)
    ingest_table(ws, src, "notes")
    notes = ws.dataset("notes")
    (info,) = compute_embeddings(notes, backend="lancedb").embeddings
    assert info.index_backend == "lancedb" and type(load_index(notes, "minilm")).__name__ == "LanceIndex"
    rows.to_csv(src, index=False)
    ingest(ws, src, "notes", update=True)
    with pytest.raises(InputError, match="has a lancedb index; new rows go to that index"):
        compute_embeddings(notes, backend="faiss")
    report = compute_embeddings(notes)  # the recorded backend: the two new rows go into the table
    assert report.encoded_rows == 2 and describe_embedding(notes, "minilm").index_backend == "lancedb"
    index = load_index(notes, "minilm")
    assert type(index).__name__ == "LanceIndex" and {"n10", "n11"} <= set(index.ids)
