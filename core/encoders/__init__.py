"""Encoders: turn rows (text, images) into vectors.

- :mod:`core.encoders.specs`: encoder specs (``text:minilm``, ``image:efficientnet-lite0``,
  ``clip:NAME``, ``st:NAME``), defaults per modality, what each kind reads.
- :mod:`core.encoders.devices`: where an encoder runs: :func:`choose_device` resolves
  ``auto|cpu|cuda|mps`` to a :class:`DeviceChoice` (device, dtype, default batch size).
- :mod:`core.encoders.models`: the sentence-transformers and EfficientNet wrappers.
- :mod:`core.encoders.loading`: :func:`load_encoder` (cached per spec and device,
  thread-safe), the :class:`Encoder` protocol.
"""

from __future__ import annotations

from core.encoders.devices import (
    DEFAULT_BATCH_SIZES,
    DEVICES,
    DeviceChoice,
    available_devices,
    choose_device,
)
from core.encoders.loading import Encoder, load_encoder
from core.encoders.specs import (
    CUSTOM_KINDS,
    DEFAULT_ENCODERS,
    ENCODER_SPECS,
    KIND_READS,
    describe_encoder,
    encoder_name,
    encoder_kind,
    is_custom_spec,
    normalise_spec,
    reads_images,
    reads_text,
    short_name,
)

__all__ = [
    "CUSTOM_KINDS",
    "DEFAULT_BATCH_SIZES",
    "DEFAULT_ENCODERS",
    "DEVICES",
    "ENCODER_SPECS",
    "KIND_READS",
    "DeviceChoice",
    "Encoder",
    "available_devices",
    "choose_device",
    "describe_encoder",
    "encoder_name",
    "encoder_kind",
    "is_custom_spec",
    "load_encoder",
    "normalise_spec",
    "reads_images",
    "reads_text",
    "short_name",
]
