"""Catalog core: everything the app and the ``catalog`` command do, without Streamlit.

The public API is listed in ``__all__``; names are imported lazily on first use so
``import core`` stays cheap (torch and friends load only when an encoder is used).

Typical use::

    from core import open_workspace, ingest, compute_embeddings, load_index, find_similar
    ws = open_workspace("catalog-data")
    ingest(ws, "photos/", "photos")
    compute_embeddings(ws.dataset("photos"))
    result = find_similar(load_index(ws.dataset("photos")), ["cats/001.jpg"], k=20)
"""

from __future__ import annotations

import importlib

_EXPORTS: dict[str, str] = {
    # workspace and storage
    "open_workspace": "core.workspace", "Workspace": "core.workspace", "Dataset": "core.workspace",
    "Store": "core.store", "Slice": "core.store",
    # ingest and embeddings
    "ingest": "core.ingest", "ingest_folder": "core.ingest", "ingest_table": "core.ingest",
    "IngestReport": "core.ingest",
    "load_encoder": "core.encoders", "Encoder": "core.encoders",
    "compute_embeddings": "core.embeddings", "load_embedding": "core.embeddings",
    "load_index": "core.embeddings", "list_embeddings": "core.embeddings",
    "delete_embedding": "core.embeddings",
    "import_embeddings": "core.embeddings", "export_embeddings": "core.embeddings",
    # index and search
    "VectorIndex": "core.index", "build_index": "core.index",
    "find_similar": "core.search", "search_text": "core.search", "search_image": "core.search",
    "search_vector": "core.search", "SearchResult": "core.search",
    # curation
    "RowFilter": "core.filters", "apply_filter": "core.filters",
    "select_random": "core.select", "select_ordered": "core.select",
    "select_by_cluster": "core.select", "select_diverse": "core.select", "Selection": "core.select",
    "project": "core.clusters", "cluster": "core.clusters",
    "find_label_issues": "core.quality", "find_near_duplicates": "core.quality",
    "score_outliers": "core.quality",
    "export_rows": "core.export", "effective_rows": "core.export",
    "build_demo": "core.demo",
    # background jobs
    "JobBoard": "core.jobs", "Job": "core.jobs", "JobContext": "core.jobs",
    # errors
    "CatalogError": "core.errors", "InputError": "core.errors", "SchemaError": "core.errors",
    "MediaError": "core.errors", "EmbeddingError": "core.errors", "NotFoundError": "core.errors",
    "AlreadyExistsError": "core.errors", "EncoderError": "core.errors",
    "IndexStateError": "core.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
