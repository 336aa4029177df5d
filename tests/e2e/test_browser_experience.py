"""The browser experience of issue 15, in a real browser (``streamlit run`` + Chromium):
adding data from the app, the first start, jobs seen from two tabs, the dense grid and
its selection, "Open in Catalog" on a slice, and the map's explicit selection buttons.

Every wait is on visible state (Playwright's auto-waiting ``expect``), never a sleep.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.workspace import open_workspace
from tests.e2e.test_pages_browser import run_and_settle

UI_MS = 120_000
VIEW_H = 1000


def _expect():
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_MS)
    return expect


def _small_digits(root: Path, n: int, *, embed: bool = False) -> Path:
    """A workspace with ``n`` digit images as dataset ``digits`` (and, if ``embed``, a
    random 16-d imported embedding: enough for the map, no model needed)."""
    from core.demo import write_digits_folder
    from core.embeddings import write_embedding
    from core.ingest import ingest_folder

    write_digits_folder(root / "src", limit=n)
    ws = open_workspace(root / "home")
    ingest_folder(ws, root / "src", "digits")
    if embed:
        ids = ws.dataset("digits").rows()["id"].astype(str).tolist()
        vectors = np.random.default_rng(0).standard_normal((len(ids), 16)).astype(np.float32)
        write_embedding(ws.dataset("digits"), "random-16", ids, vectors,
                        {"encoder": None, "source": "imported"})
    return root / "home"


def _open_small_digits(page, served_app, tmp_path: Path, wait_idle) -> Path:
    """Serve a 30-digit workspace, open its Catalog and wait until the grid is drawn."""
    home = _small_digits(tmp_path, 30)
    page.goto(served_app(home))
    _expect()(page.get_by_text("30 of 30 rows")).to_be_visible()
    _expect()(page.locator(".cg-tile")).to_have_count(30)
    wait_idle(page)
    return home


def _visible_loaded_thumbs(page) -> int:
    return page.evaluate(
        """h => [...document.querySelectorAll('*')].map(e => e.shadowRoot).filter(Boolean)
             .flatMap(r => [...r.querySelectorAll('.cg-tile img.cg-thumb')])
             .filter(i => { const b = i.getBoundingClientRect();
                            return i.complete && i.naturalWidth > 0 && b.top >= 0 && b.bottom <= h; })
             .length""", VIEW_H)


def _pick(page, label: str, option: str) -> None:
    """Choose ``option`` in the selectbox ``label`` (typed into its search, then Enter)."""
    box = page.get_by_role("combobox", name=label).first
    box.click()
    page.keyboard.type(option)
    page.get_by_role("option", name=option, exact=True).first.wait_for()
    page.keyboard.press("Enter")
    _expect()(box).to_have_value(option)


def _upload(page, path: Path, wait_idle) -> None:
    """On the Add data page: the Upload tab, ``path`` into the uploader, "Upload and preview"."""
    page.get_by_role("tab", name="Upload").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))
    _expect()(page.get_by_text(path.name).first).to_be_visible()
    wait_idle(page)
    page.get_by_role("button", name="Upload and preview").click()


# ---- adding data ---------------------------------------------------------------------------
def test_add_a_folder_by_path_and_a_csv_by_upload_then_see_their_rows(
    served_app, browser_page, tmp_path, wait_idle, monkeypatch
):
    from core.demo import write_digits_folder

    expect = _expect()
    page = browser_page
    write_digits_folder(tmp_path / "data" / "pics", limit=12)
    table = tmp_path / "notes.csv"
    pd.DataFrame({"id": [f"n{i}" for i in range(7)],
                  "caption": [f"note number {i} about shipping" for i in range(7)],
                  "topic": ["a", "b", "c", "a", "b", "c", "a"]}).to_csv(table, index=False)
    monkeypatch.setenv("CATALOG_DATA_ROOTS", str(tmp_path / "data"))
    home = tmp_path / "home"
    page.goto(served_app(home) + "/add_data")

    # a folder by path (outside the allowed roots first: refused, naming the roots)
    path_box = page.get_by_label("Folder of images, or a CSV / Parquet / JSONL file")
    path_box.fill(str(table))
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_text(re.compile("is outside the folders this server may read"))).to_be_visible()
    path_box.fill(str(tmp_path / "data" / "pics"))
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_text(re.compile(r"pics.*folder"))).to_be_visible()
    page.get_by_label("Dataset name").fill("pics")
    page.get_by_text("Embed it after adding").click()  # keep the test fast: no embedding
    page.get_by_role("button", name="Add dataset").click()
    page.get_by_role("button", name="Open pics in the Catalog").click()
    expect(page.get_by_text("12 of 12 rows")).to_be_visible()
    expect(page.locator(".cg-tile")).to_have_count(12)
    assert open_workspace(home).dataset("pics").rows()["label"].nunique() == 10

    # a CSV by upload, the text column chosen in the mapping
    page.get_by_role("link", name="Add data").click()
    _upload(page, table, wait_idle)
    expect(page.get_by_text(re.compile(r"notes\.csv.*7 rows"))).to_be_visible()
    wait_idle(page)
    _pick(page, "text column", "caption")
    _pick(page, "label column", "topic")
    page.get_by_text("Embed it after adding").click()
    wait_idle(page)
    page.get_by_role("button", name="Add dataset").click()
    page.get_by_role("button", name="Open notes in the Catalog").click()
    expect(page.get_by_text("7 of 7 rows")).to_be_visible()
    expect(page.locator("tr.cg-row")).to_have_count(7)  # text rows: the table view
    expect(page.locator("tr.cg-row .cg-text-cell").first).to_have_text(
        "note number 0 about shipping")


def test_a_zip_with_dotdot_names_is_refused_and_nothing_is_created(
    served_app, browser_page, tmp_path, wait_idle
):
    expect = _expect()
    page = browser_page
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("cats/ok.png", b"not really an image")
        archive.writestr("../escape.png", b"x" * 100)
    home = tmp_path / "home"
    page.goto(served_app(home) + "/add_data")
    _upload(page, evil, wait_idle)
    expect(page.get_by_text(re.compile(r"member '\.\./escape\.png'"))).to_be_visible()
    expect(page.get_by_role("heading", name="Preview")).to_have_count(0)
    uploads = home / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []
    assert not (tmp_path / "escape.png").exists() and not (home / "escape.png").exists()
    assert open_workspace(home).dataset_names() == []


# ---- first start and jobs ------------------------------------------------------------------
def test_first_start_shows_digits_rows_before_the_demos_are_embedded_and_a_second_tab_sees_the_job(
    served_app, browser_page, tmp_path
):
    expect = _expect()
    page = browser_page
    home = tmp_path / "home"
    url = served_app(home, demos=True)
    page.goto(url)
    expect(page.locator(".cg-tile").first).to_be_visible()
    ws = open_workspace(home)
    # rows are on screen while the embedding job still runs (it takes minutes here)
    assert ws.dataset("digits").embedding_names() == []
    expect(page.get_by_role("combobox", name="Dataset")).to_have_value("digits")
    expect(page.get_by_text(re.compile(r"1,797 of 1,797 rows"))).to_be_visible()
    job = page.get_by_text(re.compile(r"^Embedding digits"))
    expect(job).to_be_visible()
    expect(page.get_by_text("No dataset yet")).to_have_count(0)  # no contradictory message

    second = page.context.new_page()
    second.goto(url + "/similarity")
    # the sidebar's job panel, and the page's own progress of the job it waits on
    expect(second.get_by_text(re.compile(r"^Embedding digits")).first).to_be_visible()
    expect(second.get_by_text(re.compile(r"digits is being embedded"))).to_be_visible()
    second.close()


# ---- the grid --------------------------------------------------------------------------------
def test_the_digits_catalog_shows_at_least_40_thumbnails_on_one_screen(
    served_app, browser_page, tmp_path, digits_home
):
    page = browser_page
    home = tmp_path / "home"
    shutil.copytree(digits_home, home)
    page.goto(served_app(home))
    _expect()(page.get_by_text("1,797 of 1,797 rows")).to_be_visible()
    page.wait_for_function(
        """n => [...document.querySelectorAll('*')].map(e => e.shadowRoot).filter(Boolean)
             .flatMap(r => [...r.querySelectorAll('img.cg-thumb')])
             .filter(i => i.complete && i.naturalWidth > 0).length >= n""", arg=40)
    visible = _visible_loaded_thumbs(page)
    assert visible >= 40, f"only {visible} thumbnails fully on a 1400x1000 screen"


def test_shift_click_selects_a_range_then_save_as_slice(served_app, browser_page, tmp_path, wait_idle):
    expect = _expect()
    page = browser_page
    home = _open_small_digits(page, served_app, tmp_path, wait_idle)
    tiles = page.locator(".cg-tile")
    ids = open_workspace(home).dataset("digits").rows()["id"].astype(str).tolist()
    tiles.nth(2).click()
    tiles.nth(6).click(modifiers=["Shift"])
    # the browser sends the selection once the clicks settle: wait for that one run
    run_and_settle(page, lambda: tiles.nth(9).click(modifiers=["Control"]), wait_idle)
    expect(page.locator(".cg-tile.cg-selected")).to_have_count(6)
    expect(page.locator(".cg-count")).to_have_text(re.compile(r"^6 selected"))
    page.get_by_role("button", name="Save as slice").click()
    popover = page.locator('[data-testid="stPopoverBody"]')
    popover.get_by_label("Slice name").fill("range")
    popover.get_by_role("button", name="Save as slice").click()
    expect(page.get_by_text("Saved slice 'range' with 6 rows.")).to_be_visible()
    saved = open_workspace(home).store.get_slice("digits", "range")
    assert list(saved.ids) == ids[2:7] + [ids[9]]


def test_a_button_pressed_right_after_a_tile_click_sees_that_click(
        served_app, browser_page, tmp_path, wait_idle):
    """The grid sends its selection a moment after the last click; a button pressed within
    that moment must still act on it (the press sends the pending selection first)."""
    expect = _expect()
    page = browser_page
    _open_small_digits(page, served_app, tmp_path, wait_idle)
    page.evaluate("""() => {
      const tiles = [...document.querySelectorAll('*')].map(e => e.shadowRoot).filter(Boolean)
        .flatMap(r => [...r.querySelectorAll('.cg-tile')]);
      const button = [...document.querySelectorAll('button')]
        .find(b => b.innerText.includes('Use as anchors'));
      tiles[4].click();  // then at once the button: its press, and its click (next task)
      button.dispatchEvent(new PointerEvent('pointerdown', {bubbles: true, composed: true}));
      setTimeout(() => button.click(), 0);
    }""")
    expect(page.get_by_text("1 anchor set: open Similarity search")).to_be_visible()
    expect(page.get_by_text("Select rows first.")).to_have_count(0)
    expect(page.locator(".cg-tile.cg-selected")).to_have_count(1)


def test_open_in_catalog_opens_the_slice_dataset_filtered(served_app, browser_page, tmp_path, wait_idle):
    from core.ingest import ingest_table

    expect = _expect()
    page = browser_page
    home = _small_digits(tmp_path, 30)
    ws = open_workspace(home)
    notes = tmp_path / "aaa.csv"  # sorts first: the dataset a new session starts on
    pd.DataFrame({"id": ["a", "b"], "text": ["one", "two"]}).to_csv(notes, index=False)
    ingest_table(ws, notes, "aaa-notes")
    ids = ws.dataset("digits").rows()["id"].astype(str).tolist()
    ws.store.save_slice("digits", "five", ids[10:15], {"method": "manual"})
    page.goto(served_app(home) + "/slices")
    picker = page.get_by_role("combobox", name="Dataset")
    expect(picker).to_be_visible()
    if picker.input_value() != "digits":
        _pick(page, "Dataset", "digits")
    wait_idle(page)
    page.get_by_role("button", name="Open in Catalog").click()
    expect(page.get_by_role("heading", name="Catalog")).to_be_visible()
    expect(page.get_by_text("5 of 30 rows")).to_be_visible()
    expect(picker).to_have_value("digits")
    expect(page.locator(".cg-tile")).to_have_count(5)
    titles = [t.split("\n")[0] for t in page.locator(".cg-tile").evaluate_all(
        "ts => ts.map(t => t.title)")]
    assert titles == ids[10:15]


def test_the_map_adds_or_replaces_the_selection_only_when_asked(
    served_app, browser_page, tmp_path, wait_idle
):
    expect = _expect()
    page = browser_page
    home = _small_digits(tmp_path, 60, embed=True)
    page.goto(served_app(home) + "/clusters")
    plot = page.locator(".js-plotly-plot").first
    expect(plot).to_be_visible()
    wait_idle(page)

    def box(x0: float, y0: float, x1: float, y1: float) -> None:
        plot.hover()
        page.locator('.modebar-btn[data-title="Box Select"]').first.click()
        area = plot.locator(".nsewdrag").first.bounding_box()
        page.mouse.move(area["x"] + area["width"] * x0, area["y"] + area["height"] * y0)
        page.mouse.down()
        page.mouse.move(area["x"] + area["width"] * x1, area["y"] + area["height"] * y1, steps=10)
        page.mouse.up()

    box(0.02, 0.02, 0.45, 0.98)  # the left part
    offer = page.get_by_text(re.compile(r"The lasso caught [1-9]\d* points"))
    expect(offer).to_be_visible()
    first = int(re.search(r"caught (\d+)", offer.inner_text()).group(1))
    page.get_by_role("button", name="Replace selection").click()
    expect(page.get_by_text(re.compile(rf"{first} selected now"))).to_be_visible()
    wait_idle(page)

    box(0.55, 0.02, 0.98, 0.98)  # the right part (not on the first box: that would move it)
    offer = page.get_by_text(re.compile(r"The lasso caught [1-9]\d* points"))
    expect(offer).to_be_visible()
    expect(page.get_by_text(re.compile(rf"· {first} rows selected now"))).to_be_visible()
    second = int(re.search(r"caught (\d+)", offer.inner_text()).group(1))
    page.get_by_role("button", name="Add to selection").click()
    expect(page.get_by_text(re.compile(rf"{first + second} selected now"))).to_be_visible()


@pytest.fixture(autouse=True)
def _no_stray_roots(monkeypatch):
    monkeypatch.delenv("CATALOG_DATA_ROOTS", raising=False)
