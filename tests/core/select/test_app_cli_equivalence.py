"""One code path for smart select: the Smart select page's functions (what
pages/smart_select.py calls: page_scope + run_selection) and `catalog select ... --json`
give the same ids and the same recipe, for every method and every scope, with exclusions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.cli import main
from core.embeddings import import_embeddings, load_embedding
from core.filters import RowFilter
from core.workspace import Workspace, open_workspace
from ui import smart_select as sw
from ui import state

# (CLI arguments, the page's request)
METHODS = {
    "random": (["--method", "random", "-n", "25", "--seed", "3"],
               sw.SelectRequest("random", n=25, seed=3)),
    "ordered": (["--method", "ordered", "-n", "25", "--by", "label", "--desc"],
                sw.SelectRequest("ordered", n=25, by="label", descending=True)),
    "ordered-quality": (["--method", "ordered", "-n", "25", "--by", "uniqueness", "--desc"],
                        sw.SelectRequest("ordered", n=25, by="uniqueness", descending=True)),
    "cluster": (["--method", "cluster", "-n", "25", "--k", "6", "--seed", "1", "--pick", "random"],
                sw.SelectRequest("cluster", n=25, seed=1, k=6, pick="random")),
    "diverse": (["--method", "diverse", "-n", "25", "--seed", "2"],
                sw.SelectRequest("diverse", n=25, seed=2)),
}
# (CLI arguments, the page's scope choice, the Catalog filter in session state)
SCOPES = {
    "all": ([], sw.SCOPE_ALL, None),
    "filter": (["--where", "label in (3, 5, 8)"], sw.SCOPE_FILTER, RowFilter(labels=("3", "5", "8"))),
    "slice": (["--slice", "pool"], sw.SLICE_PREFIX + "pool", None),
}
EXCLUDE = (["--exclude-slice", "done", "--exclude-tag", "sent"], ["done"], ["sent"])


@pytest.fixture(scope="module")
def shared_ws(tmp_path_factory, digits_home: Path) -> Workspace:
    """digits with slices pool (599 rows) and done (40, spread over the labels), tag sent (30) and a
    second embedding 'partial' covering 1,500 rows. Read-only in these tests."""
    home = tmp_path_factory.mktemp("equivalence") / "home"
    shutil.copytree(digits_home, home)
    ws = open_workspace(home)
    ds = ws.dataset("digits")
    ids = ds.rows()["id"].astype(str).tolist()
    ws.store.save_slice("digits", "pool", ids[::3][::-1])  # every digit, in reverse order
    ws.store.save_slice("digits", "done", ids[::45])
    ws.store.tag_rows("digits", ids[6::60], "sent")
    emb = load_embedding(ds, ds.default_embedding())
    np.save(home / "part.npy", np.asarray(emb.vectors[:1500]))
    (home / "part.txt").write_text("\n".join(str(i) for i in emb.ids[:1500]), encoding="utf-8")
    import_embeddings(ds, home / "part.npy", "partial", ids_file=home / "part.txt")
    return ws


def _app(ws: Workspace, embedding: str, request: sw.SelectRequest, choice: str,
         flt: RowFilter | None) -> dict:
    """What the page does on Preview: its rows (a RowsView, with the quality columns when
    the request needs them), scope and cached selection."""
    state.set_row_filter("digits", flt or RowFilter())
    rows = sw.page_rows(ws, "digits")
    if sw.needs_quality_columns("digits", embedding, request, choice, rows):
        rows = sw.page_rows(ws, "digits", embedding)
        assert rows.quality is not None
    scope = sw.page_scope(ws, "digits", rows, choice, EXCLUDE[1], EXCLUDE[2])
    sel = sw.run_selection(ws, "digits", rows, embedding, request, scope)
    return json.loads(json.dumps(sel.to_json(), default=str))  # as saved / printed


def _cli(ws: Workspace, capsys, *args: str) -> dict:
    capsys.readouterr()
    code = main(["--home", str(ws.home), "select", "digits", *args, "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


@pytest.mark.parametrize("scope", list(SCOPES))
@pytest.mark.parametrize("method", list(METHODS))
def test_page_and_cli_select_the_same_ids_with_the_same_recipe(shared_ws, capsys, method, scope):
    cli_args, request = METHODS[method]
    scope_args, choice, flt = SCOPES[scope]
    embedding = shared_ws.dataset("digits").default_embedding()  # the sidebar's default
    app = _app(shared_ws, embedding, request, choice, flt)
    cli = _cli(shared_ws, capsys, *cli_args, *scope_args, *EXCLUDE[0])
    assert cli["ids"] == app["ids"]
    assert cli["recipe"] == app["recipe"]
    recipe = cli["recipe"]
    assert recipe["scope_detail"]["kind"] == scope and recipe["excluded_rows"] > 0
    assert recipe["excluded_slices"] == ["done"] and recipe["excluded_tags"] == ["sent"]
    assert recipe["embedding"] == (None if method in ("random", "ordered") else embedding)
    assert len(cli["ids"]) == 25


@pytest.mark.parametrize("method", ["cluster", "diverse"])
def test_rows_without_a_vector_are_left_out_and_counted_alike(shared_ws, capsys, method):
    cli_args, request = METHODS[method]
    app = _app(shared_ws, "partial", request, sw.SCOPE_ALL, None)
    cli = _cli(shared_ws, capsys, *cli_args, *EXCLUDE[0], "--embedding", "partial")
    assert cli == app
    recipe = cli["recipe"]
    assert recipe["embedding"] == "partial" and recipe["dataset_rows"] == 1797
    assert recipe["not_covered"] == recipe["rows_in_scope"] - recipe["scope_rows"] > 0
    shown = {str(i) for i in load_embedding(shared_ws.dataset("digits"), "partial").ids}
    assert set(cli["ids"]) <= shown
