"""The Catalog page in a real browser: `streamlit run app.py` + headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
N_DIGITS = 30
NO_DATASET = "No dataset yet: add a folder of images or a table on the Add data page."
# the grid's thumbnails: it is drawn inside a shadow root, which document.querySelectorAll
# does not enter (Playwright locators do)
_GRID_THUMBS = ("[...document.querySelectorAll('*')].filter(e => e.shadowRoot)"
                ".flatMap(e => [...e.shadowRoot.querySelectorAll('img.cg-thumb')])")


@pytest.fixture(scope="module")
def small_digits_home(tmp_path_factory) -> Path:
    """30 digit PNGs ingested and embedded with the bundled image encoder (built once)."""
    from core.demo import write_digits_folder
    from core.embeddings import compute_embeddings
    from core.ingest import ingest_folder
    from core.workspace import open_workspace

    root = tmp_path_factory.mktemp("e2e-digits")
    write_digits_folder(root / "src", limit=N_DIGITS)
    ws = open_workspace(root / "home")
    ingest_folder(ws, root / "src", "digits")
    compute_embeddings(ws.dataset("digits"))
    return root / "home"


@pytest.fixture
def hostile_home(tmp_path: Path) -> Path:
    """A text dataset whose text and a metadata column (``note``) hold HTML/script payloads."""
    from core.ingest import ingest_table
    from core.workspace import open_workspace

    table = pd.DataFrame({
        "id": [f"row-{i}" for i in range(6)],
        "text": [f"{SCRIPT} first review"] + [f"an ordinary review number {i}" for i in range(1, 6)],
        "label": ["spam", "ham", "ham", "spam", "ham", "ham"],
        "note": [IMG, "fine", "fine", "ok", "ok", "fine"],
        "stars": [1, 5, 4, 2, 5, 3],
    })
    csv = tmp_path / "reviews.csv"
    table.to_csv(csv, index=False)
    ws = open_workspace(tmp_path / "home")
    ingest_table(ws, csv, "reviews")
    return tmp_path / "home"


def test_catalog_page_loads_with_pickers_counts_and_thumbnails(
    module_served_app, browser_page, small_digits_home, wait_idle
):
    from playwright.sync_api import expect

    page = browser_page
    page.goto(module_served_app(small_digits_home))
    expect(page.get_by_text(f"{N_DIGITS} of {N_DIGITS} rows")).to_be_visible()
    wait_idle(page)
    expect(page.get_by_role("heading", name="Catalog")).to_be_visible()
    expect(page.locator('[data-testid="stSidebarNavLink"]')).to_have_count(9)
    expect(page.get_by_role("combobox", name="Dataset")).to_have_value("digits")
    expect(page.get_by_role("combobox", name="Active embedding")).to_have_value(
        re.compile(r"^efficientnet-lite0 \(1280-d"))
    expect(page.locator(".cg-tile img.cg-thumb")).to_have_count(N_DIGITS)
    page.wait_for_function(  # every thumbnail really loaded (the grid lives in a shadow root)
        f"n => {{ const imgs = {_GRID_THUMBS};"
        " return imgs.length === n && imgs.every(i => i.complete && i.naturalWidth > 0); }",
        arg=N_DIGITS)
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    # the first tile: its id (no markdown escapes) and label on hover, and its label chip
    first = page.locator(".cg-tile").first
    expect(first).to_have_attribute("title", re.compile(r"^0/digit-0000\.png\nlabel 0(\n|$)"))
    expect(first.locator(".cg-label")).to_have_text("0")


_ALL_NODES = ("(sel => [document, ...[...document.querySelectorAll('*')]"
              ".map(e => e.shadowRoot).filter(Boolean)].flatMap(r => [...r.querySelectorAll(sel)]))")


def _assert_nothing_injected(page, dialogs: list[str]) -> None:
    """No payload ran or became an element, in the page or in the grid's shadow root."""
    assert dialogs == [], f"a script ran and opened dialogs {dialogs}"
    assert page.locator('img[src="x"]').count() == 0, "an <img src=x> was injected"
    assert page.evaluate(f"() => {_ALL_NODES}('[onerror]').length") == 0
    assert page.evaluate(
        f"() => {_ALL_NODES}('script')"
        ".filter(s => s.textContent.includes('alert(1)')).length") == 0, "a <script> was injected"


def test_html_in_metadata_is_shown_as_text_never_executed(
    served_app, browser_page, hostile_home, wait_idle
):
    from playwright.sync_api import expect

    page = browser_page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(served_app(hostile_home))
    expect(page.get_by_text("6 of 6 rows")).to_be_visible()
    wait_idle(page)
    # the grid (a table for text rows) shows the text literally
    expect(page.locator("tr.cg-row")).to_have_count(6)
    row = page.locator("tr.cg-row", has=page.locator(".cg-id", has_text=re.compile(r"^row-0$")))
    expect(row.locator(".cg-text-cell")).to_have_text(f"{SCRIPT} first review")
    expect(page.locator(".cg-text-cell", has_text=SCRIPT)).to_have_count(1)
    _assert_nothing_injected(page, dialogs)

    row.locator(".cg-action", has_text="Open").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="Row detail")).to_be_visible()
    expect(dialog.locator("code", has_text="row-0")).to_be_visible()
    wait_idle(page)
    expect(dialog.get_by_test_id("stText")).to_have_text(f"{SCRIPT} first review")
    # the fields table draws on a canvas; its accessible table holds the cell texts
    fields = dialog.get_by_test_id("stDataFrame").locator('table[role="grid"]')
    expect(fields).to_contain_text(IMG)
    expect(fields).to_contain_text(SCRIPT)
    _assert_nothing_injected(page, dialogs)


def test_deep_link_on_a_fresh_server_shows_the_app_shell(served_app, browser_page, hostile_home):
    page = browser_page
    page.goto(served_app(hostile_home) + "/catalog")  # the server's very first request
    rows = page.get_by_text("6 of 6 rows")
    rows.or_(page.get_by_text(NO_DATASET)).wait_for()
    assert rows.is_visible()
    assert page.get_by_role("combobox", name="Dataset").input_value() == "reviews"
