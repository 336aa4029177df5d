"""Tests for the ivf kind (core.index.ivf, core.index.mapped): recall and exact scores on
clustered data, re-ranking from the memory-mapped vectors without a copy, the side array of
added rows, and the checks that tie a saved index to its ``vectors.npy``."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from core.errors import IndexStateError
from core.index import VectorIndex, build_index
from tests.core.index.test_vector_index import brute_topk, clustered, recall_of, unit


@pytest.fixture(scope="module")
def rows() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """20k x 32 clustered unit rows, their ids, 200 held-out queries."""
    x = clustered(20_200, 32, seed=5)
    return x[:20_000], np.array([f"r{i}" for i in range(20_000)]), x[20_000:]


@pytest.fixture(scope="module")
def ivf(rows) -> VectorIndex:
    x, ids, _ = rows
    return build_index(x, ids, kind="ivf")


def row_numbers(hit_ids: np.ndarray) -> np.ndarray:
    return np.vectorize(lambda v: int(v[1:]) if v else -1, otypes=[np.int64])(hit_ids)


def test_recall_at_10_against_exact_with_exact_scores(ivf, rows) -> None:
    x, ids, q = rows
    want, _ = brute_topk(x, ids, q, 10)
    hits = ivf.search(q, 10)
    assert recall_of(hits.ids, want) >= 0.95
    got = row_numbers(hits.ids)
    np.testing.assert_allclose(hits.scores, np.einsum("qkd,qd->qk", x[got], q), atol=1e-5)
    assert np.all(np.diff(hits.scores, axis=1) <= 0)
    scores, pos = ivf.search_positions(q, 10)  # the bulk path (quality passes)
    assert recall_of(ivf.ids[pos], want) >= 0.95
    np.testing.assert_allclose(scores, np.einsum("qkd,qd->qk", x[pos], q), atol=1e-5)
    single = [ivf.search(v, 10).row(0)[0] for v in q[:20]]  # one query at a time: the same
    assert single == [list(r) for r in hits.ids[:20]]


def test_filtered_search_small_and_large_subsets(ivf, rows) -> None:
    x, ids, q = rows
    rng = np.random.default_rng(8)
    for size in (30, 200, 6_000):  # rows read and scored exactly; the inverted file with a filter
        pick = np.sort(rng.choice(len(x), size, replace=False))
        want, _ = brute_topk(x[pick], ids[pick], q, 10)
        hits = ivf.search(q, 10, within=ivf.subset(ids[pick]))
        assert set(hits.ids.ravel()) <= set(ids[pick])
        assert recall_of(hits.ids, want) >= (1.0 if size <= 200 else 0.95)
        np.testing.assert_allclose(hits.scores, np.einsum("qkd,qd->qk", x[row_numbers(hits.ids)], q), atol=1e-5)


def test_near_duplicates_are_all_found_by_range_search(rows) -> None:
    """What the duplicates pass asks: every pair above 0.95, found in the probed lists."""
    x, ids, _ = rows
    rng = np.random.default_rng(4)
    copies = unit(x[:300] + 0.05 * rng.standard_normal((300, 32), dtype=np.float32))
    both = np.concatenate([x, copies])
    names = np.concatenate([ids, [f"c{i}" for i in range(300)]])
    index = build_index(both, names, kind="ivf")
    lims, pos, scores = index.range_search_positions(copies, 0.95)
    exact = copies @ both.T
    for i in range(300):
        want = set(np.flatnonzero(exact[i] >= 0.95))
        assert set(pos[lims[i]:lims[i + 1]].tolist()) == want
        np.testing.assert_allclose(scores[lims[i]:lims[i + 1]], exact[i, pos[lims[i]:lims[i + 1]]], atol=1e-5)


def test_reranks_from_the_memory_map_without_a_copy(rows, tmp_path: Path) -> None:
    x, ids, q = rows
    np.save(tmp_path / "vectors.npy", x)
    mapped = np.load(tmp_path / "vectors.npy", mmap_mode="r")
    stamp = (tmp_path / "vectors.npy").stat()
    index = build_index(mapped, ids, kind="ivf")
    assert index._source.base is mapped  # the map itself, not a copy
    assert faiss.serialize_index(index._index).nbytes < 0.25 * x.nbytes  # codes only
    index.save(tmp_path)
    after = (tmp_path / "vectors.npy").stat()
    assert (after.st_ino, after.st_mtime_ns) == (stamp.st_ino, stamp.st_mtime_ns)  # left as it was
    loaded = VectorIndex.load(tmp_path)
    assert isinstance(loaded._source.base, np.memmap)
    np.testing.assert_array_equal(loaded.search(q, 10).ids, index.search(q, 10).ids)


def test_added_rows_live_in_a_side_array_that_save_and_load_keep(rows, tmp_path: Path) -> None:
    x, ids, q = rows
    index = build_index(x[:10_000], ids[:10_000], kind="ivf")
    index.save(tmp_path)
    base_bytes = (tmp_path / "vectors.npy").read_bytes()
    loaded = VectorIndex.load(tmp_path)
    loaded.add(x[10_000:] * 2.0, list(ids[10_000:]))  # not normalised: stored unit length
    loaded.remove(list(ids[:5_000:5]) + list(ids[10_000:12_000]))
    loaded.save(tmp_path)
    assert (tmp_path / "vectors.npy").read_bytes() == base_bytes  # added rows: index_added.npy
    assert np.load(tmp_path / "index_added.npy").shape == (10_000, 32)
    again = VectorIndex.load(tmp_path)
    gone = set(ids[:5_000:5]) | set(ids[10_000:12_000])
    keep = np.array([i not in gone for i in ids])
    want, _ = brute_topk(x[keep], ids[keep], q, 10)
    hits = again.search(q, 10)
    assert recall_of(hits.ids, want) >= 0.95 and not set(hits.ids.ravel()) & gone
    np.testing.assert_allclose(hits.scores, np.einsum("qkd,qd->qk", x[row_numbers(hits.ids)], q), atol=1e-5)
    np.testing.assert_allclose(again.vectors_for(["r15000"])[0], x[15_000], atol=1e-6)
    assert len(again) == 20_000 - len(gone) and again.search(x[19_999], 1).row(0)[0] == ["r19999"]


def test_a_changed_vectors_file_is_refused(rows, tmp_path: Path) -> None:
    x, ids, _ = rows
    index = build_index(x[:2_000], ids[:2_000], kind="ivf")
    index.save(tmp_path / "a")
    other = tmp_path / "b"
    other.mkdir()
    np.save(other / "vectors.npy", x[2_000:4_000])  # someone else's vectors
    with pytest.raises(IndexStateError, match="not the matrix the ivf index was built from"):
        index.save(other)
    assert not (other / "index.json").exists()  # nothing written
    np.save(tmp_path / "a" / "vectors.npy", x[:2_000][::-1])  # rows reordered since the save
    with pytest.raises(IndexStateError, match="rewritten or reordered"):
        VectorIndex.load(tmp_path / "a")
    np.save(tmp_path / "a" / "vectors.npy", x[:1_000])
    with pytest.raises(IndexStateError, match="needs at least 2000 float32 rows of 32 dims"):
        VectorIndex.load(tmp_path / "a")
    np.save(tmp_path / "a" / "vectors.npy", np.concatenate([x[:2_000], x[:5]]))  # rows appended: fine
    assert len(VectorIndex.load(tmp_path / "a")) == 2_000


def test_input_that_is_not_float32_is_copied_once_and_scored_exactly(rows) -> None:
    x, ids, q = rows
    wide = np.asfortranarray(x[:3_000].astype(np.float64) * 7.0)
    index = build_index(wide, ids[:3_000], kind="ivf")
    hits = index.search(q[:20], 5)
    want, _ = brute_topk(x[:3_000], ids[:3_000], q[:20], 5)
    assert recall_of(hits.ids, want) >= 0.95
    np.testing.assert_allclose(hits.scores, np.einsum("qkd,qd->qk", x[row_numbers(hits.ids)], q[:20]), atol=1e-5)


def test_an_index_built_empty_sizes_its_lists_for_the_first_rows_added(rows) -> None:
    x, ids, q = rows
    index = build_index(np.zeros((0, 32), np.float32), [], kind="ivf")
    assert "nlist" not in index.params
    index.add(x, list(ids))
    assert index.params["nlist"] == build_index(x, ids, kind="ivf").params["nlist"] > 100
    want, _ = brute_topk(x, ids, q, 10)
    assert recall_of(index.search(q, 10).ids, want) >= 0.95


def test_coarse_lists_give_every_live_row_its_list_in_id_order(rows) -> None:
    x, ids, _ = rows
    index = build_index(x[:10_000], ids[:10_000], kind="ivf")
    index.add(x[10_000:12_000], list(ids[10_000:12_000]))
    index.remove(list(ids[:3_000:3]))
    centroids, assign = index.coarse_lists()
    assert assign.shape == (len(index),) and assign.min() >= 0 and assign.max() < len(centroids)
    np.testing.assert_allclose(np.linalg.norm(centroids, axis=1), 1.0, atol=1e-5)
    nearest = np.argmax(index.vectors_for(list(index.ids)) @ centroids.T, axis=1)
    assert (nearest == assign).mean() >= 0.99  # each row sits in the list of its nearest centroid
    assert build_index(x[:500], ids[:500], kind="exact").coarse_lists() is None


def test_a_large_mapped_file_has_its_rerank_rows_read_ahead(rows, tmp_path: Path, monkeypatch) -> None:
    from core.index import mapped

    x, ids, q = rows
    index = build_index(x[:5_000], ids[:5_000], kind="ivf")
    index.save(tmp_path)
    small = VectorIndex.load(tmp_path).search(q[:3], 10)
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(mapped, "PREFETCH_MIN_BYTES", 0)  # as a 15 GB vectors.npy
    monkeypatch.setattr(mapped.os, "posix_fadvise", lambda fd, off, size, advice: calls.append((off, size)))
    big = VectorIndex.load(tmp_path).search(q[:3], 10)
    assert big.ids.tolist() == small.ids.tolist()
    np.testing.assert_array_equal(big.scores, small.scores)
    header = np.load(tmp_path / "vectors.npy", mmap_mode="r").offset
    row = 32 * 4
    asked = {(off - header) // row for off, size in calls}
    assert calls and all(size == row and (off - header) % row == 0 for off, size in calls)
    assert {int(i[1:]) for i in big.ids.ravel()} <= asked  # every returned row was read ahead
