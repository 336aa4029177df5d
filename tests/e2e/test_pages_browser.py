"""Each page's main job, done in a real browser the way a person does it.

One server per module on a copy of the demo workspace (digits + api-docs). Every wait is
on visible state (Playwright's auto-waiting ``expect``), never a fixed sleep.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from core.workspace import open_workspace

UI_MS = 120_000


@pytest.fixture(scope="module")
def demo_copy(tmp_path_factory, demo_home: Path) -> Path:
    home = tmp_path_factory.mktemp("e2e-demo") / "home"
    shutil.copytree(demo_home, home)
    return home


@pytest.fixture(scope="module")
def base_url(module_served_app, demo_copy) -> str:
    return module_served_app(demo_copy)


def _expect():
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_MS)
    return expect


# Counts the script runs that finished from now on (a MutationObserver sees every change
# of the app's run state, however short the run).
_COUNT_RUNS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  window.__e2eRunsDone = 0;
  if (!window.__e2eRunWatch) {
    window.__e2eRunWatch = new MutationObserver(records => records.forEach(r => {
      if (r.oldValue === 'running' && app.getAttribute('data-test-script-state') !== 'running')
        window.__e2eRunsDone += 1;
    }));
    window.__e2eRunWatch.observe(app, {attributes: true, attributeOldValue: true,
                                       attributeFilter: ['data-test-script-state']});
  }
}"""


def run_and_settle(page, action, wait_idle) -> None:
    """Do ``action`` (which makes the app rerun) and wait until that rerun has finished
    (not the idle state of the run before it)."""
    page.evaluate(_COUNT_RUNS)
    action()
    page.wait_for_function("() => window.__e2eRunsDone > 0")
    wait_idle(page)


def open_page(page, base_url: str, path: str, dataset: str, wait_idle) -> None:
    """Open ``path``, choose ``dataset`` in the sidebar picker and wait until the page has
    been drawn for it."""
    expect = _expect()
    page.goto(f"{base_url}/{path}")
    picker = page.get_by_role("combobox", name="Dataset")
    expect(picker).to_be_visible()
    wait_idle(page)
    if picker.input_value() != dataset:
        def choose() -> None:
            picker.click()
            page.get_by_role("option", name=dataset, exact=True).click()
            expect(picker).to_have_value(dataset)

        run_and_settle(page, choose, wait_idle)


def pick_option(page, label: str, option: str) -> None:
    """Choose ``option`` in the Streamlit selectbox/multiselect labelled ``label``."""
    expect = _expect()
    choice = page.get_by_role("option", name=option, exact=True).first
    for attempt in range(3):  # a rerun landing as the list opens redraws it closed
        page.get_by_role("combobox", name=label).first.click()
        try:
            expect(choice).to_be_visible(timeout=10_000)
            break
        except AssertionError:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")
    choice.click()
    listbox = page.get_by_role("listbox")
    if listbox.count():  # a multiselect stays open after a pick; an open list hides the page
        page.keyboard.press("Escape")  # from the accessibility tree and shadows labels
    expect(listbox).to_have_count(0)


def click_tile(page, tile, wait_idle, **click_args) -> None:
    """Click a grid tile (or table row) and wait until the browser has sent the selection
    to Python: the grid sends it once the clicks settle, in one fragment rerun."""
    run_and_settle(page, lambda: tile.click(**click_args), wait_idle)


def open_filters(page) -> None:
    """Expand the (collapsed) filter panel."""
    expect = _expect()
    page.get_by_test_id("stExpander").locator("summary", has_text="Filters").first.click()
    expect(page.get_by_label("Text or id contains")).to_be_visible()


def popover_action(page, opener: str, fields: dict[str, str], button: str | None = None) -> None:
    """Open the selection bar's popover ``opener``, fill its ``fields`` (label → text) and
    press its button ``button`` (default: the one named like the popover)."""
    expect = _expect()
    page.get_by_role("button", name=opener, exact=True).click()
    body = page.locator('[data-testid="stPopoverBody"]')
    expect(body).to_be_visible()
    for label, text in fields.items():
        body.get_by_label(label, exact=True).fill(text)
    body.get_by_role("button", name=button or opener, exact=True).click()


