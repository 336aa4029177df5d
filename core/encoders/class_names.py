"""Zero-shot text search over images without CLIP: ConSE over the ImageNet class names.

ConSE (Norouzi et al., *Zero-Shot Learning by Convex Combination of Semantic Embeddings*,
ICLR 2014): an image's vector in a text space is the probability-weighted mean of the text
embeddings of its top-T predicted classes. Here the classifier is the ImageNet-1k head of the
bundled EfficientNet-Lite0 and the text space is all-MiniLM-L6-v2's, so a MiniLM-encoded
query ("an animal", "a cup of coffee") can be compared with images, and with text rows
encoded by MiniLM: one space for a dataset of images and texts.

- :func:`imagenet_classes`: the 1,000 classes (``data/imagenet_classes.tsv``, WordNet 3.0
  lemmas and glosses; provenance in ``data/README.md``).
- :func:`class_phrases`, :func:`class_name_space`: the class names, phrased, and their MiniLM
  vectors ``(1000, 384)``.
- :func:`conse_vectors`: probabilities ``(n, 1000)`` → unit ``(n, 384)`` vectors.
- :class:`ClassNameEncoder` (spec ``class-names:efficientnet-lite0``): texts by MiniLM, images
  by ConSE; :class:`PairedImageEncoder`: EfficientNet features and ConSE vectors from one forward
  pass (what ``embed`` runs to write both embeddings).
"""

from __future__ import annotations

import csv
import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core._shared import ProgressFn, check_positive_int
from core.errors import EncoderError, InputError

if TYPE_CHECKING:
    from PIL import Image

CLASSES_PATH = Path(__file__).with_name("data") / "imagenet_classes.tsv"
CLASS_NAMES_SPEC = "class-names:efficientnet-lite0"
IMAGE_SPEC = "image:efficientnet-lite0"
QUERY_SPEC = "text:minilm"
PHRASINGS = ("lemma", "lemmas", "lemma-gloss")
DEFAULT_PHRASING = "lemmas"  # chosen by bench/bench_text_search.py --sweep (docs/benchmarks.md)
DEFAULT_TOP = 20  # T: the classes mixed per image (same sweep)


@dataclass(frozen=True)
class ImageNetClass:
    """One class of the head: ``index`` (logit position), ``wnid``, ``lemmas`` (head word
    first), ``gloss`` (WordNet definition)."""

    index: int
    wnid: str
    lemmas: tuple[str, ...]
    gloss: str


@functools.cache
def imagenet_classes() -> tuple[ImageNetClass, ...]:
    """The 1,000 ImageNet-1k classes in the head's output order. EncoderError if the data
    file is missing or not 1,000 rows in index order."""
    try:
        with CLASSES_PATH.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
    except OSError as err:
        raise EncoderError(f"cannot read the ImageNet class names {CLASSES_PATH}: {err}") from err
    classes = tuple(ImageNetClass(int(r["index"]), r["wnid"],
                                  tuple(s.strip() for s in r["lemmas"].split(",") if s.strip()),
                                  r["gloss"].strip()) for r in rows)
    if [c.index for c in classes] != list(range(1000)):
        raise EncoderError(f"{CLASSES_PATH} must list the 1,000 classes in index order")
    return classes


def class_phrases(phrasing: str = DEFAULT_PHRASING) -> list[str]:
    """One phrase per class: ``lemma`` (the head word, e.g. "Egyptian cat"), ``lemmas`` (all,
    comma-separated) or ``lemma-gloss`` ("Egyptian cat: a domestic cat of Egypt")."""
    if phrasing not in PHRASINGS:
        raise InputError(f"unknown class-name phrasing {phrasing!r}; choose one of {', '.join(PHRASINGS)}")
    out = []
    for c in imagenet_classes():
        out.append({"lemma": c.lemmas[0], "lemmas": ", ".join(c.lemmas),
                    "lemma-gloss": f"{c.lemmas[0]}: {c.gloss}"}[phrasing])
    return out


@dataclass(frozen=True, eq=False)
class ClassNameSpace:
    """The class names in a text space: ``vectors`` (1000, d) unit float32 rows,
    ``top`` T, ``phrasing``, ``text_spec`` the encoder of the phrases (and of queries)."""

    vectors: np.ndarray = field(repr=False)
    top: int
    phrasing: str
    text_spec: str

    def to_json(self) -> dict:
        """What ``meta.json`` records of it (a change makes stored vectors another recipe)."""
        digest = hashlib.sha256(CLASSES_PATH.read_bytes()).hexdigest()[:16]
        return {"method": "conse", "top": self.top, "phrasing": self.phrasing,
                "text_encoder": self.text_spec, "classes_sha256": digest}


def class_name_space(text_encoder, *, phrasing: str = DEFAULT_PHRASING,
                     top: int = DEFAULT_TOP) -> ClassNameSpace:
    """The phrases of :func:`class_phrases` encoded with ``text_encoder`` (an Encoder that
    reads text; ~2 s for MiniLM on a CPU), with T = ``top`` (1..1000)."""
    top = check_positive_int(top, "top")
    if top > 1000:
        raise InputError(f"top must be at most 1000 (the ImageNet classes), got {top}")
    vectors = text_encoder.encode_texts(class_phrases(phrasing))
    return ClassNameSpace(np.ascontiguousarray(vectors, np.float32), top, phrasing, text_encoder.spec)


