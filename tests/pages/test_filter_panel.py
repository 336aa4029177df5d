"""The Catalog filter shared by every page: conditions survive the search pages, the
cluster map applies it as the Catalog does, deleted or renamed slices never crash a page,
and the panel describes the filter of the current run (not the previous one)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.filters import RowFilter
from core.labels import relabel_rows
from core.workspace import open_workspace
from tests.conftest import REPO
from tests.helpers.apptest import finish_running_jobs, go

APP = str(REPO / "app.py")
N = 40


@pytest.fixture(scope="module")
def small_home(tmp_path_factory) -> Path:
    """``alpha``: 40 text rows, labels a/b, an imported 8-d embedding (fake vectors);
    ``plain``: 6 rows and no embedding."""
    from core.embeddings import write_embedding
    from core.ingest import ingest_table

    root = tmp_path_factory.mktemp("filter-panel")
    home = root / "home"
    ws = open_workspace(home)
    rng = np.random.default_rng(0)
    for name, n, emb in (("alpha", N, True), ("plain", 6, False)):
        df = pd.DataFrame({"id": [f"{name}{i}" for i in range(n)],
                           "text": [f"row {i} of {name}" for i in range(n)],
                           "label": ["ab"[i % 2] for i in range(n)],
                           "size": np.arange(n, dtype=float)})
        src = root / f"{name}.csv"
        df.to_csv(src, index=False)
        ingest_table(ws, src, name)
        if emb:
            write_embedding(ws.dataset(name), "fake", df["id"].tolist(), rng.normal(size=(n, 8)),
                            {"encoder": None, "source": "imported"})
    return home


@pytest.fixture
def home(small_home, tmp_path, monkeypatch) -> Path:
    path = tmp_path / "home"
    shutil.copytree(small_home, path)
    monkeypatch.setenv("CATALOG_HOME", str(path))
    monkeypatch.setenv("CATALOG_NO_DEMO", "1")
    return path


@pytest.fixture
def app(home):
    """Factory: a fresh AppTest session on the Catalog of ``dataset``."""
    from streamlit.testing.v1 import AppTest

    def make(dataset: str = "alpha", row_filter: RowFilter | None = None):
        at = AppTest.from_file(APP, default_timeout=120)
        at.session_state["sidebar:dataset"] = dataset
        at.session_state["clu:method"] = "pca"
        if row_filter is not None:
            at.session_state["row_filter"] = {dataset: row_filter}
        at.run()
        assert not at.exception, at.exception
        return at

    return make


def texts(at) -> list[str]:
    return [m.value for m in at.markdown] + [c.value for c in at.caption]


def catalog_count(at) -> str:
    found = [t for t in texts(at) if t.endswith(" rows**") and " of " in t]
    assert len(found) == 1, texts(at)
    return found[0]


def saved(at, dataset: str = "alpha") -> RowFilter:
    return at.session_state["row_filter"][dataset]


def on_map(at) -> int:
    found = [c.value for c in at.caption if "rows on the map" in c.value]
    assert len(found) == 1, texts(at)
    return int(found[0].split(" rows on the map")[0].replace(",", ""))


UNIQUE = "flt:alpha:rng:uniqueness"


# ---- bug 2: the search pages keep (and apply) the whole Catalog filter ------------------------
def test_quality_condition_survives_similarity_and_text_search(app):
    at = app()
    at.slider(key=UNIQUE).set_value((0.5, 1.0)).run()
    count = catalog_count(at)
    assert count != f"**{N} of {N} rows**"

    go(at, "similarity")
    assert at.slider(key="sim:flt:alpha:rng:uniqueness").value == (0.5, 1.0)
    assert saved(at).ranges == (("uniqueness", 0.5, 1.0),)
    go(at, "text_search")
    assert at.slider(key="txt:flt:alpha:rng:uniqueness").value == (0.5, 1.0)
    assert saved(at).ranges == (("uniqueness", 0.5, 1.0),)
    go(at, "catalog")
    assert catalog_count(at) == count
    assert at.slider(key=UNIQUE).value == (0.5, 1.0)


def test_similarity_searches_inside_the_quality_filter(app):
    at = app()
    at.slider(key=UNIQUE).set_value((0.5, 1.0)).run()
    kept = int(catalog_count(at).strip("*").split(" of ")[0])
    go(at, "similarity")
    at.text_area(key="sim:ids").input("alpha0").run()
    at.button(key="sim:add_pos").click().run()
    assert not at.exception, at.exception
    within = [c.value for c in at.caption if c.value.startswith("Searching within")]
    assert within and within[0].startswith(f"Searching within {kept} filtered rows"), within


def test_edited_label_is_offered_and_kept_on_similarity(app, home):
    relabel_rows(open_workspace(home), "alpha", ["alpha0", "alpha1", "alpha2"], "cat")
    at = app()
    at.multiselect(key="flt:alpha:labels").select("cat").run()
    assert catalog_count(at) == f"**3 of {N} rows**"
    go(at, "similarity")
    box = at.multiselect(key="sim:flt:alpha:labels")
    assert "cat" in box.options and box.value == ["cat"]
    assert saved(at).labels == ("cat",)
    go(at, "catalog")
    assert catalog_count(at) == f"**3 of {N} rows**"


def test_edited_label_is_offered_without_an_embedding(app, home):
    relabel_rows(open_workspace(home), "plain", ["plain0"], "cat")
    at = app("plain")
    assert "cat" in at.multiselect(key="flt:plain:labels").options


def test_cluster_map_applies_a_quality_condition_of_the_catalog(app):
    at = app()
    at.slider(key=UNIQUE).set_value((0.5, 1.0)).run()
    kept = int(catalog_count(at).strip("*").split(" of ")[0])
    assert 0 < kept < N
    go(at, "clusters")
    assert on_map(at) == kept


def test_conditions_the_panel_cannot_show_are_kept_listed_and_can_be_dropped(app):
    flt = RowFilter(labels=("a",), modality="text", ranges=(("no_such_column", 1.0, 2.0),))
    at = app(row_filter=flt)
    assert saved(at) == flt  # nothing silently dropped
    notes = [i.value for i in at.info if i.value.startswith("Also applied")]
    assert len(notes) == 1 and "modality text" in notes[0] and "no\\_such\\_column" in notes[0]
    assert any("no\\_such\\_column" in w.value for w in at.warning)  # cannot be applied here
    assert catalog_count(at) == f"**{N // 2} of {N} rows**"
    go(at, "similarity")
    assert saved(at) == flt
    go(at, "catalog")
    at.button(key="flt:alpha:drop_hidden").click().run()
    assert not at.exception, at.exception
    assert saved(at) == RowFilter(labels=("a",))
    assert not [i for i in at.info if i.value.startswith("Also applied")]


# ---- bug 1: a slice of the saved filter that no longer exists ---------------------------------
def _open_slice_in_catalog(at, home, name: str = "s1"):
    open_workspace(home).store.save_slice("alpha", name, ["alpha1", "alpha2", "alpha3"],
                                          {"method": "manual"})
    go(at, "slices")
    at.selectbox(key="slices:pick").select(name).run()
    at.button(key="slices:open").click().run()
    assert not at.exception, at.exception
    assert catalog_count(at) == f"**3 of {N} rows**"
    assert saved(at).slice_name == name


def test_slice_deleted_elsewhere_warns_on_the_cluster_map_instead_of_crashing(app, home):
    at = app()
    _open_slice_in_catalog(at, home)
    open_workspace(home).store.delete_slice("alpha", "s1")  # another session, or the CLI
    go(at, "clusters", finish_jobs=False)  # the warning is drawn by this run
    assert any("'s1'" in w.value and "no longer exists" in w.value for w in at.warning)
    assert saved(at).slice_name is None
    finish_running_jobs(at)  # the first map is a background job
    assert on_map(at) == N


def test_slice_deleted_elsewhere_warns_on_the_catalog_and_search_pages(app, home):
    at = app()
    _open_slice_in_catalog(at, home)
    open_workspace(home).store.delete_slice("alpha", "s1")
    go(at, "similarity")
    assert any("'s1'" in w.value and "no longer exists" in w.value for w in at.warning)
    assert saved(at).slice_name is None
    _open_slice_in_catalog(at, home, "s2")
    open_workspace(home).store.delete_slice("alpha", "s2")
    go(at, "catalog")
    assert any("'s2'" in w.value and "no longer exists" in w.value for w in at.warning)
    assert catalog_count(at) == f"**{N} of {N} rows**"


def test_renaming_or_deleting_on_the_slices_page_updates_the_filter(app, home):
    at = app()
    _open_slice_in_catalog(at, home)
    go(at, "slices")
    at.text_input(key="slices:new_name").input("s2").run()
    at.button(key="slices:rename").click().run()
    assert not at.exception, at.exception
    assert saved(at).slice_name == "s2"
    go(at, "catalog")
    assert catalog_count(at) == f"**3 of {N} rows**"
    assert at.selectbox(key="flt:alpha:slice").value == "s2"

    go(at, "slices")
    at.button(key="slices:delete").click().run()
    assert not at.exception, at.exception
    assert saved(at).slice_name is None
    go(at, "clusters")
    assert on_map(at) == N


# ---- bug 8: the panel describes this run's filter ----------------------------------------------
def test_filter_description_is_of_the_current_run(app):
    at = app()
    assert [e.label for e in at.expander] == ["Filters"]
    at.slider(key=UNIQUE).set_value((0.5, 1.0)).run()
    assert [e.label for e in at.expander] == ["Filters"]
    assert "Filter: 0\\.5 ≤ uniqueness ≤ 1" in [c.value for c in at.caption]
    at.slider(key=UNIQUE).set_value((0.0, 1.0)).run()
    assert not [c.value for c in at.caption if c.value.startswith("Filter:")]  # no filter: no line
    assert not saved(at).active
    assert catalog_count(at) == f"**{N} of {N} rows**"
