from __future__ import annotations

import numpy as np
import pytest

from core.embeddings import load_embedding, load_index
from core.errors import InputError, NotFoundError
from core.index import build_index
from core.search import find_similar, search_vector


@pytest.fixture
def digits(digits_ws):
    ds = digits_ws.dataset("digits")
    rows = ds.rows().set_index("id")
    return load_index(ds), rows["label"].astype(str), load_embedding(ds)


def test_digits_neighbours_share_the_anchor_label(digits):
    """Ingest + embed + search on digits: over 50 random anchors, ≥ 8 of 10 share the label."""
    index, labels, _ = digits
    rng = np.random.default_rng(7)
    anchors = rng.choice(np.asarray(index.ids), 50, replace=False)
    same = []
    for anchor in anchors:
        result = find_similar(index, [anchor], k=10)
        assert anchor not in result.ids and len(result) == 10
        same.append(np.mean(labels.loc[list(result.ids)].to_numpy() == labels[anchor]) * 10)
    assert np.mean(same) >= 8, f"mean same-label neighbours {np.mean(same):.2f}"


def _confused_digit(index, labels, emb, digit: str) -> str:
    """The other digit whose centroid is closest to ``digit``'s centroid."""
    vecs = np.asarray(emb.vectors)
    lab = labels.loc[list(emb.ids)].to_numpy()
    cents = {d: vecs[lab == d].mean(0) for d in sorted(set(lab))}
    sims = {d: float(cents[digit] @ c) for d, c in cents.items() if d != digit}
    return max(sims, key=sims.get)


def test_multi_anchor_top10_and_negatives_push_out_the_confused_digit(digits):
    index, labels, emb = digits
    digit = "8"
    ids_of = lambda d: sorted(labels.index[labels == d])  # noqa: E731
    anchors = ids_of(digit)[:3]
    top10 = find_similar(index, anchors, k=10)
    assert sum(labels[i] == digit for i in top10.ids) >= 9
    other = _confused_digit(index, labels, emb, digit)
    base = find_similar(index, anchors, k=50)
    negatives = ids_of(other)[:3]
    pushed = find_similar(index, anchors, negatives, k=50)
    count = lambda r: sum(labels[i] == other for i in r.ids)  # noqa: E731
    assert count(pushed) < count(base), (other, count(base), count(pushed))
    assert pushed.recipe["negatives"] == negatives and pushed.recipe["method"] == "rocchio"


@pytest.mark.parametrize("method", ["rocchio", "max", "mean", "min"])
def test_threshold_returns_exactly_the_rows_at_or_above_it_inside_a_filter(method):
    rng = np.random.default_rng(1)
    vecs = rng.normal(size=(400, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ids = [f"r{i}" for i in range(400)]
    index = build_index(vecs, ids, kind="exact")
    within = ids[::2]
    anchors = ["r0", "r2", "r4"]
    result = find_similar(index, anchors, method=method, k=None, threshold=0.1, within=within)
    A = vecs[[0, 2, 4]]
    sims = vecs @ A.T
    brute = {"rocchio": vecs @ (A.mean(0) / np.linalg.norm(A.mean(0))), "max": sims.max(1),
             "mean": sims.mean(1), "min": sims.min(1)}[method]
    expected = {ids[i] for i in range(0, 400, 2) if brute[i] >= 0.1} - set(anchors)
    assert set(result.ids) == expected
    assert np.all(np.diff(result.scores) <= 1e-6)


def test_bad_anchors_and_methods_are_reported():
    vecs = np.eye(4, dtype=np.float32)
    index = build_index(vecs, list("abcd"), kind="exact")
    with pytest.raises(NotFoundError, match="'zz'"):
        find_similar(index, ["zz"])
    with pytest.raises(InputError, match="rocchio"):
        find_similar(index, ["a"], method="best")
    with pytest.raises(InputError, match="anchor"):
        find_similar(index, [])
    with pytest.raises(InputError, match="zero"):
        search_vector(index, np.zeros(4, np.float32))
