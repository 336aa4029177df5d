"""Encoder specs: the registry of what :func:`core.encoders.load_encoder` accepts, and
parsing / describing a spec without loading anything (no torch import)."""

from __future__ import annotations

import re
from pathlib import Path

from core.errors import EncoderError

ENCODER_SPECS: dict[str, str] = {
    "text:minilm": "all-MiniLM-L6-v2 sentence embeddings (384-d, text, bundled, offline)",
    "image:efficientnet-lite0": "EfficientNet-Lite0 ImageNet features (1280-d, images, bundled, offline)",
    "clip:NAME_OR_PATH": "a sentence-transformers CLIP model: images and text in one space (e.g. clip:clip-ViT-B-32)",
    "st:NAME_OR_PATH": "any sentence-transformers text model, by local path or cached hub name",
}
DEFAULT_ENCODERS: dict[str, str] = {"text": "text:minilm", "image": "image:efficientnet-lite0"}

_FIXED_SPECS = {"text": "minilm", "image": "efficientnet-lite0"}
_PATH_KINDS = ("clip", "st")


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


def short_name(name_or_path: str) -> str:
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
