"""The Add data page (AppTest): a path inside / outside the allowed roots, the preview with
the guessed mapping, the ingest job, and the name checks before any job starts."""

from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.workspace import open_workspace
from tests.conftest import REPO


@pytest.fixture
def add_app(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"id": ["a", "b", "c"], "text": ["one cat", "two dogs", "three birds"],
                  "label": ["x", "y", "x"]}).to_csv(data / "small.csv", index=False)
    home = tmp_path / "home"
    monkeypatch.setenv("CATALOG_HOME", str(home))
    monkeypatch.setenv("CATALOG_NO_DEMO", "1")
    monkeypatch.setenv("CATALOG_DATA_ROOTS", str(data))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.run()
    at.switch_page(str(REPO / "pages" / "add_data.py"))
    at.run()
    assert not at.exception, at.exception
    return at, data, home


def _wait_for_jobs(home) -> None:
    from ui.jobs import job_board

    board = job_board(str(home))
    for job in board.jobs(active=True):
        board.wait(job.id, timeout=120)


def test_a_path_outside_the_allowed_roots_is_refused(add_app, tmp_path):
    at, _, home = add_app
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("id,text\na,b\n")
    at.text_input(key="add:path").input(str(outside)).run()
    at.button(key="add:path_btn").click().run()
    assert any("is outside the folders this server may read" in e.value for e in at.error)
    assert "add:preview" not in at.session_state
    assert open_workspace(home).dataset_names() == []


def test_preview_guesses_the_mapping_then_the_job_adds_the_dataset(add_app):
    at, data, home = add_app
    at.text_input(key="add:path").input(str(data / "small.csv")).run()
    at.button(key="add:path_btn").click().run()
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="add:map:text").value == "text"
    assert at.selectbox(key="add:map:label").value == "label"
    assert at.dataframe[0].value["id"].tolist() == ["a", "b", "c"]
    assert at.text_input(key="add:name").value == "small"
    at.checkbox(key="add:embed").uncheck().run()
    at.button(key="add:go").click().run()
    assert not at.exception, at.exception
    _wait_for_jobs(home)
    at.run()
    assert open_workspace(home).dataset("small").row_count() == 3
    assert any("Added small" in s.value for s in at.success)
    assert any("dataset 'small': 3 rows" in c.value for c in at.code)


def test_a_taken_name_is_refused_before_any_job_starts(add_app):
    at, data, home = add_app
    from core.ingest import ingest

    ingest(open_workspace(home), data / "small.csv", "small")
    at.run()
    at.text_input(key="add:path").input(str(data / "small.csv")).run()
    at.button(key="add:path_btn").click().run()
    at.button(key="add:go").click().run()
    assert any("already exists" in e.value for e in at.error)
    from ui.jobs import job_board

    assert job_board(str(home)).latest("small", "ingest") is None


def test_an_existing_dataset_is_updated_from_the_page_keeping_its_tags(add_app):
    at, data, home = add_app
    from core.ingest import ingest

    ws = open_workspace(home)
    ingest(ws, data / "small.csv", "small")
    ws.store.tag_rows("small", ["a"], "keep-me")
    pd.DataFrame({"id": ["a", "b", "d"], "text": ["one cat", "two dogs!", "four fish"],
                  "label": ["x", "y", "z"]}).to_csv(data / "small.csv", index=False)
    at.run()
    at.text_input(key="add:path").input(str(data / "small.csv")).run()
    at.button(key="add:path_btn").click().run()
    at.checkbox(key="add:embed").uncheck().run()
    at.checkbox(key="add:update").check().run()
    at.button(key="add:go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    _wait_for_jobs(home)
    at.run()
    ds = open_workspace(home).dataset("small")
    assert sorted(ds.rows()["id"]) == ["a", "b", "d"]
    assert any("Updated small" in s.value for s in at.success)
    summary = " ".join(c.value for c in at.code)
    assert "added 1, changed 1 (content 1), removed 1, kept 1" in summary, summary
    assert open_workspace(home).store.ids_with_tags("small", ["keep-me"]) == ["a"]


def test_prediction_columns_are_guessed_and_stored_as_a_models_predictions(add_app):
    from core.predictions import load_predictions

    at, data, home = add_app
    pd.DataFrame({"id": ["a", "b", "c"], "text": ["one cat", "two dogs", "three birds"], "label": ["x", "y", "x"],
                  "p_x": [0.9, 0.8, 0.3], "p_y": [0.1, 0.2, 0.7]}).to_csv(data / "scored.csv", index=False)
    at.text_input(key="add:path").input(str(data / "scored.csv")).run()
    at.button(key="add:path_btn").click().run()
    assert at.text_input(key="add:probs").value == "p_*"
    at.text_input(key="add:pred_model").input("vit").run()
    at.checkbox(key="add:embed").uncheck().run()
    at.button(key="add:go").click().run()
    assert not at.exception, at.exception
    _wait_for_jobs(home)
    ds = open_workspace(home).dataset("scored")
    assert "p_x" not in ds.rows().columns  # predictions, not metadata
    assert load_predictions(ds, "vit").predicted_labels.tolist() == ["x", "x", "y"]
