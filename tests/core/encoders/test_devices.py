"""Tests for core.encoders.devices and the device an encoder is loaded on, on a machine without a GPU.

torch's ``cuda.is_available`` / ``backends.mps.is_available`` are monkeypatched to simulate a GPU;
the model constructors are wrapped so that what the loader asks for (device, precision) is
recorded while the weights stay on the CPU, where float16 runs too: the real code path of
the tiny CLIP and of EfficientNet-Lite0 runs in the precision a GPU would use.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_sample_images

from core.encoders import (
    DEFAULT_BATCH_SIZES,
    DEVICES,
    DeviceChoice,
    available_devices,
    choose_device,
    load_encoder,
    loading,
)
from core.errors import InputError
from tests.helpers.tiny_clip import make_tiny_clip


def _gpus(monkeypatch: pytest.MonkeyPatch, *, cuda: bool, mps: bool) -> None:
    """Make torch see (or not see) a CUDA GPU and an Apple MPS device."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.fixture
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty encoder cache for this test: simulated-GPU loads never reach other tests."""
    monkeypatch.setattr(loading, "_load_cached", functools.cache(loading._load_cached.__wrapped__))


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_clip(tmp_path_factory.mktemp("clip-devices") / "tiny-clip")


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    return [Image.fromarray(a) for a in load_sample_images().images]


# --- choose_device ---------------------------------------------------------------------------


@pytest.mark.parametrize(("cuda", "mps", "expected"), [
    (False, False, DeviceChoice("cpu", "float32", 32)),
    (True, False, DeviceChoice("cuda", "float16", 128)),
    (False, True, DeviceChoice("mps", "float32", 64)),
    (True, True, DeviceChoice("cuda", "float16", 128)),
])
def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    _gpus(monkeypatch, cuda=cuda, mps=mps)
    assert choose_device("auto") == expected
    assert choose_device() == expected
    assert available_devices()[0] == expected.device and available_devices()[-1] == "cpu"


def test_an_explicit_device_wins_over_auto(monkeypatch):
    _gpus(monkeypatch, cuda=True, mps=True)
    assert choose_device("cpu") == DeviceChoice("cpu", "float32", DEFAULT_BATCH_SIZES["cpu"])
    assert choose_device("mps") == DeviceChoice("mps", "float32", DEFAULT_BATCH_SIZES["mps"])
    assert choose_device(" CUDA ").device == "cuda"


def test_a_given_batch_size_replaces_the_device_default(monkeypatch):
    _gpus(monkeypatch, cuda=True, mps=False)
    assert choose_device("auto", batch_size=7) == DeviceChoice("cuda", "float16", 7)
    assert choose_device("cpu", batch_size=500).batch_size == 500
    for bad in (0, -3, True, 2.5):
        with pytest.raises(InputError, match="batch_size must be a whole number >= 1"):
            choose_device("cpu", batch_size=bad)


def test_an_unavailable_device_is_refused_naming_it_and_what_is_available(monkeypatch):
    _gpus(monkeypatch, cuda=False, mps=False)
    with pytest.raises(InputError, match=r"device 'cuda' is not available: torch .* sees no CUDA GPU; "
                                         r"available here: cpu \(or 'auto'\)"):
        choose_device("cuda")
    with pytest.raises(InputError, match="device 'mps' is not available: .*Apple MPS.*available here: cpu"):
        choose_device("mps")
    _gpus(monkeypatch, cuda=True, mps=False)
    with pytest.raises(InputError, match="device 'mps' is not available.*available here: cuda, cpu"):
        choose_device("mps")


def test_an_unknown_device_lists_the_choices():
    for bad in ("gpu", "cuda:0", "", None):
        with pytest.raises(InputError) as info:
            choose_device(bad)  # type: ignore[arg-type]
        assert f"unknown device {bad!r}" in str(info.value)
        assert "choose one of " + ", ".join(DEVICES) in str(info.value)


# --- load_encoder on a device ------------------------------------------------------------------


def test_without_a_gpu_encoders_load_on_the_cpu_in_float32_with_batches_of_32(monkeypatch):
    _gpus(monkeypatch, cuda=False, mps=False)
    encoder = load_encoder("text:minilm")
    assert (encoder.device, encoder.dtype, encoder.batch_size) == ("cpu", "float32", 32)
    assert load_encoder("text:minilm", "cpu") is encoder  # auto resolved to cpu: one cached object
    assert next(encoder.model.parameters()).dtype == torch.float32  # type: ignore[attr-defined]
    calls: list[tuple[int, int]] = []
    encoder.encode_texts([f"text {i}" for i in range(70)], progress=lambda done, total: calls.append((done, total)))
    assert calls == [(32, 70), (64, 70), (70, 70)]  # the device's default batch size


def test_load_encoder_refuses_a_device_that_is_not_there(monkeypatch, fresh_cache):
    _gpus(monkeypatch, cuda=False, mps=False)
    with pytest.raises(InputError, match="device 'cuda' is not available.*available here: cpu"):
        load_encoder("text:minilm", "cuda")
    with pytest.raises(InputError, match="unknown device 'tpu'"):
        load_encoder("text:minilm", "tpu")


def _record_sentence_transformer(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Wrap SentenceTransformer: record the device asked for, load on the CPU."""
    import sentence_transformers

    asked: list[str] = []
    real = sentence_transformers.SentenceTransformer

    class OnCpu(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args, device=None, **kwargs):
            asked.append(device)
            super().__init__(*args, device="cpu", **kwargs)

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", OnCpu)
    return asked