def conse_vectors(probs: np.ndarray, space: ClassNameSpace) -> np.ndarray:
    """ConSE: ``probs`` (n, 1000) class probabilities → (n, d) float32 unit rows, each the
    probability-weighted mean of the vectors of its ``space.top`` most probable classes
    (ties by class index, so the result is deterministic). InputError on a bad shape or NaN."""
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim != 2 or probs.shape[1] != len(space.vectors):
        raise InputError(f"class probabilities must be (n, {len(space.vectors)}), got {probs.shape}")
    if not np.isfinite(probs).all():
        raise InputError("class probabilities contain NaN or infinity")
    if not len(probs):
        return np.zeros((0, space.vectors.shape[1]), np.float32)
    top = np.argsort(-probs, axis=1, kind="stable")[:, :space.top]
    weights = np.take_along_axis(probs, top, axis=1)
    mixed = np.einsum("nt,ntd->nd", weights, space.vectors[top])
    norms = np.linalg.norm(mixed, axis=1, keepdims=True)
    return (mixed / np.maximum(norms, 1e-12)).astype(np.float32)


class ClassNameEncoder:
    """Spec ``class-names:efficientnet-lite0``: images and texts in MiniLM's space (384-d).

    Texts are encoded by ``text_encoder`` (MiniLM); images by ConSE over ``image_encoder``'s
    ImageNet probabilities. Same protocol as every encoder (:class:`core.encoders.Encoder`)."""

    def __init__(self, image_encoder, text_encoder, space: ClassNameSpace) -> None:
        self.image_encoder, self.text_encoder, self.space = image_encoder, text_encoder, space
        self.spec, self.name = CLASS_NAMES_SPEC, "efficientnet-lite0-text"
        self.dims = int(space.vectors.shape[1])
        self.modalities = frozenset({"image", "text"})
        self.max_text_tokens = text_encoder.max_text_tokens
        self.device, self.dtype = image_encoder.device, image_encoder.dtype
        self.batch_size = image_encoder.batch_size

    def __repr__(self) -> str:
        return f"<ClassNameEncoder {self.spec} dims={self.dims} top={self.space.top} on {self.device}>"

    def encode_texts(self, texts: Sequence[str], *, batch_size: int | None = None,
                     progress: ProgressFn | None = None) -> np.ndarray:
        """``(n, 384)`` MiniLM vectors of ``texts`` (as ``text:minilm``)."""
        return self.text_encoder.encode_texts(texts, batch_size=batch_size, progress=progress)

    def encode_images(self, images: Sequence[Image.Image], *, batch_size: int | None = None,
                      progress: ProgressFn | None = None) -> np.ndarray:
        """``(n, 384)`` ConSE vectors of PIL ``images``."""
        _, probs = self.image_encoder.encode_images_with_probs(images, batch_size=batch_size,
                                                               progress=progress)
        return conse_vectors(probs, self.space)

    def text_is_truncated(self, text: str) -> bool:
        return self.text_encoder.text_is_truncated(text)


class PairedImageEncoder:
    """EfficientNet-Lite0 features and their ConSE vectors from one forward pass: encodes
    images into ``(n, 1280 + 384)`` rows, :meth:`split` cuts them into the two embeddings'
    unit vectors. ``spec`` names the pair (a partial run of the plain encoder is not reused)."""

    def __init__(self, classes: ClassNameEncoder) -> None:
        self.classes, self.image_encoder = classes, classes.image_encoder
        self.spec = f"{IMAGE_SPEC}+{CLASS_NAMES_SPEC}"
        self.name = self.image_encoder.name
        self.feature_dims = int(self.image_encoder.dims)
        self.dims = self.feature_dims + classes.dims
        self.modalities = frozenset({"image"})
        self.max_text_tokens = None
        self.device, self.dtype = self.image_encoder.device, self.image_encoder.dtype
        self.batch_size = self.image_encoder.batch_size

    def encode_images(self, images: Sequence[Image.Image], *, batch_size: int | None = None,
                      progress: ProgressFn | None = None) -> np.ndarray:
        features, probs = self.image_encoder.encode_images_with_probs(images, batch_size=batch_size,
                                                                      progress=progress)
        return np.hstack([features, conse_vectors(probs, self.classes.space)])

    def encode_texts(self, texts, **_) -> np.ndarray:
        raise EncoderError(f"encoder {self.spec!r} encodes images only")

    def split(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(n, 1664)`` rows → (features (n, 1280), ConSE (n, 384)), both as encoded."""
        return vectors[:, :self.feature_dims], vectors[:, self.feature_dims:]


def has_class_names(encoder) -> bool:
    """True for a loaded bundled EfficientNet-Lite0 (its ImageNet head gives the class names)."""
    return encoder.spec == IMAGE_SPEC and hasattr(encoder, "encode_images_with_probs")


def load_class_name_encoder(device: str = "auto") -> ClassNameEncoder:
    """:class:`ClassNameEncoder` on ``device``: ``load_encoder("class-names:efficientnet-lite0")``."""
    from core.encoders.loading import load_encoder

    return load_encoder(CLASS_NAMES_SPEC, device)


def build_class_name_encoder(image_encoder, text_encoder) -> ClassNameEncoder:
    """The encoder over two loaded ones (the class phrases are encoded here, ~2 s)."""
    return ClassNameEncoder(image_encoder, text_encoder, class_name_space(text_encoder))


def load_paired_encoder(spec: str, device: str = "auto") -> PairedImageEncoder:
    """The Ray actors' loader of the pair (``spec``: :attr:`PairedImageEncoder.spec`)."""
    if spec != f"{IMAGE_SPEC}+{CLASS_NAMES_SPEC}":
        raise EncoderError(f"not a paired encoder spec: {spec!r}")
    return PairedImageEncoder(load_class_name_encoder(device))
