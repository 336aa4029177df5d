"""Label review with a model's predictions: the source picker, the queue saying which
source flagged each row and why, accept and undo from every source, the model-mistakes
tab and its confusion matrix listing a cell's rows."""

from __future__ import annotations

import re

import pytest

from core.labels import effective_labels
from core.predictions import load_predictions
from core.quality import confusion_matrix
from core.workspace import open_workspace
from tests.conftest import REPO
from tests.helpers.apptest import grid_ids
from tests.helpers.planted import add_planted_dataset

PAGE = "pages/quality.py"


@pytest.fixture
def pets_app(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    home = tmp_path / "home"
    ws = open_workspace(home)
    data = add_planted_dataset(ws, "pets", tmp=tmp_path)
    monkeypatch.setenv("CATALOG_HOME", str(home))
    monkeypatch.setenv("CATALOG_NO_DEMO", "1")

    def make():
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
        at.session_state["sidebar:dataset"] = "pets"
        at.run()
        at.switch_page(str(REPO / PAGE)).run()
        assert not at.exception, at.exception
        return at

    return make, ws, data


def _queue(at) -> list[str]:
    return [b.key.split(":", 2)[2] for b in at.tabs[0].button if b.key.startswith("qa:accept:")]


def _texts(at) -> list[str]:
    """The texts of the Label issues tab."""
    tab = at.tabs[0]
    return [m.value for m in tab.markdown] + [c.value for c in tab.caption]


def _to_review(at) -> str:
    return next(m.value for m in at.markdown if "rows to review" in m.value)


def test_the_queue_defaults_to_both_sources_and_says_which_flagged_each_row_and_why(pets_app):
    make, ws, data = pets_app
    at = make()
    assert "flagged by neighbours + model (resnet)" in _to_review(at)
    texts = _texts(at)
    assert any(t.startswith("Model resnet: **") for t in texts)  # the model's probabilities
    assert any("Nearest rows (label · similarity)" in t for t in texts)  # the neighbours
    lists = [c for c in at.tabs[0].caption if (c.help or "").startswith("Ids: ")]  # text rows: one line each
    assert len(lists) == len(_queue(at))
    lines = lists[0].value.split("  \n")
    assert len(lines) == 5 and all(re.fullmatch(r"\*\*(bird|cat|dog|fish)\*\* · [01]\.\d\d — row \d+ about a \w+", ln)
                                   for ln in lines)
    assert any(":blue-badge[neighbours]" in t for t in texts) and any(":violet-badge[model]" in t for t in texts)
    flipped_first = sum(r in data.flipped for r in _queue(at)[:10])
    assert flipped_first >= 7
    at.segmented_control(key="qa:source").set_value("neighbours").run()
    assert "flagged by neighbours (" in _to_review(at)
    assert not any(t.startswith("Model resnet:") for t in _texts(at))


@pytest.mark.parametrize("source", ["neighbours", "model", "combined"])
def test_accept_and_undo_work_the_same_from_every_source(pets_app, source):
    make, ws, _ = pets_app
    at = make()
    at.segmented_control(key="qa:source").set_value(source).run()
    rid = _queue(at)[0]
    suggested = at.button(key=f"qa:accept:{rid}").label.removeprefix("Accept ")
    at.button(key=f"qa:accept:{rid}").click().run()
    assert not at.exception, at.exception
    assert effective_labels(ws, "pets")[rid] == suggested
    assert rid not in _queue(at)
    at.button(key="qa:undo").click().run()
    assert effective_labels(ws, "pets")[rid] != suggested
    assert rid in _queue(at)


def test_model_mistakes_tab_lists_a_confusion_cell_and_accepts_the_models_class(pets_app):
    make, ws, data = pets_app
    at = make()
    assert any(t.label == "Model mistakes" for t in at.tabs)
    assert any("accuracy" in m.value for m in at.markdown)
    preds = load_predictions(ws.dataset("pets"), "resnet")
    cm = confusion_matrix(effective_labels(ws, "pets"), preds)
    at.session_state["qa:cm_cell"] = ("bird", "cat")  # what a click on that cell stores
    at.run()
    assert not at.exception, at.exception
    expected = cm.rows_in("bird", "cat")
    assert expected and sorted(grid_ids(at, "qa:cm_grid")) == sorted(expected)
    assert any(f"{len(expected):,} rows labelled bird, predicted cat" in m.value for m in at.markdown)
    mistake = next(b for b in at.button if b.key.startswith("mm:accept:"))
    rid = mistake.key.split(":", 2)[2]
    predicted = mistake.label.removeprefix("Accept ")
    mistake.click().run()
    assert effective_labels(ws, "pets")[rid] == predicted
    at.button(key="qa:undo").click().run()
    assert effective_labels(ws, "pets")[rid] != predicted


def test_the_cluster_map_colours_by_prediction_correctness_and_confidence(pets_app):
    import json

    from tests.helpers.apptest import finish_running_jobs
    from ui import cluster_widgets as cw

    make, ws, data = pets_app
    at = make()
    at.session_state["clu:method"] = "pca"
    at.switch_page(str(REPO / "pages/clusters.py")).run()
    if any("runs in the background" in c.value for c in at.caption):
        finish_running_jobs(at)
    assert set(cw.MODEL_COLORINGS) <= set(at.selectbox(key="clu:color").options)
    preds = load_predictions(ws.dataset("pets"), "resnet")
    predicted = dict(zip(preds.ids, preds.predicted_labels))

    def drawn() -> dict[str, list[str]]:
        spec = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
        return {t["name"]: [h.split("<br>")[0] for h in t["hovertext"]] for t in spec if t.get("hovertext")}

    at.selectbox(key="clu:color").select(cw.COLOR_CORRECT).run()
    assert not at.exception, at.exception
    groups = drawn()
    assert set(groups) == {"correct", "wrong"}
    assert sorted(groups["wrong"]) == sorted(i for i, lab in zip(data.ids, data.noisy) if predicted[i] != lab)
    at.selectbox(key="clu:color").select(cw.COLOR_PREDICTION).run()
    groups = drawn()
    assert set(groups) == set(preds.classes)
    assert all(predicted[i] == name for name, ids in groups.items() for i in ids)
    at.selectbox(key="clu:color").select(cw.COLOR_CONFIDENCE).run()
    assert "model confidence" in drawn()


def test_a_dataset_with_predictions_and_no_embedding_is_reviewed_by_the_model(tmp_path, monkeypatch):
    import pandas as pd
    from streamlit.testing.v1 import AppTest

    from core.ingest import ingest
    from core.predictions import PredictionColumns

    home = tmp_path / "home"
    ws = open_workspace(home)
    table = tmp_path / "t.csv"
    pd.DataFrame({"id": ["a", "b", "c", "d"], "text": ["w", "x", "y", "z"], "label": ["cat", "dog", "dog", "cat"],
                  "p_cat": [0.9, 0.95, 0.2, 0.6], "p_dog": [0.1, 0.05, 0.8, 0.4]}).to_csv(table, index=False)
    ingest(ws, table, "t", predictions=PredictionColumns(probs_col="p_*"), model="bert")
    monkeypatch.setenv("CATALOG_HOME", str(home))
    monkeypatch.setenv("CATALOG_NO_DEMO", "1")
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.session_state["sidebar:dataset"] = "t"
    at.run()
    at.switch_page(str(REPO / PAGE)).run()
    assert not at.exception, at.exception
    assert [t.label for t in at.tabs] == ["Label issues", "Model mistakes"]
    assert "flagged by model (bert)" in _to_review(at)
    assert _queue(at)[0] == "b"  # labelled dog, the model says cat at 0.95
    assert any("Near-duplicates and outliers need an embedding" in c.value for c in at.caption)
