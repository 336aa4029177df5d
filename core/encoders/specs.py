"""Encoder specs: the registry of what :func:`core.encoders.load_encoder` accepts, and
parsing / describing a spec without loading anything (no torch import): its kind and
what that kind reads (:func:`encoder_kind`, :func:`reads_text`, :func:`reads_images`)."""

from __future__ import annotations

import re
from pathlib import Path

from core.errors import EncoderError

ENCODER_SPECS: dict[str, str] = {
    "text:minilm": "all-MiniLM-L6-v2 sentence embeddings (384-d, text, bundled, offline)",
    "image:efficientnet-lite0": "EfficientNet-Lite0 ImageNet features (1280-d, images, bundled, offline)",
    "class-names:efficientnet-lite0": "images by their ImageNet class names (ConSE) and texts, in "
                                      "MiniLM's space (384-d, bundled, offline)",
    "clip:NAME_OR_PATH": "a sentence-transformers CLIP model: images and text in one space (e.g. clip:clip-ViT-B-32)",
    "st:NAME_OR_PATH": "any sentence-transformers text model, by local path or cached hub name",
}
DEFAULT_ENCODERS: dict[str, str] = {"text": "text:minilm", "image": "image:efficientnet-lite0"}

_FIXED_SPECS = {"text": "minilm", "image": "efficientnet-lite0", "class-names": "efficientnet-lite0"}
_FIXED_NAMES = {"class-names": "efficientnet-lite0-text"}  # default embedding names other than the arg
# What each encoder kind reads; clip: and st: take a model name or path (CUSTOM_KINDS).
KIND_READS: dict[str, frozenset[str]] = {
    "text": frozenset({"text"}), "image": frozenset({"image"}),
    "clip": frozenset({"image", "text"}), "st": frozenset({"text"}),
    "class-names": frozenset({"image", "text"}),
}
CUSTOM_KINDS = ("clip", "st")


def encoder_kind(spec: str | None) -> str | None:
    """The kind of ``spec`` (``"text"``, ``"image"``, ``"clip"``, ``"st"``, ``"class-names"``), lower-cased;
    None for None (imported vectors) or a spec of no known kind. Nothing is loaded."""
    if not isinstance(spec, str):
        return None
    kind = spec.partition(":")[0].strip().lower()
    return kind if kind in KIND_READS and ":" in spec else None


def reads_text(spec: str | None) -> bool:
    """True if encoder ``spec`` (None = imported vectors) can encode a text query."""
    return "text" in KIND_READS.get(encoder_kind(spec) or "", ())


def reads_images(spec: str | None) -> bool:
    """True if encoder ``spec`` (None = imported vectors) can encode an image."""
    return "image" in KIND_READS.get(encoder_kind(spec) or "", ())


def is_custom_spec(spec: str | None) -> bool:
    """True for a ``clip:NAME_OR_PATH`` or ``st:NAME_OR_PATH`` spec with a non-empty name."""
    return encoder_kind(spec) in CUSTOM_KINDS and bool(str(spec).partition(":")[2].strip())


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
    if kind in CUSTOM_KINDS and arg:
        local = Path(arg).expanduser()
        return f"{kind}:{local.resolve()}" if local.exists() else f"{kind}:{arg}"
    raise EncoderError(f"unknown encoder spec {spec!r}; choose one of {_valid_specs_text()}")


def short_name(name_or_path: str) -> str:
    """``'/models/clip-ViT-B-32/'`` → ``'clip-ViT-B-32'``; characters outside ``[\\w.-]`` become ``-``."""
    last = name_or_path.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", last).strip("-") or "model"


def encoder_name(spec: str) -> str:
    """The name an encoder of ``spec`` has (its embedding's default name), without loading it:
    ``text:minilm`` → ``minilm``, ``clip:/models/clip-ViT-B-32`` → ``clip-ViT-B-32``.
    EncoderError on an unknown spec."""
    kind, _, arg = normalise_spec(spec).partition(":")
    if kind in _FIXED_NAMES:
        return _FIXED_NAMES[kind]
    return arg if kind in _FIXED_SPECS else short_name(arg)


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
