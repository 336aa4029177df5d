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
