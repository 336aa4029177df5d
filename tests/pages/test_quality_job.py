"""A large embedding's first quality pass (kNN, label-issue and uniqueness scores) runs as
a background job: the Catalog shows the rows at once and gains the quality columns when
the job ends; Label review waits on the job with its progress."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.embeddings import write_embedding
from core.ingest import ingest_table
from core.workspace import open_workspace
from tests.conftest import REPO
from tests.helpers.apptest import finish_job, go, grid_payload
from ui.quality_data import QUALITY_INLINE_ROWS

N = QUALITY_INLINE_ROWS + 2_000


@pytest.fixture
def large_home(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    table = tmp_path / "big.parquet"
    pd.DataFrame({"id": [f"r{i:05d}" for i in range(N)], "text": [f"row {i}" for i in range(N)],
                  "label": rng.choice(["a", "b", "c"], N)}).to_parquet(table)
    home = tmp_path / "home"
    ws = open_workspace(home)
    ingest_table(ws, table, "big")
    ids = ws.dataset("big").rows()["id"].tolist()
    write_embedding(ws.dataset("big"), "rand", ids, rng.standard_normal((N, 8)).astype(np.float32),
                    {"encoder": None, "source": "imported"})
    monkeypatch.setenv("CATALOG_HOME", str(home))
    monkeypatch.setenv("CATALOG_NO_DEMO", "1")
    return home


def _app():
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=300)
    at.session_state["sidebar:dataset"] = "big"
    return at.run()


def test_the_catalog_shows_rows_at_once_and_gains_quality_columns_after_the_job(large_home):
    at = _app()
    assert not at.exception, at.exception
    assert f"**{N:,} of {N:,} rows**" in [m.value for m in at.markdown]
    assert "label_issue_score" not in grid_payload(at, "catalog")["columns"]
    job = finish_job(at, large_home, "big", "quality", timeout=600)
    assert job.result == {"rows": N}
    assert "label_issue_score" in grid_payload(at, "catalog")["columns"]


def test_label_review_waits_on_the_job_then_shows_the_queue(large_home):
    at = go(_app(), "quality", finish_jobs=False)
    assert any("needs one nearest-neighbour pass" in i.value for i in at.info)
    assert at.get("progress")  # the job's live progress
    finish_job(at, large_home, "big", "quality", timeout=600)
    assert any("rows to review" in m.value for m in at.markdown)
