"""The Catalog page in a real browser: `streamlit run app.py` + headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
N_DIGITS = 30


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
    expect(page.locator('[data-testid="stSidebarNavLink"]')).to_have_count(8)
    expect(page.get_by_role("combobox", name="Dataset")).to_have_value("digits")
    expect(page.get_by_role("combobox", name="Active embedding")).to_have_value(
        re.compile(r"^efficientnet-lite0 \(1280-d"))
    thumbs = page.locator('[data-testid="stImage"] img')
    expect(thumbs).to_have_count(N_DIGITS)
    page.wait_for_function(
        "n => { const imgs = [...document.querySelectorAll('[data-testid=stImage] img')];"
        " return imgs.length === n && imgs.every(i => i.complete && i.naturalWidth > 0); }",
        arg=N_DIGITS)
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    # the first card's caption: its id without markdown escapes, and its label
    expect(page.get_by_text("0/digit-0000.png", exact=False).first).to_be_visible()


def _assert_nothing_injected(page, dialogs: list[str]) -> None:
    assert dialogs == [], f"a script ran and opened dialogs {dialogs}"
    assert page.locator('img[src="x"]').count() == 0, "an <img src=x> was injected"
    assert page.evaluate("() => document.querySelectorAll('[onerror]').length") == 0
    assert page.evaluate(
        "() => [...document.querySelectorAll('script')]"
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
    _assert_nothing_injected(page, dialogs)
    # the grid card shows the text literally
    expect(page.locator('[data-testid="stMarkdownContainer"]', has_text=f"{SCRIPT} first review")
           ).to_have_count(1)

    page.locator(".st-key-catalog-Open-row-0 button").click()
    expect(page.get_by_role("heading", name="Row row-0")).to_be_visible()
    wait_idle(page)
    expect(page.get_by_test_id("stText")).to_have_text(f"{SCRIPT} first review")
    table = page.get_by_test_id("stTable")
    expect(table).to_contain_text(IMG)
    expect(table).to_contain_text(SCRIPT)
    _assert_nothing_injected(page, dialogs)


def test_deep_link_on_a_fresh_server_shows_the_app_shell(served_app, browser_page, hostile_home):
    page = browser_page
    page.goto(served_app(hostile_home) + "/catalog")  # the server's very first request
    rows = page.get_by_text("6 of 6 rows")
    rows.or_(page.get_by_text("Choose or create a dataset to start.")).wait_for()
    assert rows.is_visible()
    assert page.get_by_role("combobox", name="Dataset").input_value() == "reviews"
