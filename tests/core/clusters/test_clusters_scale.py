"""Tests for the large-dataset paths of core.clusters at small sizes: KMeans fitted on a
sample with every row assigned in chunks, maps fitted on a sample with the other rows
placed by their neighbours (resumable), what the browser draws of a large map, and
box / lasso regions that select every stored row inside them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score
from sklearn.neighbors import NearestNeighbors

from core import clusters
from core.clusters import cache as clusters_cache
from core.clusters import models as clusters_models
from core.errors import EmbeddingError, InputError
from tests.core.clusters.test_clusters import Spy, blobs

LARGE = {"sample_threshold": 1_000, "place_above": 2_000, "chunk_rows": 1_500}


@pytest.fixture
def spies(monkeypatch):
    fit = Spy(clusters_models.fit_model)
    transform = Spy(clusters_models.transform_rows)
    place = Spy(clusters_models.place_chunk)
    monkeypatch.setattr(clusters_models, "fit_model", fit)
    monkeypatch.setattr(clusters_models, "transform_rows", transform)
    monkeypatch.setattr(clusters_models, "place_chunk", place)
    return fit, transform, place


def memmap(tmp_path: Path, x: np.ndarray, name: str = "vectors.npy") -> np.ndarray:
    """``x`` saved as ``name`` and opened as a read-only memory map (as stored embeddings are)."""
    np.save(tmp_path / name, x)
    return np.load(tmp_path / name, mmap_mode="r")


# ---- KMeans: sample fit, chunked assignment --------------------------------------------------
def test_chunked_assignment_equals_unchunked_and_brute_force() -> None:
    x, _ = blobs(5_003, 24, 7, seed=2)
    centroids = np.random.default_rng(3).standard_normal((7, 24)).astype(np.float32)
    seen: list[int] = []
    labels, dist = clusters.assign_rows(x, centroids, chunk_rows=500, progress=lambda d, n: seen.append(d))
    whole_labels, whole_dist = clusters.assign_rows(x, centroids, chunk_rows=len(x))
    np.testing.assert_array_equal(labels, whole_labels)
    np.testing.assert_allclose(dist, whole_dist, rtol=1e-5, atol=1e-5)
    assert seen == [*range(500, 5_001, 500), 5_003]
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    gaps = np.linalg.norm(unit[:, None, :] - centroids[None, :, :], axis=2)  # (n, k) brute force
    np.testing.assert_array_equal(labels, gaps.argmin(axis=1))
    np.testing.assert_allclose(dist, gaps.min(axis=1), rtol=1e-4, atol=1e-4)


def test_assignment_names_bad_rows_and_dims() -> None:
    x, _ = blobs(300, 8, 3, seed=0)
    x[250, 2] = np.inf
    ids = [f"r{i}" for i in range(300)]
    with pytest.raises(EmbeddingError, match="'r250'"):
        clusters.assign_rows(x, np.eye(3, 8, dtype=np.float32), chunk_rows=100, ids=ids)
    with pytest.raises(EmbeddingError, match="8 dims"):
        clusters.assign_rows(x[:10], np.eye(3, 5, dtype=np.float32))


def test_kmeans_fitted_on_a_sample_assigns_every_row_and_finds_the_blobs(tmp_path) -> None:
    x, truth = blobs(12_000, 32, 5, seed=4, spread=0.2)
    ids = [f"k{i}" for i in range(12_000)]
    mm = memmap(tmp_path, x)
    seen: list[int] = []
    rows = clusters.cluster_rows(mm, 5, 0, ids=ids, sample_size=3_000, chunk_rows=2_500,
                                 progress=lambda d, n: seen.append(d))
    assert rows.fitted_rows == 3_000 and rows.k == 5 and rows.labels.shape == (12_000,)
    assert seen[-1] == 12_000 and len(seen) == 5  # 5 chunks of 2,500 assigned
    assert adjusted_rand_score(truth, rows.labels) > 0.99
    # every row's label is its nearest centroid, whatever the chunk size
    labels, _ = clusters.assign_rows(x, rows.centroids, chunk_rows=len(x))
    np.testing.assert_array_equal(rows.labels, labels)

    a = clusters.cluster(ids, mm, k=5, seed=0, sample_size=3_000, chunk_rows=700,
                         labels=[str(t) for t in truth])
    b = clusters.cluster(ids, x, k=5, seed=0, sample_size=3_000, chunk_rows=12_000,
                         labels=[str(t) for t in truth])
    assert a.to_json() == b.to_json()
    np.testing.assert_array_equal(a.assignments, b.assignments)
    assert sum(s.size for s in a.summaries) == 12_000
    for s in a.summaries:  # each blob is one cluster, named after its label
        assert s.purity > 0.99 and s.label_counts[0][0] == s.majority_label
        members = set(a.ids_in(s.cluster))
        assert len(s.representative_ids) == 5 and set(s.representative_ids) <= members


def test_top_terms_of_a_sampled_clustering_still_name_the_topics() -> None:
    rng = np.random.default_rng(0)
    n = 4_000
    side = np.arange(n) % 2
    x = (np.eye(2, 16, dtype=np.float32) * 5)[side] + rng.standard_normal((n, 16)).astype(np.float32) * 0.1
    texts = np.where(side == 0, "rocket orbit launch", "bread oven flour").tolist()
    texts[3] = None
    result = clusters.cluster([f"t{i}" for i in range(n)], x, k=2, texts=texts, sample_size=500)
    named = {frozenset(s.top_terms) for s in result.summaries}
    assert named == {frozenset({"rocket", "orbit", "launch"}), frozenset({"bread", "oven", "flour"})}


# ---- large maps: sample fit + neighbour placement --------------------------------------------
def test_large_map_places_every_row_deterministically_without_a_transform(spies, tmp_path) -> None:
    fit, transform, place = spies
    x, truth = blobs(6_000, 96, 6, seed=1)
    ids = [f"m{i}" for i in range(6_000)]
    seen: list[tuple[int, int]] = []
    a = clusters.project(ids, x, seed=0, progress=lambda d, n: seen.append((d, n)), **LARGE)
    assert a.coords.shape == (6_000, 2) and a.coords.dtype == np.float32 and np.isfinite(a.coords).all()
    assert a.params["placement"] == "neighbours" and a.params["sample_size"] == 1_000
    assert fit.calls == 1 and transform.calls == 0 and place.calls == 4  # 5,000 rows in chunks of 1,500
    assert seen == [(1_000, 6_000), (2_500, 6_000), (4_000, 6_000), (5_500, 6_000), (6_000, 6_000)]
    b = clusters.project(ids, x, seed=0, **LARGE)
    np.testing.assert_array_equal(a.coords, b.coords)
    other = clusters.project(ids, x, seed=1, **LARGE)
    assert not np.allclose(other.coords, a.coords)
    # placed rows land next to rows of their own blob
    nearest = NearestNeighbors(n_neighbors=2).fit(a.coords).kneighbors(return_distance=False)[:, 1]
    assert (truth[nearest] == truth).mean() > 0.95

    pca = clusters.project(ids, x, method="pca", **LARGE)
    full = clusters.project(ids, x, method="pca")
    assert pca.params["placement"] == "pca" and np.isfinite(pca.coords).all()
    for axis in (0, 1):  # PCA fitted on a sample: the same axes, up to sign
        assert abs(np.corrcoef(pca.coords[:, axis], full.coords[:, axis])[0, 1]) > 0.99


def test_rows_near_a_sample_point_land_near_it() -> None:
    x, _ = blobs(4_000, 32, 8, seed=5, spread=0.5)
    fitted = clusters.sample_positions(4_000, LARGE["sample_threshold"], 0)
    others = np.setdiff1d(np.arange(4_000), fitted)
    sources = fitted[::5][:150]
    copies = others[:150]
    rng = np.random.default_rng(9)
    x[copies] = x[sources] + 1e-3 * rng.standard_normal((150, 32)).astype(np.float32)
    p = clusters.project([f"n{i}" for i in range(4_000)], x, **LARGE)
    gap = np.linalg.norm(p.coords[copies] - p.coords[sources], axis=1)
    typical = np.linalg.norm(p.coords[copies] - p.coords[rng.permutation(sources)], axis=1)
    span = float(np.ptp(p.coords, axis=0).max())
    assert np.median(gap) < 0.01 * span and np.quantile(gap, 0.9) < 0.03 * span
    assert np.median(gap) < 0.1 * np.median(typical)


class Killed(Exception):
    """Stands in for a process killed in the middle of a placement."""


def test_a_killed_placement_resumes_with_the_chunks_it_had_not_placed(spies, tmp_path) -> None:
    fit, _, place = spies
    x, _ = blobs(8_000, 48, 5, seed=3)
    ids = [f"p{i}" for i in range(8_000)]
    mm = memmap(tmp_path, x)
    cache = tmp_path / "projections"
    settings = {"sample_threshold": 1_000, "place_above": 2_000, "chunk_rows": 1_000}

    def kill_after_three_chunks(done: int, total: int) -> None:
        if done >= 1_000 + 3 * 1_000:
            raise Killed

    with pytest.raises(Killed):
        clusters.project(ids, mm, cache_dir=cache, progress=kill_after_three_chunks, **settings)
    assert fit.calls == 1 and place.calls == 3
    (partial,) = cache.glob(".place-*.partial")
    assert len(list(partial.glob("chunk_*.npy"))) == 3 and not list(cache.glob("proj-*.json"))
    key = clusters.projection_key(ids, mm, cache_dir=cache, sample_threshold=1_000, place_above=2_000)
    assert not clusters.is_projection_cached(key, cache)

    seen: list[int] = []
    resumed = clusters.project(ids, mm, cache_dir=cache, progress=lambda d, n: seen.append(d), **settings)
    assert fit.calls == 1, "the resumed run reuses the fitted model"
    assert place.calls == 3 + 4, "only the 4 chunks not placed before are placed"
    assert seen == [1_000, 2_000, 3_000, 4_000, 5_000, 6_000, 7_000, 8_000]
    assert not list(cache.glob(".place-*.partial")) and not resumed.from_cache
    assert clusters.is_projection_cached(key, cache)
    uninterrupted = clusters.project(ids, x, **settings)
    np.testing.assert_array_equal(resumed.coords, uninterrupted.coords)
    again = clusters.project(ids, mm, cache_dir=cache, **settings)
    assert again.from_cache and fit.calls == 2  # the uninterrupted run fitted once more, this one none
    np.testing.assert_array_equal(again.coords, resumed.coords)


def test_partial_work_of_other_vectors_is_not_reused(spies, tmp_path) -> None:
    fit, _, place = spies
    x, _ = blobs(5_000, 16, 4, seed=8)
    ids = [f"q{i}" for i in range(5_000)]
    cache = tmp_path / "projections"

    def kill(done: int, total: int) -> None:
        if done > 1_000:
            raise Killed

    with pytest.raises(Killed):
        clusters.project(ids, x, cache_dir=cache, progress=kill, **LARGE)
    changed = x.copy()
    changed[4_999] += 1.0
    clusters.project(ids, changed, cache_dir=cache, **LARGE)
    assert fit.calls == 2 and place.calls == 1 + 3  # a fresh fit and every chunk placed


def test_warm_large_map_reads_no_vectors_and_added_rows_are_placed_in_chunks(spies, tmp_path, monkeypatch) -> None:
    fit, transform, place = spies
    x, truth = blobs(6_000, 32, 5, seed=6)
    ids = [f"w{i}" for i in range(6_000)]
    cache = tmp_path / "projections"
    first = clusters.project(ids[:5_000], memmap(tmp_path, x[:5_000]), cache_dir=cache, **LARGE)
    mm = np.load(tmp_path / "vectors.npy", mmap_mode="r")
    hashed = Spy(clusters_cache.hash_rows)
    monkeypatch.setattr(clusters_cache, "hash_rows", hashed)
    warm = clusters.project(ids[:5_000], mm, cache_dir=cache, **LARGE)
    assert warm.from_cache and hashed.calls == 0, "a known vectors file is not hashed again"
    np.testing.assert_array_equal(warm.coords, first.coords)

    grown = clusters.project(ids, memmap(tmp_path, x, "grown.npy"), cache_dir=cache, **LARGE)
    assert fit.calls == 1 and transform.calls == 0 and not grown.from_cache
    assert place.calls == 3 + 1  # the first map's 4,000 rows in 3 chunks, then the 1,000 new ones
    np.testing.assert_array_equal(grown.coords[:5_000], first.coords)
    assert grown.params["placed_by_transform"] == 4_000 + 1_000 and np.isfinite(grown.coords).all()
    nearest = NearestNeighbors(n_neighbors=1).fit(grown.coords[:5_000]).kneighbors(
        grown.coords[5_000:], return_distance=False)[:, 0]
    assert (truth[nearest] == truth[5_000:]).mean() > 0.95


def test_bad_vectors_in_a_large_map_are_refused_before_any_work(spies, tmp_path) -> None:
    fit, _, _ = spies
    x, _ = blobs(3_000, 16, 3, seed=0)
    x[2_999, 4] = np.nan
    ids = [f"b{i}" for i in range(3_000)]
    with pytest.raises(EmbeddingError, match="NaN or Inf.*'b2999'"):
        clusters.project(ids, x, cache_dir=tmp_path / "c", **LARGE)
    assert fit.calls == 0 and not list(tmp_path.glob("c/proj-*"))
    with pytest.raises(InputError, match="unique"):
        clusters.project(["a"] * 3_000, np.ones((3_000, 16), np.float32), **LARGE)


# ---- what the browser draws ------------------------------------------------------------------
def test_display_sample_is_stable_capped_and_keeps_the_rows_asked_for() -> None:
    ids = [f"row-{i}" for i in range(20_000)]
    assert clusters.display_sample(ids[:50], cap=100).tolist() == list(range(50))
    drawn = clusters.display_sample(ids, cap=1_000)
    assert len(drawn) == 1_000 and np.all(np.diff(drawn) > 0)
    np.testing.assert_array_equal(drawn, clusters.display_sample(list(ids), cap=1_000))
    keep = [ids[3], ids[19_999], "not-a-row"]
    with_keep = clusters.display_sample(ids, cap=1_000, always=keep)
    assert {3, 19_999} <= set(with_keep.tolist()) and len(with_keep) == 1_000
    # a filtered view draws the rows it shares with the full view's drawing
    view = ids[::2]
    drawn_view = {view[i] for i in clusters.display_sample(view, cap=1_000)}
    assert {ids[i] for i in drawn if i % 2 == 0} <= drawn_view
    assert set(clusters.display_sample(ids, cap=1_000, seed=1).tolist()) != set(drawn.tolist())
    with pytest.raises(InputError, match="cap"):
        clusters.display_sample(ids, cap=0)


def test_id_hashes_depend_only_on_the_id_and_the_seed() -> None:
    from core.clusters.display import id_hashes

    ids = ["a", "bb", "a", "ccc", "é😀", "", "row-0001"]
    h = id_hashes(ids)
    assert h[0] == h[2] and len(set(h.tolist())) == 6
    np.testing.assert_array_equal(id_hashes(ids[3:]), h[3:])  # not on the other ids (or their widths)
    np.testing.assert_array_equal(id_hashes(["row-0001"]), h[-1:])
    assert id_hashes(["a"], seed=1)[0] != h[0] and len(id_hashes([])) == 0


def test_density_grid_counts_every_row() -> None:
    rng = np.random.default_rng(0)
    coords = np.vstack([rng.normal(0, 1, (9_000, 2)), [[10.0, 10.0]] * 1_000]).astype(np.float32)
    grid = clusters.density_grid(coords, bins=50)
    assert grid.counts.shape == (50, 50) and grid.counts.sum() == 10_000
    assert grid.counts[-1, -1] == 1_000  # the top-right cell holds the 1,000 rows at (10, 10)
    assert grid.x[0] == pytest.approx(coords[:, 0].min() + grid.dx / 2)
    flat = clusters.density_grid(np.ones((5, 2)), bins=4)
    assert flat.counts.sum() == 5
    with pytest.raises(InputError, match=r"\(n, 2\)"):
        clusters.density_grid(np.ones((0, 2)))


# ---- regions: every stored row inside a box or lasso ------------------------------------------
def even_odd(points: np.ndarray, xs: list[float], ys: list[float]) -> np.ndarray:
    """Reference point-in-polygon: the textbook ray cast over every edge."""
    x, y = points[:, 0], points[:, 1]
    inside = np.zeros(len(points), dtype=bool)
    j = len(xs) - 1
    for i in range(len(xs)):
        crosses = (ys[i] > y) != (ys[j] > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = (xs[j] - xs[i]) * (y - ys[i]) / (ys[j] - ys[i]) + xs[i]
        inside ^= crosses & (x < at)
        j = i
    return inside


def test_a_lasso_selects_exactly_the_stored_points_inside_it_drawn_or_not() -> None:
    rng = np.random.default_rng(4)
    coords = rng.uniform(-1, 1, (60_000, 2)).astype(np.float32)
    # a concave "U": the square [-0.8, 0.8]^2 without the notch x in (-0.3, 0.3), y > -0.2
    xs = [-0.8, 0.8, 0.8, 0.3, 0.3, -0.3, -0.3, -0.8]
    ys = [-0.8, -0.8, 0.8, 0.8, -0.2, -0.2, 0.8, 0.8]
    event = {"selection": {"points": [], "point_indices": [], "box": [],
                           "lasso": [{"xref": "x", "yref": "y", "x": xs, "y": ys}]}}
    regions = clusters.regions_from_event(event)
    assert regions == (clusters.Region("lasso", tuple(xs), tuple(ys)),)
    hit = clusters.rows_in_regions(coords, regions)
    x, y = coords[:, 0], coords[:, 1]
    square = (np.abs(x) < 0.8) & (np.abs(y) < 0.8)
    notch = (np.abs(x) < 0.3) & (y > -0.2)
    np.testing.assert_array_equal(hit, square & ~notch)
    np.testing.assert_array_equal(hit, even_odd(coords, xs, ys))
    drawn = clusters.display_sample([f"r{i}" for i in range(60_000)], cap=2_000)
    undrawn = np.setdiff1d(np.arange(60_000), drawn)
    assert hit[undrawn].sum() > 10 * hit[drawn].sum() > 0  # most selected rows were never drawn

    star = rng.uniform(-1, 1, (40, 2))  # a random, self-crossing polygon: the even-odd rule
    np.testing.assert_array_equal(clusters.rows_in_regions(coords, [clusters.Region("lasso", tuple(star[:, 0]), tuple(star[:, 1]))]),
                                  even_odd(coords, list(star[:, 0]), list(star[:, 1])))


def test_boxes_include_their_edges_and_regions_add_up() -> None:
    coords = np.array([[0, 0], [1, 1], [2, 2], [3, 3], [0.5, 2.5]], dtype=np.float32)
    event = {"box": [{"x": [1, 0], "y": [0, 1]}, {"x": [3, 3.5], "y": [3, 2.9]}],
             "lasso": [{"x": [0, 1, 1, 0], "y": [2, 2, 3, 3]}]}
    regions = clusters.regions_from_event(event)
    assert [r.kind for r in regions] == ["box", "box", "lasso"]
    assert clusters.rows_in_regions(coords, regions).tolist() == [True, True, False, True, True]
    assert clusters.rows_in_regions(coords, []).tolist() == [False] * 5
    for bad in (None, {}, {"box": "x"}, {"lasso": [{"x": [0, 1], "y": [0, 1]}]},
                {"box": [{"x": [0, "a"], "y": [0, 1]}]}, {"box": [{"x": [0, float("nan")], "y": [0, 1]}]}):
        assert clusters.regions_from_event(bad) == ()
    with pytest.raises(InputError, match="unknown region kind 'circle'"):
        clusters.rows_in_regions(coords, [clusters.Region("circle", (0.0,), (0.0,))])
