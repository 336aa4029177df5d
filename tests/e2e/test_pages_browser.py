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


def open_page(page, base_url: str, path: str, dataset: str, wait_idle) -> None:
    """Open ``path`` and choose ``dataset`` in the sidebar picker."""
    expect = _expect()
    page.goto(f"{base_url}/{path}")
    picker = page.get_by_role("combobox", name="Dataset")
    expect(picker).to_be_visible()
    if picker.input_value() != dataset:
        picker.click()
        page.get_by_role("option", name=dataset, exact=True).click()
        expect(picker).to_have_value(dataset)
    wait_idle(page)  # may still be the previous dataset's idle state: callers wait for content


def pick_option(page, label: str, option: str) -> None:
    """Choose ``option`` in the Streamlit selectbox/multiselect labelled ``label``."""
    expect = _expect()
    page.get_by_role("combobox", name=label).first.click()
    choice = page.get_by_role("option", name=option, exact=True).first
    expect(choice).to_be_visible()
    choice.click()
    listbox = page.get_by_role("listbox")
    if listbox.count():  # a multiselect stays open after a pick; an open list hides the page
        page.keyboard.press("Escape")  # from the accessibility tree and shadows labels
    expect(listbox).to_have_count(0)


def test_catalog_filter_open_and_tag(page_ctx):
    page, base_url, home, wait_idle = page_ctx
    expect = _expect()
    open_page(page, base_url, "", "digits", wait_idle)
    expect(page.get_by_text("1,797 of 1,797 rows")).to_be_visible()
    pick_option(page, "Label", "7")
    n7 = int((open_workspace(home).dataset("digits").rows()["label"] == "7").sum())
    expect(page.get_by_text(f"{n7:,} of 1,797 rows")).to_be_visible()
    wait_idle(page)
    page.locator('button[data-testid^="stBaseButton"]', has_text=re.compile(r"^Open$")).first.click()
    expect(page.get_by_role("heading", name=re.compile(r"Row 7.digit"))).to_be_visible()
    wait_idle(page)
    page.get_by_text("Select", exact=True).first.click()
    expect(page.get_by_text("1 selected")).to_be_visible()
    page.get_by_label("Tag", exact=True).fill("e2e-tag")
    page.get_by_role("button", name="Tag selected").click()
    expect(page.get_by_text("Tagged 1 rows 'e2e-tag'")).to_be_visible()
    assert open_workspace(home).store.tags("digits") == {"e2e-tag": 1}


def test_similarity_anchor_scores_threshold_and_slice(page_ctx):
    page, base_url, home, wait_idle = page_ctx
    expect = _expect()
    anchor = sorted(open_workspace(home).dataset("digits").rows()["id"])[0]
    open_page(page, base_url, "similarity", "digits", wait_idle)
    page.get_by_label("Row ids").fill(anchor)
    page.get_by_role("button", name="Add as anchors").click()
    expect(page.get_by_text(re.compile(r"score 0\.\d{3}")).first).to_be_visible()
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
    expect(page.get_by_text(re.compile(r"[1-9][\d,]* selected"))).to_be_visible()
    wait_idle(page)
    page.get_by_label("Slice name").fill("e2e-similar")
    page.get_by_role("button", name="Save as slice").click()
    expect(page.get_by_text("Saved slice 'e2e-similar'")).to_be_visible()
    saved = open_workspace(home).store.get_slice("digits", "e2e-similar")
    assert saved.recipe["anchors"] == [anchor]


def test_text_search_finds_read_csv(page_ctx):
    page, base_url, home, wait_idle = page_ctx
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


def test_cluster_map_box_selection_fills_the_grid(page_ctx):
    page, base_url, home, wait_idle = page_ctx
    expect = _expect()
    open_page(page, base_url, "clusters", "digits", wait_idle)
    plot = page.locator(".js-plotly-plot").first
    expect(plot).to_be_visible()
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
    expect(page.get_by_text(re.compile(r"Picked rows \([1-9][\d,]*\)"))).to_be_visible()
    expect(page.locator('[data-testid="stImage"]').first).to_be_visible()


def test_label_review_accept_changes_the_label_in_the_catalog(page_ctx):
    page, base_url, home, wait_idle = page_ctx
    expect = _expect()
    open_page(page, base_url, "quality", "digits", wait_idle)
    # the digits queue, not a stale one from the dataset the session started on
    expect(page.get_by_text(re.compile(r"1,797 labelled rows scored"))).to_be_visible()
    wait_idle(page)
    accept = page.get_by_role("button", name=re.compile(r"^Accept ")).first
    expect(accept).to_be_visible()
    new_label = accept.inner_text().removeprefix("Accept ").strip()
    before = set(open_workspace(home).store.label_overrides("digits"))
    accept.click()
    expect(page.get_by_role("button", name="Undo last action")).to_be_enabled()
    edited = set(open_workspace(home).store.label_overrides("digits")) - before
    assert len(edited) == 1
    (rid,) = edited
    page.get_by_role("link", name="Catalog").click()
    wait_idle(page)
    box = page.get_by_label("Text or id contains")
    box.fill(rid)
    box.press("Enter")
    expect(page.get_by_text("1 of 1,797 rows")).to_be_visible()
    card = (page.locator('[data-testid="stCaptionContainer"]', has_text=rid.split("/")[-1])
            .filter(has_not_text="Filter:").first)  # the card, not the filter panel's summary
    expect(card).to_contain_text(new_label)


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
