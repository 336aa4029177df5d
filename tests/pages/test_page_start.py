"""Every page's preamble (``ui.page.start_page``): one clear message and a stopped run when
there is no dataset or the page needs an embedding the dataset lacks; and the message of
an action shown once, as plain text, on the run after it (``ui.messages.flash``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.workspace import open_workspace
from tests.conftest import REPO
from tests.helpers.apptest import go
from tests.pages.shown import unescaped

APP = str(REPO / "app.py")
TITLES = {"catalog": "Catalog", "similarity": "Similarity search", "text_search": "Text search",
          "smart_select": "Smart select", "slices": "Slices", "clusters": "Cluster map",
          "quality": "Label review", "embeddings": "Embeddings"}
NEED_EMBEDDING = ("similarity", "text_search", "clusters", "quality")


@pytest.fixture(scope="module")
def small_home(tmp_path_factory) -> Path:
    """``alpha``: 12 text rows with an imported 8-d embedding; ``plain``: 6 rows, none."""
    from core.embeddings import write_embedding
    from core.ingest import ingest_table

    root = tmp_path_factory.mktemp("page-start")
    ws = open_workspace(root / "home")
    for name, n in (("alpha", 12), ("plain", 6)):
        df = pd.DataFrame({"id": [f"{name}{i}" for i in range(n)],
                           "text": [f"row {i} of {name}" for i in range(n)],
                           "label": ["ab"[i % 2] for i in range(n)]})
        df.to_csv(root / f"{name}.csv", index=False)
        ingest_table(ws, root / f"{name}.csv", name)
    write_embedding(ws.dataset("alpha"), "fake", [f"alpha{i}" for i in range(12)],
                    np.random.default_rng(0).normal(size=(12, 8)), {"encoder": None, "source": "imported"})
    return root / "home"


def _use(home: Path, monkeypatch) -> Path:
    monkeypatch.setenv("CATALOG_HOME", str(home))
    monkeypatch.setenv("CATALOG_NO_DEMO", "1")
    return home


@pytest.fixture
def home(small_home, tmp_path, monkeypatch) -> Path:
    path = tmp_path / "home"
    shutil.copytree(small_home, path)
    return _use(path, monkeypatch)


def start_app(dataset: str | None = None):
    """A new session of the app on ``dataset`` (the Catalog page)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    if dataset:
        at.session_state["sidebar:dataset"] = dataset
    at.run()
    assert not at.exception, at.exception
    return at


def open_page(page: str, dataset: str | None = None):
    return go(start_app(dataset), page)


def page_widgets(at) -> list[str]:
    """Keys of the widgets the page drew (the sidebar's pickers left out)."""
    main = at.main
    widgets = [*main.button, *main.text_input, *main.selectbox, *main.checkbox, *main.multiselect]
    return [w.key for w in widgets]


@pytest.mark.parametrize("page", sorted(TITLES))
def test_without_a_dataset_every_page_stops_with_one_message(page, tmp_path, monkeypatch):
    _use(tmp_path / "empty", monkeypatch)
    at = open_page(page)
    assert [t.value for t in at.title] == [TITLES[page]]
    assert [i.value for i in at.main.info] == [
        "No dataset yet: add a folder of images or a table on the Add data page."]
    assert [link.value for link in at.main.get("page_link")] == ["Add data"]
    assert [link.proto.page for link in at.main.get("page_link")] == ["add_data"]
    assert not at.error and not page_widgets(at)


@pytest.mark.parametrize("page", NEED_EMBEDDING)
def test_a_page_that_needs_an_embedding_says_how_to_make_one_and_stops(page, home):
    at = open_page(page, dataset="plain")
    assert [t.value for t in at.title] == [TITLES[page]]
    assert [i.value for i in at.main.info] == [
        (f"{TITLES[page]} needs an embedding of plain: compute one here, on the Embeddings page, "
         "or with `catalog embed plain`.")]
    assert [link.proto.page for link in at.main.get("page_link")] == ["embeddings"]
    assert not at.error and page_widgets(at) == ["page:embed_now"]  # the page stopped there


@pytest.mark.parametrize("page", sorted(set(TITLES) - set(NEED_EMBEDDING)))
def test_pages_that_work_without_an_embedding_run_on(page, home):
    open_workspace(home).store.save_slice("plain", "s1", ["plain0"], {"method": "manual"})
    at = open_page(page, dataset="plain")
    assert not any("needs an embedding" in i.value for i in at.info)
    assert page_widgets(at)  # the page went on past its preamble


def test_an_action_message_shows_once_after_the_rerun_as_plain_text(home):
    store = open_workspace(home).store
    store.save_slice("alpha", "s1", ["alpha0", "alpha1"], {"method": "manual"})
    at = open_page("slices", dataset="alpha")
    assert not at.success
    new = "**big** [x](https://example.com)"
    at.text_input(key="slices:new_name").input(new).run()
    at.button(key="slices:rename").click().run()
    assert [unescaped(s.value) for s in at.success] == [f"Renamed slice 's1' to '{new}'."]
    assert "**big**" not in at.success[0].value and "](" not in at.success[0].value  # not markdown
    at.run()  # a plain rerun: the message was shown once
    assert not at.success and not at.error
    assert [s.name for s in store.list_slices("alpha")] == [new]


def test_an_error_after_an_action_names_the_value_and_changes_nothing(home):
    store = open_workspace(home).store
    taken = "*taken*"
    for name in ("s1", taken):
        store.save_slice("alpha", name, ["alpha0"], {"method": "manual"})
    at = open_page("slices", dataset="alpha")
    at.selectbox(key="slices:pick").set_value("s1").run()
    at.text_input(key="slices:new_name").input(taken).run()
    at.button(key="slices:rename").click().run()
    errors = [unescaped(e.value) for e in at.error]
    assert len(errors) == 1 and f"'{taken}'" in errors[0] and "already exists" in errors[0], errors
    assert "\\*taken\\*" in at.error[0].value  # shown as typed, not as emphasis
    assert sorted(s.name for s in store.list_slices("alpha")) == sorted(["s1", taken])  # unchanged
    assert store.get_slice("alpha", "s1").ids == ("alpha0",)
    at.run()
    assert not at.error
