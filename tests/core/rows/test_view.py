"""core.rows.view: a filtered dataset that holds no rows; each question is one query."""

from __future__ import annotations

import pandas as pd
import pytest

from core.filters import RowFilter
from core.ingest import ingest_table
from core.rows import RowsView, ViewIds


@pytest.fixture
def notes_ws(ws, tmp_path):
    frame = pd.DataFrame({"id": [f"n{i:03d}" for i in range(40)],
                          "text": [f"note {i}" for i in range(40)],
                          "label": ["a" if i % 4 == 0 else "b" for i in range(40)],
                          "size": [float(40 - i) for i in range(40)]})
    frame.to_csv(tmp_path / "notes.csv", index=False)
    ingest_table(ws, tmp_path / "notes.csv", "notes")
    return ws


def test_a_view_counts_pages_and_walks_its_rows(notes_ws):
    view = RowsView(notes_ws, "notes", RowFilter(labels=("a",)))
    wanted = [f"n{i:03d}" for i in range(0, 40, 4)]
    summary = view.summary()
    assert summary.total == view.count() == 10 and summary.modalities == {"text": 10}
    assert view.ids() == wanted and view.ids(limit=3) == wanted[:3]
    assert view.page(order_by="size", limit=2)["id"].tolist() == wanted[::-1][:2]
    assert view.position_of("n008") == 2 and view.position_of("n001") is None
    assert view.id_at(9) == "n036" and view.id_at(10) is None
    assert view.row("n001")["label"] == "b"  # any row of the dataset, in the view or not
    assert view.row("nope") is None


def test_view_ids_fetch_only_what_is_asked(notes_ws):
    ids = ViewIds(RowsView(notes_ws, "notes", RowFilter(labels=("b",))))
    assert len(ids) == 30 and bool(ids)
    assert ids[:2] == ["n001", "n002"] and ids[-1] == "n039" and ids[2:4] == ["n003", "n005"]
    with pytest.raises(IndexError):
        ids[30]
    assert not ViewIds(RowsView(notes_ws, "notes", RowFilter(labels=("zzz",))))


def test_rows_of_returns_the_rows_of_ids_in_their_order_whatever_the_filter(notes_ws):
    view = RowsView(notes_ws, "notes", RowFilter(labels=("a",)))
    got = view.rows_of(["n005", "gone", "n000", "n005'; DROP TABLE x; --"])
    assert got["id"].tolist() == ["n005", "n000"]  # n005 is not in the view: still a row
    assert got["label"].tolist() == ["b", "a"] and got["size"].tolist() == [35.0, 40.0]
    assert view.known_ids(["n039", "zzz", "n001"]) == ["n039", "n001"]
    assert view.rows_of([]).empty and list(view.rows_of([], columns=["id"]).columns) == ["id"]
    assert view.rows_of(["n001"], columns=["id", "text"]).to_dict("records") == [{"id": "n001", "text": "note 1"}]
