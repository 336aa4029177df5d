"""Building a :class:`core.index.VectorIndex` of any kind from vectors and ids: every row is
checked first, then rows are normalised and added in chunks (never two full copies)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from core._shared import ProgressFn
from core.errors import InputError
from core.index.backend import VectorBackend, check_backend
from core.index.faiss_build import (
    add_chunks,
    as_matrix,
    check_ids,
    checked_norms,
    new_faiss,
    train_if_needed,
    unit_chunks,
)
from core.index.ivf import build_ivf
from core.index.kinds import check_params, resolve_kind
from core.index.vector_index import VectorIndex

log = logging.getLogger(__name__)


def check_index_target(kind: str = "auto", backend: str = "faiss", uri: str | None = None) -> str:
    """``backend`` once the index it would build is possible, before any work: a known
    backend and a kind of that backend, ``uri`` only for LanceDB, lancedb installed (and a
    local ``uri`` writable). InputError naming the problem otherwise."""
    if check_backend(backend) == "lancedb":
        try:
            from core.index.lance_table import check_writable, resolve_lance_kind
        except ModuleNotFoundError as err:
            raise InputError(f"the lancedb backend needs {err.name!r}: pip install -r "
                             "requirements-scale.txt") from err
        resolve_lance_kind(kind, 0)
        if uri is not None:
            check_writable(str(uri))
        return backend
    if uri is not None:
        raise InputError(f"uri {uri!r} applies to the lancedb backend only; FAISS indexes live "
                         "beside the vectors")
    resolve_kind(kind, 0)
    return backend


def build_index(vectors: np.ndarray, ids: Sequence[str], kind: str = "auto", *,
                progress: ProgressFn | None = None, backend: str = "faiss", uri: str | None = None,
                **params: int) -> VectorBackend:
    """Index ``vectors`` (n, d) float32 under ``ids`` (n unique non-empty str) for cosine search.

    ``backend``: "faiss" (default; a :class:`VectorIndex`, as below) or "lancedb" (a
    :class:`core.index.lance.LanceIndex` in a LanceDB table at ``uri``, or a scratch folder
    its ``save`` moves beside the index; kinds and params in :func:`build_lance_index`).
    InputError on an unknown backend, or a ``uri`` for FAISS.

    ``kind``: "auto" (by n: exact up to EXACT_MAX_ROWS, hnsw up to HNSW_MAX_ROWS, else
    ivf), "exact", "hnsw" or "ivf"; ``params``: hnsw M, ef_construction, ef_search,
    k_factor (HNSW_DEFAULTS); ivf nlist, nprobe, k_factor, bits, train_rows (IVF_DEFAULTS);
    none for exact. ``progress(done, total)`` as rows are added. Validates every row
    first, then normalises and adds ``ADD_CHUNK`` rows at a time: peak memory is the input
    plus faiss's own copy (plus codes and graph) for exact/hnsw; ivf keeps only codes and
    re-ranks from ``vectors`` itself (a memory map stays one; not float32: one copy).
    Raises InputError (kind/params), EmbeddingError (shape, NaN/Inf, zero rows, id count,
    duplicates), SchemaError (empty or non-str ids).
    """
    if check_index_target(kind, backend, uri) == "lancedb":
        from core.index.lance import build_lance_index

        return build_lance_index(vectors, ids, kind, uri=uri, progress=progress, **params)
    id_arr = check_ids(ids, vectors)
    x = as_matrix(vectors, None)
    resolved = resolve_kind(kind, len(x))
    checked = check_params(resolved, params)
    norms = checked_norms(x, id_arr)  # every row is checked before anything is built
    log.info("building %s index over %d rows of %d dims %s", resolved, len(x), x.shape[1], checked)
    if resolved == "ivf":
        index, source = build_ivf(x, norms, checked, progress)
        return VectorIndex(index, id_arr, resolved, checked, source)
    index = new_faiss(resolved, x.shape[1], checked)
    train_if_needed(index, x, norms)
    add_chunks(index, unit_chunks(x, norms), len(x), progress)
    return VectorIndex(index, id_arr, resolved, checked)
