"""Encoder implementations: shared batching/validation (:class:`_BaseEncoder`), a
sentence-transformers model (text, or CLIP for text + images) and EfficientNet-Lite0.

Each takes an already loaded model (on the device of its :class:`DeviceChoice`, default the
CPU); :mod:`core.encoders.loading` finds, loads and places the models. Torch and PIL are
imported lazily.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from core._shared import ProgressFn, check_positive_int
from core.encoders.devices import DEFAULT_BATCH_SIZES, DeviceChoice
from core.errors import EncoderError, InputError
from core.media import to_rgb

if TYPE_CHECKING:
    from PIL import Image

"""``progress(done, total)``, called after each batch."""

# EfficientNet-Lite was trained on inputs scaled to [-1, 1] ((x - 127) / 128 in the TF reference),
# not ImageNet mean/std: with these constants the bundled weights classify sample photos correctly.
_EFFNET_SIZE = 224
_EFFNET_MEAN = np.array([0.5, 0.5, 0.5], dtype=np.float32)
_EFFNET_STD = np.array([0.5, 0.5, 0.5], dtype=np.float32)
_ON_CPU = DeviceChoice("cpu", "float32", DEFAULT_BATCH_SIZES["cpu"])


def _l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation of ``(n, d)``; returns float32. Zero rows stay zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


class _BaseEncoder:
    """Shared batching, validation, progress and locking; subclasses encode one batch.

    ``choice`` (default: the CPU, float32, batches of 32) says where the model was placed;
    it sets :attr:`device`, :attr:`dtype` and the default :attr:`batch_size`."""

    spec: str
    name: str
    dims: int
    modalities: frozenset[str]
    max_text_tokens: int | None
    device: str
    dtype: str
    batch_size: int

    def __init__(self, choice: DeviceChoice | None = None) -> None:
        # Fast tokenizers are not safe for concurrent use ("Already borrowed"): one batch at a time.
        self._lock = threading.Lock()
        choice = choice or _ON_CPU
        self.device, self.dtype, self.batch_size = choice.device, choice.dtype, choice.batch_size

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.spec} dims={self.dims} modalities={sorted(self.modalities)} "
                f"on {self.device} {self.dtype}>")

    def _require(self, modality: str) -> None:
        if modality not in self.modalities:
            raise EncoderError(
                f"encoder {self.spec!r} cannot encode {modality}s; it supports {', '.join(sorted(self.modalities))}"
            )

    def _run(self, items: list[Any], batch_size: int | None, progress: ProgressFn | None, fn: Callable) -> np.ndarray:
        batch_size = self.batch_size if batch_size is None else check_positive_int(batch_size, "batch_size")
        total = len(items)
        if total == 0:
            return np.zeros((0, self.dims), dtype=np.float32)
        out = np.empty((total, self.dims), dtype=np.float32)
        for start in range(0, total, batch_size):
            batch = items[start : start + batch_size]
            with self._lock:
                vectors = fn(batch)
            if vectors.shape != (len(batch), self.dims):
                raise EncoderError(
                    f"encoder {self.spec!r} returned shape {vectors.shape}, expected ({len(batch)}, {self.dims})"
                )
            out[start : start + len(batch)] = _l2_normalise(vectors)
            if progress is not None:
                progress(start + len(batch), total)
        return out

    def encode_texts(
        self, texts: Sequence[str], *, batch_size: int | None = None, progress: ProgressFn | None = None
    ) -> np.ndarray:
        """Encode ``texts`` → ``(n, dims) float32``, rows L2-normalised, in input order, in
        batches of ``batch_size`` (None: :attr:`batch_size`, the device's default).

        Texts longer than :attr:`max_text_tokens` are truncated by the model.

        Raises:
            EncoderError: this encoder has no ``"text"`` modality.
            InputError: an item is not a string, or ``batch_size`` < 1.
        """
        self._require("text")
        if isinstance(texts, str):
            raise InputError("encode_texts expects a sequence of strings, got a single string")
        items = list(texts)
        for i, text in enumerate(items):
            if not isinstance(text, str):
                raise InputError(f"text #{i} is {type(text).__name__}, expected str")
        return self._run(items, batch_size, progress, self._encode_text_batch)

    def encode_images(
        self, images: Sequence[Image.Image], *, batch_size: int | None = None, progress: ProgressFn | None = None
    ) -> np.ndarray:
        """Encode PIL ``images`` (any mode; converted to RGB) → ``(n, dims) float32``, L2-normalised,
        in batches of ``batch_size`` (None: :attr:`batch_size`).

        Raises:
            EncoderError: this encoder has no ``"image"`` modality.
            InputError: an item is not a PIL image, or ``batch_size`` < 1.
        """
        return self._run_images(images, batch_size, progress, self._encode_image_batch)

    def _run_images(self, images, batch_size, progress, fn) -> np.ndarray:
        """:meth:`_run` over PIL ``images`` (checked, converted to RGB) with ``fn(batch)``."""
        from PIL import Image as PILImage

        self._require("image")
        items = list(images)
        for i, image in enumerate(items):
            if not isinstance(image, PILImage.Image):
                raise InputError(f"image #{i} is {type(image).__name__}, expected PIL.Image.Image")
        return self._run(items, batch_size, progress, lambda batch: fn([to_rgb(im) for im in batch]))

    def text_is_truncated(self, text: str) -> bool:
        """True if ``text`` (with special tokens) has more than :attr:`max_text_tokens` tokens.

        Raises:
            EncoderError: this encoder has no ``"text"`` modality.
        """
        self._require("text")
        if self.max_text_tokens is None:
            return False
        with self._lock:
            n_tokens = self._count_tokens(text)
        return n_tokens > self.max_text_tokens

    def _encode_text_batch(self, texts: list[str]) -> np.ndarray:
        raise EncoderError(f"encoder {self.spec!r} cannot encode texts")

    def _encode_image_batch(self, images: list[Image.Image]) -> np.ndarray:
        raise EncoderError(f"encoder {self.spec!r} cannot encode images")

    def _count_tokens(self, text: str) -> int:
        raise EncoderError(f"encoder {self.spec!r} has no tokenizer")


class SentenceTransformerEncoder(_BaseEncoder):
    """A ``sentence_transformers.SentenceTransformer`` (text model, or CLIP for text + images)."""

    def __init__(self, spec: str, name: str, model: Any, modalities: frozenset[str],
                 choice: DeviceChoice | None = None) -> None:
        super().__init__(choice)
        self.spec, self.name, self.model, self.modalities = spec, name, model, modalities
        max_len = getattr(model, "max_seq_length", None)
        tokenizer = getattr(model, "tokenizer", None)
        if not max_len and tokenizer is not None and 0 < getattr(tokenizer, "model_max_length", 0) < 1_000_000:
            max_len = tokenizer.model_max_length
        self.max_text_tokens = int(max_len) if max_len and "text" in modalities else None
        get_dims = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dims = get_dims()
        if not dims:  # some CLIP wrappers do not report it: measure
            probe = "text" if "text" in modalities else "image"
            dims = (self._encode_text_batch(["probe"]) if probe == "text" else self._encode_image_batch([_blank()])).shape[1]
        self.dims = int(dims)

    def _encode(self, inputs: list[Any]) -> np.ndarray:
        return np.asarray(
            self.model.encode(
                inputs,
                batch_size=max(len(inputs), 1),
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            ),
            dtype=np.float32,
        )

    def _encode_text_batch(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts)

    def _encode_image_batch(self, images: list[Image.Image]) -> np.ndarray:
        return self._encode(images)

    def _count_tokens(self, text: str) -> int:
        tokenizer = self.model.tokenizer
        encoded = tokenizer(text, add_special_tokens=True, truncation=False, verbose=False)
        return len(encoded["input_ids"])


class EfficientNetEncoder(_BaseEncoder):
    """EfficientNet-Lite0: 224×224 RGB scaled to [-1, 1] → mean of the last conv map, 1280-d."""

    def __init__(self, spec: str, model: Any, choice: DeviceChoice | None = None) -> None:
        super().__init__(choice)
        self.spec, self.name, self.model = spec, "efficientnet-lite0", model
        self.modalities = frozenset({"image"})
        self.max_text_tokens = None
        self.dims = 1280

    @staticmethod
    def preprocess(images: list[Image.Image]) -> np.ndarray:
        """RGB PIL images → ``(n, 3, 224, 224) float32`` normalised input batch."""
        from PIL import Image as PILImage

        size = (_EFFNET_SIZE, _EFFNET_SIZE)
        arr = np.stack(
            [np.asarray(to_rgb(im).resize(size, PILImage.Resampling.BICUBIC), dtype=np.float32) for im in images]
        )
        arr = (arr / 255.0 - _EFFNET_MEAN) / _EFFNET_STD
        return np.ascontiguousarray(arr.transpose(0, 3, 1, 2), dtype=np.float32)

    def _forward(self, images: list[Image.Image], with_probs: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Pooled features ``(n, 1280)`` and, if asked, the head's ImageNet softmax ``(n, 1000)``
        (the model's own forward: average pool, dropout (off in eval), ``_fc``)."""
        import torch

        weights = next(self.model.parameters())  # the batch goes where the model is, in its precision
        batch = torch.from_numpy(self.preprocess(images)).to(device=weights.device, dtype=weights.dtype)
        with torch.inference_mode():
            features = self.model.extract_features(batch).mean((2, 3))
            probs = torch.softmax(self.model._fc(features).float(), dim=1) if with_probs else None
        return features.float().cpu().numpy(), None if probs is None else probs.cpu().numpy()

    def _encode_image_batch(self, images: list[Image.Image]) -> np.ndarray:
        return self._forward(images, False)[0]

    def encode_images_with_probs(
        self, images: Sequence[Image.Image], *, batch_size: int | None = None, progress: ProgressFn | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`encode_images`, and in the same forward pass the ImageNet-1k class
        probabilities: ``(features (n, 1280) unit rows, probs (n, 1000) float32)``."""
        probs: list[np.ndarray] = []

        def batch_fn(batch: list[Image.Image]) -> np.ndarray:
            features, p = self._forward(batch, True)
            probs.append(p)
            return features

        features = self._run_images(images, batch_size, progress, batch_fn)
        return features, (np.concatenate(probs).astype(np.float32) if probs else np.zeros((0, 1000), np.float32))


def _blank() -> Image.Image:
    from PIL import Image as PILImage

    return PILImage.new("RGB", (32, 32), (127, 127, 127))
