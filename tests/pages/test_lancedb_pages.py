"""The pages, unchanged, on an embedding whose index is a LanceDB table (IVF_PQ, re-scored
exactly): similarity search and its threshold, label review, near-duplicates, smart select,
the Catalog and the Embeddings page give what the FAISS index gives on the same vectors."""

from __future__ import annotations

import numpy as np
import pytest

from core.embeddings import load_embedding, load_index, rebuild_index
from core.index import build_index
from core.workspace import open_workspace
from tests.helpers.apptest import go, grid_ids, grid_payload
from tests.pages.test_quality import _labels, _queue
from tests.pages.test_similarity import _add_anchors, _brute, _ids_of, _safe_threshold, _selection

pytest.importorskip("lancedb")

EMB = "efficientnet-lite0"


@pytest.fixture
def lance_home(app_home):
    """The demo workspace with digits' image embedding indexed in LanceDB (IVF_PQ)."""
    ds = open_workspace(app_home).dataset("digits")
    info = rebuild_index(ds, EMB, kind="ivf_pq", backend="lancedb")
    assert (info.index_backend, info.index_kind) == ("lancedb", "ivf_pq")
    assert type(load_index(ds, EMB)).__name__ == "LanceIndex"
    return app_home


@pytest.fixture
def digits(lance_home):
    ds = open_workspace(lance_home).dataset("digits")
    emb = load_embedding(ds, EMB)
    return ds.rows(), dict(zip(emb.ids, np.asarray(emb.vectors)))


def _exact_index(home):
    """A FAISS exact index over the same vectors: what the LanceDB pages must agree with."""
    emb = load_embedding(open_workspace(home).dataset("digits"), EMB)
    return build_index(np.asarray(emb.vectors), emb.ids, kind="exact")


def test_similarity_ranks_and_scores_as_exact_search(make_app, digits):
    rows, vectors = digits
    anchors = _ids_of(rows, "8", 3)
    at = _add_anchors(make_app("pages/similarity.py"), anchors)
    shown = grid_ids(at, "sim:grid")
    brute = _brute(vectors, anchors)
    best = sorted(brute, key=brute.get, reverse=True)[:50]
    assert len(shown) == 50 and len(set(shown) & set(best)) >= 48  # IVF_PQ: recall, not a scan
    for card in grid_payload(at, "sim:grid")["rows"]:
        assert abs(float(card["badge"]) - brute[card["id"]]) < 6e-4  # exact cosines, 3 decimals


def test_select_above_a_threshold_takes_exactly_the_rows_above_it(make_app, digits):
    rows, vectors = digits
    anchors = _ids_of(rows, "3", 2)
    at = _add_anchors(make_app("pages/similarity.py"), anchors)
    at.radio(key="sim:mode").set_value("Score ≥ threshold").run()
    brute = _brute(vectors, anchors)
    t = _safe_threshold(brute, 150)
    at.slider(key="sim:threshold").set_value(t).run()
    at.button(key="sim:select_above").click().run()
    assert not at.exception, at.exception
    assert _selection(at) == {i for i, s in brute.items() if s >= t}


def test_label_review_and_duplicates_match_the_faiss_index(make_app, lance_home):
    from core.quality import find_label_issues, find_near_duplicates

    ws = open_workspace(lance_home)
    exact = _exact_index(lance_home)
    issues = find_label_issues(exact, _labels(ws))
    at = make_app("pages/quality.py")
    assert not at.exception, at.exception
    queue = _queue(at)
    assert len(queue) == 20 and len(set(queue) & set(issues.ids[:20])) >= 18
    dups = find_near_duplicates(exact, 0.95, _labels(ws))
    closest = [c.value for c in at.caption if c.value.startswith("closest: ")]
    assert closest and all(any(f"`{i}`" in c for i in dups.groups[0].ids) for c in closest[:2])


def test_catalog_smart_select_and_embeddings_page_on_lancedb(make_app, lance_home):
    at = make_app()
    assert not at.exception, at.exception
    assert any(m.value == "**1,797 of 1,797 rows**" for m in at.markdown)
    assert len(grid_ids(at, "catalog")) > 40
    go(at, "smart_select")
    at.selectbox(key="sel:method").select("diverse").run()
    at.number_input(key="sel:n").set_value(25).run()
    at.button(key="sel:preview_btn").click().run()
    assert not at.exception, at.exception
    assert len(set(grid_ids(at, "sel:grid"))) == 25
    go(at, "embeddings")
    table = at.dataframe[0].value
    assert table.set_index("Name").loc[EMB, "Index"] == "ivf_pq (lancedb)"


def test_the_embeddings_page_moves_an_index_into_lancedb_and_back(make_app, app_home):
    from tests.helpers.apptest import finish_job

    at = make_app("pages/embeddings.py", dataset="api-docs")
    at.selectbox(key="emb:index_kind").set_value("lancedb:auto").run()
    at.button(key="emb:reindex").click().run()
    assert not at.exception, at.exception
    job = finish_job(at, app_home, "api-docs", "index")
    assert job.result["summary"].startswith("minilm: exact index over")
    assert at.dataframe[0].value.set_index("Name").loc["minilm", "Index"] == "exact (lancedb)"
    emb = open_workspace(app_home).dataset("api-docs").embedding_dir("minilm")
    assert (emb / "lance").is_dir() and not (emb / "index.faiss").exists()
    at.selectbox(key="emb:index_kind").set_value("auto").run()
    at.button(key="emb:reindex").click().run()
    finish_job(at, app_home, "api-docs", "index")
    assert at.dataframe[0].value.set_index("Name").loc["minilm", "Index"] == "exact"
    assert (emb / "index.faiss").exists() and not (emb / "lance").exists()
