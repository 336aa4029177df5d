"""The 2-D models of a map: fitting PCA / UMAP on rows (UMAP on exact cosine kNN),
placing rows with a fitted model (``UMAP.transform``, or the 2-D PCA / neighbour
placement of a large map); the model half of :mod:`core.clusters.projection`.

UMAP's neighbours are exact cosine kNN from :mod:`core.index.vector_index` (FAISS), handed to UMAP as
``precomputed_knn`` with :class:`ExactKnn` as its search index for ``transform``: on 2
cores this is about half the CPU of pynndescent's NN-descent plus search-graph build.

Test hook: every actual fit goes through :func:`fit_model`, every ``transform`` of rows
through :func:`transform_rows` and every placed chunk of a large map through
:func:`place_chunk` (looked up in this module at call time); tests monkeypatch them here
with counting spies.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from core._shared import ProgressFn
from core.clusters.placement import NeighbourPlacer

TRANSFORM_BATCH = 25_000  # > 10,000 so UMAP.transform runs its 30-epoch (large input) schedule


class ExactKnn:
    """Exact cosine kNN over the UMAP fit rows (``core.index.vector_index``), in place of pynndescent.

    UMAP gets it as ``precomputed_knn[2]`` and calls ``query(X, k, epsilon)`` from
    ``transform``; this skips pynndescent's search-graph build (~70 s CPU for 50k rows).
    Pickles only the (m, p) float32 rows; the faiss index is rebuilt on first use.
    """

    _angular_trees = True  # read by UMAP.transform to pick an epsilon we ignore

    def __init__(self, rows: np.ndarray) -> None:
        self._rows = np.array(rows, dtype=np.float32, copy=True)
        norms = np.linalg.norm(self._rows, axis=1)
        self._rows[norms == 0, 0] = 1.0  # a row at the PCA mean has no direction; give it one
        self._index: Any = None

    def query(self, queries: np.ndarray, k: int, epsilon: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """(positions (q, k) int32, cosine distances (q, k) float32), nearest first."""
        if self._index is None:
            from core.index import build_index

            self._index = build_index(self._rows, [str(i) for i in range(len(self._rows))], kind="exact")
        q = np.array(queries, dtype=np.float32, copy=True)
        q[np.linalg.norm(q, axis=1) == 0, 0] = 1.0
        sims, pos = self._index.search_positions(q, k)
        return pos.astype(np.int32), np.clip(1.0 - sims, 0.0, 2.0).astype(np.float32)

    def __getstate__(self) -> dict:
        return {"_rows": self._rows}

    def __setstate__(self, state: dict) -> None:
        self._rows, self._index = state["_rows"], None


def fit_model(x: np.ndarray, params: dict) -> tuple[dict, np.ndarray]:
    """Fit PCA (+ UMAP) on ``x`` (m, d) float32; returns (model, (m, 2) float32 coords)."""
    from sklearn.decomposition import PCA

    seed = params["seed"]
    if params["method"] == "pca":
        with np.errstate(divide="ignore", invalid="ignore"):  # identical rows: 0/0 variance ratio
            pca = PCA(n_components=2, random_state=seed).fit(x)
        return {"pca": pca, "umap": None}, pca.transform(x).astype(np.float32)
    import umap  # slow import (numba); only when needed

    pca = PCA(n_components=params["pca_dims"], random_state=seed).fit(x) if params["pca_dims"] else None
    reduced = pca.transform(x).astype(np.float32) if pca is not None else x
    knn = ExactKnn(reduced)
    indices, dists = knn.query(knn._rows, params["n_neighbors"])
    reducer = umap.UMAP(
        n_components=2, metric="cosine", n_neighbors=params["n_neighbors"],
        min_dist=params["min_dist"], init=params["init"], random_state=seed, transform_seed=seed,
        n_jobs=1, precomputed_knn=(indices, dists, knn),
    )
    with warnings.catch_warnings():  # "not an NNDescent object": our stand-in does transform
        warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]", category=UserWarning)
        coords = reducer.fit_transform(reduced)
    return {"pca": pca, "umap": reducer}, np.asarray(coords, dtype=np.float32)


def transform_rows(model: dict, x: np.ndarray, progress: ProgressFn | None = None,
                    done: int = 0, total: int = 0) -> np.ndarray:
    """Place ``x`` (m, d) with a fitted model, in batches; returns (m, 2) float32."""
    out = np.empty((x.shape[0], 2), dtype=np.float32)
    for start in range(0, x.shape[0], TRANSFORM_BATCH):
        batch = x[start:start + TRANSFORM_BATCH]
        if model["pca"] is not None:
            batch = model["pca"].transform(batch).astype(np.float32)
        if model["umap"] is not None:
            batch = model["umap"].transform(batch)
        out[start:start + len(batch)] = batch
        if progress is not None:
            progress(done + start + len(batch), total)
    return out


def place_chunk(model: dict, x: np.ndarray) -> np.ndarray:
    """Map positions (m, 2) float32 of L2-normalised rows ``x`` (m, d) with a large-map
    model: its 2-D PCA, or its neighbour placement after the PCA reduction."""
    reduced = model["pca"].transform(x).astype(np.float32) if model["pca"] is not None else x
    placer = model.get("placer")
    return reduced if placer is None else placer.place(reduced)


def fit_large(x: np.ndarray, params: dict) -> tuple[dict, np.ndarray]:
    """:func:`fit_model` on the sample ``x`` (m, d); for UMAP the fitted UMAP is replaced
    by a :class:`NeighbourPlacer` over the sample's reduced rows and map positions."""
    model, coords = fit_model(x, params)
    if params["method"] == "pca":
        return model, coords
    reduced = model["pca"].transform(x).astype(np.float32) if model["pca"] is not None else x
    placer = NeighbourPlacer(reduced, coords, neighbours=params["place_neighbours"],
                             nprobe=params["place_nprobe"], temperature=params["place_temperature"])
    return {"pca": model["pca"], "umap": None, "placer": placer}, coords
