"""Tests for core.index.vector_index: VectorIndex against numpy brute force, persistence, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import core.index.faiss_build as index_build
import core.index.kinds as kinds_mod
import core.index.vector_index as index_mod
from core.errors import (
    EmbeddingError,
    IndexStateError,
    InputError,
    NotFoundError,
    SchemaError,
)
from core.index import Hits, VectorIndex, build_index


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def clustered(n: int, d: int, seed: int = 0, centers: int = 100) -> np.ndarray:
    """(n, d) float32 unit vectors: gaussian centers plus equal-scale gaussian noise."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, d), dtype=np.float32)
    x = c[rng.integers(0, centers, n)] + rng.standard_normal((n, d), dtype=np.float32)
    return unit(x)


def brute_topk(base: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = unit(q) @ unit(base).T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return ids[order], np.take_along_axis(scores, order, axis=1)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3000, 32)).astype(np.float32) * 3.0  # not normalised on purpose
    ids = np.array([f"row-{i}" for i in range(len(x))], dtype=object)
    q = rng.standard_normal((25, 32)).astype(np.float32)
    return x, ids, q


@pytest.fixture(scope="module", params=["exact", "hnsw"])
def any_index(request, data) -> VectorIndex:
    x, ids, _ = data
    return build_index(x, list(ids), kind=request.param)


def test_exact_search_equals_brute_force(data) -> None:
    x, ids, q = data
    index = build_index(x, list(ids), kind="exact")
    hits = index.search(q, 10)
    want_ids, want_scores = brute_topk(x, ids, q, 10)
    assert hits.ids.shape == (25, 10) and hits.scores.dtype == np.float32
    np.testing.assert_array_equal(hits.ids, want_ids)
    np.testing.assert_allclose(hits.scores, want_scores, atol=1e-5)
    one_ids, one_scores = index.search(q[3], 10).row(0)  # a single (d,) query
    assert one_ids == list(want_ids[3])
    np.testing.assert_allclose(one_scores, want_scores[3], atol=1e-5)


def test_search_pads_when_fewer_rows_than_k() -> None:
    index = build_index(np.eye(3, dtype=np.float32), ["a", "b", "c"])
    hits = index.search(np.array([1.0, 0.2, 0.0], np.float32), 5)
    assert list(hits.ids[0]) == ["a", "b", "c", "", ""]
    assert np.isneginf(hits.scores[0, 3:]).all()
    got_ids, got_scores = hits.row(0)
    assert got_ids == ["a", "b", "c"] and got_scores.shape == (3,)


def test_exclude_gives_true_topk_of_the_rest(data) -> None:
    x, ids, q = data
    index = build_index(x, list(ids), kind="exact")
    first = index.search(q[:1], 5).row(0)[0]
    ids_after, _ = index.search(q[:1], 5, exclude=first[:3] + ["not-in-index"]).row(0)
    keep = ~np.isin(ids, first[:3])
    want, _ = brute_topk(x[keep], ids[keep], q[:1], 5)
    assert ids_after == list(want[0])


@pytest.mark.parametrize("size", [40, 500, 2500])
def test_within_subset_equals_brute_force(any_index, data, size, monkeypatch) -> None:
    # 40: copied-subset scan; 500: flat scan with an id bitmap; 2500 of 3000: for the
    # hnsw kind, HNSW search with an id bitmap (approximate), flat scan for exact.
    monkeypatch.setattr(index_mod, "_GATHER_MAX_ROWS", 100)
    x, ids, q = data
    rng = np.random.default_rng(size)
    pick = np.sort(rng.choice(len(x), size, replace=False))
    hits = any_index.search(q, 10, within=list(ids[pick]))
    want_ids, want_scores = brute_topk(x[pick], ids[pick], q, 10)
    if any_index.kind == "exact" or size <= 1000:  # exact for the subset
        np.testing.assert_array_equal(hits.ids, want_ids)
        np.testing.assert_allclose(hits.scores, want_scores, atol=1e-5)
    else:  # HNSW with an id filter over a large subset: approximate, but only subset ids
        assert set(hits.ids.ravel()) <= set(ids[pick])
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(hits.ids, want_ids)])
        assert recall >= 0.9


def test_within_unknown_id_raises(any_index) -> None:
    with pytest.raises(NotFoundError, match="ghost"):
        any_index.search(np.ones(32, np.float32), 3, within=["row-1", "ghost"])


