from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core import embeddings as E
from core.errors import AlreadyExistsError, EmbeddingError, NotFoundError
from core.ingest import ingest_table


@pytest.fixture
def notes(ws, tmp_path):
    table = tmp_path / "notes.csv"
    pd.DataFrame({
        "id": [f"n{i}" for i in range(40)],
        "text": [f"note number {i} about {'cats' if i % 2 else 'stocks'}" for i in range(40)],
        "label": ["cats" if i % 2 else "stocks" for i in range(40)],
    }).to_csv(table, index=False)
    ingest_table(ws, table, "notes")
    return ws.dataset("notes")


def test_compute_saves_normalised_vectors_index_and_default(notes):
    report = E.compute_embeddings(notes, chunk_rows=16)
    (info,) = report.embeddings
    assert (info.name, info.dims, info.rows, info.encoder) == ("minilm", 384, 40, "text:minilm")
    assert report.encoded_rows == 40 and report.resumed_rows == 0
    emb = E.load_embedding(notes)
    assert list(emb.ids) == [f"n{i}" for i in range(40)]
    np.testing.assert_allclose(np.linalg.norm(emb.vectors, axis=1), 1, atol=1e-5)
    assert notes.default_embedding() == "minilm"
    index = E.load_index(notes)
    assert len(index) == 40
    assert not any(p.name.startswith(".") for p in notes.embeddings_dir.iterdir())


def test_existing_embedding_needs_replace(notes):
    E.compute_embeddings(notes)
    with pytest.raises(AlreadyExistsError, match="--replace"):
        E.compute_embeddings(notes)
    E.compute_embeddings(notes, replace=True)


def test_a_failing_run_leaves_no_embedding_and_resumes(notes, monkeypatch):
    from core import encoders

    real = encoders.load_encoder("text:minilm")
    calls = {"n": 0}

    class Flaky:
        spec, name, dims, modalities = real.spec, real.name, real.dims, real.modalities

        def encode_texts(self, texts, **kw):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt  # like Ctrl-C in the middle of a run
            return real.encode_texts(texts, **kw)

    monkeypatch.setattr(encoders, "load_encoder", lambda spec: Flaky())
    with pytest.raises(KeyboardInterrupt):
        E.compute_embeddings(notes, "text:minilm", chunk_rows=10)
    assert notes.embedding_names() == []
    report = E.compute_embeddings(notes, "text:minilm", chunk_rows=10)
    assert report.resumed_rows == 20 and report.encoded_rows == 20


def test_write_embedding_validates_shape(notes):
    with pytest.raises(EmbeddingError, match="shape"):
        E.write_embedding(notes, "bad", ["n0", "n1"], np.ones((3, 4)), {"source": "imported"})
    with pytest.raises(NotFoundError, match="no embedding 'nope'"):
        E.load_embedding(notes, "nope")


def test_delete_and_rebuild_missing_index(notes):
    E.compute_embeddings(notes)
    (notes.embedding_dir("minilm") / "index.faiss").unlink()
    assert len(E.load_index(notes)) == 40  # rebuilt from the vectors
    E.delete_embedding(notes, "minilm")
    assert notes.embedding_names() == [] and notes.default_embedding() is None
