"""Stored embeddings of a dataset: compute, load, import/export, delete.

- :mod:`core.embeddings.files`: the on-disk layout (``vectors.npy``, ``ids.npy``,
  ``meta.json``, the index), :func:`load_embedding`, :func:`load_index`,
  :func:`rebuild_index`, :func:`list_embeddings`, :func:`delete_embedding`, :func:`write_embedding`.
- :mod:`core.embeddings.compute`: :func:`compute_embeddings` (chunked, resumable).
- :mod:`core.embeddings.io`: :func:`import_embeddings`, :func:`export_embeddings`.
- :mod:`core.embeddings.update`: :func:`carry_embeddings` (a dataset update keeps the
  vectors of unchanged rows), :func:`append_vectors` (new rows appended, index ``add``).
- :mod:`core.embeddings.readers`: reading vector files (Parquet, NPY, CSV) and id files.
- :mod:`core.embeddings.text_space`: the class-name embedding (``<name>-text``) an
  EfficientNet-Lite0 run writes from the same pass, joined by the text rows of a mixed dataset.
"""

from __future__ import annotations

from core.embeddings.compute import ComputeReport, compute_embeddings, rows_for_encoder
from core.embeddings.files import (
    Embedding,
    EmbeddingInfo,
    delete_embedding,
    describe_embedding,
    list_embeddings,
    load_embedding,
    load_index,
    normalise_rows,
    rebuild_index,
    write_embedding,
    write_embedding_chunks,
)
from core.embeddings.io import (
    IMPORT_FORMATS,
    ImportReport,
    export_embeddings,
    import_embeddings,
)
from core.embeddings.readers import MAX_DIMS
from core.embeddings.update import append_vectors, carry_embeddings, link_tree

__all__ = [
    "IMPORT_FORMATS",
    "MAX_DIMS",
    "ComputeReport",
    "Embedding",
    "EmbeddingInfo",
    "ImportReport",
    "append_vectors",
    "carry_embeddings",
    "compute_embeddings",
    "delete_embedding",
    "describe_embedding",
    "export_embeddings",
    "import_embeddings",
    "link_tree",
    "list_embeddings",
    "load_embedding",
    "load_index",
    "normalise_rows",
    "rebuild_index",
    "rows_for_encoder",
    "write_embedding",
    "write_embedding_chunks",
]
