"""Tests for core.index.vector_index: VectorIndex of every kind against numpy brute force,
persistence, errors. The ivf kind's own properties (memory map, side array) are in test_ivf.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import core.index.build as build_mod
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


KINDS = ["exact", "hnsw", "ivf"]


def recall_of(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(got, want)]))


@pytest.fixture(scope="module")
def cdata() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """20k x 32 clustered rows (scaled by 3: not normalised), ids, 25 held-out queries."""
    x = clustered(20_025, 32, seed=11) * 3.0
    ids = np.array([f"row-{i}" for i in range(20_000)], dtype=object)
    return x[:20_000], ids, x[20_000:]


@pytest.fixture(scope="module", params=KINDS)
def any_index(request, cdata) -> VectorIndex:
    x, ids, _ = cdata
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


@pytest.mark.parametrize("size", [40, 2000, 12000])
def test_within_subset_equals_brute_force(any_index, cdata, size, monkeypatch) -> None:
    # 40: copied-subset scan (every kind); 2000: flat scan with an id bitmap (exact, hnsw),
    # the inverted file with one (ivf); 12000 of 20000: hnsw: the graph with an id bitmap.
    monkeypatch.setattr(index_mod, "_GATHER_MAX_ROWS", 100)
    monkeypatch.setattr(index_mod, "_IVF_GATHER_MAX_ROWS", 100)
    x, ids, q = cdata
    rng = np.random.default_rng(size)
    pick = np.sort(rng.choice(len(x), size, replace=False))
    want_ids, want_scores = brute_topk(x[pick], ids[pick], q, 10)
    for within in (list(ids[pick]), any_index.subset(list(ids[pick]))):  # ids, or resolved once
        hits = any_index.search(q, 10, within=within)
        if any_index.kind == "exact" or size <= 40 or (any_index.kind == "hnsw" and size <= 5000):
            np.testing.assert_array_equal(hits.ids, want_ids)
            np.testing.assert_allclose(hits.scores, want_scores, atol=1e-5)
        else:  # an id filter over an approximate index: only subset ids, exact scores, recall
            assert set(hits.ids.ravel()) <= set(ids[pick])
            assert recall_of(hits.ids, want_ids) >= 0.95
            exact = np.einsum("qkd,qd->qk", unit(x)[np.vectorize(lambda v: int(v[4:]))(hits.ids)], unit(q))
            np.testing.assert_allclose(hits.scores, exact, atol=1e-5)


def test_a_subset_made_before_a_change_is_refused(any_index, cdata) -> None:
    x, ids, q = cdata
    index = build_index(x[:500], list(ids[:500]), kind=any_index.kind)
    subset = index.subset(list(ids[:50]))
    assert len(subset) == 50 and set(index.search(q[0], 5, within=subset).ids[0]) <= set(ids[:50])
    index.add(x[500:501], [ids[500]])
    with pytest.raises(IndexStateError, match="subset was made before"):
        index.search(q[0], 5, within=subset)
    with pytest.raises(IndexStateError, match="subset was made before"):
        any_index.range_search(q[0], 0.5, within=subset)  # nor on another index
    with pytest.raises(NotFoundError, match="ghost"):
        index.subset(["row-1", "ghost"])


def test_a_subset_by_positions_is_the_subset_by_ids(any_index, cdata) -> None:
    x, ids, q = cdata
    index = build_index(x[:3000], list(ids[:3000]), kind=any_index.kind)
    index.remove(list(ids[:100]))  # positions count live rows only
    pos = np.arange(0, 2900, 7)
    by_pos, by_ids = index.subset(positions=pos), index.subset(list(index.ids[pos]))
    assert by_pos.slots.tolist() == by_ids.slots.tolist() and len(by_pos) == len(pos)
    np.testing.assert_array_equal(index.search(q, 5, within=by_pos).ids, index.search(q, 5, within=by_ids).ids)
    assert set(index.search(q, 5, within=by_pos).ids.ravel()) <= set(index.ids[pos])
    with pytest.raises(InputError, match="subset positions must be in 0..2899"):
        index.subset(positions=[2900])


def test_within_unknown_id_raises(any_index) -> None:
    with pytest.raises(NotFoundError, match="ghost"):
        any_index.search(np.ones(32, np.float32), 3, within=["row-1", "ghost"])


def range_recall(got_ids, got_scores, want: set[str], exact_of: dict[str, float], kind: str) -> float:
    """Share of ``want`` found; exact kinds find exactly ``want``, ivf a subset of it (what its
    probed lists hold). Scores are always exact, best first."""
    assert set(got_ids) <= want and (kind == "ivf" or set(got_ids) == want)
    np.testing.assert_allclose(got_scores, [exact_of[i] for i in got_ids], atol=1e-5)
    assert np.all(np.diff(got_scores) <= 0) and np.asarray(got_scores).dtype == np.float32
    return len(set(got_ids)) / len(want) if want else 1.0


def assert_found(recalls: list[float]) -> None:
    """ivf range search: >= 95% of the rows above the threshold on average, >= 85% each."""
    assert np.mean(recalls) >= 0.95 and min(recalls) >= 0.85, recalls


@pytest.mark.parametrize("t", [0.45, 0.55])  # ~190 / ~60 rows of a 200-row cluster
def test_range_search_finds_rows_above_the_threshold(any_index, cdata, t, monkeypatch) -> None:
    monkeypatch.setattr(index_mod, "_IVF_GATHER_MAX_ROWS", 1000)
    x, ids, q = cdata
    scores = unit(q) @ unit(x).T
    recalls: list[float] = []
    for i in range(5):
        exact_of = dict(zip(ids, scores[i]))
        got = any_index.range_search(q[i], t)
        assert len(got.ids) >= 10
        recalls.append(range_recall(got.ids, got.scores, set(ids[scores[i] >= t]), exact_of, any_index.kind))
        for step in (3, 40):  # a large subset (an id filter) and a small one (its rows read)
            got_sub = any_index.range_search(q[i], t, within=list(ids[::step]))
            want = set(ids[::step][scores[i, ::step] >= t])
            recalls.append(range_recall(got_sub.ids, got_sub.scores, want, exact_of, any_index.kind))
    lims, pos, sc = any_index.range_search_positions(q, t)
    assert lims.shape == (len(q) + 1,)
    for i in range(len(q)):
        seg = slice(lims[i], lims[i + 1])
        recalls.append(range_recall(list(any_index.ids[pos[seg]]), sc[seg], set(ids[scores[i] >= t]),
                                    dict(zip(ids, scores[i])), any_index.kind))
    assert_found(recalls)


@pytest.mark.parametrize("kind", KINDS)
def test_range_threshold_is_inclusive(kind) -> None:
    index = build_index(np.array([[1, 0], [3, 4], [0, 1]], np.float32), ["x", "y", "z"], kind=kind)
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
    monkeypatch.setattr(kinds_mod, "HNSW_MAX_ROWS", 1000)
    large = build_index(x, list(ids), nprobe=4)
    assert large.kind == "ivf" and large.params["nprobe"] == 4
    assert large.params["k_factor"] == kinds_mod.IVF_DEFAULTS["k_factor"]
    with pytest.raises(InputError, match="'M' do not apply to the ivf kind; it takes nlist, nprobe"):
        build_index(x, list(ids), M=8)
    assert build_index(x, list(ids), kind="hnsw").kind == "hnsw"  # an explicit kind wins


@pytest.mark.parametrize("kind", KINDS)
def test_add_and_remove_by_id(kind, cdata, tmp_path: Path) -> None:
    x, ids, q = cdata
    index = build_index(x[:15_000], list(ids[:15_000]), kind=kind)
    index.add(x[15_000:], list(ids[15_000:]))
    assert len(index) == 20_000 and list(index.ids) == list(ids)
    target = q[0] * 100
    index.add(target[None, :], ["target"])
    hits = index.search(q[0], 1)
    assert hits.row(0)[0] == ["target"] and abs(float(hits.scores[0, 0]) - 1.0) < 1e-5
    np.testing.assert_allclose(index.vectors_for(["target"])[0], unit(q[0]), atol=1e-6)
    gone = list(ids[:10_000:2]) + list(ids[15_000:16_000])  # rows of the build and added ones
    assert index.remove(gone + ["target"]) == len(gone) + 1
    assert len(index) == 20_000 - len(gone) and "target" not in set(index.ids)
    keep = ~np.isin(ids, gone)
    want_ids, _ = brute_topk(x[keep], ids[keep], q, 10)
    for current in (index, reloaded(index, tmp_path)):  # removed rows never come back
        hits = current.search(q, 10)
        assert not set(hits.ids.ravel()) & set(gone + ["target"])
        _, pos = current.search_positions(q, 10)
        assert not set(current.ids[pos].ravel()) & set(gone)
        recall = recall_of(current.ids[pos], want_ids)
        assert recall == 1.0 if kind == "exact" else recall >= 0.95
        recalls = []
        lims, pos, sc = current.range_search_positions(q[:3], 0.5)
        for i in range(3):
            exact_i = dict(zip(ids, unit(x) @ unit(q[i])))
            want_i = {v for v in ids[keep] if exact_i[v] >= 0.5}
            got = current.range_search(q[i], 0.5)
            recalls.append(range_recall(got.ids, got.scores, want_i, exact_i, kind))
            recalls.append(range_recall(list(current.ids[pos[lims[i]:lims[i + 1]]]), sc[lims[i]:lims[i + 1]],
                                        want_i, exact_i, kind))
        assert_found(recalls)
        with pytest.raises(NotFoundError, match="row-0"):
            current.remove(["row-0"])
        with pytest.raises(NotFoundError, match="row-2"):
            current.vectors_for(["row-2"])
        with pytest.raises(NotFoundError, match="row-4"):
            current.search(q[0], 3, within=["row-1", "row-4"])


def reloaded(index: VectorIndex, folder: Path) -> VectorIndex:
    """``index`` saved to ``folder`` and read back."""
    index.save(folder)
    return VectorIndex.load(folder)


def test_hnsw_rebuilds_after_most_rows_removed(data) -> None:
    x, ids, q = data
    index = build_index(x, list(ids), kind="hnsw")
    index.remove(list(ids[:2000]))
    assert len(index) == 1000 and len(index._slot_ids) == 1000  # compacted by the rebuild
    want_ids, _ = brute_topk(x[2000:], ids[2000:], q, 5)
    got = index.search(q, 5).ids
    assert np.mean([len(set(a) & set(b)) / 5 for a, b in zip(got, want_ids)]) >= 0.9


@pytest.mark.parametrize("kind", KINDS)
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
        lims, pos, _ = index.range_search_positions(q[:2], -1.0)
        assert lims.tolist() == [0, 0, 0] and len(pos) == 0
    for index, folder in ((emptied, tmp_path / "emptied"), (empty, tmp_path / "empty")):
        back = reloaded(index, folder)
        back.add(x[5:7], ["back", "again"])  # an emptied (or empty) index takes rows again
        assert back.search(x[5], 2).row(0)[0] == ["back", "again"]
        assert reloaded(back, folder).search(x[6], 1).row(0)[0] == ["again"]


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_roundtrip(kind, data, tmp_path: Path) -> None:
    x, ids, q = data
    params = {"hnsw": {"ef_search": 64}, "ivf": {"nprobe": 8}}.get(kind, {})
    index = build_index(x, list(ids), kind=kind, **params)
    index.remove(list(ids[:10]))
    index.save(tmp_path)
    files = ["index.faiss", "index.json", "index_ids.npy"]
    if kind == "ivf":  # re-ranks from vectors.npy, written here as the folder had none
        files += ["index_added.npy", "index_norms.npy", "vectors.npy"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files)
    loaded = VectorIndex.load(tmp_path)
    assert (loaded.kind, loaded.dims, loaded.params, len(loaded)) == (kind, 32, index.params, 2990)
    assert list(loaded.ids) == list(index.ids)
    a, b = index.search(q, 10), loaded.search(q, 10)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert list(loaded.range_search(q[0], 0.4).ids) == list(index.range_search(q[0], 0.4).ids)
    np.testing.assert_array_equal(loaded.vectors_for(["row-11", "row-2999"]), index.vectors_for(["row-11", "row-2999"]))


@pytest.mark.parametrize("kind", ["exact", "ivf"])
def test_load_rejects_missing_corrupt_or_inconsistent_files(kind, data, tmp_path: Path) -> None:
    x, ids, _ = data
    build_index(x[:50], list(ids[:50]), kind=kind).save(tmp_path / "ok")
    build_index(x[:60], list(ids[:60]), kind=kind).save(tmp_path / "other")
    names = ["index.faiss", "index.json", "index_ids.npy"]
    if kind == "ivf":
        names += ["index_norms.npy", "index_added.npy", "vectors.npy"]
    for name in names:
        broken = tmp_path / f"missing-{name}"
        build_index(x[:50], list(ids[:50]), kind=kind).save(broken)
        (broken / name).unlink()
        with pytest.raises(IndexStateError, match=name):
            VectorIndex.load(broken)
        corrupt = tmp_path / f"corrupt-{name}"
        build_index(x[:50], list(ids[:50]), kind=kind).save(corrupt)
        (corrupt / name).write_bytes(b"\x00garbage")
        with pytest.raises(IndexStateError):
            VectorIndex.load(corrupt)
    (tmp_path / "ok" / "index_ids.npy").write_bytes((tmp_path / "other" / "index_ids.npy").read_bytes())
    with pytest.raises(IndexStateError, match="inconsistent"):
        VectorIndex.load(tmp_path / "ok")


def test_bad_kind_or_parameters_are_refused(data) -> None:
    x, _, _ = data
    small, names = x[:20], [f"r{i}" for i in range(20)]
    with pytest.raises(InputError, match="unknown index kind 'annoy'; choose one of auto, exact, hnsw, ivf"):
        build_index(small, names, kind="annoy")
    with pytest.raises(InputError, match="efSearch"):
        build_index(small, names, kind="hnsw", efSearch=10)
    for bad_m in (0, True, 2.5):
        with pytest.raises(InputError, match=f"index parameter M must be a whole number >= 1, got {bad_m!r}"):
            build_index(small, names, kind="hnsw", M=bad_m)
    with pytest.raises(InputError, match="index parameter nprobe must be a whole number >= 1, got 0"):
        build_index(small, names, kind="ivf", nprobe=0)
    with pytest.raises(InputError, match="bits must be one of 4, 6, 8, got 5"):
        build_index(small, names, kind="ivf", bits=5)
    with pytest.raises(InputError, match="'ef_search' do not apply to the ivf kind"):
        build_index(small, names, kind="ivf", ef_search=10)
    with pytest.raises(InputError, match="'nprobe' do not apply to the hnsw kind"):
        build_index(small, names, kind="hnsw", nprobe=10)
    assert build_index(small, names, kind="exact", M=8).params == {}  # exact takes none, ignores them


@pytest.mark.parametrize("kind", KINDS)
def test_bad_inputs_raise_typed_errors(kind, data) -> None:
    x, _, _ = data
    small = x[:20]
    names = [f"r{i}" for i in range(20)]
    bad = small.copy()
    bad[4, 0] = np.nan
    with pytest.raises(EmbeddingError, match="'r4'"):
        build_index(bad, names, kind=kind)
    bad[4, 0], bad[6] = 1.0, 0.0
    with pytest.raises(EmbeddingError, match="zeros.*'r6'"):
        build_index(bad, names, kind=kind)
    with pytest.raises(EmbeddingError, match="duplicate ids: 'r1'"):
        build_index(small, names[:19] + ["r1"], kind=kind)
    with pytest.raises(EmbeddingError, match="19 ids for 20"):
        build_index(small, names[:19], kind=kind)
    with pytest.raises(SchemaError, match="non-empty"):
        build_index(small, names[:19] + [""], kind=kind)
    with pytest.raises(EmbeddingError, match="2-D"):
        build_index(small[0], ["a"], kind=kind)
    index = build_index(small, names, kind=kind)
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
    with pytest.raises(EmbeddingError, match="NaN"):
        index.add(bad[3:5] * np.nan, ["n1", "n2"])
    with pytest.raises(InputError, match="threshold must be a finite number"):
        index.range_search(small[0], float("nan"))
    with pytest.raises(InputError, match="threshold must be a finite number"):
        index.range_search(small[0], float("inf"), within=names[:3])
    with pytest.raises(NotFoundError, match="2 id\\(s\\) not in the index: 'nope', 'gone'"):
        index.remove(["r0", "nope", "gone"])
    with pytest.raises(NotFoundError, match="'nope'"):
        index.vectors_for(["r1", "nope"])
    assert len(index) == 20  # failed calls change nothing
    assert index.search(small[3], 1).row(0)[0] == ["r3"]
    assert isinstance(index.search(small[0], 1), Hits)


@pytest.mark.parametrize("kind", ["exact", "ivf"])
def test_build_reports_progress_and_never_copies_the_whole_matrix(kind, monkeypatch) -> None:
    """A large import must not hold two normalised copies: rows are normalised per chunk
    (and the ivf kind keeps only codes: its re-rank rows are the input itself)."""
    import tracemalloc

    monkeypatch.setattr(index_build, "ADD_CHUNK", 5_000)
    x = np.random.default_rng(3).standard_normal((60_000, 128)).astype(np.float32)  # 30.7 MB
    ids = [f"r{i}" for i in range(len(x))]
    seen: list[tuple[int, int]] = []
    tracemalloc.start()
    try:
        # ivf trains on a sample: its only copy, train_rows rows (default 256k of any n)
        index = build_index(x, ids, kind=kind, progress=lambda done, total: seen.append((done, total)),
                            **({"train_rows": 16_384} if kind == "ivf" else {}))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.5 * x.nbytes, f"traced peak {peak / 1e6:.1f} MB for a {x.nbytes / 1e6:.1f} MB input"
    assert seen[-1] == (60_000, 60_000) and len(seen) == 12
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    hits = index.search(x[:3], 1)
    assert hits.ids[:, 0].tolist() == ["r0", "r1", "r2"]


@pytest.mark.parametrize("kind", KINDS)
def test_bad_row_in_a_late_chunk_is_refused_before_anything_is_added(kind, monkeypatch) -> None:
    monkeypatch.setattr(index_build, "ADD_CHUNK", 100)
    x = np.ones((1_000, 8), np.float32)
    x[950, 3] = np.nan
    added: list[int] = []
    monkeypatch.setattr(build_mod, "add_chunks", lambda *a, **k: added.append(1))
    monkeypatch.setattr(build_mod, "build_ivf", lambda *a, **k: added.append(1))
    with pytest.raises(EmbeddingError, match="1 vectors contain NaN or Inf values: ids 'r950'$"):
        build_index(x, [f"r{i}" for i in range(1_000)], kind=kind)
    assert added == []


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_kinds_return_exact_cosines(kind, data) -> None:
    """The graph / inverted file proposes candidates from compact codes; the scores shown
    are re-ranked exactly."""
    x, ids, q = data
    index = build_index(x, list(ids), kind=kind, **({"M": 16} if kind == "hnsw" else {}))
    hits = index.search(q, 10)
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
