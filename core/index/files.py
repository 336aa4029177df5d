"""The three files every saved :class:`core.index.VectorIndex` has, written atomically and
read back with every consistency check (the class itself only validates its parameters).

``index.faiss`` (the faiss index), ``index_ids.npy`` (one id per faiss slot, ``''`` =
removed), ``index.json`` (format version, kind, params, dims, count, slots; ivf also
``base_rows`` and ``base_fingerprint``). Each file is replaced atomically, index.json last.
The ivf kind's own files (norms, added rows, the ``vectors.npy`` it reads) are
:mod:`core.index.mapped`'s, written before these.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np

from core import atomic
from core.errors import IndexStateError, format_list
from core.index.ivf import is_ivf

FORMAT_VERSION = 2  # 2: hnsw = HNSW over SQ8 codes + exact re-rank (1: HNSW over floats)
FILES = ("index.faiss", "index.json", "index_ids.npy")


def write_index_files(directory: str | Path, index: faiss.Index, slot_ids: np.ndarray,
                      meta: dict[str, Any]) -> None:
    """Write ``index`` (faiss), ``slot_ids`` (n,) str and ``meta`` (index.json), each atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic.write_with(directory / "index.faiss", lambda p: faiss.write_index(index, str(p)))
    atomic.write_npy(directory / "index_ids.npy", slot_ids.astype(str))
    atomic.write_json(directory / "index.json", meta)


def read_index_files(directory: str | Path) -> tuple[faiss.Index, np.ndarray, dict[str, Any]]:
    """(faiss index, slot ids (n,) object, index.json dict) from ``directory``.

    IndexStateError if a file is missing or unreadable, the format version is older (a v1
    exact index is accepted: its layout did not change), the faiss index is not the recorded
    kind, or dims, counts or ids disagree (duplicate live ids included).
    """
    directory = Path(directory)
    missing = [name for name in FILES if not (directory / name).is_file()]
    if missing:
        raise IndexStateError(f"index in {directory} is missing {format_list(missing)}")
    try:
        meta = atomic.read_json(directory / "index.json")
        slot_ids = np.load(directory / "index_ids.npy", allow_pickle=False)
        index = faiss.read_index(str(directory / "index.faiss"))
    except (OSError, ValueError, RuntimeError) as err:
        raise IndexStateError(f"index in {directory} is corrupt: {err}") from err
    version = meta.get("format_version") if isinstance(meta, dict) else None
    kind = meta.get("kind") if isinstance(meta, dict) else None
    if version != FORMAT_VERSION and not (version == 1 and kind == "exact"):  # v1 exact = v2 exact
        raise IndexStateError(f"index.json in {directory} is format version {version!r}, not "
                              f"{FORMAT_VERSION}: an index built by an older Catalog; rebuild it")
    if not is_kind(index, kind):
        raise IndexStateError(f"index.faiss in {directory} is {type(index).__name__}, "
                              f"not the {kind!r} kind recorded in index.json")
    if slot_ids.ndim != 1 or slot_ids.dtype.kind != "U":
        raise IndexStateError(f"index_ids.npy in {directory} is not a 1-D string array")
    live = int((slot_ids != "").sum())
    coded = live if kind == "ivf" else len(slot_ids)  # ivf: removed rows have no code
    if (index.d != meta.get("dims") or index.ntotal != coded or live != meta.get("count")
            or len(set(slot_ids[slot_ids != ""].tolist())) != live):
        raise IndexStateError(
            f"index in {directory} is inconsistent: index.json says {meta.get('count')} rows of "
            f"{meta.get('dims')} dims, index.faiss has {index.ntotal} of {index.d}, "
            f"index_ids.npy has {len(slot_ids)} slots ({live} live, unique ids required)")
    return index, slot_ids.astype(object), meta


def is_kind(index: faiss.Index, kind: Any) -> bool:
    """Whether a faiss index read from disk is what ``kind`` builds (inner product)."""
    if kind == "exact":
        return isinstance(index, faiss.IndexFlatIP) and index.metric_type == faiss.METRIC_INNER_PRODUCT
    if kind == "ivf":
        return is_ivf(index)
    if kind != "hnsw" or not isinstance(index, faiss.IndexRefine):
        return False
    graph, flat = faiss.downcast_index(index.base_index), faiss.downcast_index(index.refine_index)
    return (isinstance(graph, faiss.IndexHNSWSQ) and isinstance(flat, faiss.IndexFlat)
            and graph.metric_type == flat.metric_type == faiss.METRIC_INNER_PRODUCT)