def test_catalog_filter_open_and_tag(page_ctx):
    page, base_url, home, wait_idle = page_ctx
    expect = _expect()
    open_page(page, base_url, "", "digits", wait_idle)
    expect(page.get_by_text("1,797 of 1,797 rows")).to_be_visible()
    open_filters(page)
    pick_option(page, "Label", "7")
    n7 = int((open_workspace(home).dataset("digits").rows()["label"] == "7").sum())
    expect(page.get_by_text(f"{n7:,} of 1,797 rows")).to_be_visible()
    wait_idle(page)
    tile = page.locator(".cg-tile").first
    expect(tile).to_have_attribute("title", re.compile(r"^7/digit"))
    tile.hover()  # the row actions show on hover
    tile.locator(".cg-action", has_text=re.compile(r"^Open$")).click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="Row detail")).to_be_visible()
    expect(dialog.locator("code", has_text=re.compile(r"^7/digit"))).to_be_visible()
    wait_idle(page)
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)
    click_tile(page, tile, wait_idle)
    expect(page.locator(".cg-tile.cg-selected")).to_have_count(1)
    expect(page.locator(".cg-count")).to_have_text(re.compile(r"^1 selected \(1 of \d+ on this page\)"))
    popover_action(page, "Tag selected", {"Tag": "e2e-tag"})
    expect(page.get_by_text("Tagged 1 rows 'e2e-tag'")).to_be_visible()
    assert open_workspace(home).store.tags("digits") == {"e2e-tag": 1}


def test_similarity_anchor_scores_threshold_and_slice(page_ctx):
    page, base_url, home, wait_idle = page_ctx
    expect = _expect()
    anchor = min(open_workspace(home).dataset("digits").rows()["id"])
    open_page(page, base_url, "similarity", "digits", wait_idle)
    page.get_by_label("Row ids").fill(anchor)
    page.get_by_role("button", name="Add as anchors").click()
    # the ranked tiles: a score badge, and the score in the hover text
    expect(page.locator(".cg-tile .cg-badge").first).to_have_text(re.compile(r"^-?\d\.\d{3}$"))
    expect(page.locator(".cg-tile").nth(1)).to_have_attribute("title", re.compile(r"\nscore 0\.\d{3}"))
    wait_idle(page)
    page.get_by_text("Score ≥ threshold").click()
    slider = page.get_by_role("slider", name="Score threshold")
    expect(slider).to_be_visible()
    count = page.get_by_text(re.compile(r"[\d,]+ rows ≥ "))
    expect(count).to_be_visible()
    before = count.inner_text()
    slider.focus()
    for _ in range(20):  # lower the threshold by 0.02: more rows pass
        page.keyboard.press("ArrowLeft")
    expect(count).not_to_have_text(before)
    wait_idle(page)
    page.get_by_role("button", name="Select all above threshold").click()
    expect(page.locator(".cg-count")).to_have_text(re.compile(r"^[1-9][\d,]* selected"))
    wait_idle(page)
    popover_action(page, "Save as slice", {"Slice name": "e2e-similar"})
    expect(page.get_by_text("Saved slice 'e2e-similar'")).to_be_visible()
    saved = open_workspace(home).store.get_slice("digits", "e2e-similar")
    assert saved.recipe["anchors"] == [anchor]


def test_text_search_finds_read_csv(page_ctx):
    page, base_url, _home, wait_idle = page_ctx
    expect = _expect()
    open_page(page, base_url, "text_search", "api-docs", wait_idle)
    box = page.get_by_label("Describe what you are looking for")
    box.fill("read a csv file")
    box.press("Enter")
    expect(page.get_by_text("pandas.read_csv").first).to_be_visible()


def test_smart_select_cluster_save_find_and_download(page_ctx, tmp_path):
    page, base_url, home, wait_idle = page_ctx
    expect = _expect()
    open_page(page, base_url, "smart_select", "digits", wait_idle)
    pick_option(page, "Method", "Cluster: spread over KMeans clusters of the embedding")
    count = page.get_by_label("N rows")
    count.fill("50")
    count.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_text("Recipe (stored with the slice)")).to_be_visible()
    wait_idle(page)
    page.get_by_label("Slice name").fill("e2e-batch")
    page.get_by_role("button", name="Save as slice").click()
    expect(page.get_by_text("Saved slice 'e2e-batch' with 50 rows.")).to_be_visible()
    assert len(open_workspace(home).store.get_slice("digits", "e2e-batch").ids) == 50

    page.get_by_role("link", name="Slices").click()
    expect(page.get_by_role("combobox", name="Slice")).to_be_visible()
    wait_idle(page)
    pick_option(page, "Slice", "e2e-batch")  # the saved slice is offered on the Slices page
    wait_idle(page)
    with page.expect_download() as info:
        page.get_by_role("button", name=re.compile(r"^Download .*e2e-batch")).click()
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    text = target.read_text(encoding="utf-8")
    assert text.strip(), "the downloaded export is empty"
    if target.suffix in (".ndjson", ".jsonl"):
        lines = [json.loads(line) for line in text.splitlines() if line.strip()]
        assert len(lines) == 50
    else:
        assert len(text.strip().splitlines()) == 51  # header + 50 rows


@pytest.fixture
def page_ctx(browser_page, base_url, demo_copy, wait_idle):
    return browser_page, base_url, demo_copy, wait_idle


MAP_TIMEOUT_MS = 360_000