def test_clip_on_cuda_loads_in_float16_and_still_returns_float32_unit_vectors(
        monkeypatch, fresh_cache, clip_dir, photos):
    _gpus(monkeypatch, cuda=False, mps=False)
    spec = f"clip:{clip_dir}"
    on_cpu = load_encoder(spec, "cpu")
    texts = ["a cat", "a dog and a cat on a mat"]
    cpu_texts, cpu_images = on_cpu.encode_texts(texts), on_cpu.encode_images(photos)

    _gpus(monkeypatch, cuda=True, mps=False)
    asked = _record_sentence_transformer(monkeypatch)
    encoder = load_encoder(spec)  # auto → cuda
    assert asked == ["cuda"]
    assert (encoder.device, encoder.dtype, encoder.batch_size) == ("cuda", "float16", 128)
    assert next(encoder.model.parameters()).dtype == torch.float16  # type: ignore[attr-defined]
    assert encoder is not on_cpu and load_encoder(spec, "cuda") is encoder  # cached per device
    assert asked == ["cuda"]
    for got, expected in ((encoder.encode_texts(texts), cpu_texts), (encoder.encode_images(photos), cpu_images)):
        assert got.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(got, expected, atol=5e-3)


def test_text_model_on_mps_stays_float32_with_batches_of_64(monkeypatch, fresh_cache):
    _gpus(monkeypatch, cuda=False, mps=True)
    asked = _record_sentence_transformer(monkeypatch)
    encoder = load_encoder("text:minilm")
    assert asked == ["mps"]
    assert (encoder.device, encoder.dtype, encoder.batch_size) == ("mps", "float32", 64)
    assert next(encoder.model.parameters()).dtype == torch.float32  # type: ignore[attr-defined]


def test_efficientnet_on_cuda_is_moved_there_in_float16(monkeypatch, fresh_cache, photos):
    from efficientnet_lite_pytorch import EfficientNet

    _gpus(monkeypatch, cuda=False, mps=False)
    reference = load_encoder("image:efficientnet-lite0", "cpu").encode_images(photos)

    placed: list[tuple[str, torch.dtype]] = []
    real_from_pretrained = EfficientNet.from_pretrained

    def from_pretrained(*args, **kwargs):
        model = real_from_pretrained(*args, **kwargs)
        real_to = model.to

        def to(*, device, dtype):  # record where the loader sends the model, keep it on the CPU
            placed.append((device, dtype))
            return real_to(device="cpu", dtype=dtype)

        model.to = to
        return model

    monkeypatch.setattr(EfficientNet, "from_pretrained", from_pretrained)
    _gpus(monkeypatch, cuda=True, mps=False)
    encoder = load_encoder("image:efficientnet-lite0")
    assert placed == [("cuda", torch.float16)]
    assert (encoder.device, encoder.dtype, encoder.batch_size) == ("cuda", "float16", 128)
    got = encoder.encode_images(photos, batch_size=1)
    assert got.dtype == np.float32
    np.testing.assert_allclose(np.sum(got * reference, axis=1), 1.0, atol=1e-3)
