"""AppTest fixtures: a workspace with both demos, and an app runner bound to it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO

APP = str(REPO / "app.py")


@pytest.fixture
def app_home(tmp_path: Path, demo_home: Path, monkeypatch) -> Path:
    """A private copy of the demo workspace, set as CATALOG_HOME for AppTest runs."""
    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    monkeypatch.setenv("CATALOG_HOME", str(home))
    monkeypatch.setenv("CATALOG_NO_DEMO", "1")
    return home


@pytest.fixture
def make_app(app_home):
    """Factory: a fresh AppTest of app.py (new session) on the same workspace."""
    from streamlit.testing.v1 import AppTest

    def make(page: str | None = None, dataset: str = "digits"):
        at = AppTest.from_file(APP, default_timeout=120)
        at.session_state["sidebar:dataset"] = dataset
        at.run()
        if page:
            at.switch_page(str(REPO / page))
            at.run()
        return at

    return make