@pytest.mark.parametrize("t", [0.35, 0.5])
def test_range_search_is_exact(any_index, data, t) -> None:
    x, ids, q = data
    scores = unit(q) @ unit(x).T
    for i in range(5):
        got = any_index.range_search(q[i], t)
        assert set(got.ids) == set(ids[scores[i] >= t])
        assert np.all(np.diff(got.scores) <= 0) and got.scores.dtype == np.float32
        sub = ids[::3]
        got_sub = any_index.range_search(q[i], t, within=list(sub))
        assert set(got_sub.ids) == set(ids[::3][scores[i, ::3] >= t])
    lims, pos, sc = any_index.range_search_positions(q, t)
    assert lims.shape == (len(q) + 1,)
    for i in range(len(q)):
        seg = slice(lims[i], lims[i + 1])
        assert set(any_index.ids[pos[seg]]) == set(ids[scores[i] >= t])
        np.testing.assert_allclose(sc[seg], scores[i, pos[seg]], atol=1e-5)


def test_range_threshold_is_inclusive() -> None:
    index = build_index(np.array([[1, 0], [3, 4], [0, 1]], np.float32), ["x", "y", "z"])
    exact = float(index.search(np.array([1, 0], np.float32), 2).scores[0, 1])  # score of "y"
    assert list(index.range_search(np.array([1, 0], np.float32), exact).ids) == ["x", "y"]


def test_search_positions_matches_brute_force(data) -> None:
    x, ids, q = data
    index = build_index(x, list(ids), kind="exact")
    scores, pos = index.search_positions(q, 7)
    want_ids, want_scores = brute_topk(x, ids, q, 7)
    assert pos.dtype == np.int64
    np.testing.assert_array_equal(index.ids[pos], want_ids)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)


def test_hnsw_recall_at_10_on_100k_clustered() -> None:
    x = clustered(100_200, 384, seed=3)
    base, q = x[:100_000], x[100_000:]
    ids = np.array([str(i) for i in range(len(base))], dtype=object)
    hnsw = build_index(base, ids, kind="hnsw")  # default parameters
    want_ids, _ = brute_topk(base, ids, q, 10)
    got = hnsw.search(q, 10).ids
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, want_ids)])
    assert recall >= 0.95, recall
    _, pos = hnsw.search_positions(q, 10)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids[pos], want_ids)]) >= 0.95


def test_auto_kind_follows_threshold(monkeypatch, data) -> None:
    x, ids, _ = data
    assert build_index(x, list(ids)).kind == "exact"
    monkeypatch.setattr(kinds_mod, "EXACT_MAX_ROWS", 100)
    big = build_index(x, list(ids), M=8)
    assert big.kind == "hnsw" and big.params["M"] == 8
    assert big.params["ef_search"] == kinds_mod.HNSW_DEFAULTS["ef_search"]


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_add_and_remove_by_id(kind, data) -> None:
    x, ids, q = data
    index = build_index(x[:2000], list(ids[:2000]), kind=kind)
    index.add(x[2000:], list(ids[2000:]))
    assert len(index) == 3000 and list(index.ids) == list(ids)
    target = q[0] * 100
    index.add(target[None, :], ["target"])
    assert index.search(q[0], 1).row(0)[0] == ["target"]
    np.testing.assert_allclose(index.vectors_for(["target"])[0], unit(q[0]), atol=1e-6)
    gone = list(ids[:1500:2])
    assert index.remove(gone + ["target"]) == len(gone) + 1
    assert len(index) == 3000 - len(gone) and "target" not in set(index.ids)
    hits = index.search(q, 10)
    assert not set(hits.ids.ravel()) & set(gone + ["target"])
    keep = ~np.isin(ids, gone)
    scores, pos = index.search_positions(q, 10)
    want_ids, _ = brute_topk(x[keep], ids[keep], q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(index.ids[pos], want_ids)])
    assert recall == 1.0 if kind == "exact" else recall >= 0.9
    assert set(index.range_search(q[0], 0.3).ids) == set(ids[keep][unit(x[keep]) @ unit(q[0]) >= 0.3])
    lims, pos, _ = index.range_search_positions(q[:3], 0.3)
    for i in range(3):
        want = set(ids[keep][unit(x[keep]) @ unit(q[i]) >= 0.3])
        assert set(index.ids[pos[lims[i]:lims[i + 1]]]) == want
    with pytest.raises(NotFoundError, match="row-0"):
        index.remove(["row-0"])
    with pytest.raises(NotFoundError, match="row-2"):
        index.vectors_for(["row-2"])


