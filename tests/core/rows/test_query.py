"""core.rows.query: a dataset's rows queried where they are (DuckDB over rows.parquet):
the same rows as the pandas path, label edits, tags, slices and quality scores joined in,
pages and counts, and a connection that cannot read any other file."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pytest

from core.errors import InputError, NotFoundError, SchemaError
from core.filters import RowFilter, filter_mask, parse_where, profile_columns
from core.ingest import ingest_table
from core.labels import effective_rows, relabel_rows
from core.rows import open_rows


@pytest.fixture
def table_ws(ws, tmp_path):
    rng = np.random.default_rng(3)
    n = 500
    frame = pd.DataFrame({
        "id": [f"r{i:04d}" for i in range(n)],
        "text": [f"row {i} {'50% off' if i % 5 == 0 else 'it''s'}" for i in range(n)],
        "note": [None if i % 17 == 0 else f"note {i % 4}" for i in range(n)],
        "label": [None if i % 11 == 0 else ["cat", "dog", "ünï"][i % 3] for i in range(n)],
        "shop": [["north", "south", "o'hara"][i % 3] for i in range(n)],
        "price": [math.nan if i % 13 == 0 else float(v) for i, v in enumerate(rng.normal(10, 3, n))],
        "stock": rng.integers(0, 20, n),
    })
    path = tmp_path / "table.parquet"
    frame.to_parquet(path)
    ingest_table(ws, path, "shop", text_col="text", label_col="label")
    return ws


FILTERS = [
    "label = cat", "label in (dog, 'ünï')", "shop = \"o'hara\"", "price >= 10", "price between 8 and 9",
    "stock = 3", "text ~ '50%'", "text ~ R00", "note = 'note 1'", "label = cat and price <= 9 and shop in (north, south)",
]


@pytest.mark.parametrize("where", FILTERS)
def test_the_query_selects_the_rows_the_pandas_filter_selects(table_ws, where):
    flt = parse_where(where)
    rows = effective_rows(table_ws, "shop")
    expected = rows.loc[filter_mask(rows, flt), "id"].tolist()
    with open_rows(table_ws, "shop") as query:
        assert query.ids(flt) == expected
        assert query.count(flt) == len(expected)
        assert 0 < len(expected) < len(rows)


def test_edited_labels_tags_and_slices_are_seen(table_ws):
    ws = table_ws
    relabel_rows(ws, "shop", ["r0001", "r0002"], "bird")
    ws.store.tag_rows("shop", ["r0001", "r0007"], "sent")
    ws.store.save_slice("shop", "few", ["r0002", "r0007", "r0009"], {})
    with open_rows(ws, "shop") as query:
        assert query.ids(RowFilter(labels=("bird",))) == ["r0001", "r0002"]
        assert query.ids(RowFilter(tags=("sent",))) == ["r0001", "r0007"]
        assert query.ids(RowFilter(slice_name="few", tags=("sent",))) == ["r0007"]
        assert "bird" in query.profile().labels
        with pytest.raises(NotFoundError, match="few2"):
            query.count(RowFilter(slice_name="few2"))


def test_a_page_is_sorted_offset_and_counted(table_ws):
    rows = effective_rows(table_ws, "shop")
    with open_rows(table_ws, "shop") as query:
        page = query.page(RowFilter(labels=("cat",)), order_by="price", descending=True,
                          offset=10, limit=20)
        cats = rows[rows["label"] == "cat"].sort_values("price", ascending=False, na_position="last",
                                                        kind="stable")
        assert page.total == len(cats)
        assert page.rows["id"].tolist() == cats["id"].iloc[10:30].tolist()
        assert list(page.rows.columns) == list(rows.columns)
        assert query.page(RowFilter(), offset=len(rows) + 5, limit=10).total == len(rows)
        with pytest.raises(SchemaError, match="sort by unknown column 'nope'"):
            query.page(order_by="nope")
        with pytest.raises(InputError, match="offset"):
            query.page(offset=-1)


def test_the_profile_equals_the_pandas_profile(table_ws):
    with open_rows(table_ws, "shop") as query:
        got = query.profile()
    expected = profile_columns(effective_rows(table_ws, "shop"))
    assert got.labels == expected.labels
    assert got.categorical == expected.categorical
    assert got.numeric.keys() == expected.numeric.keys()
    for col, (lo, hi) in expected.numeric.items():
        assert got.numeric[col] == pytest.approx((lo, hi))


def test_quality_scores_are_joined_on_id(table_ws):
    quality = pd.DataFrame({"id": ["r0003", "r0004"], "label_issue_score": [0.9, 0.1],
                            "suggested_label": ["dog", None], "uniqueness": [0.5, 0.2]})
    with open_rows(table_ws, "shop", quality=quality) as query:
        assert query.ids(parse_where("label_issue_score >= 0.5")) == ["r0003"]
        page = query.page(order_by="label_issue_score", descending=True, limit=3)
        assert page.rows["id"].tolist()[:2] == ["r0003", "r0004"]


def test_the_connection_reads_no_file_but_the_dataset(table_ws, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    with open_rows(table_ws, "shop") as query:
        con = query._con  # the test pokes at the connection a user value could never reach
        for sql in (f"SELECT * FROM read_csv('{secret}')", "SET enable_external_access = true",
                    "INSTALL httpfs"):
            with pytest.raises(duckdb.Error):
                con.execute(sql).fetchall()
