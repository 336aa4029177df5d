"""The contract every vector backend keeps (core.index.backend.VectorBackend), run against
FAISS exact, FAISS ivf and LanceDB (the real embedded engine, tables in tmp folders):
recall@10 against exact search, exact cosines, range search, subsets, add/remove/save/load,
empty and emptied indexes, bad input. Backend-specific properties stay in test_vector_index.py,
test_ivf.py and the LanceDB tests at the end of this file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.errors import EmbeddingError, IndexStateError, InputError, NotFoundError
from core.index import VectorBackend, build_index, open_index, recorded_backend
from tests.core.index.test_vector_index import brute_topk, clustered, recall_of, unit

pytest.importorskip("lancedb")

# name -> build_index arguments; "mutable" ones are used where an index is changed
BACKENDS = {"faiss-exact": {"kind": "exact"}, "faiss-ivf": {"kind": "ivf"},
            "lancedb": {"backend": "lancedb"}}
MUTABLE = {**BACKENDS, "lancedb": {"backend": "lancedb", "kind": "ivf_pq"}}
EXACT = {"faiss-exact"}  # whose results equal brute force exactly


def make(name: str, x: np.ndarray, ids, mutable: bool = False) -> VectorBackend:
    return build_index(x, list(ids), **(MUTABLE if mutable else BACKENDS)[name])


def exact_scores(x: np.ndarray, ids: np.ndarray, hit_ids: np.ndarray, q: np.ndarray) -> np.ndarray:
    row = {v: i for i, v in enumerate(ids.tolist())}
    pos = np.vectorize(row.__getitem__, otypes=[np.int64])(hit_ids)
    return np.einsum("qkd,qd->qk", unit(x)[pos], unit(q))


@pytest.fixture(scope="module")
def cdata() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """20k x 32 clustered rows (scaled by 3: not normalised), ids, 25 held-out queries."""
    x = clustered(20_025, 32, seed=11) * 3.0
    return x[:20_000], np.array([f"row-{i}" for i in range(20_000)], dtype=object), x[20_000:]


@pytest.fixture(scope="module", params=list(BACKENDS))
def built(request, cdata) -> tuple[str, VectorBackend]:
    x, ids, _ = cdata
    return request.param, make(request.param, x, ids)


def test_every_backend_is_a_vector_backend(built) -> None:
    _, index = built
    assert isinstance(index, VectorBackend) and len(index) == 20_000 and index.dims == 32


def test_recall_at_10_against_exact_with_exact_cosines(built, cdata) -> None:
    name, index = built
    x, ids, q = cdata
    want, _ = brute_topk(x, ids, q, 10)
    hits = index.search(q, 10)
    assert hits.ids.shape == (25, 10) and hits.scores.dtype == np.float32
    assert recall_of(hits.ids, want) >= (1.0 if name in EXACT else 0.95)
    np.testing.assert_allclose(hits.scores, exact_scores(x, ids, hits.ids, q), atol=1e-5)
    assert np.all(np.diff(hits.scores, axis=1) <= 1e-6)
    scores, pos = index.search_positions(q, 10)
    assert pos.dtype == np.int64 and recall_of(index.ids[pos], want) >= 0.95
    np.testing.assert_allclose(scores, exact_scores(x, ids, index.ids[pos], q), atol=1e-5)


@pytest.mark.parametrize("t", [0.45, 0.55])
def test_range_search_returns_exactly_the_candidates_at_or_above_the_threshold(built, cdata, t) -> None:
    name, index = built
    x, ids, q = cdata
    truth = unit(q) @ unit(x).T
    found = []
    lims, pos, sc = index.range_search_positions(q[:5], t)
    for i in range(5):
        want = set(ids[truth[i] >= t])
        got = index.range_search(q[i], t)
        for got_ids, got_scores in ((list(got.ids), got.scores),
                                    (list(index.ids[pos[lims[i]:lims[i + 1]]]), sc[lims[i]:lims[i + 1]])):
            assert set(got_ids) <= want and len(set(got_ids)) == len(got_ids)  # nothing below t
            np.testing.assert_allclose(got_scores, exact_scores(x, ids, np.array([got_ids]), q[i:i + 1])[0]
                                       if got_ids else [], atol=1e-5)
            assert np.all(np.diff(got_scores) <= 0)
            if name in EXACT:
                assert set(got_ids) == want
            found.append(len(got_ids) / len(want) if want else 1.0)
    assert np.mean(found) >= 0.95 and min(found) >= 0.85, found
    inclusive = float(index.search(q[0], 3).scores[0, 2])  # the threshold is >=
    assert len(index.range_search(q[0], inclusive).ids) >= 3


@pytest.mark.parametrize("size", [40, 2000, 12000])
def test_search_within_a_subset(built, cdata, size) -> None:
    name, index = built
    x, ids, q = cdata
    pick = np.sort(np.random.default_rng(size).choice(len(x), size, replace=False))
    want, _ = brute_topk(x[pick], ids[pick], q, 10)
    for within in (list(ids[pick]), index.subset(list(ids[pick]))):
        hits = index.search(q, 10, within=within)
        assert set(hits.ids.ravel()) <= set(ids[pick])
        assert recall_of(hits.ids, want) >= (1.0 if name in EXACT or size <= 40 else 0.95)
        np.testing.assert_allclose(hits.scores, exact_scores(x, ids, hits.ids, q), atol=1e-5)
    sub = index.range_search(q[0], 0.45, within=list(ids[pick]))
    assert set(sub.ids) <= set(ids[pick][(unit(x[pick]) @ unit(q[0])) >= 0.45])
    excluded = index.search(q[0], 5, exclude=list(hits.ids[0][:2]) + ["not-in-index"]).row(0)[0]
    assert not set(excluded) & set(hits.ids[0][:2])
    with pytest.raises(NotFoundError, match="ghost"):
        index.search(q[0], 3, within=["row-1", "ghost"])


@pytest.mark.parametrize("name", list(BACKENDS))
def test_add_remove_save_load_round_trip(name, cdata, tmp_path: Path) -> None:
    x, ids, q = cdata
    index = make(name, x[:5000], ids[:5000], mutable=True)
    subset = index.subset(list(ids[:50]))
    index.add(x[5000:6000], list(ids[5000:6000]))  # after the vector index was built
    index.add(q[0][None, :] * 100, ["target"])
    with pytest.raises(IndexStateError, match="subset was made before"):
        index.search(q[0], 5, within=subset)
    hits = index.search(q[0], 1)
    assert hits.row(0)[0] == ["target"] and abs(float(hits.scores[0, 0]) - 1.0) < 1e-5
    assert index.search(x[5500], 1).row(0)[0] == ["row-5500"]  # an added row is found
    np.testing.assert_allclose(index.vectors_for(["target", "row-7"]), unit(np.stack([q[0], x[7]])), atol=1e-6)
    gone = list(ids[:5000:3]) + list(ids[5000:5100]) + ["target"]
    assert index.remove(gone) == len(gone) and len(index) == 6001 - len(gone)
    index.save(tmp_path)
    back = open_index(tmp_path)
    if hasattr(back, "optimize"):
        back.optimize()  # folds added rows into the vector index; removed rows stay gone
    keep = np.array([v not in set(gone) for v in ids[:6000]])
    want, _ = brute_topk(x[:6000][keep], ids[:6000][keep], q, 10)
    for current in (index, back):
        assert list(current.ids) == [v for v in ids[:6000] if v not in set(gone)]
        found = current.search(q, 10)
        assert not set(found.ids.ravel()) & set(gone)
        assert not set(current.range_search(q[0], 0.3).ids) & set(gone)
        assert recall_of(found.ids, want) >= (1.0 if name in EXACT else 0.95)
        with pytest.raises(NotFoundError, match="row-0"):
            current.remove(["row-0"])
        with pytest.raises(NotFoundError, match="row-3"):
            current.vectors_for(["row-3"])
    assert back.search(x[5500], 1).row(0)[0] == ["row-5500"]


@pytest.mark.parametrize("name", list(BACKENDS))
def test_empty_and_emptied_indexes_answer_with_padding(name, cdata, tmp_path: Path) -> None:
    x, ids, q = cdata
    empty = make(name, np.zeros((0, 32), np.float32), [], mutable=True)
    emptied = make(name, x[:300], ids[:300], mutable=True)
    assert emptied.remove(list(ids[:300])) == 300
    for index, folder in ((empty, tmp_path / "empty"), (emptied, tmp_path / "emptied")):
        assert len(index) == 0 and len(index.ids) == 0
        hits = index.search(q[:2], 4)
        assert hits.ids.tolist() == [[""] * 4] * 2 and np.isneginf(hits.scores).all()
        scores, pos = index.search_positions(q[:2], 4)
        assert (pos == -1).all() and np.isneginf(scores).all()
        assert len(index.range_search(q[0], -1.0).ids) == 0
        assert index.range_search_positions(q[:2], -1.0)[0].tolist() == [0, 0, 0]
        index.save(folder)
        back = open_index(folder)
        back.add(x[5:7], ["back", "again"])
        assert back.search(x[5], 2).row(0)[0] == ["back", "again"]


@pytest.mark.parametrize("name", list(BACKENDS))
def test_bad_input_raises_typed_errors_and_changes_nothing(name, cdata) -> None:
    x, ids, _ = cdata
    index = make(name, x[:300], ids[:300], mutable=True)
    with pytest.raises(EmbeddingError, match="16 dims"):
        index.search(np.ones(16, np.float32), 3)
    with pytest.raises(EmbeddingError, match="16 dims; this index has 32"):
        index.add(np.ones((1, 16), np.float32), ["new"])
    with pytest.raises(EmbeddingError, match="NaN"):
        index.search(np.full(32, np.nan, np.float32), 3)
    with pytest.raises(EmbeddingError, match="NaN"):
        index.add(np.full((1, 32), np.nan, np.float32), ["new"])
    with pytest.raises(EmbeddingError, match="already in the index: 'row-3'"):
        index.add(x[:2], ["new", "row-3"])
    with pytest.raises(NotFoundError, match="2 id\\(s\\) not in the index: 'nope', 'gone'"):
        index.remove(["row-0", "nope", "gone"])
    with pytest.raises(NotFoundError, match="'nope'"):
        index.vectors_for(["row-1", "nope"])
    with pytest.raises(InputError, match="k must be a whole number >= 1"):
        index.search(x[0], 0)
    with pytest.raises(InputError, match="threshold must be a finite number"):
        index.range_search(x[0], float("nan"))
    assert len(index) == 300 and index.search(x[3], 1).row(0)[0] == ["row-3"]


# -- LanceDB: selection, locations, files -------------------------------------------

def test_an_unknown_backend_or_a_uri_for_faiss_is_refused(cdata) -> None:
    x, ids, _ = cdata
    with pytest.raises(InputError, match="unknown index backend 'annoy'; choose one of faiss, lancedb"):
        build_index(x[:10], list(ids[:10]), backend="annoy")
    with pytest.raises(InputError, match="applies to the lancedb backend only"):
        build_index(x[:10], list(ids[:10]), uri="/tmp/somewhere")
    with pytest.raises(InputError, match="unknown index kind 'hnsw' for the lancedb backend"):
        build_index(x[:10], list(ids[:10]), backend="lancedb", kind="hnsw")


def test_lancedb_at_a_uri_records_it_and_refuses_bad_locations(cdata, tmp_path: Path) -> None:
    x, ids, q = cdata
    uri = str(tmp_path / "store")
    index = build_index(x[:500], list(ids[:500]), backend="lancedb", uri=uri)
    index.save(tmp_path / "emb")
    meta = json.loads((tmp_path / "emb" / "index.json").read_text())
    assert {k: meta[k] for k in ("backend", "uri", "kind", "dims")} == {
        "backend": "lancedb", "uri": uri, "kind": "exact", "dims": 32}
    assert sorted(p.name for p in (tmp_path / "emb").iterdir()) == ["index.json"]  # the table stays at the uri
    assert recorded_backend(tmp_path / "emb") == {"backend": "lancedb", "uri": uri}
    np.testing.assert_array_equal(open_index(tmp_path / "emb").search(q, 5).ids, index.search(q, 5).ids)
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(InputError, match="LanceDB URI .*file/db.* is not writable"):
        build_index(x[:10], list(ids[:10]), backend="lancedb", uri=str(tmp_path / "file" / "db"))
    with pytest.raises(EmbeddingError, match="holds 32-d vectors; these are 16-d"):
        build_index(x[:10, :16], list(ids[:10]), backend="lancedb", uri=uri)
    assert len(open_index(tmp_path / "emb")) == 500  # nothing changed
    other = tmp_path / "other"
    build_index(x[:10, :16], list(ids[:10]), backend="lancedb", uri=str(other))
    meta["uri"] = str(other)
    (tmp_path / "emb" / "index.json").write_text(json.dumps(meta))
    with pytest.raises(IndexStateError, match="holds 16-d vectors; index.json .* says 32-d"):
        open_index(tmp_path / "emb")
    meta["uri"] = str(tmp_path / "missing")
    (tmp_path / "emb" / "index.json").write_text(json.dumps(meta))
    with pytest.raises(IndexStateError, match="missing its LanceDB table"):
        open_index(tmp_path / "emb")


def test_lancedb_default_location_moves_beside_index_json_and_small_tables_scan(cdata, tmp_path: Path) -> None:
    x, ids, q = cdata
    index = build_index(x[:3000], list(ids[:3000]), backend="lancedb")  # auto: below INDEX_MIN_ROWS
    assert index.kind == "exact"
    index.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.json", "lance"]
    assert json.loads((tmp_path / "index.json").read_text())["uri"] == "lance"
    want, want_scores = brute_topk(x[:3000], ids[:3000], q, 10)
    for current in (index, open_index(tmp_path)):
        hits = current.search(q, 10)
        np.testing.assert_array_equal(hits.ids, want)
        np.testing.assert_allclose(hits.scores, want_scores, atol=1e-5)
    copy = tmp_path / "copy"
    open_index(tmp_path).save(copy)  # saved elsewhere: the table is copied along
    assert len(open_index(copy)) == 3000


def test_lancedb_large_subsets_post_filter_and_small_ones_are_scored_from_their_vectors(
        cdata, monkeypatch) -> None:
    import core.index.lance as lance_module

    x, ids, q = cdata
    index = make("lancedb", x, ids, mutable=True)  # IVF_PQ
    small = index.subset(list(ids[:300]))  # its vectors are read once, here
    assert small.local and small.vectors.shape == (300, 32)
    queries = []
    real_search = index._table.search
    monkeypatch.setattr(index._table, "search", lambda *a, **kw: queries.append(1) or real_search(*a, **kw))
    hits = index.search(q, 10, within=small)
    want, _ = brute_topk(x[:300], ids[:300], q, 10)
    assert not queries and recall_of(hits.ids, want) == 1.0  # exact, and LanceDB was not asked
    monkeypatch.setattr(lance_module, "LOCAL_MAX_ROWS", 1000)  # 2,000 and 12,000 rows: post-filter
    for size in (2000, 12000):
        pick = np.sort(np.random.default_rng(size).choice(len(x), size, replace=False))
        subset = index.subset(list(ids[pick]))
        assert not subset.local and int(subset.member.sum()) == size
        want, _ = brute_topk(x[pick], ids[pick], q, 10)
        hits = index.search(q, 10, within=subset)
        assert set(hits.ids.ravel()) <= set(ids[pick]) and recall_of(hits.ids, want) >= 0.95
        np.testing.assert_allclose(hits.scores, exact_scores(x, ids, hits.ids, q), atol=1e-5)
        top = list(hits.ids[0][:2])
        again = index.search(q[0], 5, within=subset, exclude=top).row(0)[0]
        assert len(again) == 5 and not set(again) & set(top) and set(again) <= set(ids[pick])
        t = float(hits.scores[0, 4])
        inside = index.range_search(q[0], t, within=subset)
        assert set(hits.ids[0][:5]) <= set(inside.ids) <= set(ids[pick])


def test_lancedb_reads_the_right_rows_by_id_after_optimize_compacts_them(cdata) -> None:
    x, ids, q = cdata
    index = make("lancedb", x[:3000], ids[:3000], mutable=True)
    index.add(x[3000:3500], list(ids[3000:3500]))  # a second fragment
    index.remove(list(ids[:1000:3]))
    np.testing.assert_allclose(index.vectors_for(["row-3100"]), unit(x[3100:3101]), atol=1e-6)  # row ids read
    index.optimize()  # compaction: the rows get new LanceDB row ids
    pick = ["row-2", "row-3100", "row-2999", "row-3499"]
    np.testing.assert_allclose(index.vectors_for(pick), unit(x[[2, 3100, 2999, 3499]]), atol=1e-6)
    hits = index.search(q[0], 4, within=index.subset(pick))
    assert set(hits.ids[0]) == set(pick)
    np.testing.assert_allclose(hits.scores, exact_scores(x, ids, hits.ids, q[:1]), atol=1e-5)
