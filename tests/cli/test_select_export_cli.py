"""`catalog select` and `catalog export` as a user runs them: a cluster selection saved
as a slice, exported for labeling with its recipe sidecar, and one-line errors."""

from __future__ import annotations

import gc
import json
from pathlib import Path

from core._shared import ids_hash
from core.workspace import open_workspace
from tests.cli.test_cli import assert_bad_input, catalog

EMB = "efficientnet-lite0"


def _select_json(home: Path, *args: str) -> dict:
    result = catalog(home, "select", "digits", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_cluster_select_saved_as_slice_then_exported_as_ndjson(digits_ws, tmp_path):
    home = digits_ws.home
    out = _select_json(home, "--method", "cluster", "-n", "50", "--save-as", "s")
    assert set(out) == {"ids", "recipe"}
    ids, recipe = out["ids"], out["recipe"]
    rows = digits_ws.dataset("digits").rows().set_index("id")
    assert len(ids) == len(set(ids)) == 50 and set(ids) <= set(rows.index)
    assert recipe["method"] == "cluster" and recipe["n"] == 50 and recipe["k"] == 10
    assert recipe["embedding"] == EMB and recipe["dataset_rows"] == 1797 and recipe["seed"] == 0
    assert sum(recipe["per_cluster_counts"]) == 50 and len(recipe["cluster_sizes"]) == 10
    assert recipe["ids_hash"] == ids_hash(ids) and recipe["rows_selected"] == 50
    assert rows.loc[ids, "label"].nunique() >= 8  # spread over the digits, not one blob
    assert open_workspace(home).store.get_slice("digits", "s").ids == tuple(ids)

    target = tmp_path / "batch.ndjson"
    result = catalog(home, "export", "digits", "--slice", "s", "--format", "ndjson", "--out", target)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [r["global_key"] for r in records] == ids
    assert {r["media_type"] for r in records} == {"IMAGE"}
    assert all(Path(r["row_data"]).is_file() for r in records)
    assert [r["label"] for r in records] == rows.loc[ids, "label"].tolist()
    sidecar = json.loads((tmp_path / "batch.ndjson.recipe.json").read_text(encoding="utf-8"))
    assert sidecar["rows"] == 50 and sidecar["format"] == "ndjson"
    assert sidecar["ids_hash"] == ids_hash(ids)
    assert sidecar["recipe"]["method"] == "cluster" and sidecar["recipe"]["slice"] == "s"


def test_excluding_a_saved_slice_never_picks_its_rows_again(digits_ws):
    home = digits_ws.home
    first = _select_json(home, "--method", "random", "-n", "300", "--seed", "1", "--save-as", "sent")
    second = _select_json(home, "--method", "random", "-n", "1497", "--exclude-slice", "sent")
    assert not set(first["ids"]) & set(second["ids"])
    assert len(set(first["ids"]) | set(second["ids"])) == 1797  # everything else, exactly


def test_bad_method_unknown_column_and_too_many_rows_exit_2_with_one_line(digits_ws):
    home = digits_ws.home
    # A first run creates the store file (catalog.sqlite), so later runs can be compared.
    assert catalog(home, "select", "digits", "--method", "random", "-n", "1").returncode == 0
    assert_bad_input(home, "select", "digits", "--method", "clustr", "-n", "5", mentions="clustr")
    assert_bad_input(home, "select", "digits", "--method", "ordered", "-n", "5", "--by", "nosuch",
                     mentions="nosuch")
    assert_bad_input(home, "select", "digits", "--method", "random", "-n", "5000",
                     "--save-as", "big", mentions="5000")
    assert_bad_input(home, "select", "digits", "--method", "cluster", "-n", "1798", mentions="1798")
    assert_bad_input(home, "export", "digits", "--slice", "missing", "--format", "ndjson",
                     "--out", str(home / "x.ndjson"), mentions="missing")


def test_select_inside_a_where_filter_minus_a_tag_then_export_the_same_filter(digits_ws, tmp_path):
    home = digits_ws.home
    rows = digits_ws.dataset("digits").rows().set_index("id")
    threes = rows.index[rows["label"] == "3"].astype(str).tolist()
    digits_ws.store.tag_rows("digits", threes[:10], "sent")
    out = _select_json(home, "--method", "diverse", "-n", "20", "--where", "label = 3",
                       "--exclude-tag", "sent", "--save-as", "threes")
    ids, recipe = out["ids"], out["recipe"]
    assert len(ids) == 20 and set(rows.loc[ids, "label"]) == {"3"} and not set(ids) & set(threes[:10])
    assert recipe["scope"] == "Catalog filter: label in {3} minus tag 'sent'"
    assert recipe["scope_detail"]["kind"] == "filter"
    assert recipe["scope_detail"]["filter"]["labels"] == ["3"]
    assert recipe["rows_in_scope"] == len(threes) - 10 and recipe["excluded_rows"] == 10
    assert recipe["not_covered"] == 0 and recipe["embedding"] == EMB
    assert open_workspace(home).store.get_slice("digits", "threes").recipe["scope"] == recipe["scope"]

    target = tmp_path / "threes.csv"
    result = catalog(home, "export", "digits", "--where", "label = 3 and tag = sent",
                     "--format", "csv", "--out", target, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == 10
    exported = target.read_text(encoding="utf-8").splitlines()[1:]
    assert sorted(line.split(",")[0] for line in exported) == sorted(threes[:10])
    sidecar = json.loads((tmp_path / "threes.csv.recipe.json").read_text(encoding="utf-8"))
    assert sidecar["recipe"]["method"] == "filter"


def test_bad_scope_where_and_export_sources_exit_2_and_save_nothing(digits_ws, tmp_path):
    home = digits_ws.home
    ids = digits_ws.dataset("digits").rows()["id"].astype(str).tolist()
    setup = open_workspace(home)  # closed below: an open connection would let a later
    setup.store.save_slice("digits", "kept", ids[:5])  # process checkpoint its writes
    setup.store.tag_rows("digits", ids[:3], "sent")
    del setup
    gc.collect()
    assert catalog(home, "select", "digits", "--method", "random", "-n", "1").returncode == 0
    select = ("select", "digits", "--method", "random", "-n", "3", "--save-as", "new")
    assert_bad_input(home, *select, "--where", "label in (3", mentions="expected ')'")
    assert_bad_input(home, *select, "--where", "label = 3; drop table tags", mentions="drop")
    assert_bad_input(home, *select, "--where", "tag = nosuch", mentions="nosuch")
    assert_bad_input(home, *select, "--where", "weight >= 3", mentions="weight")
    assert_bad_input(home, *select, "--slice", "gone", mentions="gone")
    assert_bad_input(home, *select, "--exclude-slice", "lost", mentions="lost")
    assert_bad_input(home, *select, "--exclude-tag", "untagged", mentions="untagged")
    assert_bad_input(home, *select, "--slice", "kept", "--where", "label = 3", mentions="--where")
    assert_bad_input(home, *select, "--embedding", "nope-emb", mentions="nope-emb")
    assert not [s for s in open_workspace(home).store.list_slices("digits") if s.name == "new"]

    out = str(tmp_path / "x.csv")
    export = ("export", "digits", "--format", "csv", "--out", out)
    assert_bad_input(home, *export, "--ids-file", str(tmp_path / "absent.txt"), mentions="absent.txt")
    (tmp_path / "ids.txt").write_text(f"{ids[0]}\nnot-a-row\n", encoding="utf-8")
    assert_bad_input(home, *export, "--ids-file", str(tmp_path / "ids.txt"), mentions="not-a-row")
    assert_bad_input(home, *export, "--tag", "nosuch", mentions="nosuch")
    assert_bad_input(home, *export, "--where", "label between", mentions="between")
    assert_bad_input(home, *export, "--slice", "kept", "--tag", "sent", mentions="--tag")
    assert not list(tmp_path.glob("x.csv*"))


def test_export_label_studio_tasks_with_local_files_or_prefixed_urls(digits_ws, tmp_path):
    home = digits_ws.home
    ds = digits_ws.dataset("digits")
    rows = ds.rows().set_index("id")
    ids = rows.index.astype(str).tolist()[::200][::-1]  # slice order, not dataset order
    digits_ws.store.save_slice("digits", "ls", ids, {"method": "random", "n": len(ids)})
    digits_ws.store.relabel("digits", [ids[0]], "edited", [rows.loc[ids[0], "label"]])

    target = tmp_path / "tasks.json"
    result = catalog(home, "export", "digits", "--slice", "ls", "--format", "label-studio",
                     "--out", target, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == len(ids)
    tasks = json.loads(target.read_text(encoding="utf-8"))
    assert isinstance(tasks, list) and [t["data"]["id"] for t in tasks] == ids
    root = Path(ds.media_root).resolve()
    for task, rid in zip(tasks, ids):
        url = task["data"]["image"]
        assert url == f"/data/local-files/?d={root.name}/{rows.loc[rid, 'image']}"
        assert (root.parent / url.split("?d=", 1)[1]).is_file()
        label = "edited" if rid == ids[0] else rows.loc[rid, "label"]
        assert task["data"]["label"] == label
        assert task["predictions"] == [{"model_version": "catalog", "result": [
            {"from_name": "label", "to_name": "image", "type": "choices",
             "value": {"choices": [label]}}]}]
    sidecar = json.loads((tmp_path / "tasks.json.recipe.json").read_text(encoding="utf-8"))
    assert sidecar["format"] == "label-studio" and sidecar["rows"] == len(ids)
    assert sidecar["ids_hash"] == ids_hash(ids) and sidecar["recipe"]["slice"] == "ls"

    prefixed = tmp_path / "prefixed.json"
    result = catalog(home, "export", "digits", "--slice", "ls", "--format", "label-studio",
                     "--out", prefixed, "--image-url-prefix", "http://localhost:8081/")
    assert result.returncode == 0, result.stderr
    urls = [t["data"]["image"] for t in json.loads(prefixed.read_text(encoding="utf-8"))]
    assert urls == [f"http://localhost:8081/{rows.loc[rid, 'image']}" for rid in ids]


def test_export_label_studio_bad_prefix_or_format_exits_2_with_one_line(digits_ws, tmp_path):
    home = digits_ws.home
    ids = digits_ws.dataset("digits").rows()["id"].astype(str).tolist()
    setup = open_workspace(home)
    setup.store.save_slice("digits", "ls", ids[:3])
    del setup
    gc.collect()
    assert catalog(home, "select", "digits", "--method", "random", "-n", "1").returncode == 0
    out = str(tmp_path / "x.json")
    export = ("export", "digits", "--slice", "ls", "--out", out)
    assert_bad_input(home, *export, "--format", "label-studio", "--image-url-prefix",
                     "file:///srv/media/", mentions="browsers block file://")
    assert_bad_input(home, *export, "--format", "label-studio", "--image-url-prefix",
                     "http://localhost:8081/img", mentions="must end with '/' or '='")
    assert_bad_input(home, *export, "--format", "csv", "--image-url-prefix",
                     "http://localhost:8081/", mentions="only to the label-studio format")
    assert_bad_input(home, *export, "--format", "labelstudio", mentions="labelstudio")
    assert not list(tmp_path.glob("x.json*"))


def test_cli_export_formats_are_the_core_formats():
    from core.cli.curate import EXPORT_FORMATS as CLI_FORMATS
    from core.export import EXPORT_FORMATS

    assert CLI_FORMATS == EXPORT_FORMATS
