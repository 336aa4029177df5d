"""Encoders: turn rows (text, images) into vectors.

- :mod:`core.encoders.specs`: encoder specs (``text:minilm``, ``image:efficientnet-lite0``,
  ``clip:NAME``, ``st:NAME``), defaults per modality, what each kind reads.
- :mod:`core.encoders.devices`: where an encoder runs: :func:`choose_device` resolves
  ``auto|cpu|cuda|mps`` to a :class:`DeviceChoice` (device, dtype, default batch size).
- :mod:`core.encoders.models`: the sentence-transformers and EfficientNet wrappers.
- :mod:`core.encoders.loading`: :func:`load_encoder` (cached per spec and device,
  thread-safe), the :class:`Encoder` protocol.
- :mod:`core.encoders.class_names`: ConSE over EfficientNet-Lite0's ImageNet classes
  (``class-names:efficientnet-lite0``): images in MiniLM's text space, and the paired
  encoder ``embed`` runs to get features and class-name vectors from one pass.
"""

from __future__ import annotations

from core.encoders.class_names import (
    CLASS_NAMES_SPEC,
    ClassNameEncoder,
    ClassNameSpace,
    ImageNetClass,
    PairedImageEncoder,
    class_name_space,
    class_phrases,
    conse_vectors,
    has_class_names,
    imagenet_classes,
    load_class_name_encoder,
    load_paired_encoder,
)
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
    "CLASS_NAMES_SPEC",
    "CUSTOM_KINDS",
    "ClassNameEncoder",
    "ClassNameSpace",
    "ImageNetClass",
    "PairedImageEncoder",
    "class_name_space",
    "class_phrases",
    "conse_vectors",
    "has_class_names",
    "imagenet_classes",
    "load_class_name_encoder",
    "load_paired_encoder",
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
