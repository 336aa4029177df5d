"""Tests for core.clusters (and the modules behind it): cached projections, KMeans
summaries, plotly selections."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from sklearn.metrics import adjusted_rand_score
from sklearn.neighbors import NearestNeighbors

from core import clusters
from core.clusters import models as clusters_models
from core.errors import EmbeddingError, InputError


class Spy:
    """Wraps a function and counts its calls."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


@pytest.fixture
def spies(monkeypatch):
    fit, transform = Spy(clusters_models.fit_model), Spy(clusters_models.transform_rows)
    monkeypatch.setattr(clusters_models, "fit_model", fit)
    monkeypatch.setattr(clusters_models, "transform_rows", transform)
    return fit, transform


@pytest.fixture(scope="module")
def pixels() -> tuple[list[str], np.ndarray, np.ndarray]:
    data = load_digits()
    ids = [f"px-{i}" for i in range(len(data.target))]
    return ids, data.data.astype(np.float32), data.target


def blobs(n: int, dims: int, centers: int, seed: int, spread: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """(n, dims) float32 points around ``centers`` random centres, and each point's centre (n,)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((centers, dims)).astype(np.float32)
    truth = rng.integers(0, centers, n)
    return centres[truth] + spread * rng.standard_normal((n, dims)).astype(np.float32), truth


def test_umap_is_seeded_and_cached(pixels, spies, tmp_path: Path) -> None:
    ids, x, _ = pixels
    ids, x = ids[:600], x[:600]
    fit, _ = spies
    a = clusters.project(ids, x, seed=3)
    b = clusters.project(ids, x, seed=3)
    assert fit.calls == 2 and not a.from_cache and not b.from_cache
    np.testing.assert_array_equal(a.coords, b.coords)
    assert a.coords.shape == (600, 2) and a.coords.dtype == np.float32
    assert a.params["metric"] == "cosine" and a.params["seed"] == 3 and a.params["pca_dims"] is None

    first = clusters.project(ids, x, seed=3, cache_dir=tmp_path)
    seen: list[tuple[int, int]] = []
    again = clusters.project(ids, x, seed=3, cache_dir=tmp_path, progress=lambda d, t: seen.append((d, t)))
    assert fit.calls == 3, "the second call must read the cache, not fit"
    assert again.from_cache and not first.from_cache and seen == [(600, 600)]
    np.testing.assert_array_equal(again.coords, a.coords)
    assert again.ids.tolist() == list(ids) and again.params == first.params
    assert not again.ids.flags.writeable  # shared through the app cache: read-only

    changed = clusters.project(ids, x, seed=3, min_dist=0.5, cache_dir=tmp_path)
    assert fit.calls == 4 and not changed.from_cache and changed.params["min_dist"] == 0.5
    other_seed = clusters.project(ids, x, seed=4, cache_dir=tmp_path)
    assert fit.calls == 5 and not np.allclose(other_seed.coords, a.coords)
    edited = x.copy()
    edited[0, :] += 1.0
    clusters.project(ids, edited, seed=3, cache_dir=tmp_path)
    assert fit.calls == 6, "changed vectors must not hit the old cache entry"

    k1 = clusters.cluster(ids, x, k=10, seed=1)
    k2 = clusters.cluster(ids, x, k=10, seed=1)
    np.testing.assert_array_equal(k1.assignments, k2.assignments)
    assert k1.to_json() == k2.to_json()


def test_pca_projection_cache_and_errors(pixels, spies, tmp_path: Path) -> None:
    ids, x, _ = pixels
    fit, _ = spies
    p = clusters.project(ids, x, method="pca", cache_dir=tmp_path)
    q = clusters.project(ids, x, method="pca", n_neighbors=40, cache_dir=tmp_path)
    assert fit.calls == 1 and q.from_cache and p.method == "pca"
    np.testing.assert_array_equal(p.coords, q.coords)
    # PCA axes: the first coordinate carries the most variance
    assert p.coords[:, 0].var() > p.coords[:, 1].var() > 0
    with pytest.raises(InputError, match="'tsne'.*umap, pca"):
        clusters.project(ids, x, method="tsne")
    with pytest.raises(EmbeddingError, match="shape"):
        clusters.project(ids[:10], x)
    bad = x[:20].copy()
    bad[3, 3] = np.nan
    with pytest.raises(EmbeddingError, match="NaN"):
        clusters.project(ids[:20], bad, method="pca")


def test_corrupt_cache_is_recomputed(pixels, spies, tmp_path: Path) -> None:
    ids, x, _ = pixels
    fit, _ = spies
    p = clusters.project(ids, x, method="pca", cache_dir=tmp_path)
    (coords_file,) = tmp_path.glob("proj-*.coords.npy")
    coords_file.write_bytes(b"not a numpy file")
    q = clusters.project(ids, x, method="pca", cache_dir=tmp_path)
    assert fit.calls == 2 and not q.from_cache
    np.testing.assert_allclose(q.coords, p.coords, atol=1e-5)
    assert clusters.project(ids, x, method="pca", cache_dir=tmp_path).from_cache


def test_added_rows_reuse_model_unless_it_is_unreadable(pixels, spies, tmp_path: Path) -> None:
    ids, x, _ = pixels
    fit, transform = spies
    base = clusters.project(ids[:1000], x[:1000], method="pca", cache_dir=tmp_path)
    grown = clusters.project(ids[:1100], x[:1100], method="pca", cache_dir=tmp_path)
    assert fit.calls == 1 and transform.calls == 1 and grown.params["placed_by_transform"] == 100
    np.testing.assert_array_equal(grown.coords[:1000], base.coords)
    # an edited vector among the old rows means the old map no longer applies
    edited = x[:1200].copy()
    edited[5] = edited[6]
    clusters.project(ids[:1200], edited, method="pca", cache_dir=tmp_path)
    assert fit.calls == 2
    for model in tmp_path.glob("model-*.joblib"):
        model.write_bytes(b"\x80garbage")
    again = clusters.project(ids[:1300], x[:1300], method="pca", cache_dir=tmp_path)
    assert fit.calls == 3 and again.params["placed_by_transform"] == 0


def test_vectors_hash_sees_ids_order_and_values() -> None:
    x, _ = blobs(100, 16, 3, seed=0)
    ids = [f"r{i}" for i in range(100)]
    base = clusters.vectors_hash(ids, x)
    assert base == clusters.vectors_hash(list(ids), x.copy())
    assert base != clusters.vectors_hash(ids[::-1], x)
    y = x.copy()
    y[99, 15] = np.nextafter(y[99, 15], np.float32(np.inf))
    assert base != clusters.vectors_hash(ids, y)


def test_kmeans_on_digits_embedding(digits_ws) -> None:
    from core.embeddings import load_embedding

    emb = load_embedding(digits_ws.dataset("digits"))
    rows = digits_ws.dataset("digits").rows().set_index("id")
    labels = rows.loc[list(emb.ids), "label"].tolist()
    result = clusters.cluster(list(emb.ids), np.asarray(emb.vectors), k=10, seed=0, labels=labels)
    ari = adjusted_rand_score(labels, result.assignments)
    print(f"digits efficientnet-lite0 KMeans k=10 ARI = {ari:.3f}")
    assert ari >= 0.3
    assert len(result.summaries) == 10 and sum(s.size for s in result.summaries) == len(labels)
    sizes = [s.size for s in result.summaries]
    assert sizes == sorted(sizes, reverse=True), "clusters are numbered largest first"

    table = pd.crosstab(pd.Series(result.assignments, name="cluster"), pd.Series(labels, name="label"))
    for s in result.summaries:
        row = table.loc[s.cluster]
        assert s.purity == pytest.approx(row.max() / row.sum())
        assert s.label_counts[0][1] == row.max() and s.majority_label in set(row[row == row.max()].index)
        assert dict(s.label_counts) == {lab: int(c) for lab, c in row.items() if c > 0}
        members = set(result.ids_in(s.cluster))
        assert len(members) == s.size and set(s.representative_ids) <= members
        assert len(s.representative_ids) == min(5, s.size) and s.top_terms == ()
    doc = result.to_json()
    json.dumps(doc)
    assert doc["clusters"][0]["top_labels"][0] == list(result.summaries[0].label_counts[0])


def test_cluster_argument_errors(pixels) -> None:
    ids, x, _ = pixels
    for k in (1, len(ids) + 1):
        with pytest.raises(InputError, match=f"got {k}"):
            clusters.cluster(ids, x, k=k)
    with pytest.raises(InputError, match="labels"):
        clusters.cluster(ids, x, k=3, labels=["a"])
    result = clusters.cluster(ids[:50], x[:50], k=3, labels=[None, float("nan"), ""] + ["7"] * 47)
    assert sum(c for s in result.summaries for _, c in s.label_counts) == 47
    with pytest.raises(InputError, match="cluster 3"):
        result.ids_in(3)


def test_minibatch_kmeans_above_threshold() -> None:
    x, truth = blobs(3000, 32, 4, seed=5, spread=0.2)
    ids = [f"m{i}" for i in range(3000)]
    result = clusters.cluster(ids, x, k=4, seed=0, minibatch_threshold=1000)
    assert adjusted_rand_score(truth, result.assignments) > 0.9


# Shaped like Streamlit 1.67's PlotlyChart frontend output (PlotlyChart.*.js `Re`):
# a lasso over a px.scatter coloured by cluster (one trace per colour), snake-cased
# plotly points, `point_indices` merged across traces, lasso path as x/y lists.
RECORDED_EVENT = {
    "selection": {
        "points": [
            {"curve_number": 0, "point_number": 1, "point_index": 1, "x": 0.41, "y": -1.2,
             "customdata": ["b"], "legendgroup": "cluster 0"},
            {"curve_number": 2, "point_number": 0, "point_index": 0, "x": 0.52, "y": -1.0,
             "customdata": ["f"], "legendgroup": "cluster 2"},
            {"curve_number": 0, "point_number": 2, "point_index": 2, "x": 0.47, "y": -1.1,
             "customdata": ["c"], "legendgroup": "cluster 0"},
            {"curve_number": 2, "point_number": 0, "point_index": 0, "x": 0.52, "y": -1.0,
             "customdata": ["f"], "legendgroup": "cluster 2"},
        ],
        "point_indices": [1, 0, 2],
        "box": [],
        "lasso": [{"xref": "x", "yref": "y", "x": [0.3, 0.6, 0.6, 0.3], "y": [-1.3, -1.3, -0.9, -0.9]}],
    }
}


def test_selection_to_ids_with_recorded_streamlit_event() -> None:
    from streamlit.elements.plotly_chart import PlotlyChartSelectionSerde

    # After filtering out some rows, each trace lists the ids it actually plotted.
    trace_ids = [["a", "b", "c"], ["d", "e"], ["f"]]
    event = PlotlyChartSelectionSerde().deserialize(json.dumps(RECORDED_EVENT))
    assert clusters.selection_to_ids(event, trace_ids) == ["b", "f", "c"]
    assert clusters.selection_to_ids(event.selection, trace_ids) == ["b", "f", "c"]
    assert clusters.selection_to_ids(RECORDED_EVENT["selection"], trace_ids) == ["b", "f", "c"]
    # point_number only (older payloads) and a single trace with only point_indices
    only_number = {"points": [{"curve_number": 1, "point_number": 1}]}
    assert clusters.selection_to_ids(only_number, trace_ids) == ["e"]
    assert clusters.selection_to_ids({"points": [], "point_indices": [2, 0]}, [["x", "y", "z"]]) == ["z", "x"]


def test_selection_to_ids_malformed_and_out_of_range() -> None:
    trace_ids = [["a", "b"], ["c"]]
    empty = {"selection": {"points": [], "point_indices": [], "box": [], "lasso": []}}
    no_index = {"points": [{"curve_number": 0, "x": 1.0}, {"curve_number": 0, "point_index": "1"}]}
    for bad in (None, "x", [], {}, {"selection": None}, {"points": "oops"}, {"points": [None, 3]}, no_index, empty):
        assert clusters.selection_to_ids(bad, trace_ids) == []
    with pytest.raises(InputError, match="point 5 of trace 1"):
        clusters.selection_to_ids({"points": [{"curve_number": 1, "point_index": 5}]}, trace_ids)
    with pytest.raises(InputError, match="trace 4"):
        clusters.selection_to_ids({"points": [{"curve_number": 4, "point_index": 0}]}, trace_ids)


def test_sampled_projection_of_60k_rows_then_added_rows(spies, tmp_path: Path) -> None:
    fit, transform = spies
    x, truth = blobs(61_000, 8, 6, seed=1)
    ids = [f"s{i}" for i in range(61_000)]
    seen: list[tuple[int, int]] = []
    p = clusters.project(ids[:60_000], x[:60_000], sample_threshold=5_000, cache_dir=tmp_path,
                         progress=lambda d, t: seen.append((d, t)))
    assert fit.calls == 1 and p.coords.shape == (60_000, 2) and np.isfinite(p.coords).all()
    assert p.params["sample_size"] == 5_000 and p.params["placed_by_transform"] == 55_000
    assert seen[0] == (5_000, 60_000) and seen[-1] == (60_000, 60_000)
    assert [d for d, _ in seen] == [5_000, 30_000, 55_000, 60_000]  # fit, then 25k batches
    # rows (fitted or transformed) land next to rows of their own blob on the map
    nearest = NearestNeighbors(n_neighbors=2).fit(p.coords).kneighbors(return_distance=False)[:, 1]
    assert (truth[:60_000][nearest] == truth[:60_000]).mean() > 0.95

    calls_before = transform.calls
    grown = clusters.project(ids, x, sample_threshold=5_000, cache_dir=tmp_path)
    assert fit.calls == 1, "added rows must be placed with the cached model, not a new fit"
    assert transform.calls == calls_before + 1 and not grown.from_cache
    np.testing.assert_array_equal(grown.coords[:60_000], p.coords)
    assert np.isfinite(grown.coords).all() and grown.params["placed_by_transform"] == 56_000
    assert clusters.project(ids, x, sample_threshold=5_000, cache_dir=tmp_path).from_cache


def test_top_terms_name_the_topics() -> None:
    rng = np.random.default_rng(0)
    space = ["rocket orbit launch", "nasa rocket engine", "orbit satellite launch pad"]
    kitchen = ["bake bread flour", "flour oven bake cake", "bread oven yeast"]
    texts = [space[i % 3] for i in range(30)] + [kitchen[i % 3] for i in range(30)]
    centres = np.eye(2, 16, dtype=np.float32) * 5
    x = centres[[0] * 30 + [1] * 30] + rng.standard_normal((60, 16)).astype(np.float32) * 0.1
    result = clusters.cluster([f"t{i}" for i in range(60)], x, k=2, texts=texts)
    by_first_member = {result.assignments[0]: "space", result.assignments[30]: "kitchen"}
    assert len(by_first_member) == 2
    for s in result.summaries:
        terms = set(s.top_terms[:3])
        expected = {"rocket", "orbit", "launch"} if by_first_member[s.cluster] == "space" else {"bake", "bread", "flour", "oven"}
        assert terms and terms <= expected, (s.cluster, s.top_terms)
    assert clusters.cluster([f"t{i}" for i in range(60)], x, k=2).summaries[0].top_terms == ()


@pytest.mark.parametrize("method", ["pca", "umap"])
@pytest.mark.parametrize(("shape", "message"), [
    ((1, 5), "at least 3 rows; got 1"),
    ((2, 5), "at least 3 rows; got 2"),
    ((6, 1), "at least 2 dims; got 1"),
    ((6, 0), "at least 2 dims; got 0"),
])
def test_too_few_rows_or_dims_for_a_map_is_a_typed_error(method, shape, message) -> None:
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with pytest.raises(InputError, match=message):
        clusters.project([f"r{i}" for i in range(shape[0])], x, method=method)


@pytest.mark.parametrize("method", ["pca", "umap"])
def test_tiny_and_flat_inputs_still_get_a_map(method) -> None:
    rng = np.random.default_rng(0)
    for x in (rng.standard_normal((3, 2)), rng.standard_normal((4, 100)), np.ones((5, 8))):
        p = clusters.project([f"r{i}" for i in range(len(x))], x.astype(np.float32), method=method)
        assert p.coords.shape == (len(x), 2) and np.isfinite(p.coords).all()
        if method == "umap":
            assert p.params["n_neighbors"] == len(x) - 1  # capped below the row count


def test_k_is_capped_at_the_number_of_distinct_vectors(caplog) -> None:
    rng = np.random.default_rng(0)
    distinct = rng.standard_normal((3, 16)).astype(np.float32)
    which = np.arange(20) % 3
    ids = [f"d{i}" for i in range(20)]
    with caplog.at_level("WARNING", logger="core.clusters.kmeans"):
        result = clusters.cluster(ids, distinct[which], k=10, seed=0, labels=[str(w) for w in which])
    assert result.k == 3 and result.requested_k == 10
    assert "3 distinct vectors" in caplog.text
    assert len(result.summaries) == 3 and [s.size for s in result.summaries] == [7, 7, 6]
    assert all(s.purity == 1.0 for s in result.summaries)  # each cluster is one distinct vector
    assert adjusted_rand_score(which, result.assignments) == 1.0
    assert sorted(i for c in range(3) for i in result.ids_in(c)) == sorted(ids)
    doc = result.to_json()
    assert doc["k"] == 3 and doc["requested_k"] == 10 and len(doc["clusters"]) == 3
    # scaled copies are the same direction (up to float rounding once normalised)
    scaled = distinct[which] * rng.uniform(0.5, 2.0, (20, 1)).astype(np.float32)
    result = clusters.cluster(ids, scaled, k=10, seed=0)
    assert 3 <= result.k < 10 and all(s.size > 0 for s in result.summaries)
    assert set(result.assignments.tolist()) == set(range(result.k))
    one = clusters.cluster(ids[:5], np.ones((5, 4), np.float32), k=2)
    assert one.k == 1 and one.summaries[0].size == 5 and one.ids_in(0) == ids[:5]
    full = clusters.cluster(ids, rng.standard_normal((20, 16)).astype(np.float32), k=10)
    assert full.k == full.requested_k == 10 and all(s.size > 0 for s in full.summaries)
