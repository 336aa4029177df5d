"""``embed`` writes EfficientNet-Lite0's class-name (ConSE) embedding from the same pass, and a
dataset of images and texts gets one space holding both."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from core.embeddings import compute_embeddings, delete_embedding, load_embedding, write_embedding
from core.embeddings import compute as compute_module
from core.errors import AlreadyExistsError
from tests.helpers.photos import PHOTOS, add_photo_dataset

TEXTS = {"t0": "My cat sleeps on the sofa all afternoon.", "t1": "Quarterly earnings rose by four percent."}


@pytest.fixture
def mixed(tmp_path):
    """A dataset of four photos and two texts (not embedded)."""
    return add_photo_dataset(tmp_path / "home", "mix", texts=TEXTS, embed=False)


def test_one_embed_writes_features_text_and_a_class_name_space_holding_both_kinds(mixed, monkeypatch):
    passes = []
    real = compute_module._compute_one
    monkeypatch.setattr(compute_module, "_compute_one", lambda *a, **kw: passes.append(a[1].spec) or real(*a, **kw))
    report = compute_embeddings(mixed)
    infos = {i.name: i for i in report.embeddings}
    assert set(infos) == {"efficientnet-lite0", "efficientnet-lite0-text", "minilm"}
    assert passes.count("image:efficientnet-lite0+class-names:efficientnet-lite0") == 1  # one image pass
    assert not any(p == "image:efficientnet-lite0" for p in passes)
    space = load_embedding(mixed, "efficientnet-lite0-text")
    assert space.meta["encoder"] == "class-names:efficientnet-lite0"
    assert space.meta["class_names"]["method"] == "conse" and space.meta["derived_from"] == "efficientnet-lite0"
    assert sorted(space.ids) == ["astronaut", "chelsea", "coffee", "rocket", "t0", "t1"]
    assert infos["efficientnet-lite0-text"].modalities == ("image", "text")
    minilm = load_embedding(mixed, "minilm")
    where = {rid: n for n, rid in enumerate(space.ids)}
    for n, rid in enumerate(minilm.ids):  # text rows: the very vectors of the text embedding
        np.testing.assert_array_equal(space.vectors[where[rid]], minilm.vectors[n])
    assert compute_embeddings(mixed).encoded_rows == 0  # nothing missing: nothing encoded


def test_a_missing_class_name_embedding_is_made_again_and_new_rows_reach_both(mixed):
    compute_embeddings(mixed, "image:efficientnet-lite0")
    before = np.array(load_embedding(mixed, "efficientnet-lite0").vectors)
    delete_embedding(mixed, "efficientnet-lite0-text")
    report = compute_embeddings(mixed, "image:efficientnet-lite0")
    assert report.encoded_rows == 4
    np.testing.assert_array_equal(np.array(load_embedding(mixed, "efficientnet-lite0").vectors), before)
    space = load_embedding(mixed, "efficientnet-lite0-text")
    assert set(space.ids) == {*PHOTOS, "t0", "t1"}  # text rows encoded by MiniLM here


def test_no_class_names_skips_it_and_a_foreign_embedding_of_that_name_is_never_overwritten(mixed):
    compute_embeddings(mixed, "image:efficientnet-lite0", class_names=False)
    assert "efficientnet-lite0-text" not in mixed.embedding_names()
    vectors = np.eye(6, 8, dtype=np.float32)
    write_embedding(mixed, "efficientnet-lite0-text", [*PHOTOS, "t0", "t1"], vectors,
                    {"source": "imported"})
    shutil.rmtree(mixed.embedding_dir("efficientnet-lite0"))
    with pytest.raises(AlreadyExistsError, match="--no-class-names"):
        compute_embeddings(mixed, "image:efficientnet-lite0")
    assert load_embedding(mixed, "efficientnet-lite0-text").dims == 8
