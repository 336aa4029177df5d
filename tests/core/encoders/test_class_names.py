"""ConSE over the ImageNet class names: the data file, the vectors, and text queries that find
sample photos by what they show (scikit-image's astronaut, coffee, chelsea, rocket)."""

from __future__ import annotations

import numpy as np
import pytest

from core.encoders import encoder_name, load_encoder, reads_images, reads_text
from core.encoders.class_names import (
    CLASSES_PATH,
    ClassNameSpace,
    PairedImageEncoder,
    class_phrases,
    conse_vectors,
    imagenet_classes,
)
from core.errors import InputError

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


@pytest.fixture(scope="module")
def photos():
    data = pytest.importorskip("skimage.data")
    from PIL import Image

    return [Image.fromarray(getattr(data, name)()) for name in PHOTOS]


@pytest.fixture(scope="module")
def encoder():
    return load_encoder("class-names:efficientnet-lite0")


def test_the_class_file_lists_1000_wordnet_synsets_in_head_order_with_provenance():
    classes = imagenet_classes()
    assert [c.index for c in classes] == list(range(1000))
    wnids = [c.wnid for c in classes]
    assert wnids == sorted(wnids) and len(set(wnids)) == 1000 and all(w.startswith("n") for w in wnids)
    assert classes[281].lemmas[0] == "tabby" and classes[967].lemmas[0] == "espresso"
    readme = (CLASSES_PATH.parent / "README.md").read_text()
    assert "WordNet 3.0" in readme and "Princeton University" in readme
    assert class_phrases("lemma-gloss")[967].startswith("espresso: ")
    with pytest.raises(InputError, match="phrasing"):
        class_phrases("poetic")


def _space(vectors, top):
    v = np.asarray(vectors, np.float32)
    return ClassNameSpace(v / np.linalg.norm(v, axis=1, keepdims=True), top, "lemma", "text:minilm")


def test_conse_is_the_probability_weighted_mean_of_the_top_classes_unit_norm_and_deterministic():
    space = _space([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], top=2)
    probs = np.array([[0.6, 0.3, 0.1, 0.0], [0.25, 0.25, 0.25, 0.25]], np.float32)
    got = conse_vectors(probs, space)
    want0 = np.array([0.6, 0.3, 0.0]) / np.linalg.norm([0.6, 0.3, 0.0])
    np.testing.assert_allclose(got[0], want0, atol=1e-6)
    # a four-way tie keeps the first two classes by index: the same answer every time
    np.testing.assert_allclose(got[1], np.array([1, 1, 0]) / np.sqrt(2), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
    assert np.array_equal(got, conse_vectors(probs, space))
    with pytest.raises(InputError, match="NaN"):
        conse_vectors(np.array([[np.nan, 1, 0, 0]], np.float32), space)
    with pytest.raises(InputError, match=r"\(n, 4\)"):
        conse_vectors(np.ones((2, 3), np.float32), space)


def test_the_class_name_encoder_reads_images_and_text_under_its_own_embedding_name(encoder):
    spec = "class-names:efficientnet-lite0"
    assert reads_text(spec) and reads_images(spec)
    assert encoder_name(spec) == "efficientnet-lite0-text"
    assert encoder.dims == 384 and encoder.modalities == {"image", "text"}
    np.testing.assert_array_equal(encoder.encode_texts(["a cat"]),
                                  load_encoder("text:minilm").encode_texts(["a cat"]))


def test_a_query_naming_what_a_photo_shows_ranks_that_photo_first(encoder, photos):
    vectors = encoder.encode_images(photos)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors, encoder.encode_images(photos))  # deterministic
    queries = {"an astronaut": "astronaut", "a cup of coffee": "coffee", "a cat": "chelsea",
               "a space rocket launch": "rocket"}
    for query, photo in queries.items():
        scores = vectors @ encoder.encode_texts([query])[0]
        assert PHOTOS[int(np.argmax(scores))] == photo, (query, dict(zip(PHOTOS, scores.round(3))))


def test_one_forward_pass_gives_the_image_features_and_the_same_conse_vectors(encoder, photos):
    paired = PairedImageEncoder(encoder)
    features, conse = paired.split(paired.encode_images(photos))
    np.testing.assert_array_equal(features, load_encoder("image:efficientnet-lite0").encode_images(photos))
    np.testing.assert_array_equal(conse, encoder.encode_images(photos))
