"""`catalog import-predictions`, `ingest --pred-col/--probs-col`, `label-issues --source`
and `model-mistakes` through the command line."""

from __future__ import annotations

import gc
import json

import pandas as pd
import pytest

from core.workspace import open_workspace
from tests.cli.test_cli import assert_bad_input, catalog
from tests.helpers.planted import CLASSES, add_planted_dataset


@pytest.fixture
def pets(home, tmp_path):
    ws = open_workspace(home)
    data = add_planted_dataset(ws, "pets", tmp=tmp_path)
    del ws
    gc.collect()  # close this process's store connection, then let one command checkpoint its WAL
    assert catalog(home, "label-issues", "pets", "--source", "model").returncode == 0
    return home, data


def _json(home, *args):
    out = catalog(home, *args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_label_issues_default_to_combined_and_say_which_source_flagged_each_row(pets):
    home, data = pets
    combined = _json(home, "label-issues", "pets", "--limit", "24")
    assert (combined["source"], combined["model"]) == ("combined", "resnet")
    assert sum(i["id"] in data.flipped for i in combined["issues"]) >= 15
    top = combined["issues"][0]
    assert set(top["flagged_by"]) <= {"neighbours", "model"} and top["flagged_by"]
    assert top["neighbour_score"] is not None and top["model_score"] is not None
    for source in ("neighbours", "model"):
        assert _json(home, "label-issues", "pets", "--source", source)["source"] == source
    assert_bad_input(home, "label-issues", "pets", "--source", "votes", mentions="neighbours, model, combined")
    assert_bad_input(home, "label-issues", "pets", "--model", "vgg", mentions="resnet")


def test_model_mistakes_lists_confident_disagreements_and_the_confusion_matrix(pets):
    home, data = pets
    out = _json(home, "model-mistakes", "pets", "--model", "resnet", "--min-confidence", "0.6")
    assert out["rows"] and all(r["confidence"] >= 0.6 and r["predicted"] != r["label"] for r in out["rows"])
    conf = out["confusion"]
    assert conf["classes"] == list(CLASSES) and conf["rows"] == len(data.ids)
    assert sum(conf["counts"][i][i] for i in range(4)) == round(conf["accuracy"] * conf["rows"])


def test_import_predictions_refuses_bad_files_with_exit_2_and_nothing_changed(pets, tmp_path):
    home, data = pets
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"id": [data.ids[0], "ghost-1", "ghost-2"], "prediction": ["cat", "dog", "cat"]}).to_csv(bad, index=False)
    assert_bad_input(home, "import-predictions", "pets", str(bad), "--model", "m2", mentions="'ghost-1', 'ghost-2'")
    good = tmp_path / "good.csv"
    pd.DataFrame({"id": data.ids[:3], "prediction": ["cat", "dog", "cat"], "score": [0.9, 0.8, 0.7]}).to_csv(good, index=False)
    assert _json(home, "import-predictions", "pets", str(good), "--model", "m2")["rows"] == 3
    assert_bad_input(home, "import-predictions", "pets", str(good), "--model", "m2", mentions="--replace")


def test_ingest_takes_probability_columns(home, tmp_path):
    table = tmp_path / "t.csv"
    pd.DataFrame({"id": ["a", "b", "c"], "text": ["x", "y", "z"], "label": ["cat", "dog", "dog"],
                  "p_cat": [0.9, 0.8, 0.1], "p_dog": [0.1, 0.2, 0.9]}).to_csv(table, index=False)
    out = _json(home, "ingest", str(table), "--name", "t", "--probs-col", "p_*", "--pred-model", "vit")
    assert out["predictions"] == {"model": "vit"}
    mistakes = _json(home, "model-mistakes", "t")
    assert [r["id"] for r in mistakes["rows"]] == ["b"]
    issues = _json(home, "label-issues", "t")  # no embedding: the model alone
    assert issues["source"] == "model" and issues["issues"][0]["id"] == "b"


@pytest.mark.parametrize("source", ["model", "combined"])
def test_review_accepts_the_suggestion_of_any_source_and_undo_reverts_it(pets, source):
    home, _ = pets
    top = _json(home, "label-issues", "pets", "--source", source, "--limit", "1")["issues"][0]
    done = _json(home, "review", "pets", "--id", top["id"], "--accept", "--source", source)
    assert done["label"] == top["suggested"] and done["edits"]
    assert _json(home, "undo", "pets")["undone"]["id"] == top["id"]
    issues = _json(home, "label-issues", "pets", "--source", source, "--limit", "1")["issues"]
    assert issues[0]["id"] == top["id"] and issues[0]["label"] == top["label"]
