"""resolve_scope and select_rows: the scope and the full recipe that the Smart select page
and `catalog select` share, and the errors a user can cause (naming the bad value); each
over the rows as a DataFrame (the CLI) and as a RowsView queried in DuckDB (the page)."""

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
from core.rows import RowsView, catalog_table, quality_table
from core.select import SelectRequest, resolve_scope, select_ordered, select_rows
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


@pytest.fixture(params=["frame", "view"])
def as_view(request) -> bool:
    return request.param == "view"


def _table(ws: Workspace, view: bool = False, quality: bool = False) -> pd.DataFrame | RowsView:
    if view:
        return RowsView(ws, "small", quality=quality_table(ws, "small", "vec") if quality else None)
    return catalog_table(ws, "small", "vec") if quality else effective_rows(ws, "small")


def test_all_minus_a_slice_and_a_tag_keeps_table_order_and_counts_the_excluded(small_ws, as_view):
    scope = resolve_scope(small_ws, "small", _table(small_ws, as_view), "all",
                          exclude_slices=["s1"], exclude_tags=["t"])
    assert scope.ids == tuple(IDS[6:])
    assert scope.excluded_rows == 6 and scope.kind == "all"
    assert scope.to_recipe() == {
        "scope": "whole dataset minus slice 's1', tag 't'", "scope_detail": {"kind": "all"},
        "rows_in_scope": 6, "excluded_slices": ["s1"], "excluded_tags": ["t"], "excluded_rows": 6}


def test_filter_and_slice_scopes(small_ws, as_view):
    table = _table(small_ws, as_view)
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
def test_bad_scopes_name_the_problem(small_ws, as_view, kwargs, error, names):
    with pytest.raises(error) as info:
        resolve_scope(small_ws, "small", _table(small_ws, as_view), **kwargs)
    assert names in str(info.value)
    if kwargs["kind"] == "everything":
        assert "all, filter, slice" in str(info.value)


def test_vector_methods_leave_out_rows_without_a_vector_and_say_so(small_ws, as_view):
    table = _table(small_ws, as_view)
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


def test_random_and_ordered_do_not_depend_on_an_embedding(small_ws, as_view):
    table = _table(small_ws, as_view)
    scope = resolve_scope(small_ws, "small", table, "slice", slice_name="s1")
    sel = select_rows(small_ws, "small", SelectRequest("ordered", n=3, by="score", descending=True),
                      scope, table=table, embedding="vec")
    assert sel.ids == ("r04", "r03", "r02")
    assert sel.recipe["embedding"] is None and "not_covered" not in sel.recipe
    rnd = select_rows(small_ws, "small", SelectRequest("random", n=6, seed=5), scope, table=table)
    assert sorted(rnd.ids) == IDS[:6] and rnd.recipe["seed"] == 5


def test_ordered_by_a_quality_column_records_the_embedding(small_ws, as_view):
    table = _table(small_ws, as_view, quality=True)
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
def test_bad_requests_name_the_problem(small_ws, as_view, request_, embedding, names):
    table = _table(small_ws, as_view)
    scope = resolve_scope(small_ws, "small", table, "all")
    with pytest.raises((InputError, NotFoundError)) as info:
        select_rows(small_ws, "small", request_, scope, table=table, embedding=embedding)
    assert names in str(info.value)
    if request_.method == "clustr":
        assert "random, ordered, cluster, diverse" in str(info.value)


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("kind, extra", [
    ("all", {}), ("all", {"exclude_slices": ["s1"], "exclude_tags": ["t"]}),
    ("filter", {"row_filter": RowFilter(labels=("a", "b"))}),
    ("slice", {"slice_name": "s1", "exclude_tags": ["t"]}),
])
def test_ordered_from_the_database_equals_the_pandas_sort(small_ws, tmp_path, kind, extra, descending):
    """The first N by a column asked of DuckDB (a view) are those of the stable pandas sort
    of the scope's rows (a DataFrame): NULLs last both ways, ties in row order, excluded
    rows skipped even when they sort first."""
    src = tmp_path / "nulls.csv"
    weight = [None, 2.0, 1.0, 2.0, None, 0.5, 2.0, 1.0, None, 3.0, 0.5, 2.0]
    pd.DataFrame({"id": IDS, "text": [f"row {i}" for i in range(12)], "label": ["a", "b", "c"] * 4,
                  "weight": weight}).to_csv(src, index=False)
    ingest_table(small_ws, src, "small", replace=True)
    frame, view = _table(small_ws), _table(small_ws, view=True)
    scope = resolve_scope(small_ws, "small", view, kind, **extra)
    assert scope == resolve_scope(small_ws, "small", frame, kind, **extra)
    for n in range(1, len(scope.ids) + 1):
        request = SelectRequest("ordered", n=n, by="weight", descending=descending)
        from_db = select_rows(small_ws, "small", request, scope, table=view)
        in_scope = frame.set_index("id").loc[list(scope.ids), ["weight"]].reset_index()
        expected = select_ordered(in_scope, n, "weight", descending)
        assert from_db.ids == expected.ids
        assert from_db.recipe == select_rows(small_ws, "small", request, scope, table=frame).recipe
    with pytest.raises(InputError, match=f"asked for {len(scope.ids) + 1} rows"):
        select_rows(small_ws, "small", SelectRequest("ordered", n=len(scope.ids) + 1, by="weight"),
                    scope, table=view)
