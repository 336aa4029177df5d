"""Label review with a model's predictions in a real browser: the queue says which source
flagged each row, and clicking a confusion-matrix cell lists exactly that cell's rows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.labels import effective_labels
from core.predictions import load_predictions
from core.quality import confusion_matrix
from core.workspace import open_workspace
from tests.e2e.test_pages_browser import _expect, open_page, run_and_settle
from tests.helpers.planted import add_planted_dataset


@pytest.fixture(scope="module")
def pets_home(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("e2e-pets")
    add_planted_dataset(open_workspace(root / "home"), "pets", tmp=root)
    return root / "home"


@pytest.fixture(scope="module")
def pets_url(module_served_app, pets_home) -> str:
    return module_served_app(pets_home)


def test_the_queue_shows_its_sources_and_a_confusion_cell_lists_its_rows(browser_page, pets_url, pets_home,
                                                                         wait_idle):
    page, expect = browser_page, _expect()
    open_page(page, pets_url, "quality", "pets", wait_idle)
    expect(page.get_by_text(re.compile(r"rows to review, flagged by neighbours \+ model \(resnet\)"))).to_be_visible()
    panel = page.locator('[role="tabpanel"]:visible')  # the Label issues tab
    expect(panel.get_by_text("neighbours", exact=True).first).to_be_visible()  # the source badges
    expect(panel.get_by_text("model", exact=True).first).to_be_visible()
    expect(panel.get_by_text(re.compile(r"^Model resnet: ")).first).to_be_visible()  # why: its probabilities
    expect(panel.get_by_text("Nearest rows (label · similarity):").first).to_be_visible()  # and the neighbours

    page.get_by_role("tab", name="Model mistakes").click()  # tabs switch in the browser: no rerun
    expect(page.get_by_text("Confusion matrix")).to_be_visible()
    ws = open_workspace(pets_home)
    cm = confusion_matrix(effective_labels(ws, "pets"), load_predictions(ws.dataset("pets"), "resnet"))
    want = cm.rows_in("dog", "fish")  # label dog (row 2), predicted fish (column 3)
    cells = page.locator(".js-plotly-plot g.points path")
    expect(cells).to_have_count(16)
    run_and_settle(page, lambda: cells.nth(2 * 4 + 3).click(force=True), wait_idle)
    expect(page.get_by_text(f"{len(want):,} rows labelled dog, predicted fish")).to_be_visible()
    shown = page.locator("tr.cg-row:visible .cg-id")  # text rows: the grid's table view
    expect(shown).to_have_count(len(want))
    assert sorted(shown.all_inner_texts()) == sorted(want)