def test_cluster_map_box_selection_fills_the_grid(page_ctx):
    page, base_url, _home, wait_idle = page_ctx
    expect = _expect()
    open_page(page, base_url, "clusters", "digits", wait_idle)
    plot = page.locator(".js-plotly-plot").first
    # the first UMAP map of a fresh install compiles numba's kernels (a minute or more on a
    # busy 2-core box) in its background job; the page shows its progress meanwhile
    expect(plot).to_be_visible(timeout=MAP_TIMEOUT_MS)
    expect(page.get_by_text("Picked rows (0)")).to_be_visible()
    wait_idle(page)
    plot.hover()
    page.locator('.modebar-btn[data-title="Box Select"]').first.click()
    area = plot.locator(".nsewdrag").first.bounding_box()
    x0, y0 = area["x"] + area["width"] * 0.2, area["y"] + area["height"] * 0.2
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + area["width"] * 0.4, y0 + area["height"] * 0.3, steps=8)
    page.mouse.move(x0 + area["width"] * 0.6, y0 + area["height"] * 0.6, steps=8)
    page.mouse.up()
    # the box is only offered: the selection changes when a button says how
    caught = page.get_by_text(re.compile(r"The lasso caught [1-9][\d,]* points"))
    expect(caught).to_be_visible()
    n = int(re.search(r"caught ([\d,]+) points", caught.inner_text()).group(1).replace(",", ""))
    expect(page.get_by_text("Picked rows (0)")).to_be_visible()
    wait_idle(page)
    page.get_by_role("button", name="Replace selection").click()
    expect(page.get_by_text(f"Picked rows ({n:,})")).to_be_visible()
    expect(page.locator(".cg-tile img.cg-thumb").first).to_be_visible()
    expect(page.locator(".cg-count")).to_have_text(re.compile(rf"^{n:,} selected"))


def test_label_review_accept_changes_the_label_in_the_catalog(page_ctx):
    page, base_url, home, wait_idle = page_ctx
    expect = _expect()
    open_page(page, base_url, "quality", "digits", wait_idle)
    # the digits queue, not a stale one from the dataset the session started on
    expect(page.get_by_text(re.compile(r"1,797 labelled rows scored"))).to_be_visible()
    wait_idle(page)
    accept = page.get_by_role("button", name=re.compile(r"^Accept ")).first
    expect(accept).to_be_visible()
    # each card explains its score with the row's nearest neighbours
    expect(page.get_by_text("Nearest rows (label · similarity):").first).to_be_visible()
    new_label = accept.inner_text().removeprefix("Accept ").strip()
    before = set(open_workspace(home).store.label_overrides("digits"))
    accept.click()
    expect(page.get_by_role("button", name="Undo last action")).to_be_enabled()
    edited = set(open_workspace(home).store.label_overrides("digits")) - before
    assert len(edited) == 1
    (rid,) = edited
    page.get_by_role("link", name="Catalog").click()
    expect(page.get_by_role("heading", name="Catalog")).to_be_visible()
    wait_idle(page)
    open_filters(page)
    box = page.get_by_label("Text or id contains")
    box.fill(rid)
    box.press("Enter")
    expect(page.get_by_text("1 of 1,797 rows")).to_be_visible()
    tile = page.locator(".cg-tile")
    expect(tile).to_have_count(1)
    expect(tile).to_have_attribute("title", re.compile(rf"^{re.escape(rid)}\nlabel {re.escape(new_label)}(\n|$)"))
    expect(tile.locator(".cg-label")).to_have_text(new_label)


def test_embeddings_upload_and_make_active(page_ctx, tmp_path):
    import numpy as np
    import pandas as pd

    page, base_url, home, wait_idle = page_ctx
    expect = _expect()
    ids = open_workspace(home).dataset("digits").rows()["id"].tolist()
    vectors = np.random.default_rng(0).normal(size=(len(ids), 8)).astype(np.float32)
    upload = tmp_path / "mine.parquet"
    pd.DataFrame({"id": ids, "vector": list(vectors)}).to_parquet(upload)
    open_page(page, base_url, "embeddings", "digits", wait_idle)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(upload))
    expect(page.get_by_text("mine.parquet")).to_be_visible()
    wait_idle(page)
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_text(re.compile(r"imported 'mine'"))).to_be_visible()
    wait_idle(page)
    page.get_by_role("button", name="Make active").click()
    expect(page.get_by_role("combobox", name="Active embedding")).to_have_value(re.compile("^mine"))


def _option_text(page, label: str, contains: str) -> str:
    """The full text of the option of selectbox ``label`` that contains ``contains``."""
    page.get_by_role("combobox", name=label).first.click()
    option = page.get_by_role("option", name=re.compile(contains)).first
    text = option.inner_text().strip()
    page.keyboard.press("Escape")
    return text
