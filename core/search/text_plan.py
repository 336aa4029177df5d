"""Which embedding answers a text query, and by which method (pure, no I/O).

Methods, best first:

- ``clip``: a joint image-text embedding (``clip:``) — the query and the images in one space;
- ``class-names``: images by ConSE over their ImageNet class names (``class-names:``,
  written by ``embed`` beside EfficientNet-Lite0), text rows by MiniLM, in one space;
- ``text``: a text embedding (``text:``, ``st:``) of the rows' own text;
- ``row-text``: each row's caption, file name, label and metadata, embedded with MiniLM
  (:mod:`core.search.row_text`): the fallback when nothing above covers the rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from core.encoders import encoder_kind, reads_text
from core.errors import InputError

TEXT_METHODS = ("clip", "class-names", "text", "row-text")
FALLBACK_EMBEDDING = "row-text-minilm"
FALLBACK_ENCODER = "text:minilm"
CLIP_SUGGESTION = "clip:clip-ViT-B-32"
_KIND_METHOD = {"clip": "clip", "class-names": "class-names", "text": "text", "st": "text"}


@dataclass(frozen=True)
class TextSearchPlan:
    """How to answer a text query on one dataset.

    ``requested``: the embedding the user is on; ``embedding``: the one searched;
    ``encoder``: the spec that encodes the query; ``method``: one of :data:`TEXT_METHODS`;
    ``fallback``: True for ``row-text``; ``note``: one plain sentence for the page when the
    searched embedding is not the requested one ("" otherwise); ``modalities``: the row
    kinds the searched embedding holds (two: scores are calibrated per kind).
    """

    dataset: str
    requested: str
    embedding: str
    encoder: str
    fallback: bool
    note: str = ""
    method: str = "text"
    modalities: tuple[str, ...] = ()

    @property
    def mixed(self) -> bool:
        """True when the searched embedding holds image and text rows."""
        return len(self.modalities) > 1


def plan_text_search(dataset: str, embedding: str, encoder_spec: str | None,
                     row_modalities: Iterable[str], *,
                     others: Mapping[str, tuple[str | None, Iterable[str]]] | None = None,
                     method: str | None = None) -> TextSearchPlan:
    """Choose the embedding and method that answer a text query.

    ``embedding``/``encoder_spec``: the embedding the user is on (spec None: imported);
    ``row_modalities``: the row kinds of the dataset; ``others``: every embedding of the
    dataset, name → (encoder spec, modalities it holds). Order: the requested embedding if
    it reads text and holds every row kind; else a CLIP embedding; else a class-name one;
    else the requested one if it reads text; else ``row-text``. ``method`` forces one
    (InputError if no embedding offers it; ``row-text`` is always possible).
    """
    kinds = set(row_modalities)
    others = dict(others or {})
    others.setdefault(embedding, (encoder_spec, kinds if reads_text(encoder_spec) else ()))
    if method is not None and method not in TEXT_METHODS:
        raise InputError(f"unknown text search method {method!r}; choose one of {', '.join(TEXT_METHODS)}")

    def method_of(spec: str | None) -> str | None:
        return _KIND_METHOD.get(encoder_kind(spec) or "") if reads_text(spec) else None

    def plan(name: str, spec: str, mods: Iterable[str], note: str = "") -> TextSearchPlan:
        held = tuple(sorted(set(mods) & kinds)) or tuple(sorted(kinds))
        return TextSearchPlan(dataset, embedding, name, str(spec), False, note, method_of(spec), held)

    requested_mods = set(others[embedding][1])
    if method is None and method_of(encoder_spec) and kinds <= requested_mods:
        return plan(embedding, encoder_spec, requested_mods)
    wanted = [method] if method else ["clip", "class-names"]
    for want in wanted:
        if want == "row-text":
            break
        if want == method_of(encoder_spec):
            return plan(embedding, encoder_spec, requested_mods)
        for name, (spec, mods) in sorted(others.items()):
            if method_of(spec) == want and (want != "text" or name != embedding):
                note = (f"The embedding {embedding} cannot answer this with {want} vectors, so "
                        f"{name} ({want}) answers it.") if name != embedding else ""
                if want == "class-names" and name != embedding:
                    note = (f"Images are matched by their ImageNet class names ({name}); for search "
                            f"by what CLIP sees, embed them with `catalog embed {dataset} "
                            f"--encoder {CLIP_SUGGESTION}`.")
                return plan(name, spec, mods, note)
    if method is None and method_of(encoder_spec):
        return plan(embedding, encoder_spec, requested_mods)
    if method not in (None, "row-text"):
        raise InputError(f"no embedding of {dataset!r} answers text queries by {method}")
    return _row_text_plan(dataset, embedding, encoder_spec, kinds)


def _row_text_plan(dataset: str, embedding: str, encoder_spec: str | None, kinds: set[str]) -> TextSearchPlan:
    what = encoder_spec or "imported vectors"
    if "image" in kinds:
        how = (f"for search by what images show, embed them with `catalog embed {dataset}` "
               f"(EfficientNet-Lite0 and its class names) or a joint image-text model: "
               f"`catalog embed {dataset} --encoder {CLIP_SUGGESTION}`")
    else:
        how = ("to search the embedding itself, compute a text one: "
               f"`catalog embed {dataset} --encoder {FALLBACK_ENCODER}`")
    note = (f"The embedding {embedding} ({what}) cannot read text, so this search matches each row's "
            f"caption, file name, label and metadata text instead; {how}.")
    return TextSearchPlan(dataset, embedding, FALLBACK_EMBEDDING, FALLBACK_ENCODER, True, note,
                          "row-text", tuple(sorted(kinds)))