def test_hnsw_rebuilds_after_most_rows_removed(data) -> None:
    x, ids, q = data
    index = build_index(x, list(ids), kind="hnsw")
    index.remove(list(ids[:2000]))
    assert len(index) == 1000 and len(index._slot_ids) == 1000  # compacted by the rebuild
    want_ids, _ = brute_topk(x[2000:], ids[2000:], q, 5)
    got = index.search(q, 5).ids
    assert np.mean([len(set(a) & set(b)) / 5 for a, b in zip(got, want_ids)]) >= 0.9


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_empty_and_emptied_indexes_answer_with_padding(kind, data, tmp_path: Path) -> None:
    x, ids, q = data
    empty = build_index(np.zeros((0, 32), np.float32), [], kind=kind)
    emptied = build_index(x[:3], list(ids[:3]), kind=kind)
    assert emptied.remove(list(ids[:3])) == 3
    for index in (empty, emptied):
        hits = index.search(q[:2], 4)
        assert hits.ids.tolist() == [[""] * 4] * 2 and np.isneginf(hits.scores).all()
        scores, pos = index.search_positions(q[:2], 4)
        assert (pos == -1).all() and np.isneginf(scores).all()
        assert len(index.range_search(q[0], -1.0).ids) == 0
    emptied.save(tmp_path)
    reloaded = VectorIndex.load(tmp_path)
    reloaded.add(x[5:6], ["back"])  # an emptied index takes rows again
    assert reloaded.search(x[5], 2).row(0)[0] == ["back"]


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_save_load_roundtrip(kind, data, tmp_path: Path) -> None:
    x, ids, q = data
    index = build_index(x, list(ids), kind=kind, ef_search=64)
    index.remove(list(ids[:10]))
    index.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.faiss", "index.json", "index_ids.npy"]
    loaded = VectorIndex.load(tmp_path)
    assert (loaded.kind, loaded.dims, loaded.params, len(loaded)) == (kind, 32, index.params, 2990)
    assert list(loaded.ids) == list(index.ids)
    a, b = index.search(q, 10), loaded.search(q, 10)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert list(loaded.range_search(q[0], 0.4).ids) == list(index.range_search(q[0], 0.4).ids)


def test_load_rejects_missing_corrupt_or_inconsistent_files(data, tmp_path: Path) -> None:
    x, ids, _ = data
    build_index(x[:50], list(ids[:50])).save(tmp_path / "ok")
    build_index(x[:60], list(ids[:60])).save(tmp_path / "other")
    for name in ["index.faiss", "index.json", "index_ids.npy"]:
        broken = tmp_path / f"missing-{name}"
        build_index(x[:50], list(ids[:50])).save(broken)
        (broken / name).unlink()
        with pytest.raises(IndexStateError, match=name):
            VectorIndex.load(broken)
        corrupt = tmp_path / f"corrupt-{name}"
        build_index(x[:50], list(ids[:50])).save(corrupt)
        (corrupt / name).write_bytes(b"\x00garbage")
        with pytest.raises(IndexStateError):
            VectorIndex.load(corrupt)
    (tmp_path / "ok" / "index_ids.npy").write_bytes((tmp_path / "other" / "index_ids.npy").read_bytes())
    with pytest.raises(IndexStateError, match="inconsistent"):
        VectorIndex.load(tmp_path / "ok")


