"""core.rows: the table the Catalog filters (edited labels, quality columns) and the one
path a RowFilter takes, for the app's panel and the CLI's --where."""

from __future__ import annotations

import pandas as pd
import pytest

from core.errors import NotFoundError, SchemaError
from core.filters import RowFilter, parse_where
from core.ingest import ingest_table
from core.labels import effective_labels, relabel_rows
from core.rows import catalog_table, check_filter_names, labels_by_id, matching_rows, needs_quality


def test_matching_rows_sees_edited_labels_tags_and_slices(digits_ws):
    ws = digits_ws
    ids = ws.dataset("digits").rows()["id"].astype(str).tolist()
    relabel_rows(ws, "digits", [ids[0]], "seven-ish")
    ws.store.tag_rows("digits", ids[:5], "sent")
    ws.store.save_slice("digits", "first", ids[:3], {})
    got = matching_rows(ws, "digits", parse_where("label = seven-ish"))
    assert got["id"].tolist() == [ids[0]]
    got = matching_rows(ws, "digits", parse_where("tag = sent and slice = first"))
    assert got["id"].tolist() == ids[:3]
    assert len(matching_rows(ws, "digits", RowFilter())) == len(ids)


def test_quality_columns_are_added_only_when_the_filter_needs_them(digits_ws):
    ws = digits_ws
    flt = parse_where("label_issue_score >= 0.5")
    assert needs_quality(flt, ["id", "label"]) and not needs_quality(parse_where("label = 3"), ["id"])
    table = catalog_table(ws, "digits", "efficientnet-lite0")
    assert {"label_issue_score", "suggested_label", "uniqueness"} <= set(table.columns)
    got = matching_rows(ws, "digits", flt, embedding="efficientnet-lite0")
    expected = table.loc[table["label_issue_score"] >= 0.5, "id"].tolist()
    assert got["id"].tolist() == expected and 0 < len(expected) < len(table)
    with pytest.raises(SchemaError, match="unknown column 'label_issue_score'"):
        matching_rows(ws, "digits", flt)  # no embedding: the column does not exist


def test_unknown_names_are_not_found_errors(digits_ws):
    with pytest.raises(NotFoundError, match="unknown tag\\(s\\) 'nope'"):
        check_filter_names(digits_ws, "digits", RowFilter(tags=("nope",)))
    with pytest.raises(NotFoundError, match="gone"):
        check_filter_names(digits_ws, "digits", RowFilter(slice_name="gone"))
    with pytest.raises(SchemaError, match="unknown column 'colour'"):
        matching_rows(digits_ws, "digits", parse_where("colour = red"))
    assert isinstance(catalog_table(digits_ws, "digits"), pd.DataFrame)


def test_labels_by_id_equals_the_effective_labels_with_edits_nulls_and_no_label_column(ws, tmp_path):
    src = tmp_path / "t.csv"
    pd.DataFrame({"id": ["a", "b", "c", "d"], "text": ["x"] * 4,
                  "label": ["cat", None, "dög 'q'", "cat"]}).to_csv(src, index=False)
    ingest_table(ws, src, "t")
    relabel_rows(ws, "t", ["d"], "dog")
    got = labels_by_id(ws, "t")
    assert got.to_dict() == effective_labels(ws, "t") == {"a": "cat", "b": None, "c": "dög 'q'", "d": "dog"}
    plain = tmp_path / "p.csv"
    pd.DataFrame({"id": ["u", "v"], "text": ["x", "y"]}).to_csv(plain, index=False)
    ingest_table(ws, plain, "p")
    assert labels_by_id(ws, "p").to_dict() == effective_labels(ws, "p") == {"u": None, "v": None}
    with pytest.raises(NotFoundError):
        labels_by_id(ws, "nope")
