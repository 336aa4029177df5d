"""`catalog select` and `catalog export` as a user runs them: a cluster selection saved
as a slice, exported for labeling with its recipe sidecar, and one-line errors."""

from __future__ import annotations

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
