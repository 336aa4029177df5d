"""Text search over rows whose embedding cannot read text.

Natural-language search needs the query and the rows in one vector space. Text
embeddings (``text:``, ``st:``) and joint image-text embeddings (``clip:``) give that
directly. For an image-only embedding (``image:efficientnet-lite0``) or an imported
one (no encoder), the fallback embeds each row's *descriptive text* (caption/text,
file name, label, metadata strings) with ``text:minilm`` and searches that instead.
It is saved as a normal embedding named :data:`FALLBACK_EMBEDDING`, computed once and
reused until the rows' descriptions change.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core import atomic
from core._shared import ProgressFn
from core.embeddings import EmbeddingInfo, describe_embedding, write_embedding
from core.errors import InputError
from core.filters import STRUCTURAL_COLUMNS
from core.search.text_plan import FALLBACK_EMBEDDING, FALLBACK_ENCODER
from core.workspace import Dataset

if TYPE_CHECKING:
    from core.encoders import Encoder

log = logging.getLogger(__name__)

MAX_DESCRIPTION_CHARS = 1000
MAX_METADATA_VALUE_CHARS = 200
_SEPARATORS = re.compile(r"[_\-.]+")


def _present(value: object) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return bool(str(value).strip())


def _file_words(path: object) -> str:
    """``'cats/tabby_01.jpg'`` → ``'cats tabby 01'`` (folders and stem, separators as spaces)."""
    if not _present(path):
        return ""
    p = PurePosixPath(str(path).replace("\\", "/"))
    parts = [*p.parent.parts[-2:], p.stem] if str(p.parent) not in ("", ".") else [p.stem]
    return " ".join(_SEPARATORS.sub(" ", part).strip() for part in parts if part and part != "/")


def row_descriptions(rows: pd.DataFrame) -> list[str]:
    """One descriptive text per row, in row order: text/caption, label, file name words,
    then ``column: value`` for every metadata column holding a string (≤ 200 chars each).

    Each description is whitespace-folded and cut to ``MAX_DESCRIPTION_CHARS``.
    Raises InputError if ``rows`` has no ``id`` column.
    """
    if "id" not in rows.columns:
        raise InputError(f"rows need an 'id' column; got columns {list(rows.columns)}")
    meta_cols = [c for c in rows.columns if c not in STRUCTURAL_COLUMNS]
    columns = {c: rows[c].tolist() if c in rows.columns else [None] * len(rows)
               for c in ("text", "label", "image", *meta_cols)}
    out = []
    for i in range(len(rows)):
        parts = []
        for col in ("text", "label"):
            if _present(columns[col][i]):
                parts.append(str(columns[col][i]))
        words = _file_words(columns["image"][i])
        if words:
            parts.append(words)
        for col in meta_cols:
            value = columns[col][i]
            if isinstance(value, str) and value.strip() and len(value) <= MAX_METADATA_VALUE_CHARS:
                parts.append(f"{col}: {value}")
        out.append(" ".join(". ".join(parts).split())[:MAX_DESCRIPTION_CHARS])
    return out


def descriptions_hash(ids: Iterable[str], descriptions: Iterable[str]) -> str:
    """sha256 hex of the (id, description) pairs: changes when any row's text does."""
    h = hashlib.sha256()
    for rid, text in zip(ids, descriptions):
        h.update(f"{rid}\0{text}\0".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def _stored_hash(ds: Dataset) -> str | None:
    if FALLBACK_EMBEDDING not in ds.embedding_names():
        return None
    return atomic.read_json(ds.embedding_dir(FALLBACK_EMBEDDING) / "meta.json").get("text_hash")


def fallback_is_current(ds: Dataset, rows: pd.DataFrame | None = None) -> bool:
    """True if :data:`FALLBACK_EMBEDDING` exists and matches the rows' descriptions.

    ``rows`` defaults to the dataset's ingested rows (label edits are not included).
    """
    stored = _stored_hash(ds)
    if stored is None:
        return False
    rows = ds.rows() if rows is None else rows
    return stored == descriptions_hash(rows["id"].astype(str), row_descriptions(rows))


def ensure_row_text_embedding(ds: Dataset, rows: pd.DataFrame | None = None, *,
                              encoder: Encoder | None = None,
                              batch_size: int = 64, progress: ProgressFn | None = None) -> EmbeddingInfo:
    """Build (or reuse) the row-text embedding of ``ds``; returns its summary.

    Reused as is when its stored ``text_hash`` matches the current descriptions; else every
    row's description is encoded with ``encoder`` (default: ``load_encoder("text:minilm")``)
    → ``(n, 384) float32`` and saved with meta ``{"encoder": "text:minilm", "source":
    "computed", "purpose": "text-fallback"}``. Raises EncoderError if the model is missing.
    """
    rows = ds.rows() if rows is None else rows
    ids = rows["id"].astype(str).tolist()
    descriptions = row_descriptions(rows)
    digest = descriptions_hash(ids, descriptions)
    if _stored_hash(ds) == digest:
        return describe_embedding(ds, FALLBACK_EMBEDDING)
    if encoder is None:
        from core.encoders import load_encoder

        encoder = load_encoder(FALLBACK_ENCODER)
    log.info("encoding the descriptive text of %d rows of %s for text search", len(ids), ds.name)
    vectors = encoder.encode_texts(descriptions, batch_size=batch_size, progress=progress)
    meta = {"encoder": encoder.spec, "source": "computed", "purpose": "text-fallback",
            "modalities": ["text"], "text_hash": digest}
    return write_embedding(ds, FALLBACK_EMBEDDING, ids, np.asarray(vectors, np.float32), meta,
                           replace=True)
