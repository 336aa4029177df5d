"""core.quality.label_issues: label issues, near-duplicates, outliers, quality columns."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import InputError
from core.index import build_index
from core.quality import (
    find_label_issues,
    find_near_duplicates,
    quality_columns,
    score_outliers,
)

FLIP_SEED = 20240607


def _digits(ws):
    """(ids, vectors, labels dict) of the real efficientnet digits embedding."""
    from core.embeddings import load_embedding

    ds = ws.dataset("digits")
    emb = load_embedding(ds)
    rows = ds.rows().set_index("id")
    ids = [str(i) for i in emb.ids]
    return ids, np.asarray(emb.vectors, dtype=np.float32), {i: str(rows.at[i, "label"]) for i in ids}


def _flip(labels: dict[str, str], fraction: float, seed: int) -> tuple[dict[str, str], set[str]]:
    """Flip ``fraction`` of the labels to a different random digit."""
    rng = np.random.default_rng(seed)
    ids = sorted(labels)
    chosen = rng.choice(len(ids), round(fraction * len(ids)), replace=False)
    noisy = dict(labels)
    for p in chosen:
        old = labels[ids[p]]
        noisy[ids[p]] = str(rng.choice([d for d in range(10) if str(d) != old]))
    return noisy, {ids[p] for p in chosen}


def _clusters(n_per: int = 40, dims: int = 16, seed: int = 0) -> tuple[list[str], np.ndarray, dict[str, str]]:
    """Three tight, well separated clusters labelled a, b, c."""
    rng = np.random.default_rng(seed)
    centers = np.eye(dims, dtype=np.float32)[:3] * 5
    vecs = np.concatenate([c + 0.3 * rng.standard_normal((n_per, dims)) for c in centers]).astype(np.float32)
    ids = [f"row-{i:03d}" for i in range(len(vecs))]
    labels = {i: "abc"[p // n_per] for p, i in enumerate(ids)}
    return ids, vecs, labels


# ---------------------------------------------------------------- label issues


def test_flipped_digit_labels_rank_at_the_top(digits_ws) -> None:
    ids, vecs, labels = _digits(digits_ws)
    noisy, flipped = _flip(labels, 0.05, FLIP_SEED)
    assert len(flipped) == 90
    issues = find_label_issues(build_index(vecs, ids), noisy, k=10)
    top = issues.top(90)
    caught = sum(i in flipped for i in top.ids)
    print(f"flipped rows in top 90: {caught}/90")
    assert caught >= 45
    # every flipped row that was caught suggests a label other than the noisy one
    for i, given, sugg in zip(top.ids, top.given, top.suggested):
        assert given == noisy[i] and sugg != given
    # for most caught rows the suggestion is the true digit
    restored = sum(labels[i] == s for i, s in zip(top.ids, top.suggested) if i in flipped)
    assert restored >= 0.8 * caught
    assert len(issues) == len(ids)
    assert np.all(np.diff(issues.scores) <= 0)
    assert issues.scores.dtype == np.float32 and issues.scores.min() >= 0 and issues.scores.max() <= 1


def test_mislabelled_row_in_clusters_is_worst_and_json_shape() -> None:
    ids, vecs, labels = _clusters()
    labels["row-005"] = "c"  # sits in cluster a
    issues = find_label_issues(build_index(vecs, ids), labels, k=5)
    assert issues.ids[0] == "row-005"
    assert issues.given[0] == "c" and issues.suggested[0] == "a"
    assert issues.scores[0] == pytest.approx(1.0, abs=1e-4)
    doc = issues.to_json(limit=2)
    assert [set(d) for d in doc["issues"]] == [{"id", "label", "suggested", "score", "flagged_by",
                                                "neighbour_score", "model_score"}] * 2
    assert doc["issues"][0]["flagged_by"] == ["neighbours"] and doc["source"] == "neighbours"
    assert doc["issues"][0] == {"id": "row-005", "label": "c", "suggested": "a", "score": pytest.approx(1.0, abs=1e-4),
                                "flagged_by": ["neighbours"], "neighbour_score": pytest.approx(1.0, abs=1e-4),
                                "model_score": None}
    assert len(issues.top(3)) == 3 and issues.top(3).ids == issues.ids[:3]


def test_unlabelled_rows_are_ignored_not_errors() -> None:
    ids, vecs, labels = _clusters()
    blank = {i: lab for i, lab in labels.items()}
    for i, value in zip(ids[::4], [None, float("nan"), "", "  "] * 100):
        blank[i] = value
    blank.pop(ids[1])  # missing from the mapping entirely
    blank["not-in-index"] = "b"
    issues = find_label_issues(build_index(vecs, ids), blank, k=5)
    unlabelled = set(ids[::4]) | {ids[1]}
    assert not unlabelled & set(issues.ids)
    assert set(issues.ids) == set(ids) - unlabelled
    assert "not-in-index" not in issues.ids
    # clean clusters: no row is an issue
    assert issues.scores.max() < 0.01


def test_single_label_and_bad_k_raise_input_error() -> None:
    ids, vecs, _ = _clusters()
    index = build_index(vecs, ids)
    with pytest.raises(InputError, match="at least 2 different labels"):
        find_label_issues(index, {i: "cat" for i in ids})
    with pytest.raises(InputError, match="at least 2 different labels"):
        find_label_issues(index, {i: None for i in ids})
    with pytest.raises(InputError, match="k must be"):
        find_label_issues(index, {ids[0]: "a", ids[-1]: "c"}, k=0)


def test_label_issues_exclude_self_not_its_exact_twin() -> None:
    # two copies of one vector with different labels, far from everything else
    ids, vecs, labels = _clusters()
    twin = -vecs[:1] * 3
    index = build_index(np.concatenate([vecs, twin, twin]), ids + ["twin-x", "twin-y"])
    labels = {**labels, "twin-x": "a", "twin-y": "b"}
    issues = find_label_issues(index, labels, k=1)
    got = dict(zip(issues.ids, zip(issues.suggested, issues.scores)))
    # with self excluded, each twin's single neighbour is the other twin
    assert got["twin-x"][0] == "b" and got["twin-x"][1] == pytest.approx(1.0, abs=1e-4)
    assert got["twin-y"][0] == "a" and got["twin-y"][1] == pytest.approx(1.0, abs=1e-4)


# ---------------------------------------------------------------- duplicates


def test_twin_vectors_from_digits_are_all_found_at_0_99(digits_ws) -> None:
    ids, vecs, labels = _digits(digits_ws)
    twins = [f"{i}#copy" for i in ids]
    index = build_index(np.concatenate([vecs, vecs]), ids + twins)
    both = {**labels, **{t: labels[i] for t, i in zip(twins, ids)}}
    both[twins[0]] = "not-" + labels[ids[0]]  # one twin pair disagrees on the label
    dups = find_near_duplicates(index, threshold=0.99, labels=both)
    found = {(a, b) for a, b, _ in dups.pairs}
    missing = [i for i, t in zip(ids, twins) if (min(i, t), max(i, t)) not in found]
    assert missing == []
    assert all(a < b and s >= 0.99 - 1e-5 and s <= 1.0 for a, b, s in dups.pairs)
    assert [p[2] for p in dups.pairs] == sorted((p[2] for p in dups.pairs), reverse=True)
    conflicts = [g for g in dups.groups if g.conflict]
    assert any(ids[0] in g.ids and twins[0] in g.ids for g in conflicts)
    assert dups.groups[0].conflict  # conflicts come first
    # every twin is in some group, and each group holds both halves of its twin pairs
    where = {i: n for n, g in enumerate(dups.groups) for i in g.ids}
    assert all(where[i] == where[t] for i, t in zip(ids, twins))


def test_same_image_saved_twice_is_a_duplicate_and_conflict(digits_folder: Path, tmp_path: Path, ws) -> None:
    from core.embeddings import compute_embeddings, load_index
    from core.ingest import ingest_folder

    folder = tmp_path / "small"
    picked = []
    for digit in ("3", "7", "8"):
        for src in sorted((digits_folder / digit).glob("*.png"))[:5]:
            (folder / digit).mkdir(parents=True, exist_ok=True)
            shutil.copy(src, folder / digit / src.name)
            picked.append(f"{digit}/{src.name}")
    same_label = picked[0]  # 3/...: copy kept under digit 3
    other_label = picked[5]  # 7/...: copy filed under digit 1
    shutil.copy(folder / same_label, folder / "3" / "again.png")
    (folder / "1").mkdir()
    shutil.copy(folder / other_label, folder / "1" / "mislabelled-copy.png")
    ingest_folder(ws, folder, "small")
    ds = ws.dataset("small")
    compute_embeddings(ds)
    labels = dict(zip(ds.rows()["id"], ds.rows()["label"]))
    dups = find_near_duplicates(load_index(ds), threshold=0.99, labels=labels)
    found = {(a, b): s for a, b, s in dups.pairs}
    assert (same_label, "3/again.png") in found or ("3/again.png", same_label) in found
    assert ("1/mislabelled-copy.png", other_label) in found
    by_id = {i: g for g in dups.groups for i in g.ids}
    assert by_id["1/mislabelled-copy.png"].conflict
    assert set(by_id["1/mislabelled-copy.png"].labels) == {"1", "7"}
    assert not by_id["3/again.png"].conflict
    doc = dups.to_json()
    assert {"a", "b", "score"} == set(doc["pairs"][0])
    assert doc["groups"][0]["conflict"] is True


def test_duplicate_threshold_is_validated_and_1_0_finds_exact_copies() -> None:
    ids, vecs, _ = _clusters()
    index = build_index(np.concatenate([vecs, vecs[:3]]), ids + ["c0", "c1", "c2"])
    for bad in (0, -0.5, 1.01, float("nan")):
        with pytest.raises(InputError, match="threshold"):
            find_near_duplicates(index, threshold=bad)
    dups = find_near_duplicates(index, threshold=1.0)
    assert {(a, b) for a, b, _ in dups.pairs} == {("c0", "row-000"), ("c1", "row-001"), ("c2", "row-002")}
    assert all(g.labels == (None, None) and not g.conflict for g in dups.groups)


def test_many_identical_rows_form_one_group() -> None:
    # 30 copies of one vector: more than the kNN candidates per row, so range search must kick in
    ids, vecs, _ = _clusters()
    copies = np.repeat(-vecs[:1], 30, axis=0)
    cids = [f"copy-{i:02d}" for i in range(30)]
    dups = find_near_duplicates(build_index(np.concatenate([vecs, copies]), ids + cids), threshold=0.999)
    assert len(dups.pairs) == 30 * 29 // 2
    assert len(dups.groups) == 1 and dups.groups[0].ids == tuple(cids)


# ---------------------------------------------------------------- outliers


def test_obvious_outlier_ranks_first_and_scores_are_0_to_1() -> None:
    ids, vecs, _ = _clusters()
    odd = np.zeros((1, vecs.shape[1]), np.float32)
    odd[0, -1] = 1.0  # orthogonal to every cluster
    out = score_outliers(build_index(np.concatenate([vecs, odd]), ids + ["odd"]), k=5)
    assert out.ids[0] == "odd" and out.scores[0] == pytest.approx(1.0)
    assert out.scores.min() == pytest.approx(0.0) and out.scores.max() <= 1.0
    assert np.all(np.diff(out.scores) <= 0)
    assert sorted(out.ids) == sorted(ids + ["odd"])
    with pytest.raises(InputError, match="k must be"):
        score_outliers(build_index(vecs, ids), k=-1)



@pytest.mark.parametrize("seed", range(8))
def test_two_rows_are_equally_unique_despite_float32_rounding(seed: int) -> None:
    # A->B and B->A similarities can differ by an ulp; that must not make one row "unique".
    vecs = np.random.default_rng(seed).normal(size=(2, 8)).astype(np.float32)
    out = score_outliers(build_index(vecs, ["a", "b"]), k=5)
    assert sorted(out.ids) == ["a", "b"]
    assert out.scores.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("seed", range(8))
def test_equilateral_triangle_rows_all_score_0(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    angles = np.array([0.0, 2 * np.pi / 3, 4 * np.pi / 3]) + rng.uniform(0, 2 * np.pi)
    planar = np.zeros((3, 16))
    planar[:, 0], planar[:, 1] = np.cos(angles), np.sin(angles)  # 120 degrees apart
    for vecs in (planar @ rotation, np.eye(3, 16) @ rotation):  # 120 and 90 degrees apart
        vecs = vecs.astype(np.float32)
        assert len({v.tobytes() for v in vecs}) == 3
        out = score_outliers(build_index(vecs, ["a", "b", "c"]), k=5)
        assert out.scores.tolist() == [0.0, 0.0, 0.0]
        assert out.ids == ("a", "b", "c")  # ties by id

# ---------------------------------------------------------------- columns


def test_quality_columns_one_row_per_id(digits_ws) -> None:
    ids, vecs, labels = _digits(digits_ws)
    noisy, flipped = _flip(labels, 0.05, FLIP_SEED)
    noisy[ids[0]] = None
    index = build_index(vecs, ids)
    table = quality_columns(index, noisy, k=10)
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == ["id", "label_issue_score", "suggested_label", "uniqueness"]
    assert len(table) == len(ids) and table["id"].tolist() == list(index.ids)
    row0 = table.set_index("id").loc[ids[0]]
    assert np.isnan(row0["label_issue_score"]) and row0["suggested_label"] is None
    # same numbers as the dedicated functions
    issues = find_label_issues(index, noisy, k=10)
    by_id = table.set_index("id")
    np.testing.assert_allclose(by_id.loc[list(issues.ids), "label_issue_score"], issues.scores, atol=1e-6)
    assert by_id.loc[list(issues.ids), "suggested_label"].tolist() == list(issues.suggested)
    out = score_outliers(index, k=10)
    np.testing.assert_allclose(by_id.loc[list(out.ids), "uniqueness"], out.scores, atol=1e-6)
    assert table["uniqueness"].between(0, 1).all()
    # flipped rows score higher on average than the rest
    flipped_mask = table["id"].isin(flipped)
    assert table.loc[flipped_mask, "label_issue_score"].mean() > 3 * table.loc[~flipped_mask, "label_issue_score"].mean()


def test_quality_columns_single_label_keeps_uniqueness() -> None:
    ids, vecs, _ = _clusters()
    table = quality_columns(build_index(vecs, ids), {i: "same" for i in ids}, k=5)
    assert table["label_issue_score"].isna().all() and table["suggested_label"].isna().all()
    assert table["uniqueness"].notna().all()


# ---------------------------------------------------------------- shared kNN pass


def test_shared_neighbours_give_the_same_answers_and_stale_ones_are_refused() -> None:
    from core.errors import IndexStateError
    from core.quality import nearest_neighbours

    ids, vecs, labels = _clusters()
    labels["row-005"] = "c"
    vecs = np.concatenate([vecs, vecs[:2]])
    ids = ids + ["dup-0", "dup-1"]
    index = build_index(vecs, ids)
    shared = nearest_neighbours(index, k=4)  # narrower than k=5: label issues search again
    assert shared.scores.shape == (len(ids), 4) and shared.positions.shape == (len(ids), 4)
    assert not (shared.positions == np.arange(len(ids))[:, None]).any()  # self never listed
    for nb in (shared, nearest_neighbours(index, k=16)):
        a, b = find_label_issues(index, labels, k=5, neighbours=nb), find_label_issues(index, labels, k=5)
        assert a.ids == b.ids and a.suggested == b.suggested
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)
        assert find_near_duplicates(index, 0.99, neighbours=nb) == find_near_duplicates(index, 0.99)
        o1, o2 = score_outliers(index, k=3, neighbours=nb), score_outliers(index, k=3)
        assert o1.ids == o2.ids
        pd.testing.assert_frame_equal(quality_columns(index, labels, k=3, neighbours=nb),
                                      quality_columns(index, labels, k=3))
    other = build_index(vecs[:-1], ids[:-1])
    with pytest.raises(IndexStateError, match="recompute"):
        find_label_issues(other, labels, neighbours=shared)


def test_the_stored_pass_is_wide_enough_for_every_default_score():
    from core.quality import DEFAULT_K, DUPLICATE_CANDIDATES, OUTLIER_K, pass_width

    assert pass_width() == max(DEFAULT_K, DUPLICATE_CANDIDATES, OUTLIER_K)
    assert pass_width(5) == max(DUPLICATE_CANDIDATES, OUTLIER_K)  # duplicates still need their candidates
    assert pass_width(64) == 64
