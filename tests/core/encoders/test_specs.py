"""Tests for core.encoders.specs: the one place that knows what each encoder kind reads."""

from __future__ import annotations

import pytest

from core.encoders import (
    CUSTOM_KINDS,
    ENCODER_SPECS,
    KIND_READS,
    encoder_kind,
    is_custom_spec,
    normalise_spec,
    reads_images,
    reads_text,
)


@pytest.mark.parametrize(("spec", "kind", "text", "images"), [
    ("text:minilm", "text", True, False),
    ("image:efficientnet-lite0", "image", False, True),
    ("clip:clip-ViT-B-32", "clip", True, True),
    (" CLIP:/models/tiny-clip", "clip", True, True),
    ("st:all-mpnet-base-v2", "st", True, False),
    (None, None, False, False),          # imported vectors: no encoder
    ("bert:base", None, False, False),   # no such kind
    ("minilm", None, False, False),      # no kind at all
])
def test_each_kind_reads_what_its_model_reads(spec, kind, text, images):
    assert encoder_kind(spec) == kind
    assert (reads_text(spec), reads_images(spec)) == (text, images)


def test_every_listed_spec_has_a_known_kind():
    assert {encoder_kind(s) for s in ENCODER_SPECS} == set(KIND_READS)
    assert set(CUSTOM_KINDS) == {encoder_kind(s) for s in ENCODER_SPECS if "NAME_OR_PATH" in s}


@pytest.mark.parametrize(("spec", "custom"), [
    ("clip:clip-ViT-B-32", True), ("ST:/models/mine", True), ("clip:", False), ("st:  ", False),
    ("text:minilm", False), ("image:efficientnet-lite0", False), ("", False), (None, False),
])
def test_custom_specs_are_clip_or_st_with_a_model_name(spec, custom):
    assert is_custom_spec(spec) is custom
    if custom:  # what the page lets through is a spec load_encoder understands
        assert normalise_spec(spec).partition(":")[0] in CUSTOM_KINDS

