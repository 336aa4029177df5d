"""Encoders: turn rows (text, images) into vectors.

- :mod:`core.encoders.specs`: encoder specs (``text:minilm``, ``image:efficientnet-lite0``,
  ``clip:NAME``, ``st:NAME``), defaults per modality, what each kind reads.
- :mod:`core.encoders.models`: the sentence-transformers and EfficientNet wrappers.
- :mod:`core.encoders.loading`: :func:`load_encoder` (cached, thread-safe), the
  :class:`Encoder` protocol.
"""

from __future__ import annotations

from core.encoders.loading import Encoder, load_encoder
from core.encoders.specs import (
    DEFAULT_ENCODERS,
    ENCODER_SPECS,
    describe_encoder,
    normalise_spec,
    short_name,
)

__all__ = ["DEFAULT_ENCODERS", "ENCODER_SPECS", "Encoder", "describe_encoder", "load_encoder",
           "normalise_spec", "short_name"]
