"""``ingest(..., update=True)``: a changed source updates the stored dataset by id, keeping
the vectors of rows whose content did not change (and encoding only the others next)."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from core.embeddings import (
    compute_embeddings,
    load_embedding,
    load_index,
    rebuild_index,
)
from core.errors import InputError, NotFoundError
from core.ingest import ingest
from core.ingest.fingerprints import FINGERPRINTS_FILE
from tests.conftest import tree_hash
from tests.core.embeddings import test_compute
from tests.core.embeddings.test_compute import MeanColour

pets = test_compute.pets  # the fixture: 6 small PNGs in cat/ and dog/, ingested as "pets"


class HashText:
    """A cheap 8-d text encoder (a hash of each text) that counts what it encodes."""

    spec, name, dims, modalities = "text:hash", "hash", 8, frozenset({"text"})

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def encode_texts(self, texts, **kw):
        self.encoded += list(texts)
        out = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:32], np.uint8)[:8] for t in texts]
        return np.asarray(out, np.float32) + 1


@pytest.fixture
def fake(monkeypatch):
    from core import encoders

    made = {"text": HashText(), "image": MeanColour()}
    monkeypatch.setattr(encoders, "load_encoder",
                        lambda spec, device="auto": made["image" if spec.startswith("image") else "text"])
    return made


def _table(path, n=30, **changes):
    frame = pd.DataFrame({"id": [f"n{i}" for i in range(n)],
                          "text": [f"note {i}" for i in range(n)],
                          "label": ["a" if i % 2 else "b" for i in range(n)],
                          "score": np.arange(n, dtype=float)})
    for column, values in changes.items():
        for i, v in values.items():
            frame.loc[frame["id"] == i, column] = v
    frame.to_csv(path, index=False)
    return frame


@pytest.fixture
def notes(ws, tmp_path, fake):
    src = tmp_path / "notes.csv"
    _table(src)
    ingest(ws, src, "notes")
    ds = ws.dataset("notes")
    compute_embeddings(ds, "text:hash")
    fake["text"].encoded.clear()
    return ws, ds, src


def test_metadata_only_change_keeps_every_vector_bit_for_bit_and_encodes_nothing(notes, fake):
    ws, ds, src = notes
    assert not (ds.path / FINGERPRINTS_FILE).exists()  # text rows: their text is their content
    before = load_embedding(ds, "hash")
    vectors, ids = np.array(before.vectors), before.ids.copy()
    _table(src, label={"n3": "zz"}, score={"n4": 99.5})
    report = ingest(ws, src, "notes", update=True)
    u = report.update
    assert (u.added, u.changed, u.content_changed, u.removed, u.kept) == (0, 2, 0, 0, 28)
    assert u.notes == ()  # nothing was assumed: the stored texts were compared
    after = load_embedding(ds, "hash")
    assert after.vectors.tobytes() == vectors.tobytes() and list(after.ids) == list(ids)
    rows = ds.rows().set_index("id")
    assert rows.loc["n3", "label"] == "zz" and rows.loc["n4", "score"] == 99.5
    again = compute_embeddings(ds, "text:hash")
    assert again.encoded_rows == 0 and fake["text"].encoded == []
    assert "update: added 0, changed 2 (content 0), removed 0, kept 28" in report.summary()
    assert report.to_json()["update"]["kept"] == 28


def test_changed_text_loses_its_vector_and_only_it_is_encoded_again(notes, fake):
    ws, ds, src = notes
    old = load_embedding(ds, "hash")
    kept_vector = np.array(old.vectors[list(old.ids).index("n0")])
    _table(src, text={"n5": "a brand new text"})
    report = ingest(ws, src, "notes", update=True)
    assert (report.update.changed, report.update.content_changed) == (1, 1)
    assert report.update.vectors_dropped == {"hash": 1}
    assert "n5" not in set(load_embedding(ds, "hash").ids)
    again = compute_embeddings(ds, "text:hash")
    assert again.encoded_rows == 1 and fake["text"].encoded == ["a brand new text"]
    emb = load_embedding(ds, "hash")
    assert len(emb.ids) == 30 and emb.vectors[list(emb.ids).index("n0")].tobytes() == kept_vector.tobytes()
    hits = load_index(ds, "hash").search(np.asarray(emb.vectors[list(emb.ids).index("n5")]), 1)
    assert hits.ids[0][0] == "n5"


@pytest.mark.parametrize("kind", ["exact", "hnsw", "ivf"])
def test_appended_rows_are_searchable_after_embed_without_an_index_rebuild(notes, fake, monkeypatch, kind):
    ws, ds, src = notes
    if kind != "exact":
        params = {"nlist": 2} if kind == "ivf" else {}
        rebuild_index(ds, "hash", kind=kind, **params)
    _table(src, n=36)
    report = ingest(ws, src, "notes", update=True)
    assert (report.update.added, report.update.kept) == (6, 30)
    from core.embeddings import files, update
    from core.index import build

    def no_rebuild(*a, **k):
        raise AssertionError("the index was rebuilt")

    for module in (files, update, build):
        monkeypatch.setattr(module, "build_index", no_rebuild)
    assert compute_embeddings(ds, "text:hash").encoded_rows == 6
    emb = load_embedding(ds, "hash")
    index = load_index(ds, "hash")
    assert index.kind == kind and len(index) == 36
    for new in ("n30", "n35"):
        assert index.search(np.asarray(emb.vectors[list(emb.ids).index(new)]), 1).ids[0][0] == new


def test_removed_ids_leave_rows_vectors_and_search_and_keep_missing_keeps_them(notes, fake, tmp_path):
    ws, ds, _ = notes
    rebuild_index(ds, "hash", kind="ivf", nlist=2)
    gone_vector = np.array(load_embedding(ds, "hash").vectors[29])
    keep_src = tmp_path / "fewer.csv"
    _table(keep_src, n=28)
    kept = ingest(ws, keep_src, "notes", update=True, keep_missing=True)
    assert (kept.update.removed, kept.update.kept_missing, kept.rows) == (0, 2, 30)
    assert {"n28", "n29"} <= set(ds.rows()["id"]) and len(load_embedding(ds, "hash").ids) == 30
    report = ingest(ws, keep_src, "notes", update=True)
    assert (report.update.removed, report.update.kept, report.rows) == (2, 28, 28)
    assert not {"n28", "n29"} & set(ds.rows()["id"])
    emb = load_embedding(ds, "hash")
    assert not {"n28", "n29"} & set(emb.ids) and len(emb.vectors) == 28
    index = load_index(ds, "hash")
    assert index.kind == "ivf" and "n29" not in set(index.search(gone_vector, 28).ids[0])
    assert pq.read_table(ds.path / FINGERPRINTS_FILE).num_rows == 28


def test_a_changed_image_file_at_the_same_path_is_encoded_again(ws, pets, fake):
    from PIL import Image

    ds, root = pets
    compute_embeddings(ds, "image:mean-colour")
    before = load_embedding(ds, "mean-colour")
    Image.new("RGB", (8, 8), (250, 250, 250)).save(root / "cat" / "1.png")
    report = ingest(ws, root, "pets", update=True)
    assert (report.update.content_changed, report.update.kept) == (1, 5)
    fake["image"].images = 0
    assert compute_embeddings(ds, "image:mean-colour").encoded_rows == 1 and fake["image"].images == 1
    after = load_embedding(ds, "mean-colour")
    changed = list(after.ids).index("cat/1.png")
    assert after.vectors[changed].tobytes() != before.vectors[list(before.ids).index("cat/1.png")].tobytes()
    same = list(before.ids).index("dog/2.png")
    assert after.vectors[list(after.ids).index("dog/2.png")].tobytes() == before.vectors[same].tobytes()


def test_a_killed_update_leaves_the_old_dataset_whole(notes, monkeypatch):
    ws, ds, src = notes
    rebuild_index(ds, "hash", kind="ivf", nlist=2)
    before = tree_hash(ds.path)
    _table(src, n=25, text={"n1": "changed"})
    from core.ingest import update

    def killed(*a, **k):
        raise KeyboardInterrupt  # like a kill after the embeddings were staged

    monkeypatch.setattr(update, "link_tree", killed)
    with pytest.raises(KeyboardInterrupt):
        ingest(ws, src, "notes", update=True)
    assert tree_hash(ds.path) == before
    assert [p.name for p in ws.datasets_dir.iterdir()] == ["notes"]  # no staging left behind


def test_tags_slices_and_label_edits_of_kept_rows_survive(notes):
    from core.labels import effective_labels, relabel_rows

    ws, _, src = notes
    ws.store.tag_rows("notes", ["n1", "n2"], "check")
    ws.store.save_slice("notes", "few", ["n1", "n3"])
    relabel_rows(ws, "notes", ["n2"], "fixed")
    _table(src, score={"n1": -1.0}, text={"n3": "new text"})
    ingest(ws, src, "notes", update=True)
    assert sorted(ws.store.rows_with_tag("notes", "check")) == ["n1", "n2"]
    assert list(ws.store.get_slice("notes", "few").ids) == ["n1", "n3"]
    assert effective_labels(ws, "notes")["n2"] == "fixed"


def test_update_needs_an_existing_dataset_and_excludes_replace(ws, tmp_path):
    src = tmp_path / "t.csv"
    _table(src)
    with pytest.raises(NotFoundError, match="no dataset 'nope'.*to update"):
        ingest(ws, src, "nope", update=True)
    ingest(ws, src, "t")
    with pytest.raises(InputError, match="exclude each other"):
        ingest(ws, src, "t", update=True, replace=True)
    with pytest.raises(InputError, match="only applies with --update"):
        ingest(ws, src, "t", keep_missing=True, replace=True)
