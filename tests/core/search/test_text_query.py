"""Text search over a dataset: which method answers (clip, class-names, text, row-text), the
semantic / keyword / hybrid modes, one calibrated space for images and texts, exact phrases
first, and the CLI's ``--mode``."""

from __future__ import annotations

import json
import random
import string

import numpy as np
import pandas as pd
import pytest

from core.embeddings import compute_embeddings
from core.errors import InputError
from core.ingest import ingest_table
from core.search import (
    MAX_QUERY_CHARS,
    MODES,
    load_text_search,
    plan_for_dataset,
    plan_text_search,
    reciprocal_rank_fusion,
    run_text_search,
)
from core.workspace import open_workspace
from tests.helpers.photos import PHOTOS, add_photo_dataset

TEXTS = {
    "t-cat": "My cat sleeps on the sofa all afternoon and purrs.",
    "t-money": "Quarterly earnings rose by four percent on strong sales.",
    "t-rain": "Heavy rain is expected over the mountains tomorrow.",
    "t-code": "How to reverse a linked list in place.",
}


def _ingest(tmp_path, name, rows, media=None):
    pd.DataFrame(rows, dtype=object).to_csv(tmp_path / f"{name}.csv", index=False)
    ws = open_workspace(tmp_path / "home")
    ingest_table(ws, tmp_path / f"{name}.csv", name, image_root=media)
    return ws.dataset(name)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Four photos (neutral names) and four texts, embedded with the defaults."""
    return add_photo_dataset(tmp_path_factory.mktemp("mixed") / "home", "mix", texts=TEXTS)


RARE = "QZ7VK2XW"


@pytest.fixture(scope="module")
def invoices(tmp_path_factory):
    """300 short error texts told apart by a random code; one long gardening note mentions the
    rare code once (row inv7), one is a proverb (inv42). Embedded with MiniLM."""
    rng = random.Random(7)
    codes = ["".join(rng.choices(string.ascii_uppercase + string.digits, k=8)) for _ in range(300)]
    rows = [{"id": f"inv{i}", "text": f"Error code {code} was raised by the payment module."}
            for i, code in enumerate(codes)]
    rows[7]["text"] = ("We planted tomatoes, basil and peppers along the south fence this spring; the "
                       f"seed packet was labelled {RARE} and everything sprouted.")
    rows[42]["text"] = "The rain in Spain falls mainly on the plain, said the old sailor."
    ds = _ingest(tmp_path_factory.mktemp("inv"), "invoices", rows)
    compute_embeddings(ds)
    return ds, codes


def test_the_plan_prefers_clip_then_class_names_then_the_rows_text():
    clip = ("clip:/m/clip", ("image",))
    names = ("class-names:efficientnet-lite0", ("image",))
    image = ("image:efficientnet-lite0", ("image",))
    plan = plan_text_search("d", "eff", image[0], ["image"], others={"eff": image, "c": clip, "n": names})
    assert (plan.method, plan.embedding) == ("clip", "c")
    plan = plan_text_search("d", "eff", image[0], ["image"], others={"eff": image, "n": names})
    assert (plan.method, plan.embedding, plan.encoder) == ("class-names", "n", names[0])
    assert "CLIP" in plan.note and not plan.fallback
    plan = plan_text_search("d", "eff", image[0], ["image"], others={"eff": image})
    assert plan.method == "row-text" and plan.fallback
    text = plan_text_search("d", "minilm", "text:minilm", ["text"])
    assert (text.method, text.embedding, text.note) == ("text", "minilm", "")
    forced = plan_text_search("d", "eff", image[0], ["image"], others={"eff": image, "n": names},
                              method="row-text")
    assert forced.method == "row-text"
    with pytest.raises(InputError, match="clip"):
        plan_text_search("d", "eff", image[0], ["image"], others={"eff": image}, method="clip")


def test_a_mixed_dataset_answers_one_query_with_images_and_texts_ranked_together(mixed):
    plan = plan_for_dataset(mixed, "minilm")  # the user is on the text embedding
    assert (plan.method, plan.embedding, plan.modalities) == ("class-names", "efficientnet-lite0-text",
                                                               ("image", "text"))
    search = load_text_search(mixed, plan)
    result = run_text_search(search, "a cat", mode="semantic", k=4)
    assert set(result.ids[:2]) == {"chelsea", "t-cat"}  # the cat photo and the cat text
    assert result.recipe["score"] == "calibrated" and result.recipe["method"] == "class-names"
    assert dict(zip(result.ids, result.matched))["chelsea"] == "class-names"
    assert dict(zip(result.ids, result.matched))["t-cat"] == "text"
    coffee = run_text_search(search, "a cup of espresso", mode="semantic", k=8)
    assert coffee.ids[0] == "coffee" and len(coffee) == 8 and set(coffee.ids) == set(PHOTOS) | set(TEXTS)


def test_similarity_from_an_image_reaches_text_rows_in_the_shared_space(mixed):
    from core.embeddings import load_index
    from core.search import find_similar

    index = load_index(mixed, "efficientnet-lite0-text")
    result = find_similar(index, ["chelsea"], k=8)
    texts = [i for i in result.ids if i.startswith("t-")]
    assert texts and texts[0] == "t-cat"


def test_keyword_search_finds_an_exact_rare_token_the_semantic_model_misses(invoices):
    ds, codes = invoices
    search = load_text_search(ds, plan_for_dataset(ds))
    assert search.default_mode == "hybrid"
    semantic = run_text_search(search, RARE, mode="semantic", k=10)
    keyword = run_text_search(search, RARE, mode="keyword", k=10)
    hybrid = run_text_search(search, RARE, mode="hybrid", k=10)
    assert "inv7" not in semantic.ids  # code-like error texts look closer to MiniLM
    assert keyword.ids == ("inv7",) and keyword.recipe["score"] == "bm25"
    assert hybrid.ids[0] == "inv7" and hybrid.matched[0] == "keyword"


def test_an_exact_phrase_ranks_its_row_first_in_keyword_and_hybrid_modes(invoices):
    ds, _ = invoices
    search = load_text_search(ds, plan_for_dataset(ds))
    for mode in ("keyword", "hybrid"):
        result = run_text_search(search, "raised by the payment module", mode=mode, k=5)
        assert len(result) == 5 and result.ids[0] != "inv42"
        phrase = run_text_search(search, "said the old sailor", mode=mode, k=5)
        assert phrase.ids[0] == "inv42"
        assert (np.diff(phrase.scores) <= 0).all()  # the order the scores say


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_refuses_an_empty_or_over_long_query(invoices, mode):
    ds, _ = invoices
    search = load_text_search(ds, plan_for_dataset(ds))
    with pytest.raises(InputError, match="empty"):
        run_text_search(search, "   ", mode=mode)
    with pytest.raises(InputError, match=f"{MAX_QUERY_CHARS:,}"):
        run_text_search(search, "x" * (MAX_QUERY_CHARS + 1), mode=mode)
    with pytest.raises(InputError, match="mode"):
        run_text_search(search, "payment", mode="fuzzy")


def test_fusion_is_stable_under_ties_and_threshold_filters_the_fused_candidates(invoices):
    ds, _ = invoices
    search = load_text_search(ds, plan_for_dataset(ds))
    one = run_text_search(search, "payment error", mode="hybrid", k=50)
    two = run_text_search(search, "payment error", mode="hybrid", k=50)
    assert one.ids == two.ids and np.array_equal(one.scores, two.scores)
    ids, scores = reciprocal_rank_fusion([["a", "b"], ["b", "a"]])
    assert ids == ["a", "b"] and scores[0] == scores[1]  # a tie: the first list's first row first
    t = float(one.scores[9])
    above = run_text_search(search, "payment error", mode="hybrid", k=None, threshold=t)
    assert (above.scores >= t).all() and above.ids[:10] == one.ids[:10]


def test_the_cli_says_which_method_and_mode_answered(mixed, capsys):
    from core.cli import main

    home = str(mixed.path.parent.parent)
    assert main(["--home", home, "search", "mix", "--text", "a cat", "--mode", "semantic", "-k", "3",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["recipe"]["method"] == "class-names" and out["recipe"]["mode"] == "semantic"
    assert {r["matched_by"] for r in out["results"]} <= {"class-names", "text"}
    assert main(["--home", home, "search", "mix", "--text", " ", "--json"]) == 2
    assert "empty" in capsys.readouterr().err


def test_above_the_keyword_row_limit_search_is_by_meaning_only_and_says_so(invoices, monkeypatch):
    from core.search import text_query

    ds, _ = invoices
    monkeypatch.setattr(text_query, "KEYWORD_MAX_ROWS", 100)  # the dataset has 300 rows
    search = load_text_search(ds, plan_for_dataset(ds))
    assert search.keywords is None and search.default_mode == "semantic"
    assert len(run_text_search(search, "payment error", k=5)) == 5
    for mode in ("keyword", "hybrid"):
        with pytest.raises(InputError, match="up to 100 rows"):
            run_text_search(search, "payment error", mode=mode)
