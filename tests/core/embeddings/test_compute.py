from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.embeddings import compute_embeddings
from core.embeddings import files as E
from core.errors import AlreadyExistsError, EmbeddingError, InputError, NotFoundError
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
    report = compute_embeddings(notes, chunk_rows=16)
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


@pytest.mark.parametrize(("option", "bad"), [("batch_size", 0), ("chunk_rows", 0), ("chunk_rows", 2.5)])
def test_a_bad_batch_or_chunk_size_is_refused_before_any_work(notes, option, bad):
    before = sorted(p.relative_to(notes.path) for p in notes.path.rglob("*"))
    with pytest.raises(InputError, match=f"^{option} must be a whole number >= 1, got {bad!r}$"):
        compute_embeddings(notes, **{option: bad})
    assert sorted(p.relative_to(notes.path) for p in notes.path.rglob("*")) == before
    assert notes.embedding_names() == []


def test_an_existing_embedding_encodes_only_rows_without_a_vector_and_replace_recomputes(notes, monkeypatch):
    from core import encoders

    compute_embeddings(notes)
    again = compute_embeddings(notes)
    assert again.encoded_rows == 0 and again.embeddings[0].rows == 40
    assert compute_embeddings(notes, replace=True).encoded_rows == 40

    class Other:
        spec, name, dims, modalities = "text:other", "minilm", 384, frozenset({"text"})

    monkeypatch.setattr(encoders, "load_encoder", lambda spec, device="auto": Other())
    with pytest.raises(AlreadyExistsError, match="made with encoder 'text:minilm', not with 'text:other'"):
        compute_embeddings(notes, "text:other")


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

    monkeypatch.setattr(encoders, "load_encoder", lambda spec, device="auto": Flaky())
    with pytest.raises(KeyboardInterrupt):
        compute_embeddings(notes, "text:minilm", chunk_rows=10)
    assert notes.embedding_names() == []
    report = compute_embeddings(notes, "text:minilm", chunk_rows=10)
    assert report.resumed_rows == 20 and report.encoded_rows == 20


def test_write_embedding_validates_shape(notes):
    with pytest.raises(EmbeddingError, match="shape"):
        E.write_embedding(notes, "bad", ["n0", "n1"], np.ones((3, 4)), {"source": "imported"})
    with pytest.raises(NotFoundError, match="no embedding 'nope'"):
        E.load_embedding(notes, "nope")


def test_delete_and_rebuild_missing_index(notes):
    compute_embeddings(notes)
    (notes.embedding_dir("minilm") / "index.faiss").unlink()
    assert len(E.load_index(notes)) == 40  # rebuilt from the vectors
    E.delete_embedding(notes, "minilm")
    assert notes.embedding_names() == [] and notes.default_embedding() is None


@pytest.fixture
def pets(ws, tmp_path):
    """6 small PNGs in cat/ and dog/ (ingested as a folder dataset) and their folder."""
    from PIL import Image

    from core.ingest import ingest_folder

    root = tmp_path / "pets"
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (8, 8), (40 * i, 100 if label == "cat" else 200, 7)).save(root / label / f"{i}.png")
    ingest_folder(ws, root, "pets")
    return ws.dataset("pets"), root


class MeanColour:
    """A 3-d image encoder (mean RGB) that can be told to fail on its n-th call."""

    spec, name, dims, modalities = "image:mean-colour", "mean-colour", 3, frozenset({"image"})

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls, self.fail_on_call, self.images = 0, fail_on_call, 0

    def encode_images(self, images, **kw):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise KeyboardInterrupt
        self.images += len(images)
        return np.array([np.asarray(im, np.float32).mean((0, 1)) + 1 for im in images], np.float32)


def test_a_resumed_run_retries_images_that_were_unreadable_before(pets, monkeypatch):
    from core import encoders

    ds, root = pets
    hidden = root.parent / "hidden.png"
    (root / "cat" / "0.png").rename(hidden)  # e.g. a media share not mounted yet
    flaky = MeanColour(fail_on_call=2)
    monkeypatch.setattr(encoders, "load_encoder", lambda spec, device="auto": flaky)
    with pytest.raises(KeyboardInterrupt):
        compute_embeddings(ds, "image:mean-colour", chunk_rows=2)
    hidden.rename(root / "cat" / "0.png")  # back before the re-run
    again = MeanColour()
    monkeypatch.setattr(encoders, "load_encoder", lambda spec, device="auto": again)
    report = compute_embeddings(ds, "image:mean-colour", chunk_rows=2)
    assert report.skipped == {} and report.embeddings[0].rows == 6
    assert "cat/0.png" in set(E.load_embedding(ds, "mean-colour").ids)
    assert report.resumed_rows == 1 and again.images == 5  # only the finished rows were reused


def test_still_unreadable_images_are_counted_as_skipped_on_resume(pets, monkeypatch):
    from core import encoders

    ds, root = pets
    (root / "cat" / "0.png").write_bytes(b"not a png")  # in the chunk the first run finishes
    monkeypatch.setattr(encoders, "load_encoder", lambda spec, device="auto": MeanColour(fail_on_call=2))
    with pytest.raises(KeyboardInterrupt):
        compute_embeddings(ds, "image:mean-colour", chunk_rows=2)
    monkeypatch.setattr(encoders, "load_encoder", lambda spec, device="auto": MeanColour())
    report = compute_embeddings(ds, "image:mean-colour", chunk_rows=2)
    assert report.skipped == {"unreadable image": 1} and report.embeddings[0].rows == 5


def test_no_readable_image_is_a_media_error_and_leaves_nothing_to_resume(pets, monkeypatch):
    from core import encoders
    from core.errors import MediaError

    ds, root = pets
    moved = root.parent / "moved"
    root.rename(moved)
    monkeypatch.setattr(encoders, "load_encoder", lambda spec, device="auto": MeanColour())
    with pytest.raises(MediaError, match="none of the 6 image rows"):
        compute_embeddings(ds, "image:mean-colour", chunk_rows=2)
    assert ds.embedding_names() == [] and not list(ds.embeddings_dir.glob(".*"))
    moved.rename(root)
    report = compute_embeddings(ds, "image:mean-colour", chunk_rows=2)
    assert report.embeddings[0].rows == 6 and report.skipped == {}
