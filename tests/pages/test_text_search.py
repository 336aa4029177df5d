from __future__ import annotations

import numpy as np

from core.embeddings import load_embedding
from core.encoders import load_encoder
from core.search import FALLBACK_EMBEDDING
from core.workspace import open_workspace
from tests.helpers.apptest import finish_job, grid_ids, press_action

PAGE = "pages/text_search.py"


def _grid_ids(at) -> list[str]:
    return grid_ids(at, "txt:grid")


def test_empty_query_gives_a_hint_and_no_search(make_app):
    at = make_app(PAGE, dataset="api-docs")
    assert not at.exception
    assert at.title[0].value == "Text search"
    assert any("Type a few words" in i.value for i in at.info)
    assert not _grid_ids(at) and not at.info[0].value.startswith("The embedding")


def test_query_ranks_rows_and_threshold_slice_keeps_the_recipe(make_app, app_home):
    at = make_app(PAGE, dataset="api-docs")
    at.text_input(key="txt:query:api-docs").input("read a csv file").run()
    assert not at.exception
    assert "pandas.read_csv" in _grid_ids(at)[:5]
    assert not at.warning

    # brute force: cosine of every row to the MiniLM query vector
    emb = load_embedding(open_workspace(app_home).dataset("api-docs"), "minilm")
    q = load_encoder("text:minilm").encode_texts(["read a csv file"])[0]
    brute = dict(zip(emb.ids, np.asarray(emb.vectors) @ q))
    t = round(sorted(brute.values(), reverse=True)[30], 3)
    while any(abs(s - t) < 1e-4 for s in brute.values()):
        t = round(t + 0.001, 3)
    expected = {i for i, s in brute.items() if s >= t}
    at.radio(key="txt:mode:api-docs").set_value("semantic").run()  # cosines: the brute force above
    at.radio(key="txt:mode").set_value("Score ≥ threshold").run()
    at.slider(key="txt:threshold").set_value(t).run()
    assert any(m.value == f"**{len(expected):,} rows ≥ {t:.3f}**" for m in at.markdown)
    at.button(key="txt:select_above").click().run()
    assert set(at.session_state["selection"]["api-docs"]) == expected
    at.text_input(key="txt:slice").input("csv-readers").run()
    at.button(key="txt:slice_btn").click().run()
    assert not at.exception
    saved = open_workspace(app_home).store.get_slice("api-docs", "csv-readers")
    assert set(saved.ids) == expected
    assert saved.recipe["query"] == "read a csv file" and saved.recipe["kind"] == "text"
    assert saved.recipe["threshold"] == t and saved.recipe["embedding"] == "minilm"
    assert saved.method == "text" and saved.recipe["fallback"] is False
    assert saved.recipe["mode"] == "semantic" and saved.recipe["score"] == "cosine"


def test_over_long_query_is_truncated_with_a_notice(make_app):
    at = make_app(PAGE, dataset="api-docs")
    query = "1, " * 330  # 990 characters (under the limit), 660 word pieces (over MiniLM's 256)
    at.text_input(key="txt:query:api-docs").input(query).run()
    assert not at.exception
    assert any("longer than the encoder's limit" in w.value for w in at.warning)
    assert len(_grid_ids(at)) == 50


def test_image_rows_without_clip_or_class_names_search_their_text_and_say_so(make_app, app_home):
    from core.embeddings import delete_embedding

    delete_embedding(open_workspace(app_home).dataset("digits"), "efficientnet-lite0-text")
    at = make_app(PAGE)  # digits: efficientnet-lite0 cannot read text, and no class names
    assert any("catalog embed digits --encoder clip:clip-ViT-B-32" in i.value for i in at.info)
    at.text_input(key="txt:query:digits").input("digit 7").run()  # starts the row-text index job
    assert not at.exception, at.exception
    assert any("first indexes each row's caption" in i.value for i in at.info)  # says so
    finish_job(at, app_home, "digits", "derive")  # the page fills in when the job is done
    ds = open_workspace(app_home).dataset("digits")
    meta = load_embedding(ds, FALLBACK_EMBEDDING).meta
    assert meta["purpose"] == "text-fallback" and meta["encoder"] == "text:minilm"
    shown = _grid_ids(at)
    labels = ds.rows().set_index("id")["label"]
    assert len(shown) == 50 and sum(labels[i] == "7" for i in shown[:20]) >= 15
    press_action(at, "txt:grid", "Use as anchor", shown[0])
    assert not at.exception, at.exception
    assert shown[0] in at.session_state["anchors"]["digits"]


def test_query_and_results_are_per_dataset(make_app, app_home, monkeypatch):
    import ui.text_search as ts

    searched, real = [], ts.run_text_search

    def spy(search, query, **kwargs):
        searched.append(query)
        return real(search, query, **kwargs)

    monkeypatch.setattr(ts, "run_text_search", spy)
    at = make_app(PAGE, dataset="api-docs")
    at.text_input(key="txt:query:api-docs").input("read a csv file").run()
    assert not at.exception, at.exception
    assert "pandas.read_csv" in grid_ids(at, "txt:grid")[:5] and searched
    runs = len(searched)

    at.selectbox(key="sidebar:dataset").select("digits").run()  # the query is not run on digits
    assert not at.exception, at.exception
    assert at.text_input(key="txt:query:digits").value == ""
    assert any("Type a few words" in i.value for i in at.info) and not grid_ids(at, "txt:grid")
    assert len(searched) == runs  # nothing searched on digits
    assert FALLBACK_EMBEDDING not in open_workspace(app_home).dataset("digits").embedding_names()

    at.selectbox(key="sidebar:dataset").select("api-docs").run()  # back: its query and results
    assert not at.exception, at.exception
    assert at.text_input(key="txt:query:api-docs").value == "read a csv file"
    assert "pandas.read_csv" in grid_ids(at, "txt:grid")[:5]


def test_an_image_dataset_without_clip_is_answered_by_class_names_and_shows_method_and_mode(make_app, app_home):
    from tests.helpers.photos import add_photo_dataset

    add_photo_dataset(app_home)
    at = make_app(PAGE, dataset="photos")
    assert not at.exception, at.exception
    assert any("ImageNet class names" in i.value for i in at.info)  # why not the chosen embedding
    assert at.radio(key="txt:mode:photos").value == "hybrid"  # file names give keyword text
    assert any("class-names" in c.value and "reciprocal rank fusion" in c.value for c in at.caption)
    at.text_input(key="txt:query:photos").input("a cup of coffee").run()
    assert not at.exception, at.exception
    assert _grid_ids(at)[0] == "coffee"
    at.radio(key="txt:mode:photos").set_value("keyword").run()
    assert any("keyword" in c.value and "BM25" in c.value for c in at.caption)
    assert not _grid_ids(at)  # no row's words match: keyword finds nothing
    at.radio(key="txt:mode:photos").set_value("semantic").run()
    assert _grid_ids(at)[0] == "coffee"
    at.text_input(key="txt:query:photos").input("a cat").run()
    assert _grid_ids(at)[0] == "chelsea"


def test_a_query_over_the_length_limit_is_refused_in_every_mode(make_app):
    at = make_app(PAGE, dataset="api-docs")
    for mode in ("semantic", "keyword", "hybrid"):
        at.radio(key="txt:mode:api-docs").set_value(mode).run()
        at.text_input(key="txt:query:api-docs").input("x" * 1001).run()
        assert not at.exception, at.exception
        assert any("limit is 1,000" in e.value for e in at.error), mode
        assert not _grid_ids(at)
