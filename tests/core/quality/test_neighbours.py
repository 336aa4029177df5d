"""core.quality: the neighbours of a flagged row read back from the shared kNN pass
(:func:`neighbours_of`) and each duplicate's closest twin (:func:`closest_partners`)."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import InputError
from core.index import build_index
from core.quality import (
    Duplicates,
    closest_partners,
    find_near_duplicates,
    nearest_neighbours,
    neighbours_of,
)


def _vectors(n: int = 60, dims: int = 12, seed: int = 3) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((n, dims)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return [f"r{i:02d}" for i in range(n)], vecs


def test_neighbours_of_are_the_nearest_rows_best_first_self_excluded() -> None:
    ids, vecs = _vectors()
    shared = nearest_neighbours(build_index(vecs, ids), k=16)
    asked = ["r07", "r31", "nope", "r07"]
    got = neighbours_of(shared, asked, n=5)
    assert len(got) == 4 and got[2] == () and got[0] == got[3]
    for rid, near in zip(asked, got):
        if rid == "nope":
            continue
        p = ids.index(rid)
        cos = vecs @ vecs[p]
        cos[p] = -np.inf
        best = np.argsort(-cos)[:5]
        assert [n for n, _ in near] == [ids[b] for b in best]
        np.testing.assert_allclose([s for _, s in near], cos[best], atol=1e-5)
        assert all(isinstance(n, str) and isinstance(s, float) for n, s in near)


def test_neighbours_of_never_reads_past_the_pass_or_its_padding() -> None:
    ids, vecs = _vectors(n=3)
    shared = nearest_neighbours(build_index(vecs, ids), k=16)  # 2 real neighbours, 14 padding
    (near,) = neighbours_of(shared, ["r01"], n=10)
    assert sorted(n for n, _ in near) == ["r00", "r02"]
    ids, vecs = _vectors()
    narrow = nearest_neighbours(build_index(vecs, ids), k=3)
    assert [len(x) for x in neighbours_of(narrow, ["r00", "r01"], n=5)] == [3, 3]
    with pytest.raises(InputError, match="n"):
        neighbours_of(narrow, ["r00"], n=0)


def test_closest_partners_name_each_duplicates_best_twin() -> None:
    ids, vecs = _vectors(n=20)
    twins = vecs.copy()
    twins[1] = vecs[0] + 0.01 * vecs[5]  # r01 ≈ r00
    twins[2] = vecs[0] + 0.05 * vecs[6]  # r02 ≈ r00, a little further
    twins /= np.linalg.norm(twins, axis=1, keepdims=True)
    dups = find_near_duplicates(build_index(twins, ids), 0.99)
    partners = closest_partners(dups)
    assert set(partners) == {a for a, _, _ in dups.pairs} | {b for _, b, _ in dups.pairs}
    for rid, (other, score) in partners.items():
        p, q = ids.index(rid), ids.index(other)
        cos = twins @ twins[p]
        cos[p] = -np.inf
        assert q == int(np.argmax(cos)) and score == pytest.approx(float(cos[q]), abs=1e-5)
    assert partners["r00"][0] == "r01" and partners["r02"][0] in {"r00", "r01"}
    assert closest_partners(Duplicates(pairs=(), groups=(), threshold=0.9)) == {}
