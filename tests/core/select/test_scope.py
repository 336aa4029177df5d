"""resolve_scope and select_rows: the scope and the full recipe that the Smart select page
and `catalog select` share, and the errors a user can cause (naming the bad value)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.embeddings import import_embeddings
from core.errors import InputError, NotFoundError, SchemaError
from core.filters import RowFilter
from core.ingest import ingest_table
from core.labels import effective_rows
from core.rows import catalog_table
from core.select import SelectRequest, resolve_scope, select_rows
from core.workspace import Workspace

IDS = [f"r{i:02d}" for i in range(12)]


@pytest.fixture
def small_ws(ws: Workspace, tmp_path: Path) -> Workspace:
    """12 text rows (labels a/b/c, a score), vectors for the first 10, slice s1, tag t."""
    src = tmp_path / "rows.csv"
    pd.DataFrame({"id": IDS, "text": [f"row {i}" for i in range(12)],
                  "label": ["a", "b", "c"] * 4, "score": [float(i % 5) for i in range(12)]}
                 ).to_csv(src, index=False)
    ingest_table(ws, src, "small")
    rng = np.random.default_rng(0)
    np.save(tmp_path / "vec.npy", rng.normal(size=(10, 4)).astype(np.float32))
    (tmp_path / "vec.txt").write_text("\n".join(IDS[:10]), encoding="utf-8")
    import_embeddings(ws.dataset("small"), tmp_path / "vec.npy", "vec", ids_file=tmp_path / "vec.txt")
    ws.store.save_slice("small", "s1", IDS[5::-1])  # r05..r00: slice order is not table order
    ws.store.tag_rows("small", ["r01", "r02"], "t")
    return ws


def _table(ws: Workspace) -> pd.DataFrame:
    return effective_rows(ws, "small")


def test_all_minus_a_slice_and_a_tag_keeps_table_order_and_counts_the_excluded(small_ws):
    scope = resolve_scope(small_ws, "small", _table(small_ws), "all",
                          exclude_slices=["s1"], exclude_tags=["t"])
    assert scope.ids == tuple(IDS[6:])
    assert scope.excluded_rows == 6 and scope.kind == "all"
    assert scope.to_recipe() == {
        "scope": "whole dataset minus slice 's1', tag 't'", "scope_detail": {"kind": "all"},
        "rows_in_scope": 6, "excluded_slices": ["s1"], "excluded_tags": ["t"], "excluded_rows": 6}


def test_filter_and_slice_scopes(small_ws):
    table = _table(small_ws)
    flt = RowFilter(labels=("a",))
    scope = resolve_scope(small_ws, "small", table, "filter", row_filter=flt, exclude_tags=["t"])
    assert scope.ids == ("r00", "r03", "r06", "r09")  # no 'a' row is tagged t
    recipe = scope.to_recipe()
    assert recipe["scope"] == "Catalog filter: label in {a} minus tag 't'"
    assert recipe["scope_detail"] == {"kind": "filter", "filter": flt.to_json()}
    assert recipe["excluded_rows"] == 0

    sliced = resolve_scope(small_ws, "small", table, "slice", slice_name="s1", exclude_tags=["t"])
    assert sliced.ids == ("r00", "r03", "r04", "r05")  # table order, tagged rows out
    assert sliced.to_recipe()["scope_detail"] == {"kind": "slice", "slice": "s1"}
    assert sliced.description == "slice 's1' minus tag 't'" and sliced.excluded_rows == 2


@pytest.mark.parametrize("kwargs, error, names", [
    ({"kind": "slice", "slice_name": "nope"}, NotFoundError, "nope"),
    ({"kind": "all", "exclude_slices": ["gone"]}, NotFoundError, "gone"),
    ({"kind": "all", "exclude_tags": ["no-such-tag"]}, NotFoundError, "no-such-tag"),
    ({"kind": "filter", "row_filter": RowFilter(slice_name="lost")}, NotFoundError, "lost"),
    ({"kind": "everything"}, InputError, "everything"),
    ({"kind": "filter"}, InputError, "filter"),
    ({"kind": "filter", "row_filter": RowFilter(ranges=(("weight", 0.0, 1.0),))}, SchemaError,
     "weight"),
])
def test_bad_scopes_name_the_problem(small_ws, kwargs, error, names):
    with pytest.raises(error) as info:
        resolve_scope(small_ws, "small", _table(small_ws), **kwargs)
    assert names in str(info.value)
    if kwargs["kind"] == "everything":
        assert "all, filter, slice" in str(info.value)


def test_vector_methods_leave_out_rows_without_a_vector_and_say_so(small_ws):
    table = _table(small_ws)
    scope = resolve_scope(small_ws, "small", table, "all", exclude_tags=["t"])
    sel = select_rows(small_ws, "small", SelectRequest("diverse", n=8, seed=1), scope,
                      table=table, embedding="vec")
    assert len(sel) == 8 and not set(sel.ids) & {"r10", "r11", "r01", "r02"}
    r = sel.recipe
    assert r["not_covered"] == 2 and r["rows_in_scope"] == 10 and r["scope_rows"] == 8
    assert r["dataset"] == "small" and r["dataset_rows"] == 12 and r["embedding"] == "vec"
    assert r["method"] == "diverse" and r["scope"] == "whole dataset minus tag 't'"
    with pytest.raises(InputError, match="asked for 9 rows but the scope has 8"):
        select_rows(small_ws, "small", SelectRequest("cluster", n=9, k=2), scope, table=table,
                    embedding="vec")


def test_random_and_ordered_do_not_depend_on_an_embedding(small_ws):
    table = _table(small_ws)
    scope = resolve_scope(small_ws, "small", table, "slice", slice_name="s1")
    sel = select_rows(small_ws, "small", SelectRequest("ordered", n=3, by="score", descending=True),
                      scope, table=table, embedding="vec")
    assert sel.ids == ("r04", "r03", "r02")
    assert sel.recipe["embedding"] is None and "not_covered" not in sel.recipe
    rnd = select_rows(small_ws, "small", SelectRequest("random", n=6, seed=5), scope, table=table)
    assert sorted(rnd.ids) == IDS[:6] and rnd.recipe["seed"] == 5


def test_ordered_by_a_quality_column_records_the_embedding(small_ws):
    table = catalog_table(small_ws, "small", "vec")
    scope = resolve_scope(small_ws, "small", table, "all")
    sel = select_rows(small_ws, "small", SelectRequest("ordered", n=10, by="uniqueness"), scope,
                      table=table, embedding="vec")
    assert sel.recipe["embedding"] == "vec"
    assert set(sel.ids) == set(IDS[:10])  # rows without a vector (NaN) sort last


@pytest.mark.parametrize("request_, embedding, names", [
    (SelectRequest("cluster", n=3), None, "catalog embed small"),
    (SelectRequest("diverse", n=3), None, "catalog embed small"),
    (SelectRequest("clustr", n=3), "vec", "clustr"),
    (SelectRequest("ordered", n=3), "vec", "--by"),
    (SelectRequest("ordered", n=3, by="weight"), "vec", "weight"),
    (SelectRequest("cluster", n=3), "missing-emb", "missing-emb"),
])
def test_bad_requests_name_the_problem(small_ws, request_, embedding, names):
    table = _table(small_ws)
    scope = resolve_scope(small_ws, "small", table, "all")
    with pytest.raises((InputError, NotFoundError)) as info:
        select_rows(small_ws, "small", request_, scope, table=table, embedding=embedding)
    assert names in str(info.value)
    if request_.method == "clustr":
        assert "random, ordered, cluster, diverse" in str(info.value)
