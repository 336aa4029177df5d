"""core.search.keywords: BM25 keyword search, exact-phrase checks, reciprocal rank fusion and
the dataset's stored keyword index (reused while the rows' text is unchanged)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import IndexStateError, InputError
from core.ingest import ingest_table
from core.search.keywords import (
    KEYWORD_DIR,
    MAX_QUERY_CHARS,
    KeywordIndex,
    ensure_keyword_index,
    reciprocal_rank_fusion,
    tokenize,
)

REPO = Path(__file__).resolve().parents[3]
COMMON = ["apple", "river", "stone", "cloud", "paper", "green", "light", "table", "music", "window"]


def _filler(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(COMMON, k=12)) for _ in range(n)]


@pytest.fixture(scope="module")
def five_hundred() -> KeywordIndex:
    """500 rows of common words; row 137 alone holds the rare token 'zyxqvb'."""
    texts = _filler(500)
    texts[137] = texts[137] + " zyxqvb"
    return KeywordIndex.build([f"r{i}" for i in range(500)], texts)


def test_tokenize_splits_on_anything_not_a_letter_or_digit_and_drops_stop_words():
    assert tokenize("numpy.cumsum") == ["numpy", "cumsum"]
    assert tokenize("img_0001.png") == ["img", "0001", "png"]
    assert tokenize("The Sum OF an Array, in Café-style!") == ["sum", "array", "café", "style"]
    assert tokenize("the of and ... ?!") == []


def test_a_rare_exact_token_is_rank_one(five_hundred: KeywordIndex):
    hits = five_hundred.search("zyxqvb", 10)
    assert hits.positions.tolist() == [137] and five_hundred.ids[137] == "r137"
    mixed = five_hundred.search("apple river zyxqvb", 10)
    assert mixed.positions[0] == 137
    assert mixed.positions.dtype == np.int64 and mixed.scores.dtype == np.float32
    assert (mixed.scores > 0).all() and (np.diff(mixed.scores) <= 0).all()


def test_k_is_respected_and_must_be_at_least_one(five_hundred: KeywordIndex):
    assert len(five_hundred.search("apple", 7).positions) == 7
    assert len(five_hundred.search("apple", 10_000).positions) <= 500
    with pytest.raises(InputError, match="k must be a whole number >= 1"):
        five_hundred.search("apple", 0)


def test_within_keeps_only_the_allowed_rows(five_hundred: KeywordIndex):
    within = np.zeros(500, dtype=bool)
    within[100:200] = True
    within[137] = False
    hits = five_hundred.search("zyxqvb apple", 50, within=within)
    assert 137 not in hits.positions and len(hits.positions) > 0
    assert within[hits.positions].all()
    assert five_hundred.search("zyxqvb", 5, within=within).positions.tolist() == []
    with pytest.raises(InputError, match="bool mask"):
        five_hundred.search("apple", 5, within=np.ones(499, dtype=bool))


def test_equal_scores_come_back_in_row_order():
    index = KeywordIndex.build(list("abcdef"), ["red fox", "blue", "red fox", "red fox", "x", "red fox"])
    hits = index.search("fox", 3)
    assert hits.positions.tolist() == [0, 2, 3]
    assert len(set(hits.scores.tolist())) == 1
    assert index.search("fox", 10).positions.tolist() == [0, 2, 3, 5]


def test_a_stop_word_or_punctuation_query_finds_nothing_without_an_error(five_hundred: KeywordIndex):
    for query in ("the of and", "?!", "word-not-in-any-row"):
        hits = five_hundred.search(query, 10)
        assert hits.positions.tolist() == [] and hits.scores.tolist() == []


def test_an_empty_or_too_long_query_is_refused(five_hundred: KeywordIndex):
    for query in ("", "   \n\t"):
        with pytest.raises(InputError, match="the search query is empty; type a few words"):
            five_hundred.search(query, 5)
    with pytest.raises(InputError, match=str(MAX_QUERY_CHARS)):
        five_hundred.search("a" * (MAX_QUERY_CHARS + 1), 5)
    assert five_hundred.search("zyxqvb " + "x" * (MAX_QUERY_CHARS - 7), 5).positions.tolist() == [137]


def test_phrase_positions_keeps_the_rows_holding_the_exact_phrase_in_order():
    texts = ["sum of the cumulative values", "Return the Cumulative  sum.", "cumulative, sum!",
             "cumulative product then sum", "the cumulative sums"]
    index = KeywordIndex.build([f"d{i}" for i in range(5)], texts)
    hits = index.search("cumulative sum", 10)
    assert set(hits.positions.tolist()) == {0, 1, 2, 3, 4}
    phrase = index.phrase_positions("cumulative sum", hits.positions)
    assert phrase.tolist() == [p for p in hits.positions.tolist() if p in (1, 2)] and len(phrase) == 2
    assert phrase.dtype == np.int64
    assert index.phrase_positions("CUMULATIVE-sum", np.array([2, 1, 0])).tolist() == [2, 1]
    assert index.phrase_positions("cumulative", hits.positions).tolist() == []
    assert index.phrase_positions("", hits.positions).tolist() == []
    with pytest.raises(InputError, match="positions"):
        index.phrase_positions("cumulative sum", np.array([5]))


def test_build_refuses_mismatched_lengths_and_duplicate_ids():
    with pytest.raises(InputError, match="2 ids but 1 texts"):
        KeywordIndex.build(["a", "b"], ["x"])
    with pytest.raises(InputError, match="duplicate row ids: 'a'"):
        KeywordIndex.build(["a", "b", "a"], ["x", "y", "z"])


def test_rows_without_any_word_make_an_index_that_finds_nothing(tmp_path: Path):
    index = KeywordIndex.build(["a", "b"], ["the", ""])
    assert len(index) == 2 and not index.has_text()
    assert index.search("anything", 5).positions.tolist() == []
    index.save(tmp_path / "kw")
    again = KeywordIndex.load(tmp_path / "kw")
    assert not again.has_text() and again.ids.tolist() == ["a", "b"]


def test_save_and_load_round_trip(tmp_path: Path, five_hundred: KeywordIndex):
    folder = tmp_path / "kw"
    five_hundred.save(folder)
    loaded = KeywordIndex.load(folder)
    assert loaded.ids.tolist() == five_hundred.ids.tolist() and loaded.texts == five_hundred.texts
    assert loaded.text_hash == five_hundred.text_hash and len(loaded) == 500 and loaded.has_text()
    for query in ("zyxqvb", "apple river", "music window stone"):
        a, b = five_hundred.search(query, 25), loaded.search(query, 25)
        assert a.positions.tolist() == b.positions.tolist()
        np.testing.assert_array_equal(a.scores, b.scores)
    small = KeywordIndex.build(["x"], ["replaced text"])
    small.save(folder)  # saving over an index replaces it whole
    assert KeywordIndex.load(folder).ids.tolist() == ["x"]
    assert not [p for p in tmp_path.iterdir() if p.name != "kw"]  # no temp folders left behind


@pytest.mark.parametrize("damage", ["missing folder", "no meta", "garbled rows", "edited text", "no vocab"])
def test_load_names_a_missing_or_corrupt_folder(tmp_path: Path, damage: str):
    folder = tmp_path / "kw"
    KeywordIndex.build(["a", "b"], ["red fox", "blue whale"]).save(folder)
    if damage == "missing folder":
        folder = tmp_path / "elsewhere"
    elif damage == "no meta":
        (folder / "meta.json").unlink()
    elif damage == "garbled rows":
        (folder / "rows.json").write_text("{not json")
    elif damage == "edited text":
        (folder / "rows.json").write_text(json.dumps({"ids": ["a", "b"], "texts": ["red fox", "grey whale"]}))
    else:
        (folder / "vocab.index.json").unlink()
    with pytest.raises(IndexStateError, match="keyword index"):
        KeywordIndex.load(folder)


def test_rrf_on_a_hand_example():
    ids, scores = reciprocal_rank_fusion([["a", "b", "c"], ["b", "d", "a"]])
    # a: 1/61 + 1/63; b: 1/62 + 1/61; c: 1/63; d: 1/62
    assert ids == ["b", "a", "d", "c"]
    expected = np.array([1 / 62 + 1 / 61, 1 / 61 + 1 / 63, 1 / 62, 1 / 63], dtype=np.float32)
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    assert scores.dtype == np.float32
    ids, scores = reciprocal_rank_fusion([["a", "b"], []], k=0)
    assert ids == ["a", "b"] and scores.tolist() == [1.0, 0.5]
    ids, scores = reciprocal_rank_fusion([])
    assert ids == [] and scores.shape == (0,) and scores.dtype == np.float32


def test_rrf_breaks_ties_by_best_rank_then_first_appearance():
    # k=0: q = 1/1, r = 1/1, p = 1/2 + 1/2 — all 1.0. q and r were ranked first somewhere, p never;
    # q appears before r. By first appearance alone p (list 0, position 1) would precede r.
    ids, scores = reciprocal_rank_fusion([["q", "p"], ["r", "p"]], k=0)
    assert ids == ["q", "r", "p"] and scores.tolist() == [1.0, 1.0, 1.0]
    ids, _ = reciprocal_rank_fusion([["x", "y"], ["y", "x"]])  # equal sums, both best rank 1
    assert ids == ["x", "y"]
    ids, _ = reciprocal_rank_fusion([["y", "x"], ["x", "y"]])
    assert ids == ["y", "x"]
    ids, _ = reciprocal_rank_fusion([["a", "a", "b"]])  # a repeated id counts once, at its best rank
    assert ids == ["a", "b"]


def _rotations(seed: int) -> list[list[str]]:
    """Three rotations of 300 ids (ids i, i+100 and i+200 get the same three ranks, from different
    lists, so summed in different orders, and tie), built through a dict and a set filled in a
    seed-dependent order."""
    rng = random.Random(seed)
    ids = [f"id{i}" for i in range(300)]
    rng.shuffle(ids)
    number = {rid: int(rid[2:]) for rid in set(ids)}
    return [sorted(number, key=lambda rid: (number[rid] - shift) % 300) for shift in (0, 100, 200)]


ROTATIONS = "[[f'id{(i + shift) % 300}' for i in range(300)] for shift in (0, 100, 200)]"


def test_rrf_is_identical_for_equal_inputs_whatever_the_insertion_or_hash_order():
    assert _rotations(1) == _rotations(2)
    a, b = reciprocal_rank_fusion(_rotations(1)), reciprocal_rank_fusion(_rotations(2))
    assert a[0] == b[0] and a[1].tobytes() == b[1].tobytes()
    assert len(set(a[1].tolist())) == 100 and a[0][:3] == ["id0", "id100", "id200"]  # ties
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]);"
            "from core.search.keywords import reciprocal_rank_fusion as f;"
            f"ids, s = f({ROTATIONS}); print(json.dumps([ids, s.tobytes().hex()]))")
    outputs = {  # string hashes, so set and dict internals, differ between these processes
        subprocess.run([sys.executable, "-c", code, str(REPO)], capture_output=True, text=True,
                       check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1
    ids, hexed = json.loads(outputs.pop())
    assert ids == a[0] and hexed == a[1].tobytes().hex()


def _ingest(ws, tmp_path: Path, texts: list[str], name: str = "notes"):
    src = tmp_path / f"{name}-{len(list(tmp_path.glob('*.csv')))}.csv"
    pd.DataFrame({"id": [f"n{i}" for i in range(len(texts))], "text": texts}).to_csv(src, index=False)
    ingest_table(ws, src, name, replace=True)
    return ws.dataset(name)


def test_ensure_keyword_index_reuses_the_stored_index_until_a_row_text_changes(ws, tmp_path, monkeypatch):
    texts = ["numpy.cumsum: return the cumulative sum", "numpy.cumprod: cumulative product",
             "numpy.linalg.inv: inverse of a matrix"]
    ds = _ingest(ws, tmp_path, texts)
    first = ensure_keyword_index(ds)
    assert (ds.path / KEYWORD_DIR / "meta.json").exists()
    assert first.ids.tolist() == ["n0", "n1", "n2"]
    assert first.ids[first.search("inverse matrix", 3).positions[0]] == "n2"

    real_build = KeywordIndex.build
    builds: list[int] = []

    def counting_build(ids, texts):
        builds.append(len(ids))
        return real_build(ids, texts)

    monkeypatch.setattr(KeywordIndex, "build", staticmethod(counting_build))
    again = ensure_keyword_index(ds)
    assert builds == [] and again.text_hash == first.text_hash
    assert again.search("cumulative sum", 3).positions.tolist() == first.search("cumulative sum", 3).positions.tolist()

    texts[1] = "numpy.cumprod: cumulative product, also called zyxqvb"
    ds = _ingest(ws, tmp_path, texts)
    changed = ensure_keyword_index(ds)
    assert builds == [3] and changed.text_hash != first.text_hash
    assert changed.ids[changed.search("zyxqvb", 3).positions].tolist() == ["n1"]
    assert ensure_keyword_index(ds).text_hash == changed.text_hash and builds == [3]

    rows = ds.rows()
    rows.loc[0, "text"] = "an edited description"
    assert ensure_keyword_index(ds, rows).search("edited", 3).positions.tolist() == [0]
    assert builds == [3, 3]


def test_ensure_keyword_index_rebuilds_a_corrupt_stored_index(ws, tmp_path):
    ds = _ingest(ws, tmp_path, ["red fox", "blue whale"])
    ensure_keyword_index(ds)
    (ds.path / KEYWORD_DIR / "rows.json").write_text("{broken")
    index = ensure_keyword_index(ds)
    assert index.ids[index.search("whale", 2).positions].tolist() == ["n1"]
    assert KeywordIndex.load(ds.path / KEYWORD_DIR).text_hash == index.text_hash


def test_coverage_is_the_share_of_the_query_idf_a_row_holds():
    index = KeywordIndex.build(["a", "b", "c", "d"], ["red apple pie", "red river", "green apple", "blue sky"])
    cov = index.coverage("red apple", np.arange(4))
    # "red" and "apple" each occur in 2 of 4 rows: equal idf, so half each
    np.testing.assert_allclose(cov, [1.0, 0.5, 0.5, 0.0], atol=1e-6)
    rare = index.coverage("apple zebra", np.array([0]))  # zebra: in no row, the larger idf
    assert 0 < rare[0] < 0.5
    assert index.coverage("the of", np.arange(4)).tolist() == [0, 0, 0, 0]


def test_weighted_rrf_scales_each_position_of_a_ranking():
    ids, scores = reciprocal_rank_fusion([["x", "y"], ["y", "x"]], k=0, weights=[None, [1.0, 0.0]])
    assert ids == ["y", "x"]  # y: 1/2 + 1/1; x: 1/1 + 0
    np.testing.assert_allclose(scores, [1.5, 1.0])
    with pytest.raises(InputError, match="weights"):
        reciprocal_rank_fusion([["x"]], weights=[[1.0, 2.0]])
