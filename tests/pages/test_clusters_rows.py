"""Cluster map page over the rows as a query: the page never reads the rows table into
pandas, and the clustering's summary columns (labels of every row, texts of a sample)
are fetched aligned with the embedding's ids."""

from __future__ import annotations

import pandas as pd

import ui.cluster_widgets as cw
from core.rows import RowsView
from core.workspace import open_workspace
from tests.pages.test_clusters import open_map


def test_the_map_page_never_loads_the_rows_table(make_app, monkeypatch):
    import core.labels
    import ui.loaders

    def whole_table(*args, **kwargs):
        raise AssertionError("the Cluster map page read the whole rows table")

    for module, name in ((ui.loaders, "effective_rows"), (ui.loaders, "source_rows"),
                         (core.labels, "effective_rows")):
        monkeypatch.setattr(module, name, whole_table)
    at = open_map(make_app)
    at.run()
    assert not at.exception, at.exception
    assert any("1,797 rows on the map" in c.value for c in at.caption)
    table = at.dataframe[0].value
    assert table["rows"].sum() == 1797 and table["majority label"].str.len().gt(0).all()
    at.selectbox(key="clu:color").select(cw.COLOR_LABEL).run()
    assert not at.exception, at.exception


def test_summary_columns_align_labels_and_sample_texts(digits_ws):
    rows = digits_ws.dataset("digits").rows().assign(id=lambda t: t["id"].astype(str))
    ids = rows["id"].tolist()[::-1] + ["no-such-row"]  # another order, and an id without a row
    labels, texts = cw.summary_columns(RowsView(digits_ws, "digits"), ids, seed=1, text_sample=100)
    expected = rows.set_index("id")["label"].reindex(ids)
    assert len(labels) == len(ids) and isinstance(labels, pd.Categorical)
    assert list(labels[:-1]) == [str(v) for v in expected[:-1]] and pd.isna(labels[-1])
    if texts is not None:  # digits rows are images: no text column
        assert len(texts) == len(ids) and sum(t is not None for t in texts) <= 100


def test_summary_texts_above_the_sample_size_are_a_seeded_sample(ws, tmp_path):
    from core.ingest import ingest_table

    src = tmp_path / "t.csv"
    pd.DataFrame({"id": [f"t{i}" for i in range(50)], "text": [f"words {i}" for i in range(50)],
                  "label": ["x", "y"] * 25}).to_csv(src, index=False)
    ingest_table(ws, src, "texts")
    ids = [f"t{i}" for i in range(50)]
    view = RowsView(open_workspace(ws.home), "texts")
    labels, texts = cw.summary_columns(view, ids, seed=3, text_sample=10)
    assert list(labels) == ["x", "y"] * 25
    kept = [i for i, t in enumerate(texts) if t is not None]
    assert len(kept) == 10 and all(texts[i] == f"words {i}" for i in kept)
    assert cw.summary_columns(view, ids, seed=3, text_sample=10)[1] == texts  # seeded
    _, every = cw.summary_columns(view, ids, seed=3, text_sample=50)
    assert every == [f"words {i}" for i in range(50)]
