"""Tests for core.select.methods: random, ordered, cluster and diverse selection, scope and exclude."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from core.errors import EmbeddingError, InputError, SchemaError
from core.select import (
    SELECT_METHODS,
    Selection,
    apply_scope,
    scope_vectors,
    select_by_cluster,
    select_diverse,
    select_ordered,
    select_random,
)


def blobs(sizes: list[int], dims: int = 16, spread: float = 0.05, seed: int = 0):
    """Well-separated gaussian blobs: (ids, (N, dims) float32 vectors, blob of each id)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(sizes), dims))
    parts, owner = [], []
    for b, size in enumerate(sizes):
        parts.append(centres[b] + spread * rng.standard_normal((size, dims)))
        owner += [b] * size
    ids = [f"r{i:04d}" for i in range(sum(sizes))]
    return ids, np.vstack(parts).astype(np.float32), dict(zip(ids, owner))


def min_pairwise_cosine_distance(vectors: np.ndarray) -> float:
    X = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = X @ X.T
    np.fill_diagonal(sims, -np.inf)
    return float(1.0 - sims.max())


@pytest.fixture
def digits(digits_ws):
    """(ids, (n, d) vectors, id → digit label) of the real efficientnet embedding."""
    from core.embeddings import load_embedding

    ds = digits_ws.dataset("digits")
    emb = load_embedding(ds)
    rows = ds.rows()
    labels = dict(zip(rows["id"].astype(str), rows["label"].astype(str)))
    return [str(i) for i in emb.ids], np.asarray(emb.vectors, dtype=np.float32), labels


# ---- random -------------------------------------------------------------------------
def test_random_is_reproducible_per_seed_and_never_repeats():
    ids = [f"row-{i}" for i in range(500)]
    a = select_random(ids, 50, seed=7)
    b = select_random(ids, 50, seed=7)
    c = select_random(ids, 50, seed=8)
    assert a.ids == b.ids
    assert set(a.ids) != set(c.ids)
    assert len(set(a.ids)) == len(a.ids) == 50
    assert set(a.ids) <= set(ids)
    assert a.recipe == {"method": "random", "n": 50, "seed": 7, "scope_rows": 500}
    whole = select_random(ids, 500, seed=1)  # the whole scope, shuffled
    assert sorted(whole.ids) == sorted(ids) and list(whole.ids) != ids


def test_asking_for_more_rows_than_the_scope_names_both_numbers():
    with pytest.raises(InputError, match="asked for 500 rows but the scope has 120"):
        select_random([str(i) for i in range(120)], 500)
    for bad in (0, -3):
        with pytest.raises(InputError, match=f"n must be a whole number >= 1, got {bad}"):
            select_random(["a", "b"], bad)
    with pytest.raises(InputError, match="asked for 5 rows but the scope has 4"):
        select_diverse(list("abcd"), np.eye(4, dtype=np.float32), 5)
    with pytest.raises(InputError, match="appear more than once"):
        select_random(["a", "b", "a"], 2)


# ---- ordered ------------------------------------------------------------------------
@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("column", ["score", "name"])
def test_ordered_matches_pandas_sort_with_ties_and_nulls_last(descending, column):
    table = pd.DataFrame({
        "id": [f"r{i}" for i in range(9)],
        "score": [0.5, None, 0.9, 0.5, 0.1, None, 0.9, 0.3, 0.5],
        "name": ["b", "a", None, "c", "a", "b", None, "d", "a"],
    })
    expected = table.sort_values(column, ascending=not descending, na_position="last",
                                 kind="stable")["id"].tolist()
    for n in (1, 4, 9):
        sel = select_ordered(table, n, by=column, descending=descending)
        assert list(sel.ids) == expected[:n]
    full = select_ordered(table, 9, by=column, descending=descending)
    nulls = set(table.loc[table[column].isna(), "id"])
    assert set(full.ids[-len(nulls):]) == nulls  # nulls last in both directions
    assert full.recipe["by"] == column and full.recipe["descending"] is descending


def test_ordered_rejects_unknown_columns_and_too_large_n():
    table = pd.DataFrame({"id": ["a", "b"], "score": [1.0, 2.0], "label": ["x", "y"]})
    with pytest.raises(SchemaError, match="unknown column 'scroe'.*'id', 'score', 'label'"):
        select_ordered(table, 1, by="scroe")
    with pytest.raises(InputError, match="asked for 3 rows but the scope has 2"):
        select_ordered(table, 3, by="score")


