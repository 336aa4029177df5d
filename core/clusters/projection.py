"""2-D projections (UMAP / PCA), cached on disk; the projection half of :mod:`core.clusters`.

Projection cache (``cache_dir``, normally ``Dataset.projections_dir``), one record per
(vectors, params), the JSON written last so a record is complete or absent::

    proj-<key>.json        params, vectors_hash, model file, row count
    proj-<key>.coords.npy  (n, 2) float32, row order = ids
    proj-<key>.ids.npy     (n,) str
    model-<key>.joblib     fitted PCA/UMAP (our own file, never user-supplied)

Rows added later are placed with the cached model's ``transform`` when an earlier
record's ids are a subset of the new ids, the shared rows' vectors are unchanged and
no more rows are new than were already placed; old rows keep their coordinates.

UMAP's neighbours are exact cosine kNN from :mod:`core.index.vector_index` (FAISS), handed to UMAP as
``precomputed_knn`` with :class:`_ExactKnn` as its search index for ``transform``: on 2
cores this is about half the CPU of pynndescent's NN-descent plus search-graph build.

Test hook: every actual fit goes through :func:`_fit_model` and every placement of
rows through :func:`_transform_rows` (looked up in this module at call time); tests
monkeypatch them here with counting spies.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core import atomic
from core._shared import ProgressFn, unit_rows
from core.errors import EmbeddingError, InputError

log = logging.getLogger(__name__)

PROJECTION_METHODS = ("umap", "pca")
SAMPLE_THRESHOLD = 50_000
PCA_DIMS = 50  # UMAP input is reduced to this many dims by PCA when dims > PCA_ABOVE
PCA_ABOVE = 64
TRANSFORM_BATCH = 25_000  # > 10,000 so UMAP.transform runs its 30-epoch (large input) schedule
MIN_ROWS = 3  # fewer rows give no map worth drawing (and UMAP needs a neighbour besides self)
_FORMAT = 1  # bump when the cache layout or algorithm changes
_HASH_ROWS = 16_384


@dataclass(frozen=True)
class Projection:
    """2-D coordinates of ``ids``: ``coords`` (n, 2) float32, row order = ``ids``.

    ``params`` holds everything that determined the result (method, seed, n_neighbors,
    min_dist, pca_dims, sample_size, ...) plus ``placed_by_transform`` (rows placed by
    an earlier model's transform). ``from_cache`` is True when read from disk.
    """

    ids: tuple[str, ...]
    coords: np.ndarray
    method: str
    params: dict
    from_cache: bool


def check_vectors(ids: Sequence[str], vectors: np.ndarray) -> np.ndarray:
    """``vectors`` as an array after checking it is (n, d) with n = len(ids) and ids are unique.

    Raises EmbeddingError for a shape mismatch, InputError for duplicate ids.
    """
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[0] != len(ids):
        raise EmbeddingError(
            f"vectors must be (n, d) with n = len(ids) = {len(ids)}; got shape {vectors.shape}"
        )
    if len(set(ids)) != len(ids):
        raise InputError("ids must be unique; found duplicates")
    return vectors



def vectors_hash(ids: Sequence[str], vectors: np.ndarray) -> str:
    """sha256 hex of the ids (in order), the shape and the float32 bytes of ``vectors`` (n, d)."""
    h = hashlib.sha256(f"{_FORMAT}:{vectors.shape[0]}x{vectors.shape[1]}\n".encode())
    h.update("\0".join(map(str, ids)).encode("utf-8"))
    for start in range(0, vectors.shape[0], _HASH_ROWS):
        chunk = np.ascontiguousarray(vectors[start:start + _HASH_ROWS], dtype="<f4")
        h.update(memoryview(chunk).cast("B"))
    return h.hexdigest()


def estimate_projection_seconds(n_rows: int, dims: int) -> float:
    """Rough wall seconds of an uncached UMAP :func:`project` (defaults) on an idle 2-core box.

    From bench/bench_clusters.py CPU times (docs/benchmarks.md): exact kNN of the fit
    sample (~5.3 ns per pair of rows), UMAP fit (~0.55 ms per fitted row), transform of the
    rest (kNN against the sample + ~0.2 ms per row), plus ~10 s of numba loading/JIT.
    """
    n_fit = min(n_rows, SAMPLE_THRESHOLD)
    rest = max(0, n_rows - SAMPLE_THRESHOLD)
    knn_dims = PCA_DIMS if dims > PCA_ABOVE else max(dims, 16)
    pair = 5.3e-9 * knn_dims / PCA_DIMS
    pca = 0.8 * (n_fit / 50_000) * (dims / 384) if dims > PCA_ABOVE else 0.0
    fit = pair * n_fit * n_fit + 5.5e-4 * n_fit
    return round(10.0 + pca + fit + rest * (pair * n_fit + 2e-4), 1)


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:24]


def _check_shape(n: int, dims: int, n_neighbors: int, min_dist: float, sample_threshold: int) -> None:
    """Raise InputError, naming the problem, for inputs no 2-D map can be made of."""
    if n < MIN_ROWS:
        raise InputError(f"a 2-D map needs at least {MIN_ROWS} rows; got {n}")
    if dims < 2:
        raise InputError(f"a 2-D map needs vectors of at least 2 dims; got {dims}")
    if n_neighbors < 2 or not 0.0 <= min_dist <= 1.0 or sample_threshold < MIN_ROWS:
        raise InputError(
            f"bad projection parameters n_neighbors={n_neighbors!r} (>= 2), "
            f"min_dist={min_dist!r} (0..1), sample_threshold={sample_threshold!r} (>= {MIN_ROWS})"
        )


class _ExactKnn:
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


def _fit_model(x: np.ndarray, params: dict) -> tuple[dict, np.ndarray]:
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
    knn = _ExactKnn(reduced)
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


def _transform_rows(model: dict, x: np.ndarray, progress: ProgressFn | None = None,
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


def _save_record(cache: Path, key: str, ids: Sequence[str], coords: np.ndarray, meta: dict) -> None:
    atomic.write_npy(cache / f"proj-{key}.ids.npy", np.asarray(ids, dtype=str))
    atomic.write_npy(cache / f"proj-{key}.coords.npy", coords)
    atomic.write_json(cache / f"proj-{key}.json", meta)


def _load_coords(cache: Path, key: str, n: int) -> tuple[dict, np.ndarray] | None:
    meta_path = cache / f"proj-{key}.json"
    if not meta_path.exists():
        return None
    try:
        meta = atomic.read_json(meta_path)
        coords = np.load(cache / f"proj-{key}.coords.npy", allow_pickle=False)
    except (OSError, ValueError) as err:
        log.warning("ignoring unreadable projection cache %s: %s", meta_path, err)
        return None
    if coords.shape != (n, 2) or not np.isfinite(coords).all():
        log.warning("ignoring projection cache %s: shape %s, expected (%d, 2)", meta_path, coords.shape, n)
        return None
    return meta, coords.astype(np.float32, copy=False)


def _find_base(cache: Path, family: str, ids: Sequence[str],
               vectors: np.ndarray) -> tuple[dict, dict, np.ndarray, np.ndarray] | None:
    """The largest cached record of ``family`` whose rows are a subset of ``ids`` with
    unchanged vectors: (meta, fitted model, old coords, positions of old ids) or None."""
    where = {rid: i for i, rid in enumerate(ids)}
    candidates = []
    for path in cache.glob("proj-*.json"):
        try:
            meta = atomic.read_json(path)
        except (OSError, ValueError):
            continue
        usable = meta.get("family") == family and meta.get("n", 0) < len(ids)
        if usable and (cache / meta.get("model", "")).is_file():
            candidates.append((meta["n"], path.name[5:-5], meta))
    for n_old, key, meta in sorted(candidates, key=lambda c: -c[0]):
        if len(ids) - n_old > n_old:
            break  # more new rows than placed ones: a fresh fit is better
        try:
            old_ids = np.load(cache / f"proj-{key}.ids.npy", allow_pickle=False).tolist()
            coords = np.load(cache / f"proj-{key}.coords.npy", allow_pickle=False)
        except (OSError, ValueError):
            continue
        pos = np.fromiter((where.get(r, -1) for r in old_ids), dtype=np.int64, count=len(old_ids))
        if (pos < 0).any() or coords.shape != (len(old_ids), 2):
            continue
        if vectors_hash(old_ids, vectors[pos]) != meta["vectors_hash"]:
            continue
        import joblib

        try:
            model = joblib.load(cache / meta["model"])
        except (OSError, EOFError, ValueError, AttributeError, ImportError, pickle.UnpicklingError) as err:
            log.warning("ignoring unreadable projection model %s: %s", meta["model"], err)
            continue
        return meta, model, coords.astype(np.float32), pos
    return None


def project(ids: Sequence[str], vectors: np.ndarray, *, method: str = "umap", seed: int = 0,
            n_neighbors: int = 15, min_dist: float = 0.1, sample_threshold: int = SAMPLE_THRESHOLD,
            cache_dir: str | Path | None = None, progress: ProgressFn | None = None) -> Projection:
    """2-D coordinates for ``vectors`` (n, d) (cosine geometry: rows are L2-normalised).

    ``umap``: PCA to 50 dims first when d > 64, UMAP(metric="cosine", random_state=seed);
    above ``sample_threshold`` rows, fit on a seeded sample and transform the rest in
    batches of 25,000; ``n_neighbors`` is capped at (fitted rows - 1). ``pca``: 2-D PCA of
    all rows (no sampling). Results are cached in ``cache_dir`` keyed by
    (:func:`vectors_hash`, params); added rows are placed with the cached model (see module
    docstring). ``progress(done_rows, n)`` is called as work ends.

    Raises InputError for an unknown method, bad parameters, fewer than 3 rows or fewer
    than 2 dims; EmbeddingError for a shape mismatch or NaN/Inf.
    """
    if method not in PROJECTION_METHODS:
        raise InputError(f"unknown projection method {method!r}; choose one of {', '.join(PROJECTION_METHODS)}")
    vectors = check_vectors(ids, vectors)
    n, dims = vectors.shape
    _check_shape(n, dims, n_neighbors, min_dist, sample_threshold)
    ids = [str(i) for i in ids]
    sampled = method == "umap" and n > sample_threshold
    n_fit = sample_threshold if sampled else n
    base = {"format": _FORMAT, "method": method, "seed": int(seed), "dims": int(dims)}
    if method == "umap":
        base.update(metric="cosine", n_neighbors=int(min(n_neighbors, n_fit - 1)),
                    min_dist=float(min_dist), pca_dims=PCA_DIMS if dims > PCA_ABOVE and n_fit > PCA_DIMS else None,
                    init="spectral" if n_fit >= 50 else "random",  # spectral fails on tiny graphs
                    sample_threshold=int(sample_threshold))
    family = _digest(base)
    params = {**base, "sample_size": n_fit if sampled else None}
    vhash = vectors_hash(ids, vectors)
    key = _digest({"v": vhash, **params})
    cache = Path(cache_dir) if cache_dir is not None else None

    hit = _load_coords(cache, key, n) if cache is not None else None
    if hit is not None and hit[0].get("vectors_hash") == vhash:
        log.info("projection %s read from cache", key)
        if progress is not None:
            progress(n, n)
        return Projection(tuple(ids), hit[1], method, hit[0]["params"], True)

    x = unit_rows(vectors)
    found = _find_base(cache, family, ids, vectors) if cache is not None and cache.is_dir() else None
    if found is not None:
        meta, model, old_coords, pos = found
        new_mask = np.ones(n, dtype=bool)
        new_mask[pos] = False
        coords = np.empty((n, 2), dtype=np.float32)
        coords[pos] = old_coords
        coords[new_mask] = _transform_rows(model, x[new_mask], progress, len(pos), n)
        params = {**meta["params"], "placed_by_transform": meta["params"]["placed_by_transform"] + int(new_mask.sum())}
        model_file = meta["model"]
        log.info("placed %d new rows with cached model %s", int(new_mask.sum()), model_file)
    else:
        if sampled:
            fit_idx = np.sort(np.random.default_rng(seed).choice(n, n_fit, replace=False))
        else:
            fit_idx = np.arange(n)
        model, fit_coords = _fit_model(x[fit_idx], params)
        coords = np.empty((n, 2), dtype=np.float32)
        coords[fit_idx] = fit_coords
        if progress is not None:
            progress(n_fit, n)
        rest = np.setdiff1d(np.arange(n), fit_idx, assume_unique=True)
        if len(rest):
            coords[rest] = _transform_rows(model, x[rest], progress, n_fit, n)
        params = {**params, "placed_by_transform": len(rest)}
        model_file = f"model-{key}.joblib"
        if cache is not None:
            import joblib

            atomic.write_with(cache / model_file, lambda tmp: joblib.dump(model, tmp))
    if not np.isfinite(coords).all():
        raise EmbeddingError(f"projection produced non-finite coordinates for {method} (params {params})")
    if cache is not None:
        _save_record(cache, key, ids, coords, {
            "params": params, "family": family, "vectors_hash": vhash, "n": n, "model": model_file,
        })
    return Projection(tuple(ids), coords, method, params, False)