def test_bad_inputs_raise_typed_errors(data) -> None:
    x, ids, _ = data
    small = x[:20]
    names = [f"r{i}" for i in range(20)]
    with pytest.raises(InputError, match="unknown index kind 'ivf'; choose one of auto, exact, hnsw"):
        build_index(small, names, kind="ivf")
    with pytest.raises(InputError, match="efSearch"):
        build_index(small, names, kind="hnsw", efSearch=10)
    for bad_m in (0, True, 2.5):
        with pytest.raises(InputError, match=f"index parameter M must be a whole number >= 1, got {bad_m!r}"):
            build_index(small, names, kind="hnsw", M=bad_m)
    bad = small.copy()
    bad[4, 0] = np.nan
    with pytest.raises(EmbeddingError, match="'r4'"):
        build_index(bad, names)
    bad[4, 0], bad[6] = 1.0, 0.0
    with pytest.raises(EmbeddingError, match="zeros.*'r6'"):
        build_index(bad, names)
    with pytest.raises(EmbeddingError, match="duplicate ids: 'r1'"):
        build_index(small, names[:19] + ["r1"])
    with pytest.raises(EmbeddingError, match="19 ids for 20"):
        build_index(small, names[:19])
    with pytest.raises(SchemaError, match="non-empty"):
        build_index(small, names[:19] + [""])
    with pytest.raises(EmbeddingError, match="2-D"):
        build_index(small[0], ["a"])
    index = build_index(small, names)
    with pytest.raises(EmbeddingError, match="16 dims; this index has 32"):
        index.add(np.ones((1, 16), np.float32), ["new"])
    with pytest.raises(EmbeddingError, match="already in the index: 'r3'"):
        index.add(small[:2], ["new", "r3"])
    with pytest.raises(EmbeddingError, match="16 dims"):
        index.search(np.ones(16, np.float32), 3)
    with pytest.raises(EmbeddingError, match="NaN"):
        index.search(np.full(32, np.nan, np.float32), 3)
    with pytest.raises(InputError, match="k must be a whole number >= 1, got 0"):
        index.search(small[0], 0)
    with pytest.raises(NotFoundError, match="2 id\\(s\\) not in the index: 'nope', 'gone'"):
        index.remove(["r0", "nope", "gone"])
    assert len(index) == 20  # a failed remove changes nothing
    assert isinstance(index.search(small[0], 1), Hits)


def test_build_reports_progress_and_never_copies_the_whole_matrix(monkeypatch) -> None:
    """A large import must not hold two normalised copies: rows are normalised per chunk."""
    import tracemalloc

    monkeypatch.setattr(index_build, "ADD_CHUNK", 5_000)
    x = np.random.default_rng(3).standard_normal((60_000, 128)).astype(np.float32)  # 30.7 MB
    ids = [f"r{i}" for i in range(len(x))]
    seen: list[tuple[int, int]] = []
    tracemalloc.start()
    try:
        index = build_index(x, ids, kind="exact", progress=lambda done, total: seen.append((done, total)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.5 * x.nbytes, f"traced peak {peak / 1e6:.1f} MB for a {x.nbytes / 1e6:.1f} MB input"
    assert seen[-1] == (60_000, 60_000) and len(seen) == 12
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    hits = index.search(x[:3], 1)
    assert hits.ids[:, 0].tolist() == ["r0", "r1", "r2"]


def test_bad_row_in_a_late_chunk_is_refused_before_anything_is_added(monkeypatch) -> None:
    monkeypatch.setattr(index_build, "ADD_CHUNK", 100)
    x = np.ones((1_000, 8), np.float32)
    x[950, 3] = np.nan
    added: list[int] = []
    monkeypatch.setattr(index_mod, "add_chunks", lambda *a, **k: added.append(1))
    with pytest.raises(EmbeddingError, match="1 vectors contain NaN or Inf values: ids 'r950'$"):
        build_index(x, [f"r{i}" for i in range(1_000)], kind="exact")
    assert added == []


def test_hnsw_scores_are_exact_cosines(data) -> None:
    """The graph proposes candidates from 8-bit codes; the scores shown are re-ranked exactly."""
    x, ids, q = data
    hnsw = build_index(x, list(ids), kind="hnsw", M=16)
    hits = hnsw.search(q, 10)
    by_id = dict(zip(ids.tolist(), unit(x)))
    for row_ids, scores, query in zip(hits.ids, hits.scores, unit(q)):
        exact = np.array([by_id[i] @ query for i in row_ids], np.float32)
        np.testing.assert_allclose(scores, exact, atol=1e-5)
        assert np.all(np.diff(scores) <= 1e-6)  # best first


def test_an_index_saved_by_the_older_float_graph_format_is_refused_as_stale(data, tmp_path: Path) -> None:
    import faiss

    x, ids, _ = data
    build_index(x[:50], list(ids[:50]), kind="exact").save(tmp_path)
    old = faiss.IndexHNSWFlat(x.shape[1], 8, faiss.METRIC_INNER_PRODUCT)
    old.add(unit(x[:50]))
    faiss.write_index(old, str(tmp_path / "index.faiss"))
    meta = json.loads((tmp_path / "index.json").read_text())
    (tmp_path / "index.json").write_text(json.dumps({**meta, "format_version": 1, "kind": "hnsw"}))
    with pytest.raises(IndexStateError, match="format version 1, not 2: an index built by an older Catalog"):
        VectorIndex.load(tmp_path)