# ---- cluster --------------------------------------------------------------------------
def test_cluster_selection_covers_every_digit(digits):
    ids, vectors, labels = digits
    sel = select_by_cluster(ids, vectors, 100, k=10)
    counts = Counter(labels[i] for i in sel.ids)
    per_digit = {d: counts.get(str(d), 0) for d in range(10)}
    assert len(sel.ids) == len(set(sel.ids)) == 100
    assert all(5 <= c <= 15 for c in per_digit.values()), per_digit
    assert sum(sel.recipe["cluster_sizes"]) == len(ids)
    assert sum(sel.recipe["per_cluster_counts"]) == 100
    json.dumps(sel.recipe)


def test_cluster_quotas_proportional_and_equal():
    ids, vectors, owner = blobs([300, 120, 60, 15, 5])
    prop = select_by_cluster(ids, vectors, 50, k=5)
    got = Counter(owner[i] for i in prop.ids)
    assert [got[b] for b in range(5)] == [30, 12, 6, 1, 1]  # largest remainder, ≥ 1 each
    assert sorted(prop.recipe["cluster_sizes"]) == [5, 15, 60, 120, 300]
    equal = select_by_cluster(ids, vectors, 50, k=5, per_cluster="equal", pick="random")
    got = Counter(owner[i] for i in equal.ids)
    assert got[4] == 5  # the 5-row blob is exhausted, its leftover goes to the others
    assert sorted(got.values()) == [5, 11, 11, 11, 12]
    assert len(set(equal.ids)) == 50
    # round-robin order: the first k picks are one per cluster
    assert len({owner[i] for i in prop.ids[:5]}) == 5


def test_cluster_selection_never_reports_empty_clusters_on_repeated_rows():
    rng = np.random.default_rng(1)
    three = rng.standard_normal((3, 8)).astype(np.float32)
    vectors = np.repeat(three, 10, axis=0)  # 30 rows, only 3 distinct points
    sel = select_by_cluster([f"r{i}" for i in range(30)], vectors, 6, k=10)
    assert sel.recipe["k"] == 3 and sorted(sel.recipe["cluster_sizes"]) == [10, 10, 10]
    assert sel.recipe["per_cluster_counts"] == [2, 2, 2] and len(set(sel.ids)) == 6


def test_cluster_central_pick_is_closest_to_the_blob_centre_and_random_is_seeded():
    ids, vectors, owner = blobs([40, 40], spread=0.2)
    central = select_by_cluster(ids, vectors, 2, k=2, pick="central")
    X = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for rid in central.ids:
        members = [j for j, i in enumerate(ids) if owner[i] == owner[rid]]
        centre = X[members].mean(axis=0)
        dist = np.linalg.norm(X[members] - centre, axis=1)
        assert ids[members[int(np.argmin(dist))]] == rid
    a = select_by_cluster(ids, vectors, 10, k=2, pick="random", seed=3)
    b = select_by_cluster(ids, vectors, 10, k=2, pick="random", seed=3)
    c = select_by_cluster(ids, vectors, 10, k=2, pick="random", seed=4)
    assert a.ids == b.ids and set(a.ids) != set(c.ids)


def test_cluster_rejects_bad_choices_and_bad_vectors():
    ids, vectors, _ = blobs([10, 10])
    with pytest.raises(InputError, match="unknown per_cluster 'even'; choose one of proportional, equal"):
        select_by_cluster(ids, vectors, 4, per_cluster="even")
    with pytest.raises(InputError, match="unknown pick 'middle'; choose one of central, random"):
        select_by_cluster(ids, vectors, 4, pick="middle")
    with pytest.raises(EmbeddingError, match=r"shape \(19, 16\) do not match 20 ids"):
        select_by_cluster(ids, vectors[:19], 4)
    bad = vectors.copy()
    bad[3, 0] = np.nan
    with pytest.raises(EmbeddingError, match="NaN or Inf.*'r0003'"):
        select_diverse(ids, bad, 4)


