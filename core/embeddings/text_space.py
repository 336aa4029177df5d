"""The class-name embedding ``embed`` writes beside EfficientNet-Lite0's features.

One forward pass of EfficientNet-Lite0 gives each image its features and its ImageNet class
probabilities; :class:`core.encoders.class_names.PairedImageEncoder` turns the second into a
ConSE vector in MiniLM's space. The run stores both: the features as the image embedding
(e.g. ``efficientnet-lite0``) and the ConSE vectors as ``<name>-text`` (encoder
``class-names:efficientnet-lite0``), each resumable and appended to like any embedding. In a
dataset of images and texts, the text rows join ``<name>-text`` with their MiniLM vectors
(:func:`complete_text_space`): one space where a text query, or an anchor of either kind,
reaches both.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from core import atomic
from core.embeddings.files import EmbeddingInfo, load_embedding
from core.embeddings.update import append_vectors
from core.errors import AlreadyExistsError
from core.workspace import Dataset

log = logging.getLogger(__name__)

TEXT_SPACE_SUFFIX = "-text"
MINILM_SPEC = "text:minilm"


def text_space_name(image_embedding: str) -> str:
    """``efficientnet-lite0`` → ``efficientnet-lite0-text``."""
    return image_embedding + TEXT_SPACE_SUFFIX


def pairs_with_class_names(encoder) -> bool:
    """True for the bundled EfficientNet-Lite0 (its ImageNet head gives the class names)."""
    from core.encoders import has_class_names

    return has_class_names(encoder)


def plan_paired_run(ds: Dataset, encoder, emb_name: str, todo: pd.DataFrame, replace: bool,
                    target: dict, companion_target, rows_without_vector):
    """``(paired encoder, rows to encode, outputs)`` for the image embedding ``emb_name`` and
    its class-name embedding: the rows either one lacks (all, without ``replace``: a stored
    embedding gets only its missing rows). ``companion_target(name, exists)`` resolves the
    second index's backend; ``rows_without_vector(name, encoder, rows)`` the missing rows.
    AlreadyExistsError if ``<emb_name>-text`` exists and was made another way."""
    from core.embeddings.compute import Output
    from core.encoders import CLASS_NAMES_SPEC, PairedImageEncoder, load_class_name_encoder

    companion = text_space_name(emb_name)
    names = ds.embedding_names()
    main_exists = emb_name in names and not replace
    comp_exists = companion in names and not replace
    if comp_exists:
        made = atomic.read_json(ds.embedding_dir(companion) / "meta.json").get("encoder")
        if made != CLASS_NAMES_SPEC:
            raise AlreadyExistsError(
                f"embedding {companion!r} already exists in {ds.name!r}, made "
                f"{'with ' + repr(made) if made else 'by an import'}; the class-name embedding of "
                f"{emb_name!r} goes there: rename or delete it, or pass --no-class-names")
    paired = PairedImageEncoder(load_class_name_encoder(encoder.device))
    missing_main = rows_without_vector(emb_name, encoder, todo) if main_exists else todo
    missing_comp = rows_without_vector(companion, paired.classes, todo) if comp_exists else todo
    ids = todo["id"].astype(str)
    run_rows = todo.loc[ids.isin(missing_main["id"].astype(str)) | ids.isin(missing_comp["id"].astype(str))]
    modalities = sorted(set(todo["modality"]) & {"image"})
    outputs = [
        Output(emb_name, {"encoder": encoder.spec, "source": "computed", "modalities": modalities},
               main_exists, slice(0, paired.feature_dims),
               missing_main["id"].astype(str).to_numpy() if main_exists else None, target),
        Output(companion, {"encoder": CLASS_NAMES_SPEC, "source": "computed", "modalities": modalities,
                           "class_names": paired.classes.space.to_json(), "derived_from": emb_name},
               comp_exists, slice(paired.feature_dims, None),
               missing_comp["id"].astype(str).to_numpy() if comp_exists else None,
               companion_target(companion, comp_exists)),
    ]
    return paired, run_rows, outputs


def complete_text_space(ds: Dataset, rows: pd.DataFrame, info: EmbeddingInfo) -> EmbeddingInfo:
    """If ``info`` is a class-name embedding and the dataset has text rows without a vector in
    it, append them: their vectors from a stored ``text:minilm`` embedding that has them (the
    same model, so the same vectors), else encoded with MiniLM. Returns the (new) summary."""
    from core.embeddings.compute import rows_for_encoder
    from core.encoders import CLASS_NAMES_SPEC

    if info.encoder != CLASS_NAMES_SPEC:
        return info
    texts = rows_for_encoder(rows, frozenset({"text"}))
    stored = load_embedding(ds, info.name)
    texts = texts.loc[~texts["id"].astype(str).isin(stored.ids)]
    if texts.empty:
        return info
    ids = texts["id"].astype(str).to_numpy()
    vectors = _stored_minilm_vectors(ds, ids)
    if vectors is None:
        from core.encoders import load_encoder

        log.info("encoding %d text rows of %s into %s", len(ids), ds.name, info.name)
        vectors = load_encoder(MINILM_SPEC).encode_texts(texts["text"].fillna("").astype(str).tolist())
    modalities = sorted(set(stored.meta.get("modalities", [])) | {"text"})
    return append_vectors(ds, info.name, [(ids, vectors)], total=len(ids),
                          meta_update={"modalities": modalities})


def _stored_minilm_vectors(ds: Dataset, ids: np.ndarray) -> np.ndarray | None:
    """The vectors of ``ids`` from a stored embedding made with ``text:minilm`` that has every
    one of them; None if there is none."""
    for name in ds.embedding_names():
        meta = atomic.read_json(ds.embedding_dir(name) / "meta.json")
        if meta.get("encoder") != MINILM_SPEC:
            continue
        emb = load_embedding(ds, name)
        where = pd.Index(emb.ids).get_indexer(ids)
        if (where >= 0).all():
            return np.asarray(emb.vectors[np.sort(where)][np.argsort(np.argsort(where))], np.float32)
    return None


__all__ = ["TEXT_SPACE_SUFFIX", "complete_text_space", "pairs_with_class_names", "plan_paired_run",
           "text_space_name"]
