"""2-D projections (UMAP / PCA), cached on disk; the projection half of :mod:`core.clusters`.

The cache on disk (records, models, the vectors-hash memo, partial work of a large map)
is :mod:`core.clusters.cache`.

Up to ``place_above`` (:data:`PLACE_ABOVE`) rows: UMAP is fitted on every row, or above
``sample_threshold`` on a seeded sample with the rest placed by ``UMAP.transform`` in
batches; PCA is fitted on every row. Above ``place_above`` rows (a large map) both are
fitted on a seeded sample of ``sample_threshold`` rows and every other row is placed
chunk by chunk, reading the vectors through their memory map: by the 2-D PCA, or (UMAP)
at the weighted mean of the map positions of its nearest sample rows
(:class:`core.clusters.placement.NeighbourPlacer`). Each placed chunk is saved in the
partial directory, so a killed run resumes with the chunks it has not placed yet.

Rows added later are placed with the cached model (``transform``, or the neighbour
placement of a large map) when an earlier record's ids are a subset of the new ids, the
shared rows' vectors are unchanged and no more rows are new than were already placed;
old rows keep their coordinates.

Fitting and applying the models (and the test hooks ``fit_model`` / ``transform_rows``
/ ``place_chunk``, looked up at call time) is :mod:`core.clusters.models`.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core import atomic
from core._shared import ProgressFn, check_positive_int, unit_rows
from core.clusters import models
from core.clusters.cache import (
    FORMAT,
    content_hash,
    digest,
    find_base,
    load_coords,
    resume_partial,
    save_record,
)
from core.clusters.models import ExactKnn as _ExactKnn  # noqa: F401  (model files pickled before models.py name it here)
from core.clusters.placement import (
    PLACE_NEIGHBOURS,
    PLACE_NPROBE,
    PLACE_TEMPERATURE,
    place_rows,
)
from core.errors import EmbeddingError, InputError

log = logging.getLogger(__name__)

PROJECTION_METHODS = ("umap", "pca")
SAMPLE_THRESHOLD = 50_000
PCA_DIMS = 50  # UMAP input is reduced to this many dims by PCA when dims > PCA_ABOVE
PCA_ABOVE = 64
# Above this many rows the map is "large": fitted on a sample, the other rows placed in
# resumable chunks by their neighbours among the sample (no UMAP.transform). At 1M x 384
# (bench/bench_clusters_scale.py): cold 109 s wall / 80 s CPU against 868 s / 437 s with
# UMAP.transform, rows placed within 0.7% of the map's width (median) of where the
# transform puts them. Up to here the transform path (and its exact results) is kept.
PLACE_ABOVE = 100_000
PLACE_CHUNK = 100_000  # rows placed (and saved, for resuming) at a time in a large map
PLACE_SECONDS_PER_ROW = 6e-5  # wall s per placed row, 2 busy cores (bench: 1M -> 3M rows)
MIN_ROWS = 3  # fewer rows give no map worth drawing (and UMAP needs a neighbour besides self)


@dataclass(frozen=True)
class Projection:
    """2-D coordinates of ``ids`` ((n,) read-only str array): ``coords`` (n, 2) float32, row
    order = ``ids``.

    ``params`` holds everything that determined the result (method, seed, n_neighbors,
    min_dist, pca_dims, sample_size, ...) plus ``placed_by_transform`` (rows placed by
    an earlier model's transform). ``from_cache`` is True when read from disk.
    """

    ids: np.ndarray
    coords: np.ndarray
    method: str
    params: dict
    from_cache: bool


def check_vectors(ids: Sequence[str], vectors: np.ndarray) -> np.ndarray:
    """``vectors`` as an array after checking it is (n, d) with n = len(ids) and ids are unique.

    Raises EmbeddingError for a shape mismatch, InputError for duplicate ids.
    """
    vectors = _rows_of(ids, vectors)
    _check_unique(ids)
    return np.asarray(vectors)


def _rows_of(ids: Sequence[str], vectors: Any) -> np.ndarray:
    """``vectors`` (a memory map stays one) after checking it is (n, d) with n = len(ids)."""
    vectors = vectors if isinstance(vectors, np.ndarray) else np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[0] != len(ids):
        raise EmbeddingError(
            f"vectors must be (n, d) with n = len(ids) = {len(ids)}; got shape {vectors.shape}"
        )
    return vectors


def _id_array(ids: Sequence[str]) -> np.ndarray:
    """``ids`` as a read-only (n,) numpy str array (a str array is used as is: no per-id
    Python objects, which cost seconds at 10M rows)."""
    arr = ids if isinstance(ids, np.ndarray) and ids.dtype.kind == "U" else np.array([str(i) for i in ids], dtype=str)
    arr = arr.view()
    arr.flags.writeable = False
    return arr


def _check_unique(ids: np.ndarray) -> None:
    if len(np.unique(ids)) != len(ids):
        raise InputError("ids must be unique; found duplicates")


def sample_positions(n: int, size: int, seed: int) -> np.ndarray:
    """``size`` distinct positions of ``range(n)`` drawn with ``default_rng(seed)``, sorted (int64)."""
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def estimate_projection_seconds(n_rows: int, dims: int) -> float:
    """Rough wall seconds of an uncached UMAP :func:`project` (defaults) on an idle 2-core box.

    From bench/bench_clusters.py CPU times (docs/benchmarks.md): exact kNN of the fit
    sample (~5.3 ns per pair of rows), UMAP fit (~0.55 ms per fitted row), transform of the
    rest (kNN against the sample + ~0.2 ms per row), plus ~10 s of numba loading/JIT.
    Above :data:`PLACE_ABOVE` rows the rest is placed by neighbours instead
    (:data:`PLACE_SECONDS_PER_ROW`, bench/bench_clusters_scale.py).
    """
    n_fit = min(n_rows, SAMPLE_THRESHOLD)
    rest = max(0, n_rows - SAMPLE_THRESHOLD)
    knn_dims = PCA_DIMS if dims > PCA_ABOVE else max(dims, 16)
    pair = 5.3e-9 * knn_dims / PCA_DIMS
    pca = 0.8 * (n_fit / 50_000) * (dims / 384) if dims > PCA_ABOVE else 0.0
    fit = pair * n_fit * n_fit + 5.5e-4 * n_fit
    per_row = PLACE_SECONDS_PER_ROW * dims / 384 if n_rows > PLACE_ABOVE else pair * n_fit + 2e-4
    return round(10.0 + pca + fit + rest * per_row, 1)


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


def _fit_and_place(ids: Sequence[str], vectors: np.ndarray, fit_idx: np.ndarray, params: dict,
                   key: str, cache: Path | None, chunk_rows: int,
                   progress: ProgressFn | None) -> np.ndarray:
    """Coordinates (n, 2) of a large map: fit on the rows ``fit_idx`` (or the model and
    sample coordinates of an interrupted run), then place every other row in chunks,
    saved in ``.place-<key>.partial/`` when there is a ``cache``. The model is written to
    ``model-<key>.joblib`` right after the fit."""
    n = len(ids)
    model_file = f"model-{key}.joblib"
    partial = cache / f".place-{key}.partial" if cache is not None else None
    job = {"key": key, "n": n, "chunk_rows": int(chunk_rows)}
    resumed = resume_partial(cache, partial, job, model_file, len(fit_idx)) if partial is not None else None
    if resumed is not None:
        model, fit_coords = resumed
    else:
        model, fit_coords = models.fit_large(unit_rows(vectors[fit_idx], [ids[i] for i in fit_idx]), params)
        if partial is not None:
            import joblib

            partial.mkdir(parents=True, exist_ok=True)
            atomic.write_with(cache / model_file, lambda tmp: joblib.dump(model, tmp))
            atomic.write_npy(partial / "fit.npy", fit_coords)
            atomic.write_json(partial / "job.json", job)  # last: the fit is done
    coords = np.full((n, 2), np.nan, dtype=np.float32)
    coords[fit_idx] = fit_coords
    if progress is not None:
        progress(len(fit_idx), n)
    rest = np.setdiff1d(np.arange(n), fit_idx, assume_unique=True)
    place_rows(lambda x: models.place_chunk(model, x), vectors, rest, coords, chunk_rows=chunk_rows, ids=ids,
               partial=partial, progress=progress, done=len(fit_idx))
    return coords


@dataclass(frozen=True)
class _Plan:
    """What a :func:`project` call computes: its params (the cache key's), their family
    (params without the sample size: records whose model can place added rows), the
    number of rows fitted and whether it is a large map."""

    params: dict
    family: str
    n_fit: int
    large: bool


def _plan(n: int, dims: int, method: str, seed: int, n_neighbors: int, min_dist: float,
          sample_threshold: int, place_above: int) -> _Plan:
    large = n > place_above
    sampled = (large or method == "umap") and n > sample_threshold
    n_fit = sample_threshold if sampled else n
    base = {"format": FORMAT, "method": method, "seed": int(seed), "dims": int(dims)}
    if method == "umap":
        base.update(metric="cosine", n_neighbors=int(min(n_neighbors, n_fit - 1)),
                    min_dist=float(min_dist), pca_dims=PCA_DIMS if dims > PCA_ABOVE and n_fit > PCA_DIMS else None,
                    init="spectral" if n_fit >= 50 else "random",  # spectral fails on tiny graphs
                    sample_threshold=int(sample_threshold))
    params = {**base, "sample_size": n_fit if sampled else None}
    if large:
        params["placement"] = "pca" if method == "pca" else "neighbours"
        if method == "umap":
            params.update(place_neighbours=PLACE_NEIGHBOURS, place_nprobe=PLACE_NPROBE,
                          place_temperature=PLACE_TEMPERATURE)
    return _Plan(params, digest(base), n_fit, large)


def _check_method(method: str) -> None:
    if method not in PROJECTION_METHODS:
        raise InputError(f"unknown projection method {method!r}; choose one of {', '.join(PROJECTION_METHODS)}")


@dataclass(frozen=True)
class _Call:
    """A checked :func:`project` call: ids as str, the vectors (a memory map stays one),
    its plan, the vectors' hash and the cache key."""

    ids: list[str]
    vectors: np.ndarray
    plan: _Plan
    vhash: str
    key: str


def _prepare(ids: Sequence[str], vectors: Any, method: str, seed: int, n_neighbors: int,
             min_dist: float, sample_threshold: int, place_above: int, cache: Path | None) -> _Call:
    _check_method(method)
    vectors = _rows_of(ids, vectors)
    n, dims = vectors.shape
    _check_shape(n, dims, n_neighbors, min_dist, sample_threshold)
    ids = _id_array(ids)
    plan = _plan(n, dims, method, seed, n_neighbors, min_dist, sample_threshold, place_above)
    vhash = content_hash(ids, vectors, cache)
    return _Call(ids, vectors, plan, vhash, digest({"v": vhash, **plan.params}))


def projection_key(ids: Sequence[str], vectors: np.ndarray, *, method: str = "umap", seed: int = 0,
                   n_neighbors: int = 15, min_dist: float = 0.1, sample_threshold: int = SAMPLE_THRESHOLD,
                   place_above: int = PLACE_ABOVE, cache_dir: str | Path | None = None) -> str:
    """The cache key of :func:`project` with these arguments (its record is
    ``cache_dir/proj-<key>.json``); nothing is computed but the vectors' hash, which for a
    memory-mapped vectors file and a ``cache_dir`` is read from there after the first time.
    Raises what :func:`project` raises for bad arguments or NaN/Inf vectors."""
    cache = Path(cache_dir) if cache_dir is not None else None
    return _prepare(ids, vectors, method, seed, n_neighbors, min_dist, sample_threshold, place_above, cache).key


def project(ids: Sequence[str], vectors: np.ndarray, *, method: str = "umap", seed: int = 0,
            n_neighbors: int = 15, min_dist: float = 0.1, sample_threshold: int = SAMPLE_THRESHOLD,
            place_above: int = PLACE_ABOVE, chunk_rows: int = PLACE_CHUNK,
            cache_dir: str | Path | None = None, progress: ProgressFn | None = None) -> Projection:
    """2-D coordinates for ``vectors`` (n, d) (cosine geometry: rows are L2-normalised;
    ``vectors`` may be a memory map, it is read in chunks above ``place_above`` rows).

    ``umap``: PCA to 50 dims first when d > 64, UMAP(metric="cosine", random_state=seed);
    above ``sample_threshold`` rows, fit on a seeded sample and transform the rest in
    batches of 25,000; ``n_neighbors`` is capped at (fitted rows - 1). ``pca``: 2-D PCA of
    all rows. Above ``place_above`` rows (default 100,000) both fit on a seeded sample of
    ``sample_threshold`` rows and place the rest ``chunk_rows`` at a time (2-D PCA, or
    UMAP's sample positions weighted by similarity: see the module docstring), saving
    each chunk so an interrupted run resumes. Results are cached in ``cache_dir`` keyed by
    (:func:`vectors_hash`, params); added rows are placed with the cached model (see module
    docstring). ``progress(done_rows, n)`` is called as work ends.

    Raises InputError for an unknown method, bad parameters, fewer than 3 rows or fewer
    than 2 dims, duplicate ids; EmbeddingError for a shape mismatch or NaN/Inf.
    """
    chunk_rows = check_positive_int(chunk_rows, "chunk_rows")
    cache = Path(cache_dir) if cache_dir is not None else None
    call = _prepare(ids, vectors, method, seed, n_neighbors, min_dist, sample_threshold, place_above, cache)
    ids, vectors, plan, vhash, key = call.ids, call.vectors, call.plan, call.vhash, call.key
    n = len(ids)
    params = plan.params

    hit = load_coords(cache, key, n) if cache is not None else None
    if hit is not None and hit[0].get("vectors_hash") == vhash:
        log.info("projection %s read from cache", key)
        if progress is not None:
            progress(n, n)
        return Projection(ids, hit[1], method, hit[0]["params"], True)

    _check_unique(ids)
    found = find_base(cache, plan.family, ids, vectors) if cache is not None and cache.is_dir() else None
    if found is not None:
        meta, model, old_coords, pos = found
        new_mask = np.ones(n, dtype=bool)
        new_mask[pos] = False
        coords = np.empty((n, 2), dtype=np.float32)
        coords[pos] = old_coords
        if meta["params"].get("placement"):  # a large map's model: place the new rows in chunks
            place_rows(lambda x: models.place_chunk(model, x), vectors, np.flatnonzero(new_mask), coords,
                       chunk_rows=chunk_rows, ids=ids, progress=progress, done=len(pos))
        else:
            new = np.flatnonzero(new_mask)
            coords[new] = models.transform_rows(model, unit_rows(vectors[new]), progress, len(pos), n)
        params = {**meta["params"], "placed_by_transform": meta["params"]["placed_by_transform"] + int(new_mask.sum())}
        model_file = meta["model"]
        log.info("placed %d new rows with cached model %s", int(new_mask.sum()), model_file)
    elif plan.large:
        fit_idx = sample_positions(n, plan.n_fit, seed) if plan.n_fit < n else np.arange(n)
        coords = _fit_and_place(ids, vectors, fit_idx, params, key, cache, chunk_rows, progress)
        params = {**params, "placed_by_transform": n - len(fit_idx)}
        model_file = f"model-{key}.joblib"
    else:
        x = unit_rows(vectors)
        fit_idx = sample_positions(n, plan.n_fit, seed) if plan.n_fit < n else np.arange(n)
        model, fit_coords = models.fit_model(x[fit_idx], params)
        coords = np.empty((n, 2), dtype=np.float32)
        coords[fit_idx] = fit_coords
        if progress is not None:
            progress(plan.n_fit, n)
        rest = np.setdiff1d(np.arange(n), fit_idx, assume_unique=True)
        if len(rest):
            coords[rest] = models.transform_rows(model, x[rest], progress, plan.n_fit, n)
        params = {**params, "placed_by_transform": len(rest)}
        model_file = f"model-{key}.joblib"
        if cache is not None:
            import joblib

            atomic.write_with(cache / model_file, lambda tmp: joblib.dump(model, tmp))
    if not np.isfinite(coords).all():
        raise EmbeddingError(f"projection produced non-finite coordinates for {method} (params {params})")
    if cache is not None:
        save_record(cache, key, ids, coords, {
            "params": params, "family": plan.family, "vectors_hash": vhash, "n": n, "model": model_file,
        })
        shutil.rmtree(cache / f".place-{key}.partial", ignore_errors=True)
    return Projection(ids, coords, method, params, False)