def test_cluster_selection_above_the_kmeans_sample_reads_a_memory_map(tmp_path, monkeypatch):
    from core.clusters import kmeans

    monkeypatch.setattr(kmeans, "KMEANS_SAMPLE", 2_000)  # 9,000 rows: fit on a sample, assign all
    ids, vectors, owner = blobs([3000, 2000, 1500, 1200, 800, 500], seed=7)
    np.save(tmp_path / "vectors.npy", vectors)
    mapped = np.load(tmp_path / "vectors.npy", mmap_mode="r")
    scope_ids, scoped = scope_vectors(ids, mapped, ids)
    assert scoped is mapped, "a scope of every row, in order, is not copied"
    sel = select_by_cluster(scope_ids, scoped, 60, k=6, seed=0)
    assert sel.ids == select_by_cluster(ids, vectors, 60, k=6, seed=0).ids
    assert sel.recipe["fitted_rows"] == 2_000 and sorted(sel.recipe["cluster_sizes"]) == [500, 800, 1200, 1500, 2000, 3000]
    got = Counter(owner[i] for i in sel.ids)
    assert [got[b] for b in range(6)] == [20, 14, 10, 8, 5, 3]  # proportional (largest remainder)
    assert len({owner[i] for i in sel.ids[:6]}) == 6  # round robin: one per cluster first
    central = sel.ids[0]
    members = [j for j, i in enumerate(ids) if owner[i] == owner[central]]
    X = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    centre = X[members].mean(axis=0)
    dist = np.linalg.norm(X[members] - centre, axis=1)  # the centroid was fitted on a sample:
    rank = int((dist < dist[members.index(ids.index(central))]).sum())  # its pick is among the most central
    assert rank < 0.02 * len(members)


# ---- diverse --------------------------------------------------------------------------
def test_diverse_beats_random_draws_on_digits(digits):
    ids, vectors, _labels = digits
    pos = {rid: j for j, rid in enumerate(ids)}
    sel = select_diverse(ids, vectors, 100, seed=0)
    assert len(set(sel.ids)) == 100
    diverse_gap = min_pairwise_cosine_distance(vectors[[pos[i] for i in sel.ids]])
    random_gaps = [
        min_pairwise_cosine_distance(vectors[[pos[i] for i in select_random(ids, 100, seed=s).ids]])
        for s in range(20)
    ]
    assert diverse_gap > max(random_gaps), (diverse_gap, max(random_gaps))
    assert sel.recipe["min_distance"] > 0
    assert select_diverse(ids, vectors, 100, seed=0).ids == sel.ids


def test_diverse_first_takes_one_row_from_each_separated_blob():
    ids, vectors, owner = blobs([50, 30, 20, 10, 5, 3])
    sel = select_diverse(ids, vectors, 6, seed=11)
    assert {owner[i] for i in sel.ids} == set(range(6))


# ---- scope ---------------------------------------------------------------------------
def test_apply_scope_keeps_order_and_rejects_a_bare_string():
    ids = ["d", "a", "c", "b", "e"]
    assert apply_scope(ids) == ids
    assert apply_scope(ids, within={"a", "b", "zz"}) == ["a", "b"]
    assert apply_scope(ids, exclude=["c"]) == ["d", "a", "b", "e"]
    assert apply_scope(ids, within=["e", "d", "a"], exclude=("a",)) == ["d", "e"]
    assert apply_scope(ids, within=[]) == []
    with pytest.raises(InputError, match="not the string 'abc'"):
        apply_scope(ids, within="abc")


@pytest.mark.parametrize("method", SELECT_METHODS)
def test_scope_and_exclude_work_with_every_method(method):
    ids, vectors, _ = blobs([60, 40, 20], seed=2)
    within = ids[::2]  # 60 rows
    exclude = within[:10]
    scope = apply_scope(ids, within=within, exclude=exclude)
    assert len(scope) == 50
    if method == "random":
        sel = select_random(scope, 20, seed=1)
    elif method == "ordered":
        table = pd.DataFrame({"id": ids, "score": np.arange(len(ids))[::-1]})
        sel = select_ordered(table[table["id"].isin(scope)], 20, by="score")
        assert list(sel.ids) == scope[::-1][:20]
    else:
        sub_ids, sub_vectors = scope_vectors(ids, vectors, scope)
        assert sub_ids == scope and sub_vectors.shape == (50, 16)
        if method == "cluster":
            sel = select_by_cluster(sub_ids, sub_vectors, 20, k=3)
        else:
            sel = select_diverse(sub_ids, sub_vectors, 20)
    assert isinstance(sel, Selection) and len(sel.ids) == len(set(sel.ids)) == 20
    assert set(sel.ids) <= set(scope) and not set(sel.ids) & set(exclude)
    assert sel.recipe["scope_rows"] == 50 and sel.recipe["method"] == method
    assert sel.to_json()["ids"] == list(sel.ids)
    json.dumps(sel.recipe)
    with pytest.raises(InputError, match="asked for 51 rows but the scope has 50"):
        select_random(scope, 51)
